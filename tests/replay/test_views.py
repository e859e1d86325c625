"""The replay views: their data equals what a plain Keras model holding each point's weights computes,
their scales stay fixed across points, and plot/animate/compose draw and write what they say."""

import os

import imageio.v3 as iio
import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from visopt.replay import Replay
from visopt.replay.views import (DecisionBoundary, FeatureSpace, LayerViolins, LossAndMetric, LossHistogram,
                                 ProbabilityHistogram, compose)
from visopt.training.replay_recorder import ReplayRecorder

EPOCHS = 12


class Checkpoints(keras.callbacks.Callback):
    """The plain reference: ``get_weights()`` before training and at every epoch end."""

    def on_train_begin(self, logs=None):
        self.weights = [self.model.get_weights()]

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _record(folder, model, x, y, epochs, optimizer, loss):
    model.compile(optimizer, loss, metrics=["accuracy"])
    checkpoints = Checkpoints()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[ReplayRecorder(folder, x, y), checkpoints])
    return Replay(folder), model, checkpoints.weights


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """deepreplay's example, short: a 2-2-1 sigmoid MLP on the parabola data."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (300, 2)).astype("float32")
    y = (x[:, 1] > x[:, 0] ** 2).astype("float32")[:, None]
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="sigmoid", name="hidden"),
                              keras.layers.Dense(1, activation="sigmoid", name="out")])
    return _record(tmp_path_factory.mktemp("binary"), model, x, y, EPOCHS, keras.optimizers.SGD(1.0),
                   "binary_crossentropy") + (x, y)


@pytest.fixture(scope="module")
def softmax(tmp_path_factory):
    """3 classes of 4-D inputs: the projection paths (an 8-unit layer, inputs wider than 2)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(240, 4)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(4, 3)), axis=1)
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    return _record(tmp_path_factory.mktemp("softmax"), model, x, y, 6, keras.optimizers.Adam(0.05),
                   "sparse_categorical_crossentropy") + (x, y)


def _at(model, weights, layer=None):
    """A plain model holding ``weights`` (a checkpoint): the whole model, or up to ``layer``."""
    model.set_weights(weights)
    return model if layer is None else keras.Model(model.inputs[0], model.get_layer(layer).output)


def _call(model, x):
    return np.asarray(model(np.asarray(x, np.float32), training=False))


# -- feature space -------------------------------------------------------------------------
def test_feature_space_equals_the_hidden_layer_of_a_plain_model_at_every_point(binary):
    replay, model, weights, x, _ = binary
    view = FeatureSpace(replay, "hidden", grid=5, resolution=6)
    assert view.projection == "identity" and len(replay) == len(weights) == EPOCHS + 1
    low, high = x.min(axis=0), x.max(axis=0)
    # the grid, built independently: 5 vertical lines then 5 horizontal ones, 64 samples each
    along = [np.linspace(low[i], high[i], 64) for i in range(2)]
    vertical = [np.stack([np.full(64, v), along[1]], -1) for v in np.linspace(low[0], high[0], 5)]
    horizontal = [np.stack([along[0], np.full(64, v)], -1) for v in np.linspace(low[1], high[1], 5)]
    lines = np.stack(vertical + horizontal)
    edges = [np.linspace(low[i], high[i], 7) for i in range(2)]
    centres = np.stack(np.meshgrid(*[(e[:-1] + e[1:]) / 2 for e in edges]), -1).reshape(-1, 2)
    for k in range(len(replay)):
        data = view.data(k)
        hidden = _at(model, weights[k], "hidden")
        np.testing.assert_allclose(data["inputs"], _call(hidden, x), atol=1e-5)
        np.testing.assert_allclose(data["lines"], _call(hidden, lines.reshape(-1, 2)).reshape(10, 64, 2), atol=1e-5)
        out = _call(_at(model, weights[k]), centres)
        np.testing.assert_allclose(data["outputs"].reshape(-1, 1), out, atol=1e-5)
        np.testing.assert_array_equal(data["classes"].ravel(), (out[:, 0] > 0.5).astype(int))
    assert not np.allclose(view.data(0)["inputs"], view.data(len(replay) - 1)["inputs"], atol=1e-3)


def test_a_wide_layer_goes_through_one_pca_fitted_on_every_point(softmax):
    replay, model, weights, x, _ = softmax
    view = FeatureSpace(replay, "hidden", grid=3, resolution=4)
    projection = view.feature_projection
    assert view.projection == "pca" and projection.kind == "pca"
    hidden = [_call(_at(model, w, "hidden"), x).astype(np.float64) for w in weights]
    for k in (1, len(replay) - 1):
        np.testing.assert_allclose(view.data(k)["inputs"], (hidden[k] - projection.mean) @ projection.components.T,
                                   atol=1e-4)
    assert view.feature_projection is projection  # one map for every point
    # the same plane as an independent PCA of the outputs of every point stacked (signs aside)
    stacked = np.concatenate(hidden)
    _, _, vt = np.linalg.svd(stacked - stacked.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(np.sum(vt[:2] * projection.components, axis=1)), 1.0, atol=1e-6)
    np.testing.assert_allclose(projection.mean, stacked.mean(axis=0), atol=1e-6)


def test_feature_space_arguments_are_checked_before_any_work(binary, softmax):
    replay = binary[0]
    with pytest.raises(ValueError, match=r"'bogus'.*'auto', 'identity', 'pca'"):
        FeatureSpace(replay, "hidden", projection="bogus")
    for grid in (1, 2.5, "9"):
        with pytest.raises(ValueError, match="grid"):
            FeatureSpace(replay, "hidden", grid=grid)
    with pytest.raises(ValueError, match="no layer named 'nope'.*hidden"):
        FeatureSpace(replay, "nope")
    with pytest.raises(ValueError, match="8 units.*'identity'"):
        FeatureSpace(softmax[0], "hidden", projection="identity")
    with pytest.raises(ValueError, match="1 units"):
        FeatureSpace(replay, "out")


# -- decision boundary -------------------------------------------------------------------
def test_decision_boundary_regions_are_the_model_predictions_on_the_grid(binary):
    replay, model, weights, x, _ = binary
    view = DecisionBoundary(replay, grid=20)
    for k in (0, len(replay) - 1):
        data = view.data(k)
        out = _call(_at(model, weights[k]), data["grid"].reshape(-1, 2))
        np.testing.assert_allclose(data["outputs"].reshape(-1, 1), out, atol=1e-5)
        np.testing.assert_array_equal(data["classes"].ravel(), (out[:, 0] > 0.5).astype(int))
    # 2-D inputs are drawn as they are: the grid spans the probe's box, 5 % to spare
    assert data["grid"][0, 0, 0] < x[:, 0].min() and data["grid"][-1, -1, 1] > x[:, 1].max()
    np.testing.assert_allclose(data["inputs"], x, atol=1e-6)
    assert not np.array_equal(view.data(0)["classes"], data["classes"])
    with pytest.raises(ValueError, match="grid"):
        DecisionBoundary(replay, grid=0)


def test_wide_inputs_are_gridded_on_the_plane_of_their_pca(softmax):
    replay, model, weights, x, _ = softmax
    view = DecisionBoundary(replay, grid=12)
    data = view.data(len(replay) - 1)
    grid = data["grid"].reshape(-1, 4)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    off_plane = (grid - x.mean(axis=0)) @ vt[2:].T  # the grid has no part outside the top-2 PCA plane
    np.testing.assert_allclose(off_plane, 0, atol=1e-4)
    np.testing.assert_allclose(np.abs(data["inputs"]), np.abs(centred @ vt[:2].T), atol=1e-4)
    predicted = np.argmax(_call(_at(model, weights[-1]), grid), axis=1)
    np.testing.assert_array_equal(data["classes"].ravel(), predicted)
    assert len(np.unique(predicted)) == 3


# -- histograms ----------------------------------------------------------------------------
def test_probability_histogram_counts_per_class_and_right_or_wrong(softmax, binary):
    for replay, model, weights, x, y in (softmax, binary):
        view = ProbabilityHistogram(replay, bins=8)
        labels = np.asarray(y).reshape(len(y)).astype(int)
        for k in (0, len(replay) - 1):
            data = view.data(k)
            np.testing.assert_array_equal((data["right"] + data["wrong"]).sum(axis=1), np.bincount(labels))
            out = _call(_at(model, weights[k]), x)
            probabilities = np.concatenate([1 - out, out], axis=1) if out.shape[1] == 1 else out
            assert data["right"].sum() == np.sum(probabilities.argmax(axis=1) == labels)
            np.testing.assert_allclose(data["probability"], probabilities[np.arange(len(x)), labels], atol=1e-5)
            counts = np.histogram(data["probability"][labels == 1], np.linspace(0, 1, 9))[0]
            np.testing.assert_array_equal((data["right"] + data["wrong"])[1], counts)
    # the binary right count is Keras' accuracy
    curves = binary[0].loss_and_metric("accuracy", points=[EPOCHS])
    assert view.data(EPOCHS)["right"].sum() / len(binary[3]) == pytest.approx(curves["accuracy"][0], abs=1e-6)


def test_loss_histogram_bins_are_fixed_across_points(binary):
    replay = binary[0]
    view = LossHistogram(replay, bins=12)
    first, last = view.data(0), view.data(-1)
    assert first["edges"] is last["edges"] and len(first["edges"]) == 13
    every = np.concatenate([replay.losses(k) for k in range(len(replay))])
    assert first["edges"][0] == 0.0 and first["edges"][-1] == pytest.approx(every.max(), rel=1e-5)
    for k, data in ((0, first), (len(replay) - 1, last)):
        np.testing.assert_allclose(data["losses"], replay.losses(k), atol=1e-5)
        np.testing.assert_array_equal(data["counts"], np.histogram(data["losses"], data["edges"])[0])
        assert data["counts"].sum() == len(replay.x)
    assert last["losses"].mean() < first["losses"].mean()


def test_loss_and_metric_view_draws_the_curves_up_to_the_point(binary):
    replay = binary[0]
    view = LossAndMetric(replay, "accuracy")
    curves = replay.loss_and_metric("accuracy")
    data = view.data(5)
    for key in ("loss", "logged_loss", "accuracy", "logged_accuracy", "epoch"):
        np.testing.assert_allclose(data[key], curves[key], atol=1e-6)
    assert int(data["current"]) == 5
    figure = view.plot(5)
    panels = [inset for ax in figure.axes for inset in ax.child_axes]  # loss and metric, inside the one axes
    assert len(figure.axes) == 1 and len(panels) == 2
    markers = [line for ax in panels for line in ax.get_lines() if line.get_marker() == "o"]
    assert sorted(float(m.get_ydata()[0]) for m in markers) == pytest.approx(
        sorted([curves["loss"][5], curves["accuracy"][5]]), abs=1e-6)
    assert all(float(m.get_xdata()[0]) == 5 for m in markers)
    with pytest.raises(ValueError, match="not_a_metric"):
        LossAndMetric(replay, "not_a_metric")


# -- violins --------------------------------------------------------------------------------
def test_layer_violins_summarize_weights_activations_and_gradients(binary):
    replay, model, weights, x, y = binary
    k = 4
    plain = _at(model, weights[k])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.binary_crossentropy(y, plain(x, training=False)))
    grads = [np.asarray(g) for g in tape.gradient(loss, plain.trainable_weights)]
    expected = {"weights": [np.concatenate([w.ravel() for w in weights[k][:2]]),
                            np.concatenate([w.ravel() for w in weights[k][2:]])],
                "activations": [_call(_at(model, weights[k], "hidden"), x).ravel(), _call(plain, x).ravel()],
                "gradients": [np.concatenate([g.ravel() for g in grads[:2]]),
                              np.concatenate([g.ravel() for g in grads[2:]])]}
    for kind, values in expected.items():
        view = LayerViolins(replay, kind)
        data = view.data(k)
        assert list(data["layers"]) == ["hidden", "out"]
        np.testing.assert_allclose(data["median"], [np.median(v) for v in values], atol=1e-5)
        np.testing.assert_allclose(data["maximum"], [v.max() for v in values], atol=1e-5)
        assert data["grid"] is view.data(0)["grid"]  # one value axis for every point
        np.testing.assert_allclose(data["density"].max(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"'biases'.*'weights', 'activations', 'gradients'"):
        LayerViolins(replay, "biases")


# -- drawing and animating -------------------------------------------------------------------
def test_animate_writes_one_frame_per_point_and_nothing_else(binary, tmp_path):
    replay = binary[0]
    view = FeatureSpace(replay, "hidden", grid=5, resolution=8)
    path = view.animate(tmp_path / "space.gif", fps=8)
    frames = iio.imread(path, index=None)
    assert len(frames) == len(replay) and frames.shape[1:] == (480, 640, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 1.0  # the picture moves with training
    assert os.listdir(tmp_path) == ["space.gif"]
    path = LossHistogram(replay).animate(tmp_path / "losses.mp4", fps=4, points=[0, 3, 6])
    assert len(iio.imread(path, index=None)) == 3
    assert sorted(os.listdir(tmp_path)) == ["losses.mp4", "space.gif"]
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        view.animate(tmp_path / "space.png")
    with pytest.raises(IndexError, match="out of range"):
        view.animate(tmp_path / "late.gif", points=[0, len(replay)])
    assert not (tmp_path / "late.gif").exists()


def test_each_animation_frame_is_pixel_for_pixel_a_full_redraw(binary):
    from visopt.replay import canvas

    class Frames:
        def __init__(self):
            self.frames = []

        def write(self, rgb):
            self.frames.append(np.array(rgb))

    replay = binary[0]
    views = [DecisionBoundary(replay, grid=12), ProbabilityHistogram(replay), LossHistogram(replay),
             LayerViolins(replay)]
    figure, axes = canvas.new_figure(len(views), 2, (4.8, 3.6))
    drawings = [view.draw(ax) for view, ax in zip(views, axes)]
    frames = Frames()
    canvas._stream(figure, drawings, [0, 6, EPOCHS], frames)  # blitted: only the moving artists redrawn
    for drawing in drawings:
        drawing.update(EPOCHS)
    figure.canvas.draw()
    np.testing.assert_array_equal(frames.frames[-1], np.asarray(figure.canvas.buffer_rgba())[..., :3])
    assert not np.array_equal(frames.frames[0], frames.frames[-1])


def test_a_failing_animation_keeps_the_existing_file(binary, tmp_path, monkeypatch):
    view = DecisionBoundary(binary[0], grid=10)
    path = tmp_path / "boundary.gif"
    path.write_bytes(b"the previous animation")
    computed = view.data

    def data(k):
        if view.replay.index(k) == 2:
            raise RuntimeError("broken at point 2")
        return computed(k)

    monkeypatch.setattr(view, "data", data)
    with pytest.raises(RuntimeError, match="point 2"):
        view.animate(path)
    assert path.read_bytes() == b"the previous animation"
    assert os.listdir(tmp_path) == ["boundary.gif"]


def test_plot_draws_into_the_given_axes_and_leaves_pyplot_alone(binary):
    import matplotlib.pyplot as plt

    replay = binary[0]
    open_figures = plt.get_fignums()
    figure = Figure()
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    assert LossHistogram(replay).plot(3, ax=right) is figure
    assert "epoch 3" in right.get_title() and right.collections and not left.collections
    assert DecisionBoundary(replay, grid=10).plot(-1, ax=left) is figure and left.images
    with pytest.raises(IndexError):
        LossHistogram(replay).plot(len(replay))
    assert isinstance(LayerViolins(replay).plot(0), Figure)
    assert plt.get_fignums() == open_figures  # nothing went through pyplot


def test_compose_draws_views_as_panels_and_animates(binary, tmp_path):
    replay = binary[0]
    both = compose([replay.feature_space("hidden", grid=4, resolution=6), replay.loss_histogram()])
    figure = both.plot(2)
    panels = [ax for ax in figure.axes if ax.get_subplotspec() is not None]
    assert len(panels) == 2
    assert "feature space" in panels[0].get_title() and "losses" in panels[1].get_title()
    assert all("epoch 2" in ax.get_title() for ax in panels)
    frames = iio.imread(both.animate(tmp_path / "both.gif", points=[0, 5, EPOCHS]), index=None)
    assert frames.shape == (3, 360, 960, 3)
    assert sorted(os.listdir(tmp_path)) == ["both.gif"]
    stacked = compose([replay.loss_histogram(), replay.probability_histogram(), replay.decision_boundary(grid=8)],
                      cols=2)
    assert len([ax for ax in stacked.plot(0).axes if ax.get_subplotspec() and ax.get_visible()]) == 3
    with pytest.raises(ValueError, match="cols"):
        compose([replay.loss_histogram()], cols=2)


def test_replay_factories_make_the_views(binary):
    replay = binary[0]
    assert isinstance(replay.feature_space("hidden"), FeatureSpace)
    assert isinstance(replay.decision_boundary(grid=5), DecisionBoundary)
    assert isinstance(replay.probability_histogram(bins=4), ProbabilityHistogram)
    assert isinstance(replay.loss_and_metric_view("accuracy"), LossAndMetric)
    assert replay.layer_violins("activations").kind == "activations"
