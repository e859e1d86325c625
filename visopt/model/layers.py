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

import os
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
            return _reachable(model, spec)
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
        return _reachable(model, min(matches, key=lambda visit: visit.depth).layer)
    raise ValueError(f"no layer named {spec!r} in model {model.name!r}; valid names: {layer_names(model)}")


def _reachable(model, layer):
    """``layer``, unless it sits inside a subclassed model, whose ``call`` hides its inner tensors."""
    for visit in walk(model):
        if visit.is_model and visit.layer is not layer and not is_graph(visit.layer) \
                and contains(visit.layer, {id(layer)}):
            raise ValueError(f"layer {layer.name!r} sits inside the subclassed model {visit.name!r}, whose call() is "
                             "Python code that visopt cannot rewire: use its output (layer=-1), or build it with the "
                             "functional API (keras.Model(inputs, outputs)) to reach inner layers")
    return layer


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


#: Piecewise-linear rectifiers: guided backprop and deconvnet rules apply to them as to a ReLU.
RECTIFIERS = ("relu", "relu6", "leaky_relu")
#: Smooth or non-monotone activations that guided/deconvnet leave with their normal gradient.
OTHER_NONLINEARITIES = ("hard_swish", "hard_silu", "swish", "silu", "gelu", "elu", "selu", "mish", "tanh",
                        "softplus", "hard_sigmoid")


def rectifier(layer: keras.layers.Layer):
    """The activation function of ``layer`` when it is a rectifier (ReLU, ReLU6, leaky ReLU, a ReLU
    layer with a cap or slope), else None."""
    if isinstance(layer, keras.layers.ReLU):
        return layer.call
    if isinstance(layer, keras.layers.LeakyReLU):
        return layer.call
    if activation_name(layer) in RECTIFIERS:
        return layer.activation
    return None


def load_model_file(path, *, safe_mode: bool = True) -> keras.Model:
    """A model file (``.keras``, or ``.h5``) loaded for reading only: ``safe_mode`` on (a file may come from
    anyone: no arbitrary code from Lambda layers) unless the caller trusts the file, not compiled.

    Example:
        >>> visualize_cam("runs/classifier.keras", "predictions", None, images)
        >>> load_model_file("mine/with_lambda.keras", safe_mode=False)   # `visopt ... --unsafe`
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}: give a keras.Model or the path of a .keras file")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=bool(safe_mode))
    except (ValueError, OSError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot load the model file {path!r}: {first}") from err


def input_count(model) -> int:
    """How many inputs a graph model has (0 when it has none defined yet)."""
    return len(getattr(model, "inputs", None) or [])


def is_graph(model) -> bool:
    """Whether ``model`` is a graph visopt can read and rewire (Sequential, Functional), not a subclassed model."""
    if isinstance(model, keras.Sequential):  # a graph even before it is built
        return True
    try:
        model.inputs
    except AttributeError:
        return False
    return True


def as_graph(model):
    """``model`` when it is a graph (or an input tensor, or not a model); a path, loaded (see
    :func:`load_model_file`); a subclassed model, which has been called on data, wrapped in a
    one-layer Functional model with the input shape it was built for.

    Its output is then a target like any layer's; the layers inside its ``call`` (Python code)
    cannot be rewired, and :func:`~visopt.model.surgery.build_feature_model` says so.

    Example:
        >>> net = MyNet(); net(x_batch)          # a subclassed model, called once
        >>> as_graph(net).layers[-1] is net
        True
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model_file(model)
    if not isinstance(model, keras.Model) or is_graph(model):
        return model
    shape = (model.get_build_config() or {}).get("input_shape") if model.built else None
    if not isinstance(shape, (tuple, list)) or not shape or isinstance(shape[0], (tuple, list, dict)):
        raise ValueError(f"the subclassed model {model.name!r} has no single input shape yet: call it once on a "
                         f"batch of data (model(x)) before visualizing it, or build it with keras.Input")
    inputs = keras.Input(batch_shape=(None,) + tuple(shape[1:]))
    return keras.Model(inputs, model(inputs), name=f"{model.name}_graph")


def find_embedding(model, spec=None):
    """The Embedding layer that turns an integer input into vectors, or None for a float input.

    Gradients do not reach integer inputs: attribution for token models is taken in the embedding
    space. ``spec`` names the layer; by default it is the first ``Embedding`` of the outer graph.

    Example:
        >>> find_embedding(text_model).name
        'embedding'
    """
    dtype = str(model_input(model).dtype)
    if not dtype.startswith(("int", "uint", "bool")):
        if spec is not None:
            raise ValueError(f"embedding_layer={spec!r} is for models with integer (token) inputs; model "
                             f"{model.name!r} takes {dtype}")
        return None
    if spec is not None:
        layer = find_layer(model, spec)
    else:
        layer = next((layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)), None)
        if layer is None:
            raise ValueError(f"model {model.name!r} takes integer inputs ({dtype}) but has no Embedding layer in "
                             "its outer graph: name the layer that turns them into vectors with embedding_layer=")
    if not any(layer is top for top in model.layers):
        raise ValueError(f"the embedding layer {layer.name!r} must be a layer of model {model.name!r} itself, "
                         "not of a nested model")
    return layer


def input_rescaling(model):
    """The ``Rescaling`` layer a model applies to its raw input (before any layer with weights), or None.

    It tells the input range the model was built for: ``Rescaling(1/255)`` expects pixel values in
    [0, 255].
    """
    for visit in walk(model):
        layer = visit.layer
        if isinstance(layer, keras.layers.Rescaling):
            return layer
        if not visit.is_model and layer.weights and not isinstance(layer, keras.layers.Normalization):
            return None
    return None


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
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs: activation maximization and CAMs work on "
                         "models with one input; for saliency, give seed_input as a list with one array per input")
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


@dataclass(frozen=True)
class LayerInput:
    """The tensor that enters ``layer``: how to name a feature map that no layer outputs (the ``x + y``
    of a residual block is a Keras op, not a layer). As a string: ``"NAME:input"``.

    Example:
        >>> visualize_cam(model, "predictions", [3], images, penultimate_layer=LayerInput("avg_pool"))
        >>> visualize_cam(model, "predictions", [3], images, penultimate_layer="avg_pool:input")
    """

    layer: LayerSpec

    @property
    def name(self) -> str:
        layer = self.layer
        return f"{layer.name if isinstance(layer, keras.layers.Layer) else layer}:input"


FeatureSpec = Union[LayerSpec, LayerInput]

#: Pooling that keeps a spatial map: Grad-CAM looks through it to the map it pools (VGG's block5_pool).
_SPATIAL_POOLING = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
                    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D)


def find_feature(model: keras.Model, spec: FeatureSpec):
    """A layer (its output) or a :class:`LayerInput` with its layer resolved; ``"NAME:input"`` is the latter."""
    if isinstance(spec, str) and spec.endswith(":input"):
        spec = LayerInput(spec[: -len(":input")])
    if isinstance(spec, LayerInput):
        return LayerInput(find_layer(model, spec.layer))
    return find_layer(model, spec)


def feature_shape(feature) -> tuple:
    """The symbolic shape of a feature (a layer's output, or the input of a :class:`LayerInput`'s layer)."""
    tensor = feature.layer.input if isinstance(feature, LayerInput) else feature.output
    return tuple(tensor.shape)


def find_penultimate_layer(model: keras.Model, layer):
    """The feature maps a CAM weights for ``layer``: the last spatial map before the global pooling (or
    Flatten) that precedes it, looking through spatial pooling to the layer that made the map.

    Returns that layer, or a :class:`LayerInput` when no layer makes the map (a residual ``x + y``
    op feeding the pooling). Without a global pooling, the last layer before ``layer`` whose output
    has spatial size above 1.

    Example:
        >>> find_penultimate_layer(vgg_transfer_model, "predictions").name
        'block5_conv3'
    """
    target = find_layer(model, layer)
    if isinstance(target, keras.Model) and not is_graph(target):
        raise ValueError(f"a CAM needs the feature maps inside {target.name!r}, a subclassed model whose call() "
                         "hides them: build it with the functional API, or use saliency (visualize_saliency)")
    visits = []
    for visit in walk(model):
        if visit.layer is target:
            break
        visits.append(visit)
    else:
        if target is not model:
            raise ValueError(f"layer {target.name!r} was not found in the graph order of model {model.name!r}")
    reducers = [i for i, v in enumerate(visits) if not v.is_model and _reduces_space(v.layer)]
    if reducers:
        return _map_maker(visits, reducers[-1])
    found = [v.layer for v in visits if not v.is_model and spatial_size(v.layer) > 1]
    if not found:
        raise ValueError(f"no layer before {target.name!r} has an output with spatial size > 1; pass "
                         "penultimate_layer= (a layer whose output is a feature map)")
    return found[-1]


def _reduces_space(layer) -> bool:
    """A layer that turns a spatial map into a vector (global pooling, Flatten)."""
    try:
        shape = tuple(layer.input.shape)
    except (AttributeError, ValueError):
        return False
    data_format = getattr(layer, "data_format", None)
    spatial = shape[2:] if data_format == "channels_first" else shape[1:-1]
    return len(shape) >= 3 and int(np.prod([d or 0 for d in spatial])) > 1 and spatial_size(layer) <= 1


def _map_maker(visits: list[Visit], index: int):
    """What makes the input of ``visits[index]``: a layer (through spatial pooling), else its LayerInput."""
    consumer = visits[index].layer
    while True:
        producer = _producer(visits[:index], consumer.input)
        if isinstance(producer, _SPATIAL_POOLING):
            consumer, index = producer, next(i for i, v in enumerate(visits) if v.layer is producer)
            continue
        return producer if producer is not None else LayerInput(consumer)


def _producer(visits: list[Visit], tensor):
    """The layer among ``visits`` whose output is ``tensor``. A nested model met just before gives its
    inner output's maker: its output tensor in the outer graph is not its ``output`` attribute."""
    for visit in reversed(visits):
        try:
            output = visit.layer.output
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            continue
        if visit.is_model:
            if visits[-1] is visit and tuple(output.shape) == tuple(tensor.shape):
                inner = [v for v in visits if v.parents[: len(visit.path)] == visit.path]
                return _producer(inner, output)
            continue
        if output is tensor:
            return visit.layer
    return None


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
