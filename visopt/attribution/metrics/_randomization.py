"""Rank correlation and the model-randomization check (Adebayo et al. 2018)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
from scipy import stats

from visopt._checks import check_int
from visopt.attribution.metrics._checks import _check_finite, _first_indices
from visopt.model.layers import weight_layers


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of each pair of flattened maps: ``a``, ``b`` ``(N, ...)`` -> ``(N,)``.

    Ties get average ranks. A constant map has no ranking, so its correlation is undefined: it is
    counted as 0 (no association), with a RuntimeWarning naming the samples, rather than returned
    as NaN.

    Example:
        >>> spearman(np.array([[1, 2, 3]]), np.array([[10, 20, 25]]))
        array([1.])
    """
    rho, constant = _spearman(a, b)
    if constant.any():
        warnings.warn(f"spearman: constant map(s) in sample(s) {_first_indices(constant)}; "
                      "their correlation is undefined and counted as 0", RuntimeWarning, stacklevel=2)
    return rho


def _spearman(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim < 2 or len(a) == 0:
        raise ValueError(f"spearman needs two arrays of the same shape (N, ...) with N >= 1; got shapes "
                         f"{a.shape} and {b.shape}")
    _check_finite(a, "first maps")
    _check_finite(b, "second maps")
    ranks_a = stats.rankdata(a.reshape(len(a), -1), axis=1)
    ranks_b = stats.rankdata(b.reshape(len(b), -1), axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    norm = np.sqrt((ranks_a ** 2).sum(axis=1) * (ranks_b ** 2).sum(axis=1))
    constant = norm == 0
    rho = np.where(constant, 0.0, (ranks_a * ranks_b).sum(axis=1) / np.where(constant, 1.0, norm))
    return np.clip(rho, -1.0, 1.0), constant


@dataclass(frozen=True)
class RandomizationResult:
    """What `model_randomization` measured.

    ``layers``: names in the order they were randomized (output first); ``correlations[l, i]``:
    Spearman correlation between image ``i``'s original map and its map once ``layers[:l + 1]`` are
    all random; ``original_maps`` and ``randomized_maps`` (every chosen layer random).
    """

    layers: tuple
    correlations: np.ndarray
    original_maps: np.ndarray
    randomized_maps: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean correlation over the images after each step ``(L,)``."""
        return self.correlations.mean(axis=1)

    def passes(self, threshold: float = 0.5) -> bool:
        """True when ``|mean correlation|`` after the last step (every chosen layer random) is below
        ``threshold``: the maps depend on the learned weights. The absolute value, because maps that
        turn into their inverse still follow the image, not the model."""
        return bool(abs(self.mean[-1]) < threshold)

    def summary(self) -> str:
        """One line per step: the layer randomized last and the mean correlation after it."""
        width = max(len(name) for name in self.layers)
        return "\n".join(f"{name:<{width}}  {value:+.3f}" for name, value in zip(self.layers, self.mean))


def model_randomization(model: keras.Model, explain: Callable, images, *, layers: Sequence[str] | None = None,
                        seed: int = 0) -> RandomizationResult:
    """Cascading model randomization (Adebayo et al. 2018, "Sanity checks for saliency maps").

    ``explain(model, images)`` is any function that returns maps ``(N, ...)``. It is called on a
    copy of ``model`` (``model`` itself is never changed), then the copy's layers with weights are
    re-initialised one at a time from the output down, cumulatively (all weights of a layer, a
    BatchNormalization's moving statistics included), and the maps are computed
    again after each step and compared with the original ones by Spearman rank correlation, per
    image. ``layers`` restricts the steps to the named layers (still output first). The fresh
    weights come from the layers' own initializers under ``keras.utils.set_random_seed(seed)``
    (which also reseeds Python, NumPy and TensorFlow globally). The copy is updated in place, so
    ``explain`` gets the same model object at every step (its compiled functions stay valid).

    A constant original map makes the check meaningless for that image: ValueError naming it. A map
    that becomes constant on a randomized model has lost all structure and counts as correlation 0
    (one RuntimeWarning says how many).

    Example:
        >>> explain = lambda m, x: visualize_saliency(m, "predictions", list(labels), x)
        >>> result = model_randomization(model, explain, images)
        >>> print(result.summary()); result.passes(0.5)
    """
    images = _check_arguments(model, explain, images, seed)
    weighted = weight_layers(model)
    if not weighted:
        raise ValueError(f"model {model.name!r} has no layers with weights to randomize")
    steps = _chosen_steps(model, weighted, layers)
    work, work_layers, fresh_layers = _copies(model, weighted, seed)
    original = _explained(explain, work, images, "the original model")
    flat = original.reshape(len(original), -1)
    constant = (flat == flat[:, :1]).all(axis=1)
    if constant.any():
        raise ValueError(f"explain returned constant maps for image(s) {_first_indices(constant)} on the original "
                         "model: a rank correlation with them is undefined; leave those images out")
    names = [weighted[i].name for i in steps]
    pairs = [(work_layers[i], fresh_layers[i]) for i in steps]
    correlations, maps = _cascade(explain, work, pairs, images, original, names)
    return RandomizationResult(layers=tuple(names), correlations=np.array(correlations),
                               original_maps=original, randomized_maps=maps)


def _check_arguments(model, explain, images, seed) -> np.ndarray:
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras Model, got {type(model).__name__}")
    if not callable(explain):
        raise TypeError(f"explain must be a function explain(model, images) -> maps, got {explain!r}")
    images = np.asarray(images)
    if images.ndim < 1 or len(images) == 0:
        raise ValueError(f"images must hold at least one image, got shape {images.shape}")
    check_int(seed, "seed", 0)
    return images


def _copies(model, weighted, seed) -> tuple[keras.Model, list, list]:
    """The weighted layers of two clones: one with ``model``'s weights (to randomize step by step),
    one freshly initialised under ``seed`` (where the random weights come from)."""
    work = _clone(model)
    work.set_weights(model.get_weights())
    keras.utils.set_random_seed(seed)
    fresh = _clone(model)
    work_layers, fresh_layers = weight_layers(work), weight_layers(fresh)
    signature = [(layer.name, [tuple(v.shape) for v in layer.weights]) for layer in weighted]
    for other in (work_layers, fresh_layers):
        if [(layer.name, [tuple(v.shape) for v in layer.weights]) for layer in other] != signature:
            raise RuntimeError(f"keras.models.clone_model did not reproduce the layers of model {model.name!r}")
    return work, work_layers, fresh_layers


def _cascade(explain, work, pairs, images, original, names):
    """Give each (work layer, fresh layer) pair's fresh weights to the work copy, one after the other
    (cumulatively), comparing the maps with the original ones after each step."""
    correlations, constant_steps = [], []
    maps = original
    for (layer, fresh), name in zip(pairs, names):
        layer.set_weights(fresh.get_weights())
        maps = _explained(explain, work, images, f"the model randomized down to {name!r}")
        if maps.shape != original.shape:
            raise ValueError(f"explain returned maps of shape {maps.shape} after randomizing {name!r}, "
                             f"but {original.shape} on the original model")
        rho, constant = _spearman(original, maps)
        correlations.append(rho)
        if constant.any():
            constant_steps.append(f"{name!r}: {int(constant.sum())}")
    if constant_steps:
        warnings.warn("explain returned constant maps on the randomized model (image count per step: "
                      f"{', '.join(constant_steps)}); they count as correlation 0", RuntimeWarning, stacklevel=3)
    return correlations, maps


def _chosen_steps(model, weighted, layers) -> list[int]:
    """Positions in ``weighted`` to randomize, output first."""
    top_down = list(range(len(weighted)))[::-1]
    if layers is None:
        return top_down
    if isinstance(layers, str):
        layers = [layers]
    names = list(layers)
    if not names or not all(isinstance(name, str) for name in names):
        raise TypeError(f"layers must be None or a non-empty list of layer names, got {layers!r}")
    valid = [weighted[i].name for i in top_down]
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"unknown layer name(s) {unknown}: not layers with weights in model {model.name!r}; "
                         f"valid (output first): {valid}")
    return [i for i in top_down if weighted[i].name in names]


def _clone(model: keras.Model) -> keras.Model:
    try:
        return keras.models.clone_model(model)
    except Exception as err:  # subclassed models without get_config cannot be cloned
        raise TypeError(f"model_randomization needs a model that keras.models.clone_model can copy "
                        f"(Sequential or Functional); model {model.name!r} ({type(model).__name__}) "
                        f"failed: {err}") from err


def _explained(explain, model, images, where: str) -> np.ndarray:
    maps = np.asarray(explain(model, images))
    if maps.ndim < 2 or len(maps) != len(images):
        raise ValueError(f"explain returned shape {maps.shape} on {where}; expected one map per image: "
                         f"({len(images)}, ...)")
    if not np.issubdtype(maps.dtype, np.number):
        raise TypeError(f"explain returned dtype {maps.dtype} on {where}; expected numbers")
    bad = ~np.isfinite(maps.reshape(len(maps), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"explain returned NaN or Inf on {where} for image(s) {_first_indices(bad)}")
    return maps.astype(np.float64)
