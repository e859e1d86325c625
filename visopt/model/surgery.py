"""Model surgery: find target layers and build a functional graph that exposes their outputs.

The graph is always *new*: the original model is left untouched and its weights are shared, never
copied, so the feature model stays in sync with training. Nested models (a base model used as a
layer) are inlined so that any layer inside them can be a target. A softmax/sigmoid output can be
exposed as its pre-activation (the logits), which is what activation maximization should climb:
maximizing a softmax score is mostly achieved by pushing the *other* classes down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import keras
import tensorflow as tf

from visopt.model.layers import LayerSpec, contains, find_layer, is_plain_relu, is_squashing, model_input


@dataclass(frozen=True)
class LayerRequest:
    """A term asks for the output of ``layer``; ``pre_activation`` asks for it before a softmax/sigmoid."""

    layer: LayerSpec
    pre_activation: bool = False


def _call_linear(layer: keras.layers.Layer, args, kwargs):
    """``layer``'s call with its activation replaced by the identity, its weights shared.

    The swap happens while the call is traced, so a compiled graph holds the linear version while
    the original layer keeps its activation everywhere else.
    """
    if isinstance(layer, (keras.layers.Softmax, keras.layers.ReLU)):
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
        super().__init__(name=f"{layer.name}_pre_activation", **kwargs)
        self.inner = layer

    def call(self, *args, **kwargs):
        return _call_linear(self.inner, args, kwargs)


#: How a ReLU's gradient can be replaced (``build_feature_model(relu_gradient=...)``).
RELU_GRADIENTS = ("guided", "deconvnet")


def _modified_relu(x, rule: str):
    @tf.custom_gradient
    def relu(x):
        def grad(upstream):
            passed = upstream > 0
            if rule == "guided":  # backprop's mask (x > 0) and deconvnet's (upstream > 0) together
                passed = tf.logical_and(passed, x > 0)
            return tf.where(passed, upstream, tf.zeros_like(upstream))
        return tf.nn.relu(x), grad

    return relu(x)


class ModifiedReLU(keras.layers.Layer):
    """Calls a layer whose activation is ReLU with a ReLU whose *gradient* follows ``rule``, sharing weights.

    ``"guided"`` (guided backpropagation) passes gradient only where both the input and the
    upstream gradient are positive; ``"deconvnet"`` only where the upstream gradient is positive.
    The forward pass is unchanged.
    """

    def __init__(self, layer: keras.layers.Layer, rule: str, **kwargs):
        super().__init__(name=f"{layer.name}_{rule}", **kwargs)
        self.inner, self.rule = layer, rule

    def call(self, *args, **kwargs):
        return _modified_relu(_call_linear(self.inner, args, kwargs), self.rule)


def build_feature_model(model, requests: Sequence[LayerRequest], *, relu_gradient: str | None = None) -> keras.Model:
    """A new functional model from ``model``'s input to the requested layer outputs, in order.

    ``model`` is a Sequential or Functional model, or (keras-vis form) its input tensor, in which case
    every request must name a Layer object of that graph. ``relu_gradient`` (``"guided"`` or
    ``"deconvnet"``) replaces the gradient of every plain ReLU, nested models included (see
    :class:`ModifiedReLU`); it needs a model, not an input tensor.

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
    layers = [find_layer(model, r.layer) for r in requests]
    wanted = {id(layer) for layer in layers}
    linearize = {id(layer) for layer, r in zip(layers, requests) if r.pre_activation and is_squashing(layer)}
    recorded: dict[tuple[int, bool], keras.KerasTensor] = {}

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.Model) and (relu_gradient is not None or contains(layer, wanted)):
            out = _inline(layer, call, args)
        elif relu_gradient is not None and is_plain_relu(layer):
            out = ModifiedReLU(layer, relu_gradient)(*args, **kwargs)
        else:
            out = layer(*args, **kwargs)
        if id(layer) in wanted:
            recorded[(id(layer), False)] = out
            if id(layer) in linearize:
                recorded[(id(layer), True)] = PreActivation(layer)(*args, **kwargs)
        return out

    new_input = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    out = _inline(model, call, (new_input,))
    if id(model) in wanted:  # the whole model's output is a target
        recorded[(id(model), False)] = out
    outputs = [recorded[(id(layer), r.pre_activation and id(layer) in linearize)]
               for layer, r in zip(layers, requests)]
    return keras.Model(new_input, outputs, name=f"{model.name}_features")


def _inline(model: keras.Model, call, args) -> keras.KerasTensor:
    """Run ``model``'s graph on ``args`` layer by layer through ``call``, so nested layers land in the outer graph."""
    if isinstance(model, keras.Sequential):
        x = args[0]
        for layer in model.layers:
            x = call(layer, x)
        return x
    structure = keras.tree.map_structure(lambda t: None, model.input)
    flat_args = keras.tree.flatten(args)
    input_tensors = keras.tree.pack_sequence_as(structure, flat_args[: len(keras.tree.flatten(structure))])
    try:
        clone = keras.models.clone_model(model, input_tensors=input_tensors,
                                         clone_function=lambda layer: layer, call_function=call)
    except ValueError as err:
        raise ValueError(f"cannot reach layers inside model {model.name!r} ({type(model).__name__}): "
                         "visopt needs Sequential or Functional models for inner targets") from err
    return clone.outputs[0] if len(clone.outputs) == 1 else clone.outputs


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


