"""GateMonitor: one row per layer, direction and gate at the chosen batches, with values that mean something."""

import csv
import json

import keras
import numpy as np
import pytest

from visopt import GateMonitor
from visopt.render.colormaps import colormap_lut
from visopt.training.gate_monitor import gate_picture, gate_statistics


def sequence_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), name="bi")(inputs)
    x = keras.layers.GRU(3, name="gru")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(x))
    model.compile(optimizer="sgd", loss="mse")
    return model


def data(samples=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(samples, 6, 3)).astype("float32"), rng.normal(size=(samples, 1)).astype("float32")


def test_rows_per_layer_direction_and_gate_at_the_chosen_batches(tmp_path):
    model, (x, y) = sequence_model(), data()
    monitor = GateMonitor(tmp_path / "gates.csv", x[:8], y[:8], batch_interval=2)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    with open(tmp_path / "gates.csv") as handle:
        rows = list(csv.DictReader(handle))
    # 5 batches an epoch: batches 0, 2, 4 in each of 2 epochs; bi: 2 directions x (4 gates + hidden), gru: 3 + hidden
    per_time = 2 * 5 + 4
    assert len(rows) == 6 * per_time == monitor.rows_written
    assert sorted({(r["epoch"], r["batch"]) for r in rows}) == [(e, b) for e in "01" for b in "024"]
    forget = [r for r in rows if r["layer"] == "bi" and r["direction"] == "backward" and r["gate"] == "forget"]
    assert len(forget) == 6 and all(0 < float(r["mean"]) < 1 and float(r["gradient_norm"]) > 0 for r in forget)
    weight = model.get_layer("gru").cell.kernel.numpy()[:, 3:6]  # the GRU's reset gate block of its kernel
    last_reset = [r for r in rows if r["layer"] == "gru" and r["gate"] == "reset"][-1]
    assert float(last_reset["weight_norm"]) >= np.sqrt((weight ** 2).sum())  # kernel + recurrent + bias blocks


def test_json_lines_and_bad_arguments(tmp_path):
    model, (x, y) = sequence_model(), data(16)
    monitor = GateMonitor(tmp_path / "gates.jsonl", x, layers="gru", batch_interval=1)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    rows = [json.loads(line) for line in (tmp_path / "gates.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4 and {r["layer"] for r in rows} == {"gru"} and rows[0]["gradient_norm"] is None
    with pytest.raises(ValueError, match=r"GateMonitor writes \['.csv', '.jsonl'\] tables"):
        GateMonitor(tmp_path / "gates.txt", x)
    with pytest.raises(ValueError, match="not a supported recurrent layer"):
        model.fit(x, y, verbose=0, callbacks=[GateMonitor(tmp_path / "g.csv", x, layers="dense")])


def test_gate_statistics_count_saturation_and_dead_units():
    forget = np.full((2, 3, 4), 0.5)
    forget[..., 0] = 0.999  # saturated, and the same everywhere: dead
    forget[0, 0, 1] = 0.2
    stats = gate_statistics({"forget": forget, "new": np.zeros((2, 3, 4))})
    assert stats["forget"]["saturated"] == pytest.approx(0.25) and stats["forget"]["dead"] == pytest.approx(0.75)
    assert stats["new"]["saturated"] == 0 and stats["new"]["dead"] == 1.0


def test_conv_lstm_layers_are_monitored_with_their_filters_as_units(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 2, 9))
    x = keras.layers.ConvLSTM1D(3, 3, data_format="channels_first", name="conv_lstm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4, 2, 9)).astype("float32")
    monitor = GateMonitor(tmp_path / "gates.csv", x, np.zeros((8, 1), "float32"), batch_interval=1)
    model.fit(x, np.zeros((8, 1), "float32"), batch_size=4, epochs=1, verbose=0, callbacks=[monitor])
    rows = list(csv.DictReader(open(tmp_path / "gates.csv")))
    assert len(rows) == 2 * 5 and {r["layer"] for r in rows} == {"conv_lstm"}
    assert all(0 < float(r["mean"]) < 1 for r in rows if r["gate"] == "forget")

    forget = np.full((2, 3, 4, 5), 0.5)  # (N, T, filters, width): channels first
    forget[:, :, 1] = np.random.default_rng(0).uniform(size=(2, 3, 5))  # the one living filter
    assert gate_statistics({"forget": forget}, unit_axis=2)["forget"]["dead"] == pytest.approx(3 / 4)


def test_gate_picture_draws_each_gate_on_its_own_fixed_scale():
    forget, candidate = np.ones((5, 3)), -np.ones((5, 3))  # (T, units)
    candidate[2, 1] = np.nan
    picture = gate_picture({"lstm/forward": {"forget": forget, "cell": candidate}, "gru/forward": {"update": forget}})
    lut = colormap_lut("viridis")
    assert picture.shape == (3 + 1 + 3, 5 + 2 + 5, 3)  # gates stacked with a 1 px line, columns 2 px apart
    assert (picture[:3, :5] == lut[255]).all() and (picture[3, :5] == 255).all()
    assert (picture[4 + 1, 2] == 128).all() and (picture[4, :5] == lut[0]).all()  # NaN grey; -1 is the low end
    assert (picture[3:, 7:] == 255).all()  # the shorter column is padded


def test_the_animation_has_a_frame_per_row_set(tmp_path):
    import imageio.v3 as iio

    model, (x, y) = sequence_model(), data(16)
    monitor = GateMonitor(tmp_path / "gates.csv", x, batch_interval=1, animation=tmp_path / "gates.gif")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    frames = iio.imread(tmp_path / "gates.gif", index=None)
    assert len(frames) == 4 and frames[0].std() > 0 and not (frames[0] == frames[-1]).all()
    with pytest.raises(ValueError, match=r"GateMonitor animations are .gif or .mp4 files; got '.*gates.png'"):
        GateMonitor(tmp_path / "gates.csv", x, animation=tmp_path / "gates.png")
