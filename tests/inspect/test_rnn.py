"""Recurrent layers opened up: the stepped gates reproduce the layer, weights split by gate, gradients, health."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from visopt import inspect

X = np.random.default_rng(0).normal(size=(3, 7, 4)).astype("float32")


def wrap(layer, x=X, before=None):
    inputs = keras.Input(x.shape[1:], dtype=x.dtype)
    return keras.Model(inputs, layer(before(inputs) if before else inputs))


@pytest.mark.parametrize("make", [
    lambda: keras.layers.LSTM(5, return_sequences=True, name="rnn"),
    lambda: keras.layers.GRU(5, return_sequences=True, name="rnn"),
    lambda: keras.layers.GRU(5, return_sequences=True, reset_after=False, name="rnn"),
    lambda: keras.layers.SimpleRNN(5, return_sequences=True, name="rnn"),
], ids=["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_the_stepped_hidden_state_reproduces_the_layer(make):
    keras.utils.set_random_seed(0)
    model = wrap(make())
    gates = inspect.rnn_gates(model, "rnn", X)["forward"]
    np.testing.assert_allclose(gates["hidden"], model.predict(X, verbose=0), atol=1e-5)
    for name, values in gates.items():
        assert values.shape == (3, 7, 5) and np.all(np.isfinite(values)), name
    if "forget" in gates:  # sigmoid gates lie in (0, 1), the candidate in (-1, 1)
        assert 0 < gates["forget"].min() and gates["forget"].max() < 1 and np.abs(gates["cell"]).max() < 1


def test_go_backwards_and_bidirectional_come_back_in_the_inputs_time_order():
    keras.utils.set_random_seed(0)
    backwards = wrap(keras.layers.LSTM(5, return_sequences=True, go_backwards=True, name="rnn"))
    hidden = inspect.rnn_gates(backwards, "rnn", X)["forward"]["hidden"]
    np.testing.assert_allclose(hidden[:, ::-1], backwards.predict(X, verbose=0), atol=1e-5)  # Keras: processing order

    both = wrap(keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True), name="bi"))
    gates = inspect.rnn_gates(both, "bi", X)
    merged = np.concatenate([gates["forward"]["hidden"], gates["backward"]["hidden"]], axis=-1)
    np.testing.assert_allclose(merged, both.predict(X, verbose=0), atol=1e-5)


def test_masked_steps_carry_the_state_and_have_no_gates():
    keras.utils.set_random_seed(0)
    tokens = np.random.default_rng(1).integers(1, 20, (3, 9))
    tokens[0, 6:] = 0
    tokens[1, 3:] = 0
    model = wrap(keras.layers.LSTM(5, return_sequences=True, name="rnn"), tokens,
                 keras.layers.Embedding(20, 4, mask_zero=True))
    gates = inspect.rnn_gates(model, "rnn", tokens)["forward"]
    mask = tokens != 0
    np.testing.assert_allclose(gates["hidden"][mask], model.predict(tokens, verbose=0)[mask], atol=1e-5)
    assert np.isnan(gates["forget"][~mask]).all() and not np.isnan(gates["forget"][mask]).any()
    np.testing.assert_array_equal(gates["hidden"][1, 3:], np.repeat(gates["hidden"][1, 2:3], 6, axis=0))


def test_a_layer_inside_a_nested_model_and_a_last_step_output():
    keras.utils.set_random_seed(0)
    inner = wrap(keras.layers.LSTM(5, name="rnn"))
    inputs = keras.Input((7, 4))
    outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs * 2.0)))
    hidden = inspect.rnn_gates(outer, "rnn", X)["forward"]["hidden"]
    np.testing.assert_allclose(hidden[:, -1], inner.predict(X * 2.0, verbose=0), atol=1e-5)


@pytest.mark.parametrize("make, shape", [
    (lambda: keras.layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True, name="rnn"), (5, 6, 6, 2)),
    (lambda: keras.layers.ConvLSTM2D(3, 2, strides=2, return_sequences=True, go_backwards=True, name="rnn"),
     (5, 7, 7, 2)),
    (lambda: keras.layers.ConvLSTM1D(4, 3, data_format="channels_first", return_sequences=True, name="rnn"),
     (5, 2, 9)),
], ids=["same", "strided_backwards", "1d_channels_first"])
def test_conv_lstm_gates_reproduce_the_layer(make, shape):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).normal(size=(2,) + shape).astype("float32")
    layer = make()
    model = wrap(layer, x)
    gates = inspect.rnn_gates(model, "rnn", x)["forward"]
    expected = model.predict(x, verbose=0)
    hidden = gates["hidden"][:, ::-1] if layer.go_backwards else gates["hidden"]  # Keras: processing order
    np.testing.assert_allclose(hidden, expected, atol=1e-5)
    assert set(gates) == {"input", "forget", "cell", "output", "hidden", "cell_state"}
    assert gates["forget"].shape == expected.shape and 0 < gates["forget"].min() and gates["forget"].max() < 1


def test_unsupported_layers_are_named():
    model = wrap(keras.layers.Dense(3, name="dense"))
    with pytest.raises(ValueError, match="'dense' is a Dense, not a supported recurrent layer; supported: LSTM, GRU"):
        inspect.rnn_gates(model, "dense", X)


# -- weights ----------------------------------------------------------------------------------------
def test_rnn_weights_recover_planted_gate_constants():
    model = wrap(keras.layers.Bidirectional(keras.layers.LSTM(3), name="bi"))
    for direction, layer in (("forward", model.get_layer("bi").forward_layer),
                             ("backward", model.get_layer("bi").backward_layer)):
        offset = 0 if direction == "forward" else 10
        for variable, kind in ((layer.cell.kernel, 1), (layer.cell.recurrent_kernel, 2), (layer.cell.bias, 3)):
            blocks = [np.full(variable.shape[:-1] + (3,), offset + kind * 100 + gate, np.float32) for gate in range(4)]
            variable.assign(np.concatenate(blocks, axis=-1))
    weights = inspect.rnn_weights(model, "bi")
    for direction, offset in (("forward", 0), ("backward", 10)):
        for kind, k in (("kernel", 1), ("recurrent_kernel", 2), ("bias", 3)):
            for gate, g in zip(("input", "forget", "cell", "output"), range(4)):
                assert np.all(weights[direction][kind][gate] == offset + k * 100 + g)


def test_gru_reset_after_keeps_its_two_bias_rows_apart():
    model = wrap(keras.layers.GRU(2, name="rnn"))
    bias = model.get_layer("rnn").cell.bias
    bias.assign(np.arange(12, dtype=np.float32).reshape(2, 6))
    weights = inspect.rnn_weights(model, "rnn")["forward"]
    assert weights["bias"]["reset"].tolist() == [2, 3] and weights["recurrent_bias"]["new"].tolist() == [10, 11]


# -- gradients --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_lstms():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((7, 4))
    x = keras.layers.LSTM(6, return_sequences=True, name="lstm_a")(inputs)
    x = keras.layers.LSTM(5, name="lstm_b", kernel_regularizer=keras.regularizers.l2(0.01))(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    model.compile(loss="mse")
    return model


def test_weight_gradients_are_those_of_compute_loss_once_per_variable(two_lstms):
    y, weights = np.ones((3, 2), np.float32), np.array([1.0, 2.0, 0.5], np.float32)
    grads = inspect.layer_gradients(two_lstms, "*", X, y, sample_weight=weights, wrt="weights")
    assert sorted(grads) == sorted(v.path for v in two_lstms.trainable_weights)  # 8 variables, each once
    with tf.GradientTape() as tape:
        loss = two_lstms.compute_loss(x=X, y=y, y_pred=two_lstms(X), sample_weight=weights, training=False)
    for variable, expected in zip(two_lstms.trainable_weights, tape.gradient(loss, two_lstms.trainable_weights)):
        np.testing.assert_allclose(grads[variable.path], expected.numpy(), rtol=1e-5, atol=1e-7)
    only_b = inspect.layer_gradients(two_lstms, "lstm_b", X, y, wrt="weights")
    assert sorted(only_b) == sorted(v.path for v in two_lstms.get_layer("lstm_b").trainable_weights)


def test_output_gradients_per_timestep_and_outputs_from_one_pass(two_lstms):
    y = np.ones((3, 2), np.float32)
    grads = inspect.layer_gradients(two_lstms, ["lstm_a", "out"], X, y)
    assert grads["lstm_a"].shape == (3, 7, 6) and grads["out"].shape == (3, 2)
    outputs = inspect.layer_outputs(two_lstms, "*", X)
    np.testing.assert_allclose(outputs["out"], two_lstms.predict(X, verbose=0), atol=1e-6)
    y_pred = outputs["out"]
    np.testing.assert_allclose(grads["out"], 2 * (y_pred - y) / y.size, rtol=1e-4, atol=1e-7)  # d mse / d y_pred
    with pytest.raises(ValueError, match="wrt must be one of"):
        inspect.layer_gradients(two_lstms, "*", X, y, wrt="inputs")


# -- how far back the gradient reaches -------------------------------------------------------------
def copy_task(samples=1024, steps=30, seed=0):
    """The label is the first of 30 random bits: only step 0 matters."""
    bits = np.random.default_rng(seed).integers(0, 2, (samples, steps, 1)).astype("float32")
    return bits * 2 - 1, bits[:, 0, 0].astype("int32")


def test_a_learning_lstm_reaches_the_first_step_and_an_untrained_one_does_not():
    """While the LSTM learns the copy task its loss gradient peaks at step 0. (Once it has converged
    the loss, and its gradient, is near zero everywhere: measure reach while it learns.)"""
    keras.utils.set_random_seed(0)
    x, y = copy_task()
    model = keras.Sequential([keras.Input((30, 1)), keras.layers.LSTM(8, name="lstm"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = inspect.timestep_gradients(model, x[:128], y[:128])
    assert before.profile[0] < 0.01 and before.earliest > 0  # untrained: it fades before step 0
    assert int(before.profile.argmax()) == 29
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.65  # learning (chance is 0.5)
    after = inspect.timestep_gradients(model, x[:128], y[:128])
    assert after.norms.shape == (128, 30)
    assert after.earliest == 0 and int(after.profile.argmax()) == 0  # the label's step carries the most


# -- health -----------------------------------------------------------------------------------------
def test_one_nan_in_one_gate_is_reported_for_that_gate_only_with_its_exact_share():
    model = wrap(keras.layers.LSTM(5, name="rnn"))
    kernel = model.get_layer("rnn").cell.kernel
    value = kernel.numpy()
    value[2, 7] = np.nan  # column 7: the forget gate (units 5-9)
    kernel.assign(value)
    report = inspect.nonfinite_report(model)
    assert [(r.name, r.nan, r.inf) for r in report] == [("rnn/forward/kernel/forget", 1 / 20, 0.0)]
    assert "5%" in str(report)
    tiny = inspect.nonfinite_report({"w": np.r_[np.nan, np.zeros(10000)]})
    assert tiny[0].nan == 1 / 10001 and "0.009999%" in str(tiny)


def test_weight_norms_per_tensor_and_unit():
    model = wrap(keras.layers.Dense(2, name="d"), np.zeros((1, 3), np.float32))
    model.get_layer("d").kernel.assign(np.array([[3.0, 0.0], [4.0, 1.0], [0.0, 0.0]], np.float32))
    assert inspect.weight_norms(model)["d/kernel"] == pytest.approx(np.sqrt(26.0))
    np.testing.assert_allclose(inspect.weight_norms(model, per_unit=True)["d/kernel"], [5.0, 1.0])
    assert inspect.weight_norms(model, ord=1)["d/kernel"] == pytest.approx(8.0)


# -- figures ----------------------------------------------------------------------------------------
def titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]


def test_rnn_heatmap_and_histogram_have_a_panel_per_direction_kind_and_gate(two_lstms):
    from matplotlib.figure import Figure

    heat = inspect.rnn_heatmap(two_lstms, "lstm_a")
    assert isinstance(heat, Figure)
    assert titles(heat) == ["forward kernel", "forward recurrent_kernel", "forward bias"]
    kernel_panel = heat.axes[0]
    assert [t.get_text() for t in kernel_panel.get_xticklabels()] == ["input", "forget", "cell", "output"]
    assert len([line for line in kernel_panel.lines]) == 3  # separators between 4 gates
    image = kernel_panel.images[0]
    assert image.get_clim()[0] == -image.get_clim()[1]  # symmetric scale
    hist = inspect.rnn_histogram(two_lstms, "lstm_b", mode="grads", x=X, y=np.ones((3, 2), np.float32))
    assert len(titles(hist)) == 3 * 4 and "forward recurrent_kernel: forget" in titles(hist)
    with pytest.raises(ValueError, match="mode='grads' needs the data"):
        inspect.rnn_heatmap(two_lstms, "lstm_a", mode="grads")


def test_a_nan_is_marked_on_its_panel_only():
    model = wrap(keras.layers.GRU(3, name="rnn"))
    kernel = model.get_layer("rnn").cell.kernel
    value = kernel.numpy()
    value[0, 4] = np.nan  # the reset gate (units 3-5)
    kernel.assign(value)
    hist = inspect.rnn_histogram(model, "rnn")
    marked = [ax.get_title() for ax in hist.axes if any("NaN" in t.get_text() for t in ax.texts)]
    assert marked == ["forward kernel: reset"]


def test_feature_figures_have_one_panel_per_sample():
    sequences = np.random.default_rng(0).normal(size=(4, 10, 6))
    assert len(titles(inspect.features_1d(sequences))) == 4
    fig = inspect.features_2d(sequences, norm="auto", reflect_half=True)
    assert len(titles(fig)) == 4
    first = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(first[:, 3:], sequences[0, ::-1, 3:])  # the backward half reflected
    assert len(inspect.features_0d(sequences[:, -1]).axes) == 1
    with pytest.raises(ValueError, match="features_0d takes"):
        inspect.features_0d(sequences)
