"""Layer outputs and loss gradients of a model on data: what a layer computes, and what ``fit`` would apply.

Example:
    >>> outputs = layer_outputs(model, "*", x)                # every layer, one forward pass
    >>> grads = layer_gradients(model, "*", x, y, wrt="weights")
    >>> sorted(grads)[:2]
    ['dense/bias', 'dense/kernel']
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from visopt._cache import cached, request_key
from visopt._checks import is_int
from visopt.model.layers import find_layer, walk
from visopt.model.surgery import LayerRequest, build_feature_model
from visopt.model.weights import trainable_entries

WRT = ("outputs", "weights")


def resolve_layers(model, layers) -> list[keras.layers.Layer]:
    """``layers`` as Layer objects: a name, an index, a Layer, a list of those, or ``"*"`` (every layer
    with an output, nested models' layers included, in graph order)."""
    if isinstance(layers, str) and layers == "*":
        return [visit.layer for visit in walk(model)
                if not visit.is_model and not isinstance(visit.layer, keras.layers.InputLayer)]
    if isinstance(layers, (str, keras.layers.Layer)) or is_int(layers):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError(f"layers must be a name, an index, a Layer, a non-empty list of them or '*', got {layers!r}")
    return [find_layer(model, spec) for spec in layers]


def layer_outputs(model, layers, x, *, training: bool = False) -> dict[str, np.ndarray]:
    """The outputs of ``layers`` for the input ``x``, from one forward pass: ``{layer name: array}``.

    Example:
        >>> layer_outputs(model, ["lstm", "dense"], x)["lstm"].shape
        (64, 100, 32)
    """
    found = resolve_layers(model, layers)
    features = build_feature_model(model, [LayerRequest(layer) for layer in found])
    outputs = features(x, training=training)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {layer.name: keras.ops.convert_to_numpy(out) for layer, out in zip(found, outputs)}


def require_compiled(model) -> None:
    """Raise unless ``model`` has a compiled loss (the gradients here are those of the loss ``fit`` minimizes)."""
    if getattr(model, "loss", None) is None:
        raise ValueError(f"model {model.name!r} is not compiled with a loss: the gradients are those of the loss "
                         "fit would minimize; call model.compile(loss=...) first")


def compiled_loss(model, x, y, y_pred, sample_weight=None):
    """The loss ``fit`` minimizes: ``model.compute_loss`` (compiled loss, sample weights, regularization)."""
    require_compiled(model)
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)


def layer_gradients(model, layers, x, y, *, sample_weight=None, wrt: str = "outputs") -> dict[str, np.ndarray]:
    """Gradients of the model's compiled loss (what ``fit`` would apply) on ``(x, y)``.

    ``wrt="outputs"``: with respect to each layer's output, ``{layer name: array}`` (per timestep
    for sequences). ``wrt="weights"``: with respect to the trainable variables of ``layers``
    (``"*"``: all), ``{Variable.path: array}``, each variable exactly once.

    Example:
        >>> layer_gradients(model, "lstm", x, y, wrt="weights").keys()
        dict_keys(['lstm/lstm_cell/kernel', 'lstm/lstm_cell/recurrent_kernel', 'lstm/lstm_cell/bias'])
    """
    if wrt not in WRT:
        raise ValueError(f"wrt must be one of {list(WRT)}, got {wrt!r}")
    found = resolve_layers(model, layers)
    x = tf.convert_to_tensor(x)
    if wrt == "weights":
        owned = {id(v) for layer in found for v in layer.trainable_weights}
        entries = [e for e in trainable_entries(model) if layers == "*" or id(e.variable) in owned]
        require_compiled(model)  # before tracing: the error then names the cause
        gradient = cached(model, request_key("loss-gradients", [id(e.variable) for e in entries]),
                          lambda: _weight_gradient_fn(model, [e.variable for e in entries]))
        weights = None if sample_weight is None else tf.convert_to_tensor(sample_weight, tf.float32)
        grads = gradient(x, tf.convert_to_tensor(y), weights)
        return {e.path: (np.zeros(e.shape, np.float32) if g is None else keras.ops.convert_to_numpy(g))
                for e, g in zip(entries, grads)}
    features = build_feature_model(model, [LayerRequest(layer) for layer in found] + [LayerRequest(model)])
    with tf.GradientTape() as tape:
        outputs = list(features(x, training=False))
        loss = compiled_loss(model, x, y, outputs[-1], sample_weight)
    grads = tape.gradient(loss, outputs[:-1])
    return {layer.name: (np.zeros(out.shape, np.float32) if g is None else keras.ops.convert_to_numpy(g))
            for layer, out, g in zip(found, outputs, grads)}


def _weight_gradient_fn(model, variables):
    """A compiled ``(x, y, sample_weight) -> gradients of the compiled loss`` for ``variables``; it
    holds the model weakly (it is cached per model, see visopt._cache)."""
    model_ref = weakref.ref(model)

    @tf.function(reduce_retracing=True)
    def gradient(x, y, sample_weight):
        model = model_ref()
        with tf.GradientTape() as tape:
            loss = compiled_loss(model, x, y, model(x, training=False), sample_weight)
        return tape.gradient(loss, variables)

    return gradient
