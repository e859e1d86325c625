"""Bad input fails before any work, with a message that names the bad value and the valid ones."""

import keras
import numpy as np
import pytest

from conftest import small_conv_model
from visopt import (ActivationMaximization, DeepDream, Jitter, LPNorm, Optimizer, RandomRotate, RandomScale,
                    TotalVariation, visualize_activation)


@pytest.fixture(scope="module")
def model():
    return small_conv_model((16, 16, 3), filters=4)


def test_unknown_layer_name_lists_valid_names(model):
    with pytest.raises(ValueError, match=r"no layer named 'conv_z'.*valid names: \[.*'conv_a', 'conv_b'"):
        Optimizer(model, ActivationMaximization("conv_z", 0))


def test_layer_index_out_of_range_gives_the_count(model):
    count = len(model.layers)
    with pytest.raises(IndexError, match=rf"layer index 42 .* has {count} layers"):
        visualize_activation(model, 42, 0)


def test_layer_of_another_model_is_refused(model):
    other = small_conv_model(name="other")
    with pytest.raises(ValueError, match="is not part of model"):
        Optimizer(model, ActivationMaximization(other.get_layer("conv_a"), 0))


def test_filter_index_beyond_units_gives_the_count(model):
    with pytest.raises(IndexError, match=r"filter index 4 .* 'conv_b', which has 4 filters"):
        Optimizer(model, ActivationMaximization("conv_b", [0, 4]))
    with pytest.raises(IndexError, match=r"filter index 7 .* 'out', which has 3"):
        visualize_activation(model, "out", 7)
    with pytest.raises(IndexError, match="filter index 9"):
        Optimizer(model, DeepDream("conv_a", [9]))


@pytest.mark.parametrize("bad", ["3", [], [1.5], True])
def test_filter_indices_type_is_checked(bad):
    with pytest.raises(TypeError, match="filter_indices"):
        ActivationMaximization("conv_a", bad)


def test_seed_input_of_wrong_shape_gives_the_expected_shape(model):
    opt = Optimizer(model, ActivationMaximization("conv_b", 0))
    with pytest.raises(ValueError, match=r"\(16, 16\).*expected \(16, 16, 3\)"):
        opt.minimize(seed_input=np.zeros((16, 16)), verbose=False)
    with pytest.raises(ValueError, match=r"\(2, 3, 16, 16\)"):
        opt.minimize(seed_input=np.zeros((2, 3, 16, 16)), verbose=False)


def test_seed_input_outside_the_range_is_refused(model):
    opt = Optimizer(model, ActivationMaximization("conv_b", 0), input_range=(0, 1))
    with pytest.raises(ValueError, match=r"span \[0, 255\].*input_range=\(0.0, 1.0\)"):
        opt.minimize(seed_input=np.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3), verbose=False)
    with pytest.raises(ValueError, match="NaN"):
        opt.minimize(seed_input=np.full((16, 16, 3), np.nan), verbose=False)


def test_seed_batch_must_match_the_objectives(model):
    opt = Optimizer(model, ActivationMaximization("conv_b", [0, 1, 2]))
    with pytest.raises(ValueError, match="seed_input holds 2 images but the losses ask for 3"):
        opt.minimize(seed_input=np.zeros((2, 16, 16, 3)), verbose=False)


def test_terms_with_different_batch_sizes(model):
    with pytest.raises(ValueError, match="different batch sizes: 2 and 3"):
        Optimizer(model, ActivationMaximization("conv_a", [0, 1]) + ActivationMaximization("conv_b", [0, 1, 2]))


def test_model_without_input_shape():
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3, name="c")])
    with pytest.raises(ValueError, match="no defined input shape"):
        Optimizer(unbuilt, ActivationMaximization("c", 0))
    inputs = keras.Input((None, None, 3))
    open_size = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c")(inputs))
    with pytest.raises(ValueError, match=r"undefined dimensions"):
        Optimizer(open_size, ActivationMaximization("c", 0))


def test_multi_input_model_is_refused_by_activation_maximization():
    a, b = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([a, b], keras.layers.Dense(2, name="d")(keras.layers.Concatenate()([a, b])))
    with pytest.raises(ValueError, match="has 2 inputs: activation maximization and CAMs work on models with one"):
        Optimizer(model, ActivationMaximization("d", 0))


@pytest.mark.parametrize("kwargs, pattern", [
    ({"input_range": (1, 0)}, r"low < high, got \(1, 0\)"),
    ({"input_range": "0-255"}, "input_range must be a"),
    ({"parameterization": "wavelet"}, r"unknown parameterization 'wavelet'; valid: \['auto', 'pixels', 'fourier'\]"),
    ({"learning_rate": -1}, "learning_rate must be a positive number, got -1"),
    ({"data_format": "NHWC"}, "data_format must be .* got 'NHWC'"),
    ({"transforms": ["jitter"]}, "Transform objects, got 'jitter'"),
])
def test_bad_optimizer_arguments(model, kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        Optimizer(model, ActivationMaximization("conv_b", 0), **kwargs)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"max_iter": 0}, "max_iter must be a positive int, got 0"),
    ({"on_nonfinite": "ignore"}, "on_nonfinite must be 'raise' or 'warn', got 'ignore'"),
    ({"jitter": -3}, "jitter must be .* got -3"),
    ({"callbacks": [print]}, "OptimizerCallback objects"),
    ({"seed_input": np.zeros((16, 16, 3)), "seed_img": np.zeros((16, 16, 3))}, "not both"),
])
def test_bad_minimize_arguments(model, kwargs, pattern):
    opt = Optimizer(model, ActivationMaximization("conv_b", 0))
    with pytest.raises((ValueError, TypeError), match=pattern):
        opt.minimize(verbose=False, **kwargs)


def test_transform_arguments_are_checked():
    with pytest.raises(ValueError, match=r"0 < low <= high, got \(0, 1\)"):
        RandomScale((0, 1))
    with pytest.raises(ValueError, match="low <= high"):
        RandomRotate((10, -10))
    with pytest.raises(ValueError, match="needs 2-D images"):
        Optimizer(keras.Sequential([keras.Input((20, 2)), keras.layers.Conv1D(2, 3, name="c")]),
                  ActivationMaximization("c", 0), transforms=[RandomRotate(5)])
    with pytest.raises(ValueError, match="fourier parameterization needs 2-D images"):
        Optimizer(keras.Sequential([keras.Input((20, 2)), keras.layers.Conv1D(2, 3, name="c")]),
                  ActivationMaximization("c", 0), parameterization="fourier").minimize(verbose=False)
    assert Jitter(0.25).pixels(32) == 8 and Jitter(3).pixels(32) == 3


def test_keras_vis_input_form_needs_layer_objects(model):
    with pytest.raises(TypeError, match="Layer objects"):
        Optimizer(model.input, [(ActivationMaximization("conv_b", 0), 1), (LPNorm(model.input), 1)])


def test_empty_energy_is_refused(model):
    with pytest.raises(ValueError, match="no terms"):
        Optimizer(model, [])
    with pytest.raises(TypeError, match="cannot make an energy of 'loss'"):
        Optimizer(model, "loss")


def test_total_variation_needs_two_pixels():
    model = keras.Sequential([keras.Input((1, 8, 3)), keras.layers.Conv2D(2, 1, name="c")])
    with pytest.raises(ValueError, match="at least 2 pixels"):
        Optimizer(model, ActivationMaximization("c", 0) + TotalVariation())


def test_batch_error_names_the_reported_term(model):
    with pytest.raises(ValueError, match="'activation_maximization_2'"):
        Optimizer(model, ActivationMaximization("conv_a", [0, 1]) + ActivationMaximization("conv_b", [0, 1, 2]))


def test_keras_vis_losses_keyword_is_the_energy(model):
    energy = ActivationMaximization("conv_b", 0)
    assert Optimizer(model, losses=energy).energy.terms == Optimizer(model, energy).energy.terms
    with pytest.raises(TypeError, match="not both"):
        Optimizer(model, energy, losses=energy)
    with pytest.raises(TypeError, match="needs an energy"):
        Optimizer(model)
