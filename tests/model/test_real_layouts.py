"""keras.applications bases (weights=None) in the transfer-learning layout: the CAM map, ReLU6, mixed precision.

Marked slow (building the bases takes seconds each); CI runs them.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from test_user_layouts import hand_gradcam
from visopt import visualize_cam, visualize_saliency
from visopt.model import LayerInput, find_penultimate_layer

pytestmark = pytest.mark.slow

SIZE = 64


def transfer(base_fn, policy=None):
    """Rescaling -> base(training=False) -> global pooling -> a linear head of 3 classes."""
    previous = keras.mixed_precision.global_policy()
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        base = base_fn(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
        inputs = keras.Input((SIZE, SIZE, 3))
        x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
        x = base(x, training=False)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        model = keras.Model(inputs, keras.layers.Dense(3, dtype="float32", name="predictions")(x))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model, base


def images(count=2):
    return np.random.default_rng(0).uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32")


def base_gradcam(model, base, x, classes):
    """Hand Grad-CAM on the base's output (the tensor entering the global pooling), upsampled."""
    features = keras.Sequential([keras.Input((SIZE, SIZE, 3)), model.get_layer("scale"), base])
    head = keras.Sequential([keras.Input(base.output.shape[1:]), model.get_layer("pool"),
                             model.get_layer("predictions")])
    hand = hand_gradcam(features, head, x, classes)
    return tf.image.resize(hand[..., None], (SIZE, SIZE), method="bilinear").numpy()[..., 0]


@pytest.mark.parametrize("base_fn, expected", [
    (keras.applications.ConvNeXtTiny, "layer_normalization"),  # the base ends in a layer: that one
    (keras.applications.ResNet50V2, "post_relu"),
])
def test_the_automatic_cam_is_a_gradcam_of_the_bases_last_feature_map(base_fn, expected):
    model, base = transfer(base_fn)
    assert find_penultimate_layer(model, "predictions").name == expected
    x, classes = images(), [0, 2]
    cams = visualize_cam(model, "predictions", classes, x, normalize=None)
    hand = base_gradcam(model, base, x, classes)
    np.testing.assert_allclose(cams, hand, atol=1e-4 * max(1e-12, float(hand.max())))


def test_vgg16_cams_come_from_the_last_conv_not_the_pool():
    model, _ = transfer(keras.applications.VGG16)
    assert find_penultimate_layer(model, "predictions").name == "block5_conv3"


def test_convnext_pooled_inside_the_base_gives_the_cam_of_its_final_residual_sum():
    """``pooling="avg"``: the base's own pooling follows an ``x + y`` op, which no layer outputs."""
    keras.utils.set_random_seed(0)
    base = keras.applications.ConvNeXtTiny(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3),
                                           pooling="avg")
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="predictions")(base(x, training=False)))
    pool = next(layer for layer in base.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    assert find_penultimate_layer(model, "predictions") == LayerInput(pool)

    x_, classes = images(), [0, 2]
    cams = visualize_cam(model, "predictions", classes, x_, normalize=None)
    residual = keras.Sequential([keras.Input((SIZE, SIZE, 3)), model.get_layer("scale"),
                                 keras.Model(base.input, pool.input)])
    after = base.layers[base.layers.index(pool):]
    head = keras.Sequential([keras.Input(pool.input.shape[1:])] + after + [model.get_layer("predictions")])
    hand = hand_gradcam(residual, head, x_, classes)
    hand = tf.image.resize(hand[..., None], (SIZE, SIZE), method="bilinear").numpy()[..., 0]
    # the same map; float32 sums in another order (LayerNormalization) differ in the 4th digit
    np.testing.assert_allclose(cams, hand, rtol=2e-3, atol=1e-3 * max(1e-12, float(hand.max())))
    other = visualize_cam(model, "predictions", classes, x_, normalize=None,
                          penultimate_layer=base.layers[base.layers.index(pool) - 1])  # the old rule's pick
    assert np.abs(other - cams).max() > 0.05 * cams.max()


def test_guided_backprop_on_mobilenetv2_relu6_differs_from_vanilla():
    model, _ = transfer(keras.applications.MobileNetV2)
    x = images()
    guided = visualize_saliency(model, "predictions", [0, 1], x, method="guided")
    vanilla = visualize_saliency(model, "predictions", [0, 1], x)
    assert np.all(np.isfinite(guided)) and np.abs(guided - vanilla).max() > 0.1


def test_mobilenetv2_under_mixed_bfloat16_gives_the_float32_cams():
    mixed, _ = transfer(keras.applications.MobileNetV2, "mixed_bfloat16")
    plain, _ = transfer(keras.applications.MobileNetV2)
    plain.set_weights(mixed.get_weights())
    x = images()
    got = visualize_cam(mixed, "predictions", [0, 1], x)
    want = visualize_cam(plain, "predictions", [0, 1], x)
    assert np.all(np.isfinite(got)) and got.std() > 0
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9
