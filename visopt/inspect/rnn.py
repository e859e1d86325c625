"""Recurrent layers opened up: weights per direction, kind and gate, and gate activations per timestep.

Keras 3 fuses an LSTM's four gates into one matrix product (and the cuDNN path hides them), so the
gates of a step are never a tensor one could read. :func:`rnn_gates` steps the layer's own
weights through the cell's equations instead, in NumPy; its ``"hidden"`` reproduces the layer's
output (tests/inspect/test_rnn.py checks every supported layout to 1e-5).

Example:
    >>> weights = rnn_weights(model, "lstm")
    >>> weights["forward"]["kernel"]["forget"].shape
    (8, 32)
    >>> gates = rnn_gates(model, "lstm", x)
    >>> gates["forward"]["forget"].shape         # (N, T, units), in the input's time order
    (64, 100, 32)
"""

from __future__ import annotations

import contextlib
import functools

import keras
import numpy as np
import tensorflow as tf
from threadpoolctl import ThreadpoolController

from visopt._cache import cached, request_key
from visopt.model.gates import GateLayout, gate_layout, split_gates
from visopt.model.layers import LayerInput, find_layer, walk
from visopt.model.surgery import LayerRequest, build_feature_model
from visopt.model.weights import read

SUPPORTED = ("LSTM", "GRU", "SimpleRNN", "Bidirectional (of those)", "ConvLSTM1D/2D/3D",
             "RNN(LSTMCell | GRUCell | SimpleRNNCell)")


def recurrent_layer(model, layer) -> tuple[keras.layers.Layer, GateLayout]:
    """The recurrent layer and its gate layout; any other layer is an error naming the supported ones."""
    found = find_layer(model, layer)
    layout = gate_layout(found)
    if layout is None:
        raise ValueError(f"layer {found.name!r} is a {type(found).__name__}, not a supported recurrent layer; "
                         f"supported: {', '.join(SUPPORTED)}")
    return found, layout


def _directions(layer) -> dict[str, keras.layers.Layer]:
    if isinstance(layer, keras.layers.Bidirectional):
        return {"forward": layer.forward_layer, "backward": layer.backward_layer}
    return {"forward": layer}


def _cell(layer):
    return getattr(layer, "cell", None) or layer


def rnn_weights(model, layer) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The weights of a recurrent layer as ``[direction][kind][gate] -> array``.

    ``direction``: ``"forward"`` (and ``"backward"`` for Bidirectional); ``kind``: ``"kernel"``,
    ``"recurrent_kernel"``, ``"bias"`` (a GRU with ``reset_after`` keeps its two bias rows apart:
    ``"bias"`` for the input row, ``"recurrent_bias"`` for the recurrent one); gates: input,
    forget, cell, output (LSTM, ConvLSTM: split on the kernel's channel axis), update, reset, new
    (GRU), one ``"hidden"`` gate (SimpleRNN).

    Example:
        >>> rnn_weights(model, "gru")["forward"]["recurrent_bias"]["reset"].shape
        (16,)
    """
    found, layout = recurrent_layer(model, layer)
    return _split_by_gate(found, layout, read)


def rnn_weight_gradients(model, layer, x, y, *, sample_weight=None) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The compiled loss's gradients with respect to a recurrent layer's weights, laid out like
    :func:`rnn_weights` (``[direction][kind][gate]``).

    Example:
        >>> grads = rnn_weight_gradients(model, "lstm", x, y)
        >>> np.abs(grads["forward"]["recurrent_kernel"]["forget"]).max()
    """
    from visopt.inspect.outputs import layer_gradients

    found, layout = recurrent_layer(model, layer)
    grads = layer_gradients(model, found, x, y, sample_weight=sample_weight, wrt="weights")
    by_id = {id(v): grads[v.path] for v in found.trainable_weights if v.path in grads}
    return _split_by_gate(found, layout, lambda variable: by_id[id(variable)])


def _split_by_gate(found, layout: GateLayout, value_of) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``value_of(variable)`` for each cell weight, split into ``[direction][kind][gate]``."""
    result = {}
    for direction, inner in _directions(found).items():
        cell = _cell(inner)
        kinds = {"kernel": value_of(cell.kernel), "recurrent_kernel": value_of(cell.recurrent_kernel)}
        if getattr(cell, "bias", None) is not None:
            value = np.asarray(value_of(cell.bias))
            if layout.reset_after and value.ndim == 2:
                kinds["bias"], kinds["recurrent_bias"] = value[0], value[1]
            else:
                kinds["bias"] = value
        result[direction] = {kind: split_gates(np.asarray(value), layout) for kind, value in kinds.items()}
    return result


# -- gate activations ------------------------------------------------------------------------------
def rnn_gates(model, layer, x) -> dict[str, dict[str, np.ndarray]]:
    """Per-timestep activations of a recurrent layer's gates, ``[direction][name] -> (N, T, units)``.

    Every gate after its nonlinearity (LSTM: input, forget, cell (the candidate), output; GRU:
    update, reset, new; SimpleRNN: none), plus ``"cell"`` state (LSTM c_t, named ``"cell_state"``
    to keep it apart from the candidate gate) and ``"hidden"`` (h_t), all in the *input's* time
    order (for ``go_backwards`` and the backward half of a Bidirectional layer too); a ConvLSTM's
    are ``(N, T, *spatial, filters)`` (channels first: ``(N, T, filters, *spatial)``). The layer's
    input comes from one forward pass of ``model`` on ``x``. At steps a mask (``mask_zero``
    Embedding, Masking) hides, the state carries over, as in Keras, and the gates are NaN.

    Example:
        >>> gates = rnn_gates(model, "bidirectional", x)
        >>> gates["backward"]["hidden"][:, 0]      # the backward pass's last step: it read all of x
    """
    found, layout = recurrent_layer(model, layer)
    inputs, mask = _layer_input(model, found, x)
    result = {}
    with _one_blas_thread():
        for direction, inner in _directions(found).items():
            backwards = bool(getattr(inner, "go_backwards", False))
            order = slice(None, None, -1) if backwards else slice(None)
            steps = _step_cell(_cell(inner), layout, inputs[:, order], None if mask is None else mask[:, order])
            result[direction] = {name: values[:, order] for name, values in steps.items()}
    return result


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread():
    """NumPy's BLAS on the calling thread only, for the duration of a ``with`` block.

    The stepping's products are small; a multi-threaded OpenBLAS gains nothing on them, and its
    idle threads spin for a while after each product, taking the cores from TensorFlow: a
    GateMonitor inside ``fit`` slowed the training steps around it (measured in
    docs/benchmarks.md, RNN introspection).
    """
    try:
        return _blas_controller().limit(limits=1, user_api="blas")
    except Exception:  # noqa: BLE001 -- an unknown BLAS build: run as it is rather than fail
        return contextlib.nullcontext()


def _layer_input(model, layer, x) -> tuple[np.ndarray, np.ndarray | None]:
    """What enters ``layer`` when ``model`` runs on ``x``, and the time mask that reaches it (or None)."""
    masker = _masking_layer(model, layer)
    requests = [LayerRequest(LayerInput(layer))] + ([LayerRequest(LayerInput(masker))] if masker else [])
    # cached per model and compiled: a callback asks again every few batches (surgery and tracing
    # once; an eager pass would step the model's own recurrent layers one op at a time)
    features = cached(model, request_key("rnn-input", layer, masker), lambda: _compiled(build_feature_model(model, requests)))
    outputs = features(tf.convert_to_tensor(x))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    inputs = keras.ops.convert_to_numpy(outputs[0]).astype(np.float32)
    if masker is None:
        return inputs, None
    before = keras.ops.convert_to_numpy(outputs[1])
    if isinstance(masker, keras.layers.Embedding):
        mask = before != 0
    else:
        mask = np.any(before != masker.mask_value, axis=-1)
    if mask.shape != inputs.shape[:2]:
        raise ValueError(f"the mask made by {masker.name!r} has shape {mask.shape}, not the (batch, time) "
                         f"{inputs.shape[:2]} of {layer.name!r}'s input: a layer between them changes the time axis")
    return inputs, mask


def _compiled(features):
    return tf.function(lambda x: features(x, training=False), reduce_retracing=True)


def _masking_layer(model, layer):
    """The last mask-making layer (a ``mask_zero`` Embedding, a Masking layer) before ``layer``, or None."""
    found = None
    for visit in walk(model):
        if visit.layer is layer:
            return found
        if isinstance(visit.layer, keras.layers.Masking) or (
                isinstance(visit.layer, keras.layers.Embedding) and visit.layer.mask_zero):
            found = visit.layer
    return found


def _step_cell(cell, layout: GateLayout, x: np.ndarray, mask: np.ndarray | None) -> dict[str, np.ndarray]:
    """Run ``cell`` over ``x`` (N, T, features...) in the given order; its gates, states and outputs per step."""
    weights = {"kernel": read(cell.kernel), "recurrent": read(cell.recurrent_kernel),
               "bias": None if getattr(cell, "bias", None) is None else read(cell.bias)}
    products = _ConvProducts(cell, weights) if layout.convolutional else _DenseProducts(weights)
    step = {"lstm": _lstm_step, "conv_lstm": _lstm_step, "gru": _gru_step, "simple_rnn": _simple_step}[layout.cell]
    # the input's share of every step in one product (the recurrent share needs the previous step)
    projected = products.inputs(x)
    zeros = np.zeros(projected.shape[:1] + projected.shape[2:-1] + (layout.units,), np.float32)
    state = {"h": zeros, "c": zeros}
    records: dict[str, list] = {}
    for t in range(x.shape[1]):
        values, new = step(cell, weights, layout, projected[:, t], state, products.recurrent)
        if mask is not None:
            keep = mask[:, t].reshape((-1,) + (1,) * (zeros.ndim - 1))
            new = {k: np.where(keep, v, state[k]) for k, v in new.items()}
            values = {k: np.where(keep, v, np.nan) for k, v in values.items()}
        state = new
        values["hidden"] = state["h"]
        if layout.cell in ("lstm", "conv_lstm"):
            values["cell_state"] = state["c"]
        for name, value in values.items():
            records.setdefault(name, []).append(value)
    result = {name: np.stack(values, axis=1).astype(np.float32) for name, values in records.items()}
    return products.layer_order(result)


class _DenseProducts:
    """The products of an LSTM, GRU or SimpleRNN cell: matrix products on the last axis."""

    def __init__(self, weights):
        self.kernel = weights["kernel"]

    def inputs(self, x):
        n, steps = x.shape[:2]
        return (x.reshape(n * steps, -1) @ self.kernel).reshape(n, steps, -1)

    @staticmethod
    def recurrent(h, kernel):
        return h @ kernel

    @staticmethod
    def layer_order(result):
        return result


class _ConvProducts:
    """The products of a ConvLSTM cell: convolutions, computed channels last (the kernel's layout
    does not depend on ``data_format``); results are put back in the layer's own format."""

    def __init__(self, cell, weights):
        self.cell, self.kernel = cell, weights["kernel"]
        self.channels_first = cell.data_format == "channels_first"

    def inputs(self, x):
        if self.channels_first:
            x = np.moveaxis(x, 2, -1)
        n, steps = x.shape[:2]
        out = keras.ops.conv(x.reshape((n * steps,) + x.shape[2:]), self.kernel, strides=self.cell.strides,
                             padding=self.cell.padding, dilation_rate=self.cell.dilation_rate,
                             data_format="channels_last")
        out = keras.ops.convert_to_numpy(out)
        return out.reshape((n, steps) + out.shape[1:])

    @staticmethod
    def recurrent(h, kernel):
        return keras.ops.convert_to_numpy(keras.ops.conv(h, kernel, strides=1, padding="same",
                                                         data_format="channels_last"))

    def layer_order(self, result):
        return {k: np.moveaxis(v, -1, 2) for k, v in result.items()} if self.channels_first else result


def _sigmoid(value):
    return 1.0 / (1.0 + np.exp(-value))


#: NumPy forms of the usual activations (a Keras op per step and gate costs more than the step).
_NUMPY_ACTIVATIONS = {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
                      "linear": lambda v: v}


def _act(fn, value: np.ndarray) -> np.ndarray:
    fast = _NUMPY_ACTIVATIONS.get(getattr(fn, "__name__", None))
    if fast is not None:
        return fast(value).astype(np.float32, copy=False)
    return keras.ops.convert_to_numpy(fn(value)).astype(np.float32)


def _lstm_step(cell, w, layout, xw, state, recurrent):
    """One LSTM (or ConvLSTM) step; ``xw`` is the input already multiplied by the kernel."""
    z = xw + recurrent(state["h"], w["recurrent"])
    if w["bias"] is not None:
        z = z + w["bias"]
    pre = split_gates(z, layout)
    gates = {"input": _act(cell.recurrent_activation, pre["input"]),
             "forget": _act(cell.recurrent_activation, pre["forget"]),
             "cell": _act(cell.activation, pre["cell"]),
             "output": _act(cell.recurrent_activation, pre["output"])}
    c = gates["forget"] * state["c"] + gates["input"] * gates["cell"]
    h = gates["output"] * _act(cell.activation, c)
    return gates, {"h": h, "c": c}


def _gru_step(cell, w, layout, xw, state, recurrent):
    h = state["h"]
    bias = w["bias"]
    input_bias, recurrent_bias = (bias[0], bias[1]) if bias is not None and bias.ndim == 2 else (bias, None)
    xs = split_gates(xw + (0 if input_bias is None else input_bias), layout)
    recurrent = split_gates(w["recurrent"], layout)
    if layout.reset_after:
        hs = split_gates(h @ w["recurrent"] + (0 if recurrent_bias is None else recurrent_bias), layout)
        z = _act(cell.recurrent_activation, xs["update"] + hs["update"])
        r = _act(cell.recurrent_activation, xs["reset"] + hs["reset"])
        new = _act(cell.activation, xs["new"] + r * hs["new"])
    else:
        z = _act(cell.recurrent_activation, xs["update"] + h @ recurrent["update"])
        r = _act(cell.recurrent_activation, xs["reset"] + h @ recurrent["reset"])
        new = _act(cell.activation, xs["new"] + (r * h) @ recurrent["new"])
    return {"update": z, "reset": r, "new": new}, {"h": z * h + (1 - z) * new, "c": state["c"]}


def _simple_step(cell, w, layout, xw, state, recurrent):
    z = xw + recurrent(state["h"], w["recurrent"])
    if w["bias"] is not None:
        z = z + w["bias"]
    return {}, {"h": _act(cell.activation, z), "c": state["c"]}
