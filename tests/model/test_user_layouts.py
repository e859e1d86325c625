"""The layouts users build: preprocessing before a nested base, mixed precision, residual heads, tabular inputs."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from visopt import (ActivationMaximization, Optimizer, TotalVariation, visualize_activation, visualize_cam,
                    visualize_saliency)
from visopt.model import LayerInput, find_penultimate_layer


def base_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="b_conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="b_conv2")(x)
    return keras.Model(inputs, x, name="base")


def transfer_model(kind: str):
    """The Keras transfer-learning guide's layout: preprocessing, then ``base(x, training=False)``, then a head."""
    keras.utils.set_random_seed(0)
    base = base_model()
    if kind == "sequential":
        return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255.0), base,
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="predictions")])
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="predictions")(x))


def images(count=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, 16, 16, 3)).astype("float32")


def hand_gradcam(feature_model, head, x, classes):
    """Grad-CAM written out: maps of ``feature_model(x)`` weighted by the mean gradient of the class logit."""
    maps = tf.Variable(feature_model(x))
    with tf.GradientTape() as tape:
        scores = tf.reduce_sum(head(maps) * tf.one_hot(classes, 3), axis=1)
    weights = tf.reduce_mean(tape.gradient(scores, maps), axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", maps.numpy(), weights.numpy()), 0)


def upsampled(maps, size=16):
    return tf.image.resize(maps[..., None], (size, size), method="bilinear").numpy()[..., 0]


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_a_nested_base_after_preprocessing_gives_cams_activations_and_guided_maps(kind):
    model = transfer_model(kind)
    base = model.get_layer("base")
    assert find_penultimate_layer(model, "predictions").name == "b_conv2"

    x, classes = images(), [0, 1, 2]
    cams = visualize_cam(model, "predictions", classes, x, normalize=None)
    features = keras.Sequential([model.layers[0] if kind == "sequential" else model.layers[1], base])
    head = keras.Sequential([keras.Input((12, 12, 6))] + [layer for layer in model.layers[-2:]])
    np.testing.assert_allclose(cams, upsampled(hand_gradcam(features, head, x, classes)), atol=1e-5)

    result = Optimizer(model, ActivationMaximization("b_conv1", [0, 1, 2, 3])).minimize(
        max_iter=30, seed=0, verbose=False)
    score = result.history["activation_maximization"]
    assert np.all(score[-1] < score[0])  # the energy (minus the filter's mean activation) falls

    guided = visualize_saliency(model, "predictions", classes, x, method="guided")
    vanilla = visualize_saliency(model, "predictions", classes, x)
    assert np.all(np.isfinite(guided)) and np.abs(guided - vanilla).max() > 0.05


def test_keras_vis_backprop_modifier_names_the_method():
    model, x = transfer_model("functional"), images(2)
    np.testing.assert_array_equal(visualize_saliency(model, "predictions", [0, 1], x, backprop_modifier="guided"),
                                  visualize_saliency(model, "predictions", [0, 1], x, method="guided"))
    with pytest.raises(ValueError, match=r"unknown backprop_modifier 'magic'; valid: \['deconvnet', 'guided', 'relu'\]"):
        visualize_saliency(model, "predictions", [0, 1], x, backprop_modifier="magic")


# -- residual heads and pooled maps -----------------------------------------------------------------
def test_the_automatic_gradcam_of_a_residual_block_ending_in_x_plus_y_is_the_hand_gradcam_of_that_map():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    y = keras.layers.Conv2D(8, 3, padding="same", name="branch")(x)
    z = x + y  # a Keras op: no layer outputs this map
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(z)
    model = keras.Model(inputs, keras.layers.Dense(3, name="predictions")(pooled))

    assert find_penultimate_layer(model, "predictions") == LayerInput(model.get_layer("gap"))
    x_, classes = images(), [2, 0, 1]
    cams = visualize_cam(model, "predictions", classes, x_, normalize=None)
    head = keras.Sequential([keras.Input((8, 8, 8)), model.get_layer("gap"), model.get_layer("predictions")])
    hand = hand_gradcam(keras.Model(inputs, z), head, x_, classes)
    np.testing.assert_allclose(cams, upsampled(hand), atol=1e-5)
    # the same map named by hand, and the branch (what the old rule picked) is a different map
    np.testing.assert_allclose(visualize_cam(model, "predictions", classes, x_, normalize=None,
                                             penultimate_layer="gap:input"), cams, atol=1e-6)
    branch = visualize_cam(model, "predictions", classes, x_, normalize=None, penultimate_layer="branch")
    assert np.abs(branch - cams).max() > 1e-3


def test_gradcam_looks_through_spatial_pooling_to_the_last_conv():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="block5_conv3")(inputs)
    x = keras.layers.MaxPooling2D(name="block5_pool")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    assert find_penultimate_layer(model, -1).name == "block5_conv3"


# -- mixed precision --------------------------------------------------------------------------------
def built_twice(build, policy: str):
    """``build()`` under the precision ``policy``, and again in float32 with the same weights."""
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        mixed = build()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    plain = build()
    plain.set_weights(mixed.get_weights())
    return mixed, plain


@pytest.fixture
def mixed_and_float_models():
    """The same weights twice: under ``mixed_bfloat16`` (a float32 softmax head) and in float32."""
    def build():
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inputs)
        x = keras.layers.Conv2D(8, 3, activation="relu", name="c2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32",
                                                      name="predictions")(x))

    mixed, plain = built_twice(build, "mixed_bfloat16")
    assert mixed.get_layer("c1").compute_dtype == "bfloat16"
    return mixed, plain


ENTRY_POINTS = {
    "activation (class)": lambda m, x: visualize_activation(m, "predictions", [0, 1], max_iter=20, seed=0),
    "activation (filter)": lambda m, x: visualize_activation(m, "c2", [0, 1], max_iter=20, seed=0),
    "vanilla": lambda m, x: visualize_saliency(m, "predictions", [0, 1], x),
    "gradient_x_input": lambda m, x: visualize_saliency(m, "predictions", [0, 1], x, method="gradient_x_input"),
    "guided": lambda m, x: visualize_saliency(m, "predictions", [0, 1], x, method="guided"),
    "rectified": lambda m, x: visualize_saliency(m, "predictions", [0, 1], x, method="rectified"),
    "smoothgrad": lambda m, x: visualize_saliency(m, "predictions", [0, 1], x, method="smoothgrad", samples=8,
                                                  seed=0),
    "integrated_gradients": lambda m, x: visualize_saliency(m, "predictions", [0, 1], x,
                                                            method="integrated_gradients", steps=16),
    "gradcam": lambda m, x: visualize_cam(m, "predictions", [0, 1], x),
    "gradcam++": lambda m, x: visualize_cam(m, "predictions", [0, 1], x, method="gradcam++"),
    "scorecam": lambda m, x: visualize_cam(m, "predictions", [0, 1], x, method="scorecam"),
    "layercam": lambda m, x: visualize_cam(m, "predictions", [0, 1], x, method="layercam"),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_runs_under_mixed_bfloat16_and_agrees_with_float32(mixed_and_float_models, entry):
    mixed, plain = mixed_and_float_models
    x = images(2)
    got, want = (np.asarray(ENTRY_POINTS[entry](m, x), np.float32) for m in (mixed, plain))
    assert np.all(np.isfinite(got)) and got.std() > 0
    if entry.startswith("activation"):  # different rounding, different path: the own model still agrees
        return
    correlation = np.corrcoef(got.ravel(), want.ravel())[0, 1]
    assert correlation > 0.9, correlation


# -- tabular inputs ---------------------------------------------------------------------------------
def test_activation_maximization_on_a_tabular_model_finds_each_class():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4, activation="softmax", name="out")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, verbose=0)
    rows = visualize_activation(model, "out", [0, 1, 2, 3], input_range=(-3, 3), max_iter=100, seed=0)
    assert rows.shape == (4, 8) and np.abs(rows).max() <= 3
    assert list(model.predict(rows, verbose=0).argmax(1)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"TotalVariation needs inputs with spatial axes.*shape \(8,\)"):
        Optimizer(model, ActivationMaximization("out", 0) + TotalVariation(), input_range=(-3, 3))


# -- ReLU variants under guided backprop and deconvnet --------------------------------------------
def rectified_model(activation):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation=activation, name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, name="c2")(x)
    x = keras.layers.ReLU(max_value=6.0)(x) if activation == "relu6" else keras.layers.Activation(activation)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="predictions")(x))


@pytest.mark.parametrize("activation", ["relu6", "leaky_relu"])
@pytest.mark.parametrize("method", ["guided", "rectified"])
def test_guided_and_deconvnet_apply_their_rule_to_relu6_and_leaky_relu(activation, method):
    model, x = rectified_model(activation), images(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "keep their normal gradient" warning: the rule applies
        modified = visualize_saliency(model, "predictions", [0, 1], x, method=method)
    vanilla = visualize_saliency(model, "predictions", [0, 1], x)
    assert np.all(np.isfinite(modified)) and np.abs(modified - vanilla).max() > 0.1


def test_guided_on_hard_swish_warns_naming_the_layers_that_keep_their_gradient():
    model, x = rectified_model("hard_swish"), images(2)
    with pytest.warns(RuntimeWarning, match=r"2 layer\(s\) with other activations keep their normal gradient: 'c1'"):
        visualize_saliency(model, "predictions", [0, 1], x, method="guided")


# -- subclassed models ------------------------------------------------------------------------------
class SubclassedNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.c1 = keras.layers.Conv2D(8, 3, activation="relu", name="c1")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(3, name="predictions")

    def call(self, x):
        return self.head(self.pool(self.c1(x)))


def test_a_subclassed_model_gets_output_saliency_and_activation_and_clear_errors_inside():
    keras.utils.set_random_seed(0)
    net, x = SubclassedNet(), images(2)
    with pytest.raises(ValueError, match="call it once on a batch of data"):
        visualize_saliency(net, -1, [0, 1], x)
    net(x)
    maps = visualize_saliency(net, -1, [0, 1], x, normalize=None)
    with tf.GradientTape() as tape:  # the same gradient by hand
        inputs = tf.constant(x)
        tape.watch(inputs)
        score = tf.reduce_sum(net(inputs) * tf.one_hot([0, 1], 3))
    np.testing.assert_allclose(maps, np.abs(tape.gradient(score, inputs).numpy()).max(-1), rtol=1e-4, atol=1e-6)

    result = Optimizer(net, ActivationMaximization(-1, [0, 1, 2]), input_range=(0, 255)).minimize(
        max_iter=30, seed=0, verbose=False)
    energy = result.history["activation_maximization"]
    assert np.all(energy[-1] < energy[0])
    with pytest.raises(ValueError, match="'c1' sits inside the subclassed model"):
        visualize_saliency(net, "c1", [0, 1], x)
    with pytest.raises(ValueError, match="a CAM needs the feature maps inside"):
        visualize_cam(net, -1, [0, 1], x)


# -- token inputs -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_model():
    """Tokens -> Embedding -> Conv1D -> max pool -> softmax: class 1 means token 7 occurs."""
    keras.utils.set_random_seed(0)
    tokens = np.random.default_rng(0).integers(1, 50, (512, 12))
    labels = (tokens == 7).any(axis=1).astype(int)
    inputs = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(50, 8, name="embed")(inputs)
    x = keras.layers.Conv1D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(tokens, labels, epochs=15, verbose=0)
    assert model.evaluate(tokens, labels, verbose=0)[1] > 0.95
    return model


def sentences():
    tokens = np.random.default_rng(5).integers(8, 50, (4, 12))  # no token 7 ...
    tokens[np.arange(4), [2, 4, 6, 9]] = 7  # ... except one, at a known place (inside: a valid conv sees edges less)
    return tokens


@pytest.mark.parametrize("method", ["vanilla", "gradient_x_input", "smoothgrad", "integrated_gradients"])
def test_token_saliency_is_one_value_per_token_and_points_at_the_deciding_token(text_model, method):
    maps = visualize_saliency(text_model, "predictions", 1, sentences(), method=method, seed=0) \
        if method == "smoothgrad" else visualize_saliency(text_model, "predictions", 1, sentences(), method=method)
    assert maps.shape == (4, 12)
    assert list(maps.argmax(axis=1)) == [2, 4, 6, 9]


def test_integrated_gradients_per_token_are_complete_within_5_percent(text_model):
    from visopt import IntegratedGradients

    explainer = IntegratedGradients(text_model, "predictions", embedding_layer="embed")
    tokens = sentences()
    attributions = explainer.attribute(tokens, 1, steps=128)
    vectors = explainer.engine.check_images(tokens)
    selection = explainer.engine.selection(1, len(tokens))
    gap = explainer.engine.scores(vectors, selection).numpy() - explainer.engine.scores(0 * vectors, selection).numpy()
    np.testing.assert_allclose(attributions.sum(axis=(1, 2)), gap, rtol=0.05)
    with pytest.raises(ValueError, match=r"tokens in \[60, 60\]; the embedding 'embed' knows \[0, 49\]"):
        explainer.attribute(np.full((1, 12), 60), 1)


# -- smaller conveniences ---------------------------------------------------------------------------
def test_filter_indices_none_explains_each_images_predicted_class():
    model, x = transfer_model("functional"), images(3)
    predicted = list(model.predict(x, verbose=0).argmax(axis=1))
    np.testing.assert_array_equal(visualize_saliency(model, "predictions", None, x),
                                  visualize_saliency(model, "predictions", predicted, x))
    np.testing.assert_array_equal(visualize_cam(model, "predictions", None, x),
                                  visualize_cam(model, "predictions", predicted, x))


def test_a_model_file_path_works_and_unsafe_files_are_refused(tmp_path):
    model, x = transfer_model("functional"), images(2)
    path = tmp_path / "model.keras"
    model.save(path)
    np.testing.assert_allclose(visualize_cam(str(path), "predictions", [0, 1], x),
                               visualize_cam(model, "predictions", [0, 1], x), atol=1e-6)
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(2)])
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="cannot load the model file .*lambda.keras"):
        visualize_saliency(tmp_path / "lambda.keras", -1, 0, np.zeros((1, 4), np.float32))
    with pytest.raises(FileNotFoundError, match="no model file at"):
        visualize_cam(str(tmp_path / "missing.keras"), "predictions", 0, x)


def test_an_input_range_that_contradicts_the_models_rescaling_warns():
    model = transfer_model("functional")
    with pytest.warns(RuntimeWarning, match=r"input_range=\(0.0, 1.0\) looks wrong.*'rescaling\w*' multiplies inputs by 0.003922"):
        Optimizer(model, ActivationMaximization("predictions", 0), input_range=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Optimizer(model, ActivationMaximization("predictions", 0), input_range=(0, 255))


def test_score_cam_says_why_a_map_is_empty_without_blaming_a_gradient():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dead = keras.layers.Dense(1, name="out", kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(-1.0))
    model = keras.Model(inputs, dead(x))  # a regression head whose score never rises
    with pytest.warns(RuntimeWarning, match="Score-CAM uses no gradient"):
        visualize_cam(model, "out", 0, images(1), method="scorecam")


# -- several inputs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_and_table_model():
    keras.utils.set_random_seed(0)
    image, table = keras.Input((16, 16, 3), name="image"), keras.Input((5,), name="table")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu", name="c")(image))
    t = keras.layers.Dense(4, activation="relu", name="t")(table)
    return keras.Model([image, table], keras.layers.Dense(3, name="predictions")(keras.layers.Concatenate()([x, t])))


def two_inputs(count=2):
    rng = np.random.default_rng(0)
    return [rng.uniform(0, 255, (count, 16, 16, 3)).astype("float32"), rng.normal(size=(count, 5)).astype("float32")]


def test_saliency_of_a_model_with_two_inputs_is_one_map_per_input(image_and_table_model):
    model, x = image_and_table_model, two_inputs()
    maps = visualize_saliency(model, "predictions", [0, 1], x, normalize=None)
    with tf.GradientTape() as tape:
        inputs = [tf.constant(a) for a in x]
        tape.watch(inputs)
        score = tf.reduce_sum(model(inputs) * tf.one_hot([0, 1], 3))
    grads = tape.gradient(score, inputs)
    np.testing.assert_allclose(maps[0], np.abs(grads[0].numpy()).max(-1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps[1], np.abs(grads[1].numpy()), rtol=1e-4, atol=1e-6)
    for method in ("smoothgrad", "guided", "gradient_x_input"):
        shapes = [m.shape for m in visualize_saliency(model, "predictions", [0, 1], x, method=method)]
        assert shapes == [(2, 16, 16), (2, 5)]
    with pytest.raises(ValueError, match=r"has 2 inputs of shapes \[\(16, 16, 3\), \(5,\)\]: give seed_input as a list"):
        visualize_saliency(model, "predictions", [0, 1], x[0])
    with pytest.raises(ValueError, match="use visualize_saliency, which gives one map per input"):
        visualize_cam(model, "predictions", [0, 1], x[0])


def test_integrated_gradients_over_two_inputs_are_complete(image_and_table_model):
    from visopt import IntegratedGradients

    model, x = image_and_table_model, two_inputs()
    explainer = IntegratedGradients(model, "predictions")
    attributions = explainer.attribute(x, [0, 1], steps=128)
    gap = model(x).numpy() - model([np.zeros_like(a) for a in x]).numpy()
    np.testing.assert_allclose(attributions.sum(axis=1), gap[[0, 1], [0, 1]], rtol=0.02)
    parts = explainer.engine.segments.split(attributions)
    assert [p.shape for p in parts] == [(2, 16, 16, 3), (2, 5)]


def test_activation_maximization_over_one_input_with_the_others_given(image_and_table_model):
    model, x = image_and_table_model, two_inputs()
    row = x[1][0]
    result = Optimizer(model, ActivationMaximization("predictions", [0, 1, 2]),
                       fixed_inputs={"table": row}).minimize(max_iter=40, seed=0, verbose=False)
    energy = result.history["activation_maximization"]
    assert result.images.shape == (3, 16, 16, 3) and np.all(energy[-1] < energy[0])
    start = Optimizer(model, ActivationMaximization("predictions", [0, 1, 2]),
                      fixed_inputs={"table": row}).minimize(max_iter=1, seed=0, verbose=False)
    rows = np.repeat(row[None], 3, axis=0)
    before, after = (np.diag(model([r.images.astype("float32"), rows]).numpy()) for r in (start, result))
    assert np.all(after > before)  # each class's logit, with the fixed row as the table input, rose
    by_position = visualize_activation(model, "predictions", [0, 1, 2], fixed_inputs={1: row}, max_iter=20, seed=0)
    by_name = visualize_activation(model, "predictions", [0, 1, 2], fixed_inputs={"table": row}, max_iter=20, seed=0)
    np.testing.assert_array_equal(by_position, by_name)
    with pytest.raises(ValueError, match=r"give fixed_inputs for all but the one to optimize \(free now: \['image', 'table'\]\)"):
        Optimizer(model, ActivationMaximization("predictions", 0), fixed_inputs={})
    with pytest.raises(ValueError, match="fixed_inputs key 'tabel' is not an input"):
        Optimizer(model, ActivationMaximization("predictions", 0), fixed_inputs={"tabel": row})


def test_mixed_float16_gives_the_float32_maps_too():
    def build():
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(3, dtype="float32", name="predictions")(x))

    half, plain = built_twice(build, "mixed_float16")
    assert half.get_layer("c1").compute_dtype == "float16"
    x = images(2)
    for call in (lambda m: visualize_saliency(m, "predictions", [0, 1], x),
                 lambda m: visualize_cam(m, "predictions", [0, 1], x)):
        got, want = call(half), call(plain)
        assert np.all(np.isfinite(got)) and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95
