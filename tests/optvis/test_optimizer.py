"""The Optimizer's behaviour: the score rises, images stay in range, runs are reproducible and independent."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import logits_of, small_conv_model
from visopt.model import LayerRequest, build_feature_model
from visopt import (ActivationMaximization, LPNorm, OptimizerCallback, Optimizer, Term, TotalVariation,
                    visualize_activation)
from visopt.optvis.parameterizations import initial_images


class Recorder(OptimizerCallback):
    def __init__(self):
        self.steps, self.images, self.begun, self.ended = [], [], None, None

    def on_begin(self, max_iter, batch_size):
        self.begun = (max_iter, batch_size)

    def on_step(self, step, images, losses):
        self.steps.append(step)
        self.images.append(images.copy())

    def on_end(self, result):
        self.ended = result


@pytest.mark.parametrize("score", ["auto", "activation"])
def test_class_score_rises(demo_model, score):
    classes = [0, 1, 2, 3]
    energy = ActivationMaximization("predictions", classes, score=score) + 0.5 * LPNorm() + 2 * TotalVariation()
    result = Optimizer(demo_model, energy).minimize(max_iter=60, seed=1, verbose=False)
    am = result.history["activation_maximization"]
    start = initial_images(4, (32, 32, 3), (0, 255), 1)
    before, after = logits_of(demo_model, start), logits_of(demo_model, result.images)
    rows = np.arange(4)
    if score == "auto":  # softmax layer: minus the log-odds, computed from the logits
        log_p = lambda z: z[rows, classes] - np.log(np.exp(z).sum(axis=1))
        others = lambda z: np.log(np.exp(z).sum(axis=1) - np.exp(z[rows, classes]))
        log_odds = lambda z: z[rows, classes] - others(z)
        exact = Optimizer(demo_model, ActivationMaximization("predictions", classes), transforms=[]).minimize(
            max_iter=1, seed=1, jitter=0, verbose=False)
        np.testing.assert_allclose(exact.history["activation_maximization"][0], -log_odds(before), rtol=1e-3)
        assert np.all(am[-5:].mean(axis=0) < 0.25 * am[:5].mean(axis=0))
        assert np.all(log_p(after) > np.log(0.9))
    else:  # the logit itself
        assert np.all(am[-5:].mean(axis=0) < am[:5].mean(axis=0) - 1.0)
        assert np.all(after[rows, classes] > before[rows, classes] + 2.0)


def test_pre_activation_is_the_logits(demo_model):
    from visopt.model import LayerRequest, build_feature_model

    fm = build_feature_model(demo_model, [LayerRequest("predictions", pre_activation=True),
                                          LayerRequest("predictions")])
    x = initial_images(3, (32, 32, 3), (0, 255), 5)
    logits, probs = fm(x)
    np.testing.assert_allclose(logits, logits_of(demo_model, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(probs, demo_model(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.nn.softmax(logits), probs, rtol=1e-4, atol=1e-6)
    assert demo_model.get_layer("predictions").activation.__name__ == "softmax"  # original untouched


def test_pixels_never_leave_the_input_range():
    model = small_conv_model()
    recorder = Recorder()
    energy = ActivationMaximization("conv_b", [0, 1])
    opt = Optimizer(model, energy, input_range=(-1, 1), learning_rate=0.5, transforms=[], parameterization="pixels")
    result = opt.minimize(max_iter=30, seed=0, verbose=False, callbacks=[recorder])
    seen = np.stack(recorder.images)
    assert seen.min() >= -1 and seen.max() <= 1
    assert result.images.dtype == np.float32
    # with this step size the optimum is pushed against the bounds: they are reached, not crossed
    assert np.mean(np.abs(result.images) == 1) > 0.5
    (param,) = [p for replicas in opt._programs.values() for p in replicas.programs]
    assert float(tf.reduce_min(param.param.pixels)) >= -1 and float(tf.reduce_max(param.param.pixels)) <= 1


def test_same_seed_same_result_and_other_seed_differs(demo_model):
    energy = ActivationMaximization("conv_2", [3, 5]) + TotalVariation()
    opt = Optimizer(demo_model, energy)
    a = opt.minimize(max_iter=15, seed=7, verbose=False)
    b = opt.minimize(max_iter=15, seed=7, verbose=False)
    c = Optimizer(demo_model, energy).minimize(max_iter=15, seed=8, verbose=False)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    assert np.mean(a.images != c.images) > 0.5


def test_batch_of_n_filters_equals_n_separate_runs(demo_model):
    filters = [1, 4, 9]
    seeds = initial_images(3, (32, 32, 3), (0, 255), 11)
    energy = lambda idx: ActivationMaximization("conv_2", idx) + 0.5 * LPNorm() + 2 * TotalVariation()
    batch = Optimizer(demo_model, energy(filters), input_range=(0, 255), parameterization="pixels").minimize(
        seed_input=seeds, max_iter=40, seed=3, verbose=False)
    for k, f in enumerate(filters):
        alone = Optimizer(demo_model, energy([f]), parameterization="pixels").minimize(
            seed_input=seeds[k], max_iter=40, seed=3, verbose=False)
        diff = np.abs(batch.images[k].astype(int) - alone.images[0].astype(int))
        assert diff.mean() < 1.0, (f, diff.mean())
        np.testing.assert_allclose(batch.history["loss"][:, k], alone.history["loss"][:, 0], rtol=1e-3, atol=1e-3)
    # and the filters really produced different images
    assert np.abs(batch.images[0].astype(int) - batch.images[1].astype(int)).mean() > 20


def test_repeated_index_gives_different_images(demo_model):
    images = visualize_activation(demo_model, "predictions", [2, 2, 2], max_iter=20, seed=0, parameterization="pixels")
    assert images.shape == (3, 32, 32, 3)
    assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 10
    assert np.abs(images[1].astype(int) - images[2].astype(int)).mean() > 10


def _oriented_kernel(horizontal: bool, size=5):
    rows = np.cos(np.pi * np.arange(size))  # +1 -1 +1 ... : stripes one pixel apart
    rows -= rows.mean()  # zero mean, so that a flat image is not an optimum
    kernel = np.repeat(rows[:, None], size, axis=1)
    return kernel if horizontal else kernel.T


def _stripe_energy(image):
    """(energy of stripes varying along y, along x): spectral power on each frequency axis."""
    spectrum = np.abs(np.fft.fft2(image - image.mean())) ** 2
    return spectrum[1:, 0].sum(), spectrum[0, 1:].sum()


def test_planted_oriented_filters_are_recovered():
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(2, 5, padding="valid", activation="relu", name="planted")
    model = keras.Sequential([keras.Input((24, 24, 1)), conv])
    kernel = np.zeros((5, 5, 1, 2), np.float32)
    kernel[..., 0, 0] = _oriented_kernel(horizontal=True)
    kernel[..., 0, 1] = _oriented_kernel(horizontal=False)
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    images = visualize_activation(model, "planted", [0, 1], input_range=(0, 1), max_iter=60, seed=0, parameterization="pixels",
                                  lp_norm_weight=0, tv_weight=0)
    along_y, along_x = _stripe_energy(images[0, ..., 0])
    assert along_y > 10 * along_x  # filter 0 (horizontal stripes) varies along y
    along_y, along_x = _stripe_energy(images[1, ..., 0])
    assert along_x > 10 * along_y
    # and the stripes have the planted period (2 px): most power lies near the Nyquist frequency
    for image, axis in ((images[0, ..., 0], 0), (images[1, ..., 0], 1)):
        power = np.abs(np.fft.fft2(image - image.mean())) ** 2
        frequency = np.abs(np.fft.fftfreq(24))
        near_nyquist = (frequency >= 0.4)[:, None] if axis == 0 else (frequency >= 0.4)[None, :]
        assert (power * near_nyquist).sum() > 0.5 * power.sum()


def test_nested_base_model_inner_layer_is_reachable():
    keras.utils.set_random_seed(1)
    base = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(6, 3, name="inner")],
                            name="base")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))
    result = Optimizer(model, ActivationMaximization("inner", [2]), input_range=(0, 1), parameterization="pixels").minimize(
        max_iter=30, seed=0, verbose=False)
    reference = keras.Model(base.inputs[0], base.get_layer("inner").output)
    start = initial_images(1, (16, 16, 3), (0, 1), 0)
    before = float(np.mean(reference(start)[..., 2]))
    after = float(np.mean(reference(result.images)[..., 2]))
    assert after > before + 0.1
    np.testing.assert_allclose(-result.history["activation_maximization"][0, 0], before, rtol=0.2, atol=0.05)


def test_nested_functional_output_layer_by_object_and_index():
    keras.utils.set_random_seed(2)
    inner_in = keras.Input((12, 12, 1))
    inner = keras.Model(inner_in, keras.layers.Conv2D(3, 3, name="deep")(inner_in), name="inner_fn")
    model = keras.Sequential([keras.Input((12, 12, 1)), inner, keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="sigmoid", name="scores")])
    for layer in (inner.get_layer("deep"), -1):
        result = Optimizer(model, ActivationMaximization(layer, [1]), input_range=(0, 1),
                           parameterization="pixels").minimize(
            max_iter=25, seed=0, verbose=False)
        am = result.history["activation_maximization"][:, 0]
        assert am[-1] < am[0] - 0.05


def test_channels_first_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((3, 12, 20))
    x = keras.layers.Conv2D(5, 3, data_format="channels_first", name="cf")(inputs)
    model = keras.Model(inputs, x)
    opt = Optimizer(model, ActivationMaximization("cf", [4]) + 0.1 * TotalVariation(), input_range=(0, 1),
                    parameterization="pixels")
    assert opt.data_format == "channels_first"
    result = opt.minimize(max_iter=25, seed=0, verbose=False)
    assert result.images.shape == (1, 12, 20, 3)  # returned channels-last, non-square kept
    channel = np.asarray(model(np.moveaxis(result.images, -1, 1)))[:, 4].mean()
    start = np.asarray(model(np.moveaxis(initial_images(1, (12, 20, 3), (0, 1), 0), -1, 1)))[:, 4].mean()
    assert channel > start + 0.1
    # a seed is taken in the model's layout
    seeded = opt.minimize(seed_input=np.full((3, 12, 20), 0.5, np.float32), max_iter=2, seed=0, verbose=False)
    assert seeded.images.shape == (1, 12, 20, 3)


@pytest.mark.parametrize("kind", ["conv1d", "conv3d", "dense"])
def test_other_input_ranks_optimize(kind):
    keras.utils.set_random_seed(4)
    if kind == "conv1d":
        model = keras.Sequential([keras.Input((40, 2)), keras.layers.Conv1D(3, 5, name="target")])
    elif kind == "conv3d":
        model = keras.Sequential([keras.Input((6, 6, 6, 1)), keras.layers.Conv3D(3, 3, name="target")])
    else:
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, name="target")])
    result = Optimizer(model, ActivationMaximization("target", [1, 2]), input_range=(-1, 1)).minimize(
        max_iter=20, seed=0, verbose=False)
    am = result.history["activation_maximization"]
    assert np.all(am[-1] < am[0] - 0.05)
    assert result.images.shape == (2,) + tuple(model.inputs[0].shape[1:])


def test_grayscale_non_square_and_any_channel_count():
    for shape in [(20, 36, 1), (16, 24, 5)]:
        model = small_conv_model(shape, seed=5)
        images = visualize_activation(model, "conv_b", [0, 3], input_range=(0, 1), max_iter=10, seed=0)
        assert images.shape == (2,) + shape and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1


def test_fourier_parameterization_raises_the_score(demo_model):
    classes = [1, 3]
    result = Optimizer(demo_model, ActivationMaximization("predictions", classes), parameterization="fourier") \
        .minimize(max_iter=60, seed=0, verbose=False)
    am = result.history["activation_maximization"]
    assert np.all(am[-1] < 0.25 * am[0])
    assert 0 <= result.images.min() and result.images.max() <= 255
    predicted = demo_model.predict(result.images.astype(np.float32), verbose=0).argmax(axis=1)
    assert list(predicted) == classes


def test_fourier_seed_round_trip(demo_model, test_images):
    x, _ = test_images
    opt = Optimizer(demo_model, ActivationMaximization("predictions", 0), parameterization="fourier")
    result = opt.minimize(seed_input=x[:2], max_iter=1, seed=0, verbose=False, learning_rate=1e-9)
    # one negligible step from a seed reproduces it, up to the 0.1% clipping of the sigmoid
    assert np.abs(result.images.astype(int) - np.clip(x[:2], 0.255, 254.7).round()).max() <= 2


def test_keep_best_tracks_the_lowest_energy_iterate(demo_model):
    result = Optimizer(demo_model, ActivationMaximization("predictions", [0, 2]) + TotalVariation()).minimize(
        max_iter=20, seed=0, verbose=False, keep_best=True, jitter=4)
    np.testing.assert_allclose(result.best_loss, result.history["loss"].min(axis=0), rtol=1e-6)
    assert result.best_images.shape == result.images.shape and result.best_images.dtype == np.uint8


class ExplodesAfter(Term):
    name = "explodes"

    def __init__(self, step):
        super().__init__()
        self.after = step
        self.calls = tf.Variable(0)

    def bind(self, layers, spec):
        def fn(inputs):
            self.calls.assign_add(1)
            return tf.where(self.calls > self.after, np.nan, 0.0) * tf.ones(tf.shape(inputs.image)[:1])
        return fn


def test_nonfinite_energy_raises_by_default(demo_model):
    opt = Optimizer(demo_model, ActivationMaximization("predictions", 0) + ExplodesAfter(5))
    with pytest.raises(FloatingPointError, match=r"step 5.*'explodes'"):
        opt.minimize(max_iter=20, seed=0, verbose=False)


def test_nonfinite_energy_warns_and_returns_last_finite_iterate(demo_model):
    opt = Optimizer(demo_model, ActivationMaximization("predictions", 0) + ExplodesAfter(5))
    recorder = Recorder()
    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = opt.minimize(max_iter=20, seed=0, verbose=False, on_nonfinite="warn", callbacks=[recorder])
    assert result.steps == 5 and len(result.history["loss"]) == 5
    assert np.all(np.isfinite(result.images.astype(np.float32)))
    assert recorder.ended is result


def test_callbacks_see_every_step_with_display_images(demo_model):
    recorder = Recorder()
    result = Optimizer(demo_model, ActivationMaximization("predictions", [0, 1])).minimize(
        max_iter=12, seed=0, verbose=False, callbacks=[recorder])
    assert recorder.begun == (12, 2)
    assert recorder.steps == list(range(12))
    assert all(img.dtype == np.uint8 and img.shape == (2, 32, 32, 3) for img in recorder.images)
    assert np.any(recorder.images[0] != recorder.images[-1])
    assert recorder.ended is result


def test_max_iter_env_cap(demo_model, monkeypatch):
    monkeypatch.setenv("VISOPT_MAX_ITER", "4")
    result = Optimizer(demo_model, ActivationMaximization("predictions", 0)).minimize(max_iter=100, verbose=False)
    assert result.steps == 4


def test_result_unpacks_like_keras_vis_with_gradients(demo_model):
    images, grads = Optimizer(demo_model, ActivationMaximization("predictions", [3])).minimize(
        max_iter=5, seed=0, verbose=False)
    assert grads.shape == (1, 32, 32, 3) and np.all(np.isfinite(grads)) and np.abs(grads).max() > 0
    # the gradient of -logit: a small step against it raises the logit
    x = images.astype(np.float32)
    step = -grads / np.abs(grads).max()
    assert logits_of(demo_model, x + step)[0, 3] > logits_of(demo_model, x)[0, 3]


def test_progress_bar_runs(demo_model, capsys):
    Optimizer(demo_model, ActivationMaximization("predictions", 0)).minimize(max_iter=3, seed=0, verbose=True)
    assert "visopt" in capsys.readouterr().err


def test_no_warning_from_autograph(demo_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Optimizer(demo_model, ActivationMaximization("predictions", 0), parameterization="fourier").minimize(
            max_iter=2, seed=0, verbose=False)


def _dead_unit_model():
    """ReLU units off at mid-grey: unit 0 turns on only when sum(x) > 3 (grey gives 2); "out" reads unit 0."""
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(2, activation="relu", name="hidden",
                                kernel_initializer=keras.initializers.Constant([[0.5, -0.5]] * 4),
                                bias_initializer=keras.initializers.Constant([-1.5, 0.0]))(inputs)
    outputs = keras.layers.Dense(1, name="out", kernel_initializer=keras.initializers.Constant([[1.0], [0.0]]))(hidden)
    return keras.Model(inputs, outputs)


def test_redirected_relu_gradient_wakes_a_dead_unit():
    model = _dead_unit_model()
    energy = ActivationMaximization("out", 0)
    start = np.full((1, 4), 0.5, np.float32)
    plain = Optimizer(model, energy, input_range=(0, 1)).minimize(start, max_iter=60, seed=0, jitter=0, verbose=False)
    assert np.allclose(plain.images, start)  # no gradient reaches the input: the image never moves
    woken = Optimizer(model, energy, input_range=(0, 1), relu_gradient="redirected").minimize(
        start, max_iter=60, seed=0, jitter=0, verbose=False)
    assert float(model(woken.images)[0, 0]) > 0.2  # the unit turned on, and then the true gradient took over


def test_redirected_gradient_equals_the_true_one_while_a_unit_is_on():
    model = _dead_unit_model()
    features = build_feature_model(model, [LayerRequest("hidden")], relu_gradient="redirected")
    plain = build_feature_model(model, [LayerRequest("hidden")])
    x = tf.constant(np.random.default_rng(0).uniform(0.8, 1, (3, 4)).astype(np.float32))  # unit 0 is on
    gradients = []
    for feature_model in (features, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.reduce_sum(feature_model(x) * [1.0, -1.0])
        gradients.append(tape.gradient(out, x).numpy())
    np.testing.assert_allclose(gradients[0], gradients[1])
    with pytest.raises(ValueError, match=r"unknown relu_gradient 'guided'; valid: \['redirected'\] or None"):
        Optimizer(model, ActivationMaximization("out", 0), relu_gradient="guided")
