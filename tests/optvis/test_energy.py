"""The energy algebra: both forms build the same weighted terms, names are unique, bad operands fail."""

import numpy as np
import pytest

from visopt import ActivationMaximization, DeepDream, Energy, LPNorm, Optimizer, TotalVariation


def test_expression_and_keras_vis_list_give_the_same_terms():
    am, lp, tv = ActivationMaximization("conv_a", [1]), LPNorm(), TotalVariation()
    expression = am + 10 * lp + tv * 10
    listed = Energy.coerce([(am, 1), (lp, 10), (tv, 10)])
    assert [(t, w) for t, w in expression.terms] == [(am, 1.0), (lp, 10.0), (tv, 10.0)]
    assert expression.terms == listed.terms


def test_subtraction_negation_and_division_scale_weights():
    am, lp, tv = ActivationMaximization("x", 0), LPNorm(), TotalVariation()
    energy = -am - 0.5 * lp + tv / 4
    assert [w for _, w in energy.terms] == [-1.0, -0.5, 0.25]
    assert [w for _, w in (2 * (am + lp)).terms] == [2.0, 2.0]
    assert sum([am, lp]).terms == (am + lp).terms  # sum() starts from 0


def test_repeated_term_names_are_made_unique():
    energy = ActivationMaximization("a", 0) + ActivationMaximization("b", 1) + LPNorm()
    assert energy.names() == ["activation_maximization", "activation_maximization_2", "lp_norm"]


@pytest.mark.parametrize("bad", ["3", None, [1, 2]])
def test_terms_multiply_by_numbers_only(bad):
    with pytest.raises(TypeError, match="numbers only"):
        LPNorm() * bad


def test_division_by_zero_is_refused():
    with pytest.raises(TypeError, match="non-zero"):
        LPNorm() / 0


def test_energy_list_rejects_non_terms():
    with pytest.raises(TypeError, match="'oops'"):
        Energy.coerce([(LPNorm(), 1), "oops"])


def test_regularizer_parameters_are_checked():
    with pytest.raises(ValueError, match="p=0.5"):
        LPNorm(p=0.5)
    with pytest.raises(ValueError, match="beta=0"):
        TotalVariation(beta=0)
    with pytest.raises(TypeError, match="number 6"):
        LPNorm(6)


def test_history_reports_each_weighted_term_per_image_and_they_sum_to_the_loss(demo_model):
    energy = ActivationMaximization("predictions", [0, 1, 2]) + 0.5 * LPNorm() + 2 * TotalVariation()
    result = Optimizer(demo_model, energy).minimize(max_iter=10, seed=0, verbose=False)
    names = ["activation_maximization", "lp_norm", "total_variation"]
    assert set(result.history) == set(names) | {"loss"}
    for name in names:
        assert result.history[name].shape == (10, 3)
    total = sum(result.history[name] for name in names)
    np.testing.assert_allclose(total, result.history["loss"], rtol=1e-5, atol=1e-5)
    assert np.all(result.history["lp_norm"] > 0) and np.all(result.history["total_variation"] > 0)
    # the AM term is the negative logit of each image's class, per image
    assert not np.allclose(result.history["activation_maximization"][:, 0], result.history["activation_maximization"][:, 1])


def test_regularizers_have_documented_values():
    import tensorflow as tf

    from visopt import ImageSpec, TermInputs

    spec = ImageSpec((8, 8, 1), (0.0, 255.0))
    grey = tf.fill((1, 8, 8, 1), 127.5)
    extreme = tf.constant(np.where(np.indices((8, 8)).sum(0) % 2, 255.0, 0.0)[None, ..., None], tf.float32)
    lp = LPNorm().bind([], spec)
    tv = TotalVariation().bind([], spec)
    assert float(lp(TermInputs(grey, []))[0]) == pytest.approx(0.0, abs=1e-3)
    assert float(lp(TermInputs(extreme, []))[0]) == pytest.approx(1.0, abs=1e-3)
    assert float(tv(TermInputs(grey, []))[0]) == pytest.approx(0.0, abs=1e-6)
    # a checkerboard in [-1, 1] changes by 2 along both axes: (2^2 + 2^2) per pixel
    assert float(tv(TermInputs(extreme, []))[0]) == pytest.approx(8.0, rel=1e-4)
    # the same checkerboard at twice the resolution gives the same value (normalised by size)
    big = tf.image.resize(extreme, (16, 16), method="nearest")
    tv16 = TotalVariation().bind([], ImageSpec((16, 16, 1), (0.0, 255.0)))
    assert float(tv16(TermInputs(big, []))[0]) == pytest.approx(4.0, rel=0.1)  # half the pixels change


def test_deep_dream_is_negative_mean_square(demo_model):
    import tensorflow as tf

    from visopt import ImageSpec, TermInputs

    fn = DeepDream("conv_1").bind([demo_model.get_layer("conv_1")], ImageSpec((32, 32, 3), (0.0, 255.0)))
    maps = tf.constant(np.arange(2 * 4 * 4 * 16, dtype=np.float32).reshape(2, 4, 4, 16) / 100)
    np.testing.assert_allclose(fn(TermInputs(None, [maps])).numpy(), -np.mean(maps.numpy() ** 2, axis=(1, 2, 3)),
                               rtol=1e-5)
