"""Facts about the layers of a Keras graph, read through one walk that enters nested models.

:func:`walk` is the only place that descends into nested models; everything else (finding a layer
by name, the feature map before a layer, the layers that own weights, the output layer) is a
question asked of it.

Example:
    >>> [visit.name for visit in walk(model)][:3]
    ['conv_1', 'pool_1', 'conv_2']
    >>> find_layer(model, "conv_2") is model.get_layer("conv_2")
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

import keras
import numpy as np

LayerSpec = Union[keras.layers.Layer, str, int]

#: Activations whose pre-activation is the better target (see ``is_squashing``).
SQUASHING_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")


@dataclass(frozen=True)
class Visit:
    """One layer met by :func:`walk`: the layer, the names of the nested models around it, its depth."""

    layer: keras.layers.Layer
    parents: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def path(self) -> tuple[str, ...]:
        """``parents + (name,)``: the layer's name qualified by the nested models it sits in."""
        return self.parents + (self.layer.name,)

    @property
    def depth(self) -> int:
        return len(self.parents)

    @property
    def is_model(self) -> bool:
        return isinstance(self.layer, keras.Model)


def walk(model: keras.Model, *, include_root: bool = False) -> Iterator[Visit]:
    """Every layer of ``model`` in the order the graph runs them (``model.layers`` order): a nested
    model's layers in its place, followed by the nested model itself. ``include_root`` ends with
    ``model`` (its ``parents`` empty).

    Example:
        >>> [v.path for v in walk(transfer_model)]
        [('input',), ('base', 'conv'), ('base', 'pool'), ('base',), ('head',)]
    """
    yield from _walk(model, ())
    if include_root:
        yield Visit(model, ())


def _walk(model, parents: tuple[str, ...]) -> Iterator[Visit]:
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            yield from _walk(layer, parents + (layer.name,))
        yield Visit(layer, parents)


def iter_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of ``model``, nested models included, in :func:`walk` order."""
    return (visit.layer for visit in walk(model))


def find_layer(model: keras.Model, spec: LayerSpec) -> keras.layers.Layer:
    """Resolve a layer given as a Layer, a name (searched in nested models too; the outermost one wins
    when names repeat) or an index into ``model.layers``.

    Example:
        >>> find_layer(model, "conv2d")          # by name
        >>> find_layer(model, -1)                 # the last layer, as keras-vis' layer_idx
    """
    if isinstance(spec, keras.layers.Layer):
        if spec is model or any(layer is spec for layer in iter_layers(model)):
            return spec
        raise ValueError(f"layer {spec.name!r} is not part of model {model.name!r}; "
                         f"valid names: {layer_names(model)}")
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise TypeError(f"a layer is given as a keras Layer, a name or an index; got {spec!r} "
                        f"({type(spec).__name__})")
    if isinstance(spec, int):
        count = len(model.layers)
        if not -count <= spec < count:
            raise IndexError(f"layer index {spec} is out of range: model {model.name!r} has {count} "
                             f"layers (valid indices {-count}..{count - 1}): {layer_names(model, nested=False)}")
        return model.layers[spec]
    matches = [visit for visit in walk(model) if visit.name == spec]
    if matches:
        return min(matches, key=lambda visit: visit.depth).layer
    raise ValueError(f"no layer named {spec!r} in model {model.name!r}; valid names: {layer_names(model)}")


def layer_names(model: keras.Model, nested: bool = True) -> list[str]:
    """Names of the layers (nested ones too, outer first), for error messages."""
    if not nested:
        return [layer.name for layer in model.layers]
    return [visit.name for visit in sorted(walk(model), key=lambda visit: visit.depth)]


def contains(model: keras.Model, layer_ids: set[int]) -> bool:
    """Whether any layer of ``model`` (at any depth) has its ``id`` in ``layer_ids``."""
    return any(id(layer) in layer_ids for layer in iter_layers(model))


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The name of ``layer``'s activation function (``'softmax'`` for a Softmax layer), or None."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", None) if fn is not None else None


def is_squashing(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` ends in softmax/sigmoid, so that its logits are the better target."""
    return activation_name(layer) in SQUASHING_ACTIVATIONS


def is_plain_relu(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` ends in a plain ReLU (activation="relu", Activation("relu") or a default ReLU layer)."""
    if isinstance(layer, keras.layers.ReLU):
        return (layer.max_value is None and not float(layer.negative_slope) and not float(layer.threshold))
    return activation_name(layer) == "relu"


def model_input(model) -> keras.KerasTensor:
    """The single symbolic input of ``model`` (or the tensor itself); several inputs are an error."""
    if isinstance(model, keras.KerasTensor):
        return model
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras Model or its input tensor, got {type(model).__name__}")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(f"model {model.name!r} has no defined input shape: build it with keras.Input "
                         "(or call it once on data) before visualizing it")
    if len(inputs) != 1:
        raise ValueError(f"visopt optimizes models with one input; model {model.name!r} has {len(inputs)}")
    shape = tuple(inputs[0].shape[1:])
    if any(dim is None for dim in shape):
        raise ValueError(f"model {model.name!r} has input shape {(None,) + shape} with undefined "
                         "dimensions; give keras.Input a full shape such as (64, 64, 3)")
    return inputs[0]


def input_shape(model) -> tuple[int, ...]:
    """The input shape of ``model`` without the batch axis (see :func:`model_input`)."""
    return tuple(int(d) for d in model_input(model).shape[1:])


def data_format_of(model_or_input, layers=()) -> str:
    """``'channels_first'`` or ``'channels_last'``: the first spatial layer's ``data_format`` decides."""
    candidates = list(iter_layers(model_or_input)) if isinstance(model_or_input, keras.Model) else list(layers)
    for layer in candidates:
        fmt = getattr(layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return fmt
    return keras.config.image_data_format()


def channel_axis(layer: keras.layers.Layer, rank: int) -> int:
    """Axis of the channels/units in ``layer``'s output of the given rank."""
    if rank > 2 and getattr(layer, "data_format", None) == "channels_first":
        return 1
    return -1


def spatial_size(layer: keras.layers.Layer) -> int:
    """The number of spatial positions in ``layer``'s output (0 for a flat output or no symbolic output)."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer without one symbolic output
        return 0
    if len(shape) < 3 or isinstance(layer, keras.layers.InputLayer):
        return 0
    spatial = shape[2:] if getattr(layer, "data_format", None) == "channels_first" else shape[1:-1]
    return int(np.prod([d or 0 for d in spatial]))


def find_penultimate_layer(model: keras.Model, layer) -> keras.layers.Layer:
    """The last layer before ``layer`` (in graph order, inside nested models too) whose output has a
    spatial size above 1: the feature maps a CAM weights.

    Example:
        >>> find_penultimate_layer(model, "predictions").name
        'conv_3'
    """
    target = find_layer(model, layer)
    found = None
    for candidate in iter_layers(model):
        if candidate is target:
            break
        if not isinstance(candidate, keras.Model) and spatial_size(candidate) > 1:
            found = candidate
    else:
        if target is not model:
            raise ValueError(f"layer {target.name!r} was not found in the graph order of model {model.name!r}")
    if found is None:
        raise ValueError(f"no layer before {target.name!r} has an output with spatial size > 1; pass "
                         "penultimate_layer= (a layer whose output is a feature map)")
    return found


def weight_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers that own weights, nested models flattened in place, in graph order (input first); a
    layer shared between places counts once."""
    found, seen = [], set()
    for visit in walk(model):
        layer = visit.layer
        if not visit.is_model and layer.weights and id(layer) not in seen:
            seen.add(id(layer))
            found.append(layer)
    return found


def output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer that makes the model's output (the last layer, inside a nested model when it ends one)."""
    layer = model.layers[-1]  # the output layer comes last in a graph's topological order
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    return layer
