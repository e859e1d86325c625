"""Metrics that say whether a saliency map can be trusted, and the object data and CNN they are tested on."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage, stats

from visopt.demo import OBJECT_CLASS_NAMES, build_object_model, make_empty_images, make_object_dataset
from visopt.attribution.metrics import (RandomizationResult, deletion_auc, insertion_auc, model_randomization, pointing_game,
                            spearman)


@pytest.fixture(scope="module")
def objects():
    return make_object_dataset(32, seed=777)


def input_gradient(labels):
    """|d logit / d input|, max over channels: the plain gradient map, written here with a tape."""
    def explain(model, images):
        head = model.get_layer("predictions")
        features = keras.Model(model.inputs[0], head.input)
        x = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = features(x) @ head.kernel + head.bias
            chosen = tf.gather(logits, np.asarray(labels)[: len(images)], batch_dims=1)
        return tf.reduce_max(tf.abs(tape.gradient(chosen, x)), axis=-1).numpy()
    return explain


def brightness(model, images):
    """A 'saliency method' that ignores the model."""
    return np.asarray(images).mean(axis=-1)


# ---------------------------------------------------------------------------------------------------
# The object data set and model


def test_dataset_is_deterministic_balanced_and_masks_lie_in_boxes():
    data = make_object_dataset(64, seed=3)
    again = make_object_dataset(64, seed=3)
    assert np.array_equal(data.images, again.images) and np.array_equal(data.boxes, again.boxes)
    assert not np.array_equal(data.images, make_object_dataset(64, seed=4).images)
    assert data.images.dtype == np.float32 and 0 <= data.images.min() and data.images.max() <= 255
    assert np.bincount(data.labels, minlength=4).tolist() == [16, 16, 16, 16]
    sides = data.boxes[:, 2] - data.boxes[:, 0]
    assert set(sides.tolist()) <= {5, 7} and np.array_equal(sides, data.boxes[:, 3] - data.boxes[:, 1])
    for mask, (top, left, bottom, right) in zip(data.masks, data.boxes):
        inside = np.zeros_like(mask)
        inside[top:bottom, left:right] = True
        assert mask.any() and not (mask & ~inside).any()
        # The object touches all four sides of its box, so the box is tight.
        assert mask[top].any() and mask[bottom - 1].any() and mask[:, left].any() and mask[:, right - 1].any()
    # Plus and cross have the same pixel count: the class cannot be read from the object's size.
    counts = data.masks.sum(axis=(1, 2))
    for side in (5, 7):
        plus = counts[(data.labels == 0) & (sides == side)]
        cross = counts[(data.labels == 2) & (sides == side)]
        assert set(plus.tolist()) == set(cross.tolist()) == {2 * side - 1}


def test_object_colour_does_not_tell_the_class():
    data = make_object_dataset(800, seed=5)
    colours = np.array([image[mask].mean(axis=0) for image, mask in zip(data.images, data.masks)])
    assert colours.max(axis=1).min() >= 0.85 * 255 - 1  # bright objects
    # Nearest class-mean colour, fitted on half and scored on the other half: chance level (0.25).
    centroids = np.array([colours[:400][data.labels[:400] == k].mean(axis=0) for k in range(4)])
    guess = np.linalg.norm(colours[400:, None] - centroids[None], axis=-1).argmin(axis=1)
    assert (guess == data.labels[400:]).mean() < 0.35


def test_trained_model_recognizes_shapes_on_a_fresh_seed(object_model):
    fresh = make_object_dataset(512, seed=12345)
    accuracy = (object_model.predict(fresh.images, verbose=0).argmax(axis=1) == fresh.labels).mean()
    assert accuracy >= 0.95
    # Without an object there is no evidence: no class wins (uniform would be 0.25).
    empty = object_model.predict(make_empty_images(64, seed=6), verbose=0)
    assert empty.max(axis=1).mean() < 0.45


@pytest.mark.parametrize("layout", ["sequential", "nested"])
def test_layouts_take_the_trained_weights(object_model, objects, layout):
    other = build_object_model(layout, seed=9)
    assert not np.allclose(other.predict(objects.images, verbose=0), object_model.predict(objects.images, verbose=0))
    other.set_weights(object_model.get_weights())
    np.testing.assert_allclose(other.predict(objects.images, verbose=0),
                               object_model.predict(objects.images, verbose=0), atol=1e-6)
    if layout == "nested":
        assert [layer.name for layer in other.layers] == ["image", "base", "pool_3", "predictions"]
        assert other.get_layer("base").get_layer("conv_3").output.shape[1:3] == (16, 16)


def test_object_model_rejects_an_unknown_layout():
    with pytest.raises(ValueError, match=r"unknown layout 'resnet'; valid: \['functional', 'sequential', 'nested'\]"):
        build_object_model("resnet")


# ---------------------------------------------------------------------------------------------------
# Pointing game


def test_pointing_game_of_the_true_masks_is_one_and_elsewhere_zero(objects):
    masks = objects.masks
    assert pointing_game(masks.astype(np.float32), masks=masks) == 1.0
    assert pointing_game(masks.astype(np.float32), boxes=objects.boxes) == 1.0
    # Peaked at the pixel farthest from the box: every map misses.
    elsewhere = np.zeros(masks.shape)
    for i, (top, left, bottom, right) in enumerate(objects.boxes):
        elsewhere[i, 31 if top < 16 else 0, 31 if left < 16 else 0] = 1.0
    assert pointing_game(elsewhere, boxes=objects.boxes) == 0.0
    assert pointing_game(elsewhere, masks=masks, tolerance=3) == 0.0


def test_tolerance_turns_a_near_miss_into_a_hit():
    boxes = np.array([[10, 10, 15, 15], [10, 10, 15, 15]])
    maps = np.zeros((2, 32, 32))
    maps[0, 10, 15] = 1.0   # one pixel right of the box
    maps[1, 16, 16] = 1.0   # two pixels diagonally off the corner (14, 14): at distance sqrt(8)
    assert pointing_game(maps, boxes=boxes) == 0.0
    rate, hits = pointing_game(maps, boxes=boxes, tolerance=1, return_hits=True)
    assert rate == 0.5 and hits.tolist() == [True, False]
    assert pointing_game(maps, boxes=boxes, tolerance=2.9) == 1.0
    # With a mask, distance is to the nearest object pixel, not to the box.
    plus = np.zeros((1, 32, 32), bool)
    plus[0, 12, 10:15] = plus[0, 10:15, 12] = True
    corner = np.zeros((1, 32, 32))
    corner[0, 10, 10] = 1.0  # inside the box, off the plus, 2 px from its nearest pixels (10, 12), (12, 10)
    assert pointing_game(corner, boxes=boxes[:1]) == 1.0
    assert pointing_game(corner, masks=plus, tolerance=1.9) == 0.0
    assert pointing_game(corner, masks=plus, tolerance=2) == 1.0


def test_constant_and_tied_maps_are_misses():
    whole = np.array([[0, 0, 8, 8]])
    assert pointing_game(np.full((1, 8, 8), 0.5), boxes=whole) == 0.0
    tied = np.zeros((1, 8, 8))
    tied[0, 1, 1] = tied[0, 6, 6] = 1.0  # the object at (1, 1) and somewhere else share the maximum
    assert pointing_game(tied, boxes=np.array([[0, 0, 3, 3]])) == 0.0
    assert pointing_game(tied, boxes=np.array([[0, 0, 8, 8]])) == 1.0


def test_pointing_game_errors():
    maps = np.zeros((2, 8, 8))
    maps[:, 2, 2] = 1
    boxes = np.array([[0, 0, 4, 4], [0, 0, 4, 4]])
    bad = maps.copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match=r"maps has NaN or Inf values in sample\(s\) \[1\]"):
        pointing_game(bad, boxes=boxes)
    with pytest.raises(ValueError, match=r"masks of shape \(2, 8, 9\) do not match maps of shape \(2, 8, 8\)"):
        pointing_game(maps, masks=np.ones((2, 8, 9), bool))
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\) = \(2, 4\).*got boxes of shape \(3, 4\)"):
        pointing_game(maps, boxes=np.zeros((3, 4), int))
    with pytest.raises(ValueError, match="exactly one of boxes= or masks= .got both"):
        pointing_game(maps, boxes=boxes, masks=np.ones((2, 8, 8), bool))
    with pytest.raises(ValueError, match="got neither"):
        pointing_game(maps)
    with pytest.raises(ValueError, match=r"box 1 \(4, 0, 4, 4\) is empty or outside the 8x8 map"):
        pointing_game(maps, boxes=np.array([[0, 0, 4, 4], [4, 0, 4, 4]]))
    with pytest.raises(ValueError, match=r"tolerance must be a finite number of pixels >= 0, got -1"):
        pointing_game(maps, boxes=boxes, tolerance=-1)
    with pytest.raises(ValueError, match=r"masks of sample\(s\) \[0\] are empty"):
        pointing_game(maps, masks=np.stack([np.zeros((8, 8), bool), np.ones((8, 8), bool)]))
    with pytest.raises(ValueError, match=r"maps must have shape \(N, H, W\), got shape \(8, 8\)"):
        pointing_game(maps[0], boxes=boxes[:1])


# ---------------------------------------------------------------------------------------------------
# Deletion and insertion


def linear_probability_model(softmax_layer=True):
    """p(class 0) = 0.1 + 0.8 * (mean pixel): on an image of ones, linear in the number of pixels kept."""
    inputs = keras.Input((4, 4, 1))
    kept = keras.layers.GlobalAveragePooling2D()(inputs)
    p = keras.layers.Rescaling(0.8, offset=0.1)(kept)
    # log-probabilities are logits whose softmax is (p, 1 - p) exactly.
    logits = keras.layers.Lambda(lambda q: keras.ops.log(keras.ops.concatenate([q, 1 - q], axis=-1)))(p)
    outputs = keras.layers.Softmax()(logits) if softmax_layer else logits
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("softmax_layer", [True, False])
@pytest.mark.parametrize("steps", [4, 16, 3])
def test_deletion_auc_of_a_linear_curve_is_its_analytic_area(softmax_layer, steps):
    # The probability falls linearly from 0.9 to 0.1, so the area is 0.5 for any steps (exact for a
    # trapezoid, also with 3 unequal chunks of 16 pixels); logits and a softmax layer agree.
    model = linear_probability_model(softmax_layer)
    images = np.ones((2, 4, 4, 1), np.float32)
    maps = np.random.default_rng(0).uniform(size=(2, 4, 4))
    aucs, curves = deletion_auc(model, images, maps, steps=steps, return_curves=True)
    np.testing.assert_allclose(aucs, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(curves[:, [0, -1]], [[0.9, 0.1], [0.9, 0.1]], atol=1e-6)


def test_a_model_that_returns_nan_is_an_error_not_a_score():
    # log of a negative 'probability': the stub's logits are NaN for images below 0.
    with pytest.raises(FloatingPointError, match=r"returned NaN/Inf for image 0 with 0 of 16 pixels replaced"):
        deletion_auc(linear_probability_model(), -np.ones((2, 4, 4, 1), np.float32), np.zeros((2, 4, 4)), steps=4)


def test_deletion_and_insertion_rank_an_oracle_above_random_maps(object_model, objects):
    rng = np.random.default_rng(0)
    # The object's pixels first; the noise only orders the background.
    oracle = objects.masks + rng.uniform(0, 0.01, objects.masks.shape)
    random_maps = rng.uniform(0, 1, objects.masks.shape)
    deleted = {name: deletion_auc(object_model, objects.images, maps)
               for name, maps in [("oracle", oracle), ("random", random_maps)]}
    inserted = {name: insertion_auc(object_model, objects.images, maps)
                for name, maps in [("oracle", oracle), ("random", random_maps)]}
    for aucs in (*deleted.values(), *inserted.values()):
        assert aucs.shape == (32,) and aucs.min() >= 0 and aucs.max() <= 1
    # Measured: deletion 0.27 (oracle) vs 0.44 (random); insertion 0.97 vs 0.67.
    assert deleted["oracle"].mean() < deleted["random"].mean() - 0.08
    assert inserted["oracle"].mean() > inserted["random"].mean() + 0.15
    # Deleting the object's pixels leaves no evidence: the probability drops to about chance.
    _, curves = deletion_auc(object_model, objects.images, oracle, return_curves=True)
    assert curves[:, 0].mean() > 0.9 and curves[:, 1].mean() < 0.4


def test_curve_ends_are_the_original_and_the_fully_replaced_images(object_model, objects):
    images, maps = objects.images[:6], objects.masks[:6].astype(np.float32)
    probs = object_model.predict(images, verbose=0)
    top = probs.argmax(axis=1)
    _, deletion = deletion_auc(object_model, images, maps, substrate=[255, 0, 0], steps=8, return_curves=True)
    red = object_model.predict(np.broadcast_to(np.float32([255, 0, 0]), images.shape), verbose=0)
    np.testing.assert_allclose(deletion[:, 0], probs.max(axis=1), atol=1e-5)
    np.testing.assert_allclose(deletion[:, -1], red[np.arange(6), top], atol=1e-5)
    _, insertion = insertion_auc(object_model, images, maps, steps=8, return_curves=True)
    np.testing.assert_allclose(insertion[:, -1], probs.max(axis=1), atol=1e-5)
    blurred = ndimage.gaussian_filter(images, sigma=(0, 2, 2, 0), mode="reflect")  # the default at 32 px
    np.testing.assert_allclose(insertion[:, 0], object_model.predict(blurred, verbose=0)[np.arange(6), top],
                               atol=1e-5)


def test_class_index_and_batch_size(object_model, objects):
    images, maps = objects.images[:12], objects.masks[:12] + 0.0
    default = deletion_auc(object_model, images, maps, steps=8)
    predicted = object_model.predict(images, verbose=0).argmax(axis=1)
    np.testing.assert_allclose(deletion_auc(object_model, images, maps, steps=8, class_index=predicted), default)
    # Chunks of 7 perturbed images (the last one short) give the same numbers as one batch.
    np.testing.assert_allclose(deletion_auc(object_model, images, maps, steps=8, batch_size=7), default, atol=1e-6)
    # Another class's probability is scored when asked for: near 0 once the object is back.
    wrong = (predicted + 1) % len(OBJECT_CLASS_NAMES)
    assert insertion_auc(object_model, images, maps, steps=8).mean() > 0.8
    assert insertion_auc(object_model, images, maps, steps=8, class_index=wrong).mean() < 0.2


def test_deletion_and_insertion_errors(object_model, objects):
    images, maps = objects.images[:4], objects.masks[:4] + 0.0
    with pytest.raises(ValueError, match="class_index has 3 entries but there are 4 images"):
        deletion_auc(object_model, images, maps, class_index=[0, 1, 2])
    with pytest.raises(ValueError, match=r"class_index 4 is out of range: the model has 4 classes \(valid 0..3\)"):
        insertion_auc(object_model, images, maps, class_index=4)
    with pytest.raises(ValueError, match=r"maps of shape \(4, 16, 16\) do not match images of shape \(4, 32, 32, 3\)"):
        deletion_auc(object_model, images, maps[:, :16, :16])
    nan_maps = maps.copy()
    nan_maps[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"maps has NaN or Inf values in sample\(s\) \[2\]"):
        insertion_auc(object_model, images, nan_maps)
    with pytest.raises(ValueError, match=r"images of shape \(4, 32, 32, 1\) do not fit model .*expected \(N, 32, 32, 3\)"):
        deletion_auc(object_model, images[..., :1], maps)
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, 1024\], got 2000"):
        deletion_auc(object_model, images, maps, steps=2000)
    with pytest.raises(ValueError, match=r"substrate of shape \(2,\) does not broadcast"):
        deletion_auc(object_model, images, maps, substrate=[0, 0])
    with pytest.raises(ValueError, match="blur_sigma must be a number of pixels > 0"):
        insertion_auc(object_model, images, maps, blur_sigma=0)


# ---------------------------------------------------------------------------------------------------
# Spearman and model randomization


def test_spearman_values():
    a = np.array([[1.0, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [3, 1, 2, 2]])
    b = np.array([[10.0, 20, 30, 1e6], [4, 3, 2, 1], [2, 1, 4, 3], [1, 2, 2, 0]])
    expected = [stats.spearmanr(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(spearman(a, b), expected)
    np.testing.assert_allclose(spearman(a[:2], b[:2]), [1.0, -1.0])
    with pytest.warns(RuntimeWarning, match=r"constant map\(s\) in sample\(s\) \[1\]"):
        assert spearman(a[:2], np.array([[1.0, 2, 3, 4], [5, 5, 5, 5]])).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"same shape.*\(2, 4\) and \(2, 3\)"):
        spearman(a[:2], b[:2, :3])


def test_model_independent_maps_fail_the_randomization_check(object_model, objects):
    result = model_randomization(object_model, brightness, objects.images[:8])
    assert isinstance(result, RandomizationResult)
    assert result.layers == ("predictions", "conv_3", "conv_2", "conv_1")
    assert result.correlations.shape == (4, 8) and result.correlations.min() > 0.999
    assert not result.passes(0.5)


def test_gradient_maps_pass_and_the_model_is_untouched(object_model, objects):
    before = [w.copy() for w in object_model.get_weights()]
    seen = []

    def explain(model, images):
        seen.append(model)
        return input_gradient(objects.labels)(model, images)

    result = model_randomization(object_model, explain, objects.images[:16], seed=0)
    # Measured: 1.00, 1.00, 0.72, 0.08 for predictions, conv_3, conv_2, conv_1.
    assert result.mean[0] > 0.9 and result.mean[-1] < 0.5 and result.passes(0.5)
    for old, new in zip(before, object_model.get_weights()):
        assert np.array_equal(old, new)
    # One copy, updated in place, is what explain always gets.
    assert len(seen) == 5 and all(model is seen[0] for model in seen) and seen[0] is not object_model
    np.testing.assert_allclose(result.original_maps, input_gradient(objects.labels)(object_model, objects.images[:16]),
                               rtol=1e-5, atol=1e-9)
    assert "conv_1" in result.summary()


@pytest.mark.parametrize("layout", ["sequential", "nested"])
def test_randomization_works_on_every_layout(object_model, objects, layout):
    model = build_object_model(layout, seed=1)
    model.set_weights(object_model.get_weights())
    explain = input_gradient(objects.labels)
    before = [w.copy() for w in model.get_weights()]
    result = model_randomization(model, explain, objects.images[:16], seed=0)
    # The copy owns its layers, also those of the nested base: the model's weights are untouched.
    assert all(np.array_equal(old, new) for old, new in zip(before, model.get_weights()))
    reference = model_randomization(object_model, explain, objects.images[:16], seed=0)
    # Layers are matched by position, so the same seed gives the same fresh weights in every layout.
    assert result.layers == reference.layers == ("predictions", "conv_3", "conv_2", "conv_1")
    np.testing.assert_allclose(result.correlations, reference.correlations, atol=1e-4)
    assert result.passes(0.5)


def test_passes_reads_the_last_step_in_absolute_value():
    def result(correlations):
        correlations = np.array(correlations)
        return RandomizationResult(layers=("b", "a")[: len(correlations)], correlations=correlations,
                                   original_maps=np.zeros((2, 1)), randomized_maps=np.zeros((2, 1)))

    assert result([[0.9, 0.9], [0.2, 0.4]]).passes(0.5)        # mean 0.3 after the last step
    assert not result([[0.1, 0.1], [0.5, 0.7]]).passes(0.5)    # low at first, not at the end
    assert not result([[0.9, 0.9], [-0.6, -0.8]]).passes(0.5)  # inverted maps still follow the image
    np.testing.assert_allclose(result([[0.9, 0.5], [0.2, 0.4]]).mean, [0.7, 0.3])


def test_randomizing_chosen_layers_only(object_model, objects):
    result = model_randomization(object_model, input_gradient(objects.labels), objects.images[:8],
                                 layers=["conv_1", "predictions"])
    assert result.layers == ("predictions", "conv_1")
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['conv_9', 'pool_1'\].*valid \(output first\): "
                                         r"\['predictions', 'conv_3', 'conv_2', 'conv_1'\]"):
        model_randomization(object_model, brightness, objects.images[:4], layers=["conv_9", "conv_1", "pool_1"])


def test_constant_and_non_finite_maps(object_model, objects):
    images = objects.images[:4]
    original_kernel = object_model.get_layer("predictions").get_weights()[0]

    def flat_once_random(model, x):
        if np.array_equal(model.get_layer("predictions").get_weights()[0], original_kernel):
            return brightness(model, x)
        return np.zeros(x.shape[:3])

    with pytest.warns(RuntimeWarning, match="constant maps on the randomized model.*'predictions': 4"):
        result = model_randomization(object_model, flat_once_random, images)
    assert np.array_equal(result.correlations, np.zeros((4, 4))) and result.passes()

    def flat(model, x):
        return np.ones(x.shape[:3])

    with pytest.raises(ValueError, match=r"constant maps for image\(s\) \[0, 1, 2, 3\] on the original model"):
        model_randomization(object_model, flat, images)

    def nan_after_randomizing(model, x):
        maps = flat_once_random(model, x)
        if not maps.any():
            maps[1, 0, 0] = np.nan
        return maps

    with pytest.raises(ValueError, match=r"NaN or Inf on the model randomized down to 'predictions' for image\(s\) \[1\]"):
        model_randomization(object_model, nan_after_randomizing, images)
    with pytest.raises(TypeError, match="explain must be a function"):
        model_randomization(object_model, "saliency", images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about for ordinary maps
        model_randomization(object_model, brightness, images, layers=["predictions"])
