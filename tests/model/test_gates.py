"""Gate layouts: the split weights, put back through the cell's equations, reproduce the Keras layer."""

import keras
import numpy as np
import pytest

from visopt.model.gates import GATE_NAMES, gate_layout, recurrent_gates, split_gates


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _run(layer, x):
    return np.asarray(keras.Sequential([keras.Input(x.shape[1:]), layer])(x))


def test_lstm_gates_reproduce_the_layer():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    lstm = keras.layers.LSTM(4, return_sequences=True, name="lstm")
    expected = _run(lstm, x)
    layout = gate_layout(lstm)
    assert (layout.cell, layout.gates, layout.units, layout.directions) == \
        ("lstm", ("input", "forget", "cell", "output"), 4, ("forward",))
    kernel, recurrent, bias = (split_gates(w.numpy(), layout) for w in lstm.weights)
    h = c = np.zeros((2, 4), np.float32)
    outputs = []
    for t in range(5):
        pre = {g: x[:, t] @ kernel[g] + h @ recurrent[g] + bias[g] for g in layout.gates}
        c = _sigmoid(pre["forget"]) * c + _sigmoid(pre["input"]) * np.tanh(pre["cell"])
        h = _sigmoid(pre["output"]) * np.tanh(c)
        outputs.append(h)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gates_reproduce_the_layer_in_both_layouts(reset_after):
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
    gru = keras.layers.GRU(5, return_sequences=True, reset_after=reset_after)
    expected = _run(gru, x)
    layout = gate_layout(gru)
    assert layout.gates == ("update", "reset", "new") and layout.reset_after is reset_after
    kernel, recurrent = (split_gates(w.numpy(), layout) for w in gru.weights[:2])
    bias = gru.weights[2].numpy()
    input_bias = split_gates(bias[0] if reset_after else bias, layout)
    recurrent_bias = split_gates(bias[1], layout) if reset_after else {g: 0.0 for g in layout.gates}
    h = np.zeros((2, 5), np.float32)
    outputs = []
    for t in range(4):
        xs = {g: x[:, t] @ kernel[g] + input_bias[g] for g in layout.gates}
        z = _sigmoid(xs["update"] + h @ recurrent["update"] + recurrent_bias["update"])
        r = _sigmoid(xs["reset"] + h @ recurrent["reset"] + recurrent_bias["reset"])
        if reset_after:
            candidate = np.tanh(xs["new"] + r * (h @ recurrent["new"] + recurrent_bias["new"]))
        else:
            candidate = np.tanh(xs["new"] + (r * h) @ recurrent["new"])
        h = z * h + (1 - z) * candidate
        outputs.append(h)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-5)


def test_wrappers_cells_and_other_layers():
    bidirectional = keras.layers.Bidirectional(keras.layers.LSTM(3))
    keras.Sequential([keras.Input((4, 2)), bidirectional])
    layout = gate_layout(bidirectional)
    assert layout.directions == ("forward", "backward") and layout.count == 4 and layout.units == 3
    assert gate_layout(keras.layers.SimpleRNN(2)).gates == GATE_NAMES["simple_rnn"]
    assert gate_layout(keras.layers.LSTMCell(6)).units == 6
    conv_lstm = gate_layout(keras.layers.ConvLSTM2D(7, 3))
    assert conv_lstm.convolutional and conv_lstm.units == 7 and conv_lstm.count == 4
    assert recurrent_gates(keras.layers.ConvLSTM2D(7, 3)) is None  # drawn as a convolution kernel
    assert recurrent_gates(keras.layers.GRU(2)) == 3
    assert gate_layout(keras.layers.Dense(3)) is None
    with pytest.raises(ValueError, match="does not hold 4 lstm gates of 3 units"):
        split_gates(np.zeros((2, 10)), layout)
