"""WeightHistory: recorded statistics and values equal NumPy on the weights after each batch; plotting."""

import cv2
import keras
import numpy as np
import pytest

from visopt import WeightHistory


def small_dense(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, activation="tanh", name="dense")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def data(samples=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(samples, 5)).astype("float32"), rng.normal(size=(samples, 2)).astype("float32")


class Copies(keras.callbacks.Callback):
    """The reference: a copy of every trainable weight after each batch."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append({w.path: np.array(w.numpy()) for w in self.model.trainable_weights})


def test_statistics_and_values_equal_numpy():
    model = small_dense()
    x, y = data()
    recorder = WeightHistory({"dense/kernel": [(0, 3), (4, 1)], "out/bias": 1},
                             stats=("norm", "mean", "std", "min", "max", "absmean"))
    copies = Copies()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder, copies])
    history = recorder.history
    assert len(copies.values) == 10
    np.testing.assert_array_equal(history["step"], np.arange(1, 11))
    np.testing.assert_array_equal(history["epoch"], [0] * 5 + [1] * 5)
    np.testing.assert_array_equal(history["batch"], list(range(5)) * 2)
    kernels = np.stack([c["dense/kernel"] for c in copies.values]).astype(np.float64)
    biases = np.stack([c["out/bias"] for c in copies.values]).astype(np.float64)
    axes = (1, 2)
    np.testing.assert_allclose(history["dense/kernel:norm"], np.sqrt((kernels ** 2).sum(axis=axes)), rtol=1e-6)
    np.testing.assert_allclose(history["dense/kernel:mean"], kernels.mean(axis=axes), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(history["dense/kernel:std"], kernels.std(axis=axes), rtol=1e-6)
    np.testing.assert_allclose(history["dense/kernel:min"], kernels.min(axis=axes), rtol=1e-6)
    np.testing.assert_allclose(history["dense/kernel:max"], kernels.max(axis=axes), rtol=1e-6)
    np.testing.assert_allclose(history["dense/kernel:absmean"], np.abs(kernels).mean(axis=axes), rtol=1e-6)
    np.testing.assert_allclose(history["out/bias:norm"], np.linalg.norm(biases, axis=1), rtol=1e-6)
    np.testing.assert_array_equal(history["dense/kernel[0, 3]"], kernels[:, 0, 3].astype(np.float32))
    np.testing.assert_array_equal(history["dense/kernel[4, 1]"], kernels[:, 4, 1].astype(np.float32))
    np.testing.assert_array_equal(history["out/bias[1]"], biases[:, 1].astype(np.float32))
    assert not any(key.startswith("out/kernel") for key in history)  # only the chosen tensors
    assert np.ptp(history["dense/kernel[0, 3]"]) > 0  # training moves it


def test_all_weights_every_n_and_plot(tmp_path):
    model = small_dense()
    x, y = data(48)
    recorder = WeightHistory(every=4)
    copies = Copies()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[recorder, copies])
    history = recorder.history
    np.testing.assert_array_equal(history["step"], [4, 8, 12])
    for path in ("dense/kernel", "dense/bias", "out/kernel", "out/bias"):
        expected = [np.std(copies.values[step - 1][path], dtype=np.float64) for step in (4, 8, 12)]
        np.testing.assert_allclose(history[f"{path}:std"], expected, rtol=1e-6)

    figure = recorder.plot(tmp_path / "plots" / "history.png", title="weights")
    assert len(figure.axes) == 3  # norm, mean, std
    assert [ax.get_ylabel() for ax in figure.axes] == ["norm", "mean", "std"]
    assert len(figure.axes[0].lines) == 4
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), history["dense/kernel:norm"])
    image = cv2.imread(str(tmp_path / "plots" / "history.png"))
    assert image is not None and image.shape[0] > 200 and image.std() > 0
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["history.png"]  # no temporary left

    values_only = WeightHistory({"out/kernel": (1, 0)}, stats=())
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[values_only])
    assert set(values_only.history) == {"step", "epoch", "batch", "out/kernel[1, 0]"}
    assert [ax.get_ylabel() for ax in values_only.plot().axes] == ["value"]


def test_bad_requests_raise():
    model = small_dense()
    x, y = data(8)
    with pytest.raises(ValueError, match=r"index \(5, 0\) is out of range for 'dense/kernel' of shape \(5, 4\)"):
        model.fit(x, y, verbose=0, callbacks=[WeightHistory({"dense/kernel": (5, 0)})])
    with pytest.raises(ValueError, match="'nope'.*dense/kernel"):
        model.fit(x, y, verbose=0, callbacks=[WeightHistory(["nope"])])
    with pytest.raises(ValueError, match="unknown statistic"):
        WeightHistory(stats=("median",))
    with pytest.raises(ValueError, match="every"):
        WeightHistory(every=0)


def test_plot_displays_in_a_notebook_without_pyplot():
    model = small_dense()
    x, y = data(16)
    recorder = WeightHistory(["dense/kernel"], stats=("norm",))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[recorder])
    figure = recorder.plot()
    png = figure._repr_png_()  # what IPython calls for a figure with no pyplot manager
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and figure.canvas.manager is None
    pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape[:2] == (260, 800)  # figsize (8, 2.6) at 100 dpi
    assert (pixels != 255).any(axis=-1).mean() > 0.01  # the axes and the line are drawn
