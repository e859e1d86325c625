"""Model surgery: find target layers and build a functional graph that exposes their outputs.

The graph is always *new*: the original model is left untouched and its weights are shared, never
copied, so the feature model stays in sync with training. Nested models (a base model used as a
layer) are inlined so that any layer inside them can be a target. A softmax/sigmoid output can be
exposed as its pre-activation (the logits), which is what activation maximization should climb:
maximizing a softmax score is mostly achieved by pushing the *other* classes down.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from visopt.model.layers import (OTHER_NONLINEARITIES, FeatureSpec, LayerInput, activation_name, contains, find_feature,
                                 is_graph, is_squashing, iter_layers, model_input, rectifier)


@dataclass(frozen=True)
class LayerRequest:
    """A term asks for the output of ``layer``; ``pre_activation`` asks for it before a softmax/sigmoid.

    ``layer`` may also be a :class:`~visopt.model.layers.LayerInput` (or ``"NAME:input"``): the
    tensor entering that layer, for maps that no layer outputs (a residual ``x + y``).
    """

    layer: FeatureSpec
    pre_activation: bool = False


def _call_linear(layer: keras.layers.Layer, args, kwargs):
    """``layer``'s call with its activation replaced by the identity, its weights shared.

    The swap happens while the call is traced, so a compiled graph holds the linear version while
    the original layer keeps its activation everywhere else.
    """
    if isinstance(layer, (keras.layers.Softmax, keras.layers.ReLU, keras.layers.LeakyReLU)):
        return args[0]
    saved = layer.activation
    layer.activation = keras.activations.linear
    try:
        return layer.call(*args, **kwargs)
    finally:
        layer.activation = saved


class PreActivation(keras.layers.Layer):
    """Calls a layer with its activation replaced by the identity, sharing its weights."""

    def __init__(self, layer: keras.layers.Layer, **kwargs):
        # the inner layer's policy: a float32 softmax head in a mixed-precision model stays float32
        super().__init__(name=f"{layer.name}_pre_activation", dtype=layer.dtype_policy, **kwargs)
        self.inner = layer

    def call(self, *args, **kwargs):
        return _call_linear(self.inner, args, kwargs)


#: How a ReLU's gradient can be replaced (``build_feature_model(relu_gradient=...)``).
RELU_GRADIENTS = ("guided", "deconvnet", "redirected")


def _modified_rectifier(x, rule: str, activation=tf.nn.relu):
    @tf.custom_gradient
    def rectify(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = activation(x)

        def grad(upstream):
            if rule == "redirected":
                return _redirected(x, upstream, tape.gradient(y, x, output_gradients=upstream))
            passed = upstream > 0
            if rule == "deconvnet":  # the upstream gradient, rectified: the forward mask is ignored
                return tf.where(passed, upstream, tf.zeros_like(upstream))
            # guided: backprop through the rectifier (its own mask and slope), where the upstream is positive
            return tf.where(passed, tape.gradient(y, x, output_gradients=upstream), tf.zeros_like(upstream))
        return y, grad

    return rectify(x)


def _redirected(x, upstream, through):
    """lucid's redirected ReLU gradient, for an energy that is *minimized*.

    Where a sample's rectifier passes no gradient at all (every unit off), the optimization would
    never move: pass the upstream gradient of the units that are off only where it would turn them
    on (a negative gradient raises x under descent). Samples with any gradient keep the true one.
    """
    turns_on = tf.logical_or(x > 0, upstream < 0)
    redirected = tf.where(turns_on, upstream, tf.zeros_like(upstream))
    axes = list(range(1, len(x.shape)))
    alive = tf.reduce_any(tf.not_equal(through, 0), axis=axes, keepdims=True)
    return tf.where(alive, through, redirected)


class ModifiedReLU(keras.layers.Layer):
    """Calls a layer that ends in a rectifier (ReLU, ReLU6, leaky ReLU) with the rectifier's *gradient*
    following ``rule``, sharing weights.

    ``"guided"`` (guided backpropagation) passes the rectifier's gradient only where the upstream
    gradient is positive; ``"deconvnet"`` passes the upstream gradient wherever it is positive;
    ``"redirected"`` (for optimization, lucid's) passes the true gradient unless a sample's
    rectifier is entirely off, and then the gradient that would turn units on. The forward pass is
    unchanged.
    """

    def __init__(self, layer: keras.layers.Layer, rule: str, **kwargs):
        super().__init__(name=f"{layer.name}_{rule}", dtype=layer.dtype_policy, **kwargs)
        self.inner, self.rule = layer, rule
        self.activation = rectifier(layer)

    def call(self, *args, **kwargs):
        return _modified_rectifier(_call_linear(self.inner, args, kwargs), self.rule, self.activation)


def build_feature_model(model, requests: Sequence[LayerRequest], *, relu_gradient: str | None = None) -> keras.Model:
    """A new functional model from ``model``'s input to the requested layer outputs, in order.

    ``model`` is a Sequential or Functional model, or (keras-vis form) its input tensor, in which case
    every request must name a Layer object of that graph. A request may name the tensor entering a
    layer (:class:`~visopt.model.layers.LayerInput`). Outputs are float32 whatever the model's
    precision policy. ``relu_gradient`` (``"guided"`` or ``"deconvnet"``) replaces the gradient of
    every rectifier (ReLU, ReLU6, leaky ReLU), nested models included (see :class:`ModifiedReLU`),
    and warns naming layers with other activations; it needs a model, not an input tensor.

    Example:
        >>> fm = build_feature_model(model, [LayerRequest("conv2d"), LayerRequest(-1, pre_activation=True)])
        >>> conv_maps, logits = fm(images)
    """
    if relu_gradient is not None and relu_gradient not in RELU_GRADIENTS:
        raise ValueError(f"unknown relu_gradient {relu_gradient!r}; valid: {list(RELU_GRADIENTS)} or None")
    if isinstance(model, keras.KerasTensor):
        if relu_gradient is not None:
            raise TypeError("relu_gradient needs the model, not its input tensor")
        return _feature_model_from_input(model, requests)
    model_input(model)
    if relu_gradient is not None:
        _warn_unmodified(model, relu_gradient)
    targets = [find_feature(model, r.layer) for r in requests]
    keys = [_key(target, r.pre_activation) for target, r in zip(targets, requests)]
    layers = [target.layer if isinstance(target, LayerInput) else target for target in targets]
    wanted = {id(layer) for layer in layers}
    recorded: dict[tuple[int, str], keras.KerasTensor] = {}

    def call(layer, *args, **kwargs):
        if id(layer) in wanted:
            args = (_float32(args[0]),) + args[1:]
            recorded[(id(layer), "input")] = args[0]
        if isinstance(layer, keras.Model) and (relu_gradient is not None or contains(layer, wanted)):
            out = _inline(layer, call, args, recorded)
        elif relu_gradient is not None and rectifier(layer) is not None:
            out = ModifiedReLU(layer, relu_gradient)(*args, **kwargs)
        else:
            out = layer(*args, **kwargs)
        if id(layer) in wanted:
            out = _float32(out)
            recorded[(id(layer), "output")] = out
            if (id(layer), "pre_activation") in keys:
                recorded[(id(layer), "pre_activation")] = PreActivation(layer)(*args, **kwargs)
        return out

    new_input = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    out = _run_root(model, call, new_input)
    if id(model) in wanted:  # the whole model's output is a target
        recorded[(id(model), "output")] = _float32(out)
    missing = [target for target, key in zip(targets, keys) if key not in recorded]
    if missing:
        raise ValueError(f"{_describe(missing[0])} is not reached from the input of model {model.name!r}")
    return keras.Model(new_input, [recorded[key] for key in keys], name=f"{model.name}_features")


def _run_root(model: keras.Model, call, new_input) -> keras.KerasTensor:
    """Run the outer model's graph from ``new_input`` through ``call``, in the new graph itself (not
    wrapped like a nested model): the feature model then computes only what its outputs need, so a
    request for an inner layer does not also run the layers after it."""
    if isinstance(model, keras.Sequential):
        x = new_input
        for layer in model.layers:
            x = call(layer, x)
        return x
    try:
        clone = keras.models.clone_model(model, input_tensors=new_input, clone_function=lambda layer: layer,
                                         call_function=call)
    except ValueError as err:
        raise ValueError(f"cannot rebuild model {model.name!r} ({type(model).__name__}): {err}") from err
    return clone.outputs[0] if len(clone.outputs) == 1 else clone.outputs


def _float32(tensor):
    """``tensor`` in float32. Targets are cast where they are recorded and the cast tensor flows on
    (the next layer casts it back to its compute dtype): under mixed precision, scores and gradients
    are float32, and a CAM's gradient with respect to the recorded map stays connected to the score."""
    if isinstance(tensor, keras.KerasTensor) and tensor.dtype in ("float16", "bfloat16"):
        return keras.ops.cast(tensor, "float32")
    return tensor


def _warn_unmodified(model, rule: str) -> None:
    """Say which layers keep their normal gradient under ``rule``: the rule is defined for rectifiers only."""
    kept = [layer.name for layer in iter_layers(model) if activation_name(layer) in OTHER_NONLINEARITIES]
    if kept:
        shown = ", ".join(repr(name) for name in kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
        warnings.warn(f"{rule} backprop changes the gradient of ReLU, ReLU6 and leaky ReLU only; {len(kept)} "
                      f"layer(s) with other activations keep their normal gradient: {shown}", RuntimeWarning,
                      stacklevel=4)


def _key(target, pre_activation: bool) -> tuple[int, str]:
    if isinstance(target, LayerInput):
        return (id(target.layer), "input")
    return (id(target), "pre_activation" if pre_activation and is_squashing(target) else "output")


def _describe(target) -> str:
    return f"the input of layer {target.layer.name!r}" if isinstance(target, LayerInput) else f"layer {target.name!r}"


def _inline(model: keras.Model, call, args, recorded: dict) -> keras.KerasTensor:
    """Run ``model``'s graph on ``args`` layer by layer through ``call``, so that what ``call`` records
    inside it (targets, modified ReLUs) is reachable from the outer graph's input.

    A Sequential is run layer by layer in place. A Functional is cloned onto fresh ``keras.Input``
    placeholders (``clone_model`` needs real inputs: the tensor reaching a nested base is often the
    output of a preprocessing layer, not an input), with the tensors recorded inside it as extra
    outputs; calling that clone on ``args`` then gives the recorded tensors in the outer graph.
    """
    if isinstance(model, keras.Sequential):
        x = args[0]
        for layer in model.layers:
            x = call(layer, x)
        return x
    if not is_graph(model):
        raise ValueError(f"the requested layers sit inside the subclassed model {model.name!r}, whose call() is "
                         "Python code that visopt cannot rewire: explain or maximize its output (layer=-1), or build "
                         "it with the functional API (keras.Model(inputs, outputs)) to reach its inner layers")
    placeholders = keras.tree.map_structure(lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype), model.input)
    before = set(recorded)
    try:
        clone = keras.models.clone_model(model, input_tensors=placeholders, clone_function=lambda layer: layer,
                                         call_function=call)
    except ValueError as err:
        raise ValueError(f"cannot reach layers inside model {model.name!r} ({type(model).__name__}): {err}") from err
    inner = [key for key in recorded if key not in before]
    outputs = list(clone.outputs)
    exposed = keras.Model(placeholders, outputs + [recorded[key] for key in inner], name=f"{model.name}_inlined")
    flat_args = keras.tree.flatten(args)[: len(keras.tree.flatten(placeholders))]
    results = exposed(keras.tree.pack_sequence_as(placeholders, flat_args))
    results = results if isinstance(results, (list, tuple)) else [results]
    for key, tensor in zip(inner, results[len(outputs):]):
        recorded[key] = tensor
    return results[0] if len(outputs) == 1 else list(results[:len(outputs)])


def model_after(model: keras.Model, layer: keras.layers.Layer) -> keras.Model:
    """The part of ``model`` after ``layer`` (a layer of ``model`` itself), taking ``layer``'s output as input.

    Used to take gradients in an embedding space: the tokens cannot be differentiated, the vectors
    the Embedding layer makes of them can.

    Example:
        >>> tail = model_after(text_model, text_model.get_layer("embedding"))
        >>> tail(vectors)        # the same outputs as text_model(tokens)
    """
    if isinstance(model, keras.Sequential):
        index = next(i for i, top in enumerate(model.layers) if top is layer)
        shape = layer.compute_output_shape(model_input(model).shape)
        return keras.Sequential([keras.Input(batch_shape=shape)] + model.layers[index + 1:],
                                name=f"{model.name}_after_{layer.name}")
    return keras.Model(layer.output, model.outputs if len(model.outputs) > 1 else model.output,
                       name=f"{model.name}_after_{layer.name}")


@dataclass(frozen=True)
class InputSegments:
    """Where each input of a multi-input model sits in the flat vector of :func:`flat_view`."""

    shapes: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> list[int]:
        return [int(np.prod(shape)) for shape in self.shapes]

    def flatten(self, arrays) -> np.ndarray:
        """``[(N, *shape_k)]`` -> ``(N, total)``."""
        return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """``(N, total)`` -> ``[(N, *shape_k)]``."""
        bounds = np.cumsum([0] + self.sizes)
        return [flat[:, a:b].reshape((len(flat),) + shape) for a, b, shape in zip(bounds, bounds[1:], self.shapes)]


def flat_view(model: keras.Model) -> tuple[keras.Model, InputSegments]:
    """A one-input view of a model with several float inputs: their values side by side in one flat
    vector, split and reshaped in front of the (nested, unchanged) model.

    Every single-input method then works on it: gradients, noise and integration paths in the
    flat vector are those of each input, and :meth:`InputSegments.split` gives them back per input.

    Example:
        >>> view, segments = flat_view(two_input_model)
        >>> grads_image, grads_table = segments.split(gradient_on(view, segments.flatten([images, rows])))
    """
    shapes = tuple(tuple(int(d) for d in t.shape[1:]) for t in model.inputs)
    for t, shape in zip(model.inputs, shapes):
        if not str(t.dtype).startswith(("float", "bfloat")):
            raise ValueError(f"model {model.name!r} has an input of dtype {t.dtype}: several inputs work when all "
                             "are float (token inputs need a model with one input)")
    segments = InputSegments(shapes)
    flat = keras.Input((sum(segments.sizes),), name="flat_inputs")
    bounds = np.cumsum([0] + segments.sizes)
    parts = [keras.ops.reshape(flat[:, a:b], (-1,) + shape) for a, b, shape in zip(bounds, bounds[1:], shapes)]
    outputs = model(parts)
    return keras.Model(flat, outputs, name=f"{model.name}_flat"), segments


class _FixedInput(keras.layers.Layer):
    """Gives a fixed array for one input of a model, as many times as the batch of ``like`` holds."""

    def __init__(self, value: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.value = tf.constant(value)

    def call(self, like):
        if self.value.shape[0] != 1:
            return self.value
        return tf.repeat(self.value, tf.shape(like)[0], axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(self.value.shape[1:])


def with_inputs_fixed(model: keras.Model, fixed: dict) -> keras.Model:
    """A one-input view of a model with several inputs: all but one given as fixed arrays.

    ``fixed`` maps inputs (by position or name) to an array: one sample (used for every image of
    the batch) or one per image. The input not in ``fixed`` is the view's input.

    Example:
        >>> view = with_inputs_fixed(image_and_table_model, {"table": row})
        >>> view(images)          # the model's output for each image, with the same table row
    """
    names = [t.name for t in model.inputs]
    chosen = {}
    for key, value in fixed.items():
        index = names.index(key) if isinstance(key, str) and key in names else key
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(names):
            raise ValueError(f"fixed_inputs key {key!r} is not an input of model {model.name!r}; inputs: {names} "
                             f"(by name or position)")
        shape = tuple(model.inputs[index].shape[1:])
        array = np.asarray(value, np.float32)
        array = array[None] if array.shape == shape else array
        if array.shape[1:] != shape:
            raise ValueError(f"fixed_inputs[{key!r}] has shape {np.shape(value)}; input {names[index]!r} takes {shape} "
                             f"or a batch of them")
        chosen[index] = array
    free = [i for i in range(len(names)) if i not in chosen]
    if len(free) != 1:
        raise ValueError(f"model {model.name!r} has {len(names)} inputs {names}: give fixed_inputs for all but the one "
                         f"to optimize (free now: {[names[i] for i in free]})")
    inputs = keras.Input(batch_shape=model.inputs[free[0]].shape, dtype=model.inputs[free[0]].dtype,
                         name=names[free[0]])
    parts = [inputs if i == free[0] else _FixedInput(chosen[i], name=f"fixed_{names[i]}")(inputs)
             for i in range(len(names))]
    return keras.Model(inputs, model(parts), name=f"{model.name}_{names[free[0]]}")


def _feature_model_from_input(input_tensor, requests: Sequence[LayerRequest]) -> keras.Model:
    outputs = []
    for r in requests:
        if not isinstance(r.layer, keras.layers.Layer):
            raise TypeError(f"with an input tensor instead of a model, layers must be given as Layer objects "
                            f"of the same graph; got {r.layer!r}. Pass the model to use names or indices")
        if r.pre_activation and is_squashing(r.layer):
            outputs.append(PreActivation(r.layer)(r.layer.input))
        else:
            outputs.append(r.layer.output)
    try:
        return keras.Model(input_tensor, outputs)
    except ValueError as err:
        names = [r.layer.name for r in requests]
        raise ValueError(f"layers {names} are not reachable from the given input tensor") from err


