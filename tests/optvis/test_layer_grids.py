"""visualize_layers: one grid per layer and an index, and a run that resumes after an interrupt."""

import json

import cv2
import keras
import numpy as np
import pytest

import visopt
from visopt.optvis.optimizer_callback import OptimizerCallback


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv>b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(x))


class Counter(OptimizerCallback):
    """Counts the requests run; raises KeyboardInterrupt at the first step of request ``stop_at``."""

    wants_images = False

    def __init__(self, stop_at=None):
        self.requests, self.stop_at = 0, stop_at

    def on_begin(self, max_iter, batch_size):
        self.requests += 1

    def on_step(self, step, images, values):
        if self.requests == self.stop_at:
            raise KeyboardInterrupt


def test_every_layer_with_a_kernel_gets_a_grid_and_the_index_lists_them(model, tmp_path):
    grids = visopt.visualize_layers(model, out=tmp_path, max_iter=3, batch_size=4, verbose=False)
    assert list(grids) == ["conv_a", "conv>b", "out"]
    assert grids["conv>b"] == tmp_path / "conv_b.png"
    picture = cv2.imread(str(grids["conv>b"]))
    assert picture.shape == (2 * 16 + 2, 3 * 16 + 2 * 2, 3)  # 6 filters: 2 rows of 3, 2-pixel margins
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["layers"]["conv_a"]["filters"] == [0, 1, 2, 3]
    page = (tmp_path / "index.html").read_text()
    assert page.index("conv_a") < page.index("conv&gt;b") < page.index('src="out.png"')


def test_an_interrupted_run_resumes_without_recomputing_finished_layers(model, tmp_path):
    first = Counter(stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        visopt.visualize_layers(model, ["conv_a", "conv>b", "out"], out=tmp_path, max_iter=3, seed=1,
                                verbose=False, callbacks=[first])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(manifest["layers"]) == ["conv_a"] and not (tmp_path / "conv_b.png").exists()
    kept = (tmp_path / "conv_a.png").stat().st_mtime_ns
    second = Counter()
    grids = visopt.visualize_layers(model, ["conv_a", "conv>b", "out"], out=tmp_path, max_iter=3, seed=1,
                                    verbose=False, callbacks=[second], batch_size=2)  # batch_size: not a setting
    assert second.requests == 2  # conv>b and out only
    assert (tmp_path / "conv_a.png").stat().st_mtime_ns == kept
    assert list(json.loads((tmp_path / "manifest.json").read_text())["layers"]) == ["conv_a", "conv>b", "out"]
    again = Counter()
    visopt.visualize_layers(model, ["conv_a"], out=tmp_path, max_iter=4, seed=1, verbose=False, callbacks=[again])
    assert again.requests == 1  # another max_iter: the grid is made again
    assert all(path.is_file() for path in grids.values())


def test_a_resumed_layer_equals_one_run_in_one_go(model, tmp_path):
    a = visopt.visualize_layers(model, ["conv>b"], out=tmp_path / "a", max_iter=3, seed=2, verbose=False)
    b = visopt.visualize_layers(model, ["conv>b"], out=tmp_path / "b", max_iter=3, seed=2, verbose=False,
                                batch_size=4)
    difference = np.abs(cv2.imread(str(a["conv>b"])).astype(int) - cv2.imread(str(b["conv>b"])))
    assert difference.max() <= 1


def test_filters_a_sample_or_a_list_and_bad_values_name_the_valid_ones(model, tmp_path):
    grids = visopt.visualize_layers(model, ["conv>b"], filters=3, out=tmp_path, max_iter=2, verbose=False)
    chosen = json.loads((tmp_path / "manifest.json").read_text())["layers"]["conv>b"]["filters"]
    assert len(chosen) == 3 and chosen == sorted(set(chosen)) and max(chosen) < 6
    assert grids["conv>b"].is_file()
    visopt.visualize_layers(model, "conv_a", filters=[1, 3], out=tmp_path, max_iter=2, verbose=False)
    assert json.loads((tmp_path / "manifest.json").read_text())["layers"]["conv_a"]["filters"] == [1, 3]
    with pytest.raises(ValueError, match=r"filters must be None .* got 'all'"):
        visopt.visualize_layers(model, filters="all", out=tmp_path, verbose=False)
    flat_input = keras.Input((5,))
    flat = keras.Model(flat_input, keras.layers.Dense(2, name="d")(flat_input))
    with pytest.raises(ValueError, match=r"image with 1 or 3 channels, got shape \(5,\)"):
        visopt.visualize_layers(flat, out=tmp_path, verbose=False)
