"""Neuron, Direction, ChannelInterpolation, Diversity and Texture: exact values and what they achieve."""

import keras
import numpy as np
import pytest
from conftest import small_conv_model

from visopt import (ActivationMaximization, ChannelInterpolation, Direction, Diversity, Neuron, Optimizer, Texture,
                    TotalVariation)
from visopt.demo import make_dataset


def _feature(model, layer, images):
    return np.asarray(keras.Model(model.inputs[0], model.get_layer(layer).output)(np.asarray(images, np.float32)))


def _first_energy(model, term, seed_input, name):
    result = Optimizer(model, term, transforms=[], input_range=(0, 1), parameterization="pixels").minimize(
        seed_input=seed_input, max_iter=1, jitter=0, seed=0, verbose=False)
    return result.history[name][0]


def test_neuron_reads_one_position_and_raises_it():
    model = small_conv_model((16, 16, 3), seed=4)
    start = np.random.default_rng(0).uniform(0.3, 0.7, (1, 16, 16, 3)).astype(np.float32)
    before = _feature(model, "conv_b", start)
    assert np.allclose(_first_energy(model, Neuron("conv_b", 2, position=(3, 11)), start, "neuron"),
                       -before[0, 3, 11, 2], atol=1e-5)
    result = Optimizer(model, Neuron("conv_b", 2, position=(3, 11)), input_range=(0, 1),
                       parameterization="pixels").minimize(
        max_iter=80, seed=0, verbose=False)
    after = _feature(model, "conv_b", result.images)[0, :, :, 2]
    assert after[3, 11] > before[0, 3, 11, 2] + 0.5
    assert after[3, 11] > np.median(after) + 0.5  # that position, not the whole map
    with pytest.raises(ValueError, match=r"position \(20, 1\) is outside the spatial shape \(16, 16\)"):
        Optimizer(model, Neuron("conv_b", 0, position=(20, 1)))


def test_direction_along_a_channel_is_activation_maximization_and_rises():
    model = small_conv_model((16, 16, 3), seed=5)
    start = np.random.default_rng(1).uniform(0.3, 0.7, (2, 16, 16, 3)).astype(np.float32)
    unit = np.eye(4, dtype=np.float32)[1] * 3.0  # scale does not matter: the vector is normalised
    direction = _first_energy(model, Direction("conv_b", unit), start, "direction")
    channel = _first_energy(model, ActivationMaximization("conv_b", [1, 1], score="activation"), start,
                            "activation_maximization")
    np.testing.assert_allclose(direction, channel, rtol=1e-5)
    vector = np.array([1.0, -1.0, 0.5, 0.0], np.float32)
    result = Optimizer(model, Direction("conv_b", vector), input_range=(0, 1), parameterization="pixels").minimize(
        max_iter=60, seed=0, verbose=False)
    projection = lambda x: float((_feature(model, "conv_b", x) @ (vector / np.linalg.norm(vector))).mean())  # noqa
    assert projection(result.images.astype(np.float32)) > projection(start[:1]) + 0.5
    with pytest.raises(ValueError, match="vector has 3 entries; layer 'conv_b' has 4 channels"):
        Optimizer(model, Direction("conv_b", [1.0, 0.0, 0.0]))


def test_channel_interpolation_goes_from_a_to_b():
    model = small_conv_model((16, 16, 3), seed=6)
    start = np.random.default_rng(2).uniform(0.3, 0.7, (5, 16, 16, 3)).astype(np.float32)
    energy = _first_energy(model, ChannelInterpolation("conv_b", 0, 3, images=5), start, "channel_interpolation")
    means = _feature(model, "conv_b", start).mean(axis=(1, 2))
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose(energy, -((1 - t) * means[:, 0] + t * means[:, 3]), rtol=1e-5, atol=1e-6)
    result = Optimizer(model, ChannelInterpolation("conv_b", 0, 3, images=5), input_range=(0, 1),
                       parameterization="pixels").minimize(
        max_iter=60, seed=0, verbose=False)
    after = _feature(model, "conv_b", result.images).mean(axis=(1, 2))
    lead = after[:, 0] - after[:, 3]
    assert lead[0] > lead[-1] + 0.2  # the first image favours channel 0, the last channel 3


def test_diversity_makes_repeated_units_differ(demo_model):
    def covariance_similarity(images):
        features = _feature(demo_model, "conv_2", images).reshape(len(images), -1, 32)
        features = features - features.mean(axis=1, keepdims=True)
        flat = np.einsum("bpc,bpd->bcd", features, features).reshape(len(images), -1)
        flat /= np.linalg.norm(flat, axis=1, keepdims=True)
        return float((flat @ flat.T)[np.triu_indices(len(images), 1)].mean())

    plain = ActivationMaximization("conv_3", [5, 5, 5]) + 0.5 * TotalVariation()
    same = Optimizer(demo_model, plain).minimize(max_iter=100, seed=0, verbose=False).images
    diverse = Optimizer(demo_model, plain + 2.0 * Diversity("conv_2")).minimize(max_iter=100, seed=0,
                                                                                verbose=False).images
    assert covariance_similarity(diverse) < covariance_similarity(same) - 0.1  # three different styles
    unit = lambda images: _feature(demo_model, "conv_3", images)[..., 5].mean(axis=(1, 2))  # noqa: E731
    grey = np.full((1, 32, 32, 3), 127.5, np.float32)
    # that still excite unit 5, at least 30% as much as without the diversity term (its price)
    assert np.all(unit(diverse) > unit(grey) + 0.3 * (unit(same).mean() - unit(grey)))


def test_texture_synthesis_reproduces_the_targets_class(demo_model, judge_model):
    x, y = make_dataset(8, seed=21)
    target = x[np.flatnonzero(y == 0)[0]]  # horizontal stripes
    texture = Texture(demo_model, ["conv_1", "conv_2"], target)
    result = Optimizer(demo_model, texture).minimize(max_iter=150, seed=0, verbose=False)
    loss = result.history["texture"][:, 0]
    assert loss[-10:].mean() < 0.3 * loss[:10].mean()
    assert judge_model.predict(result.images.astype(np.float32), verbose=0).argmax(axis=1)[0] == 0
    with pytest.raises(ValueError, match=r"the target image has shape \(16, 16, 3\)"):
        Texture(demo_model, "conv_1", np.zeros((16, 16, 3)))
