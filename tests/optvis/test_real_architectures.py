"""keras.applications bases (weights=None) under a new head: class images move and are never flat.

Slow (marked): each base is built at 64x64 and optimized for a few steps. Random weights cannot
judge a picture, so what is checked is what can go wrong with any architecture: the images stay
finite and none comes out flat (mid-grey); and where the untrained base passes any signal to the
head, the class's score rises. (An untrained VGG16 does not: its activations vanish on the way
down, every logit is 0 and the log-odds sits at log(4) whatever the image.)
"""

import keras
import numpy as np
import pytest

from visopt import ActivationMaximization, Optimizer, TotalVariation

BASES = ["VGG16", "ResNet50V2", "MobileNetV2", "EfficientNetB0", "ConvNeXtTiny"]


def _classifier(base_name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    base = getattr(keras.applications, base_name)(weights=None, include_top=False, input_shape=(64, 64, 3),
                                                  pooling="avg")
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Dense(5, activation="softmax", name="predictions")(base(inputs))
    return keras.Model(inputs, outputs, name=f"{base_name.lower()}_head")


@pytest.mark.slow
@pytest.mark.parametrize("base_name", BASES)
def test_class_images_of_applications_bases_rise_and_are_not_flat(base_name):
    model = _classifier(base_name)
    energy = ActivationMaximization("predictions", [1, 3]) + 2 * TotalVariation()  # visualize_activation's, Fourier
    result = Optimizer(model, energy).minimize(max_iter=25, seed=0, verbose=False)
    score = result.history["activation_maximization"]
    if np.ptp(score) > 1e-3:  # the image reaches the logits
        assert np.all(score[-3:].mean(axis=0) < score[:3].mean(axis=0))  # the log-odds of both classes rose
    images = result.images.astype(np.float32)
    assert np.all(np.isfinite(images))
    assert images.reshape(2, -1).std(axis=1).min() > 0.02 * 255  # no flat (grey) picture
