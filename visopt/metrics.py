"""Can a saliency map be trusted? The pointing game, deletion/insertion AUC, the randomization check.

Each metric takes maps ``(N, H, W)`` from any method, so it judges the maps, not how they were made:

* `pointing_game`: does the map's maximum fall on the object (a box or a mask)?
* `deletion_auc` / `insertion_auc` (RISE, Petsiuk et al. 2018): does the class probability fall
  fast when the pixels the map ranks first are removed, and rise fast when they are put back?
* `model_randomization` (Adebayo et al. 2018): does the map change when the model's weights are
  replaced by random ones? A map that survives it shows the image, not what the model learned.

Example:
    >>> from visopt.metrics import pointing_game, deletion_auc, insertion_auc, model_randomization
    >>> pointing_game(maps, masks=data.masks, tolerance=2)          # fraction of hits, higher is better
    >>> deletion_auc(model, data.images, maps).mean()               # lower is better
    >>> insertion_auc(model, data.images, maps).mean()              # higher is better
    >>> model_randomization(model, explain, data.images[:16]).passes(0.5)
"""

from __future__ import annotations

import numbers
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage, stats

from visopt._cache import cached
from visopt.surgery import activation_name, model_input

__all__ = ["RandomizationResult", "deletion_auc", "insertion_auc", "model_randomization", "pointing_game",
           "spearman"]

#: RISE blurred the insertion start with sigma 5 px on 224 px images; the default keeps that fraction
#: of the image side, but never below this many pixels (see `insertion_auc`).
MIN_BLUR_SIGMA = 2.0
_RISE_BLUR_FRACTION = 5.0 / 224.0


# ---------------------------------------------------------------------------------------------------
# Validation shared by the metrics


def _first_indices(bad: np.ndarray, limit: int = 10) -> str:
    idx = np.flatnonzero(bad)
    shown = idx[:limit].tolist()
    return f"{shown}{' ...' if len(idx) > limit else ''}"


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} has NaN or Inf values in sample(s) {_first_indices(bad)}; "
                         "every value must be finite")


def _as_maps(maps, name: str = "maps") -> np.ndarray:
    arr = np.asarray(maps)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); give at least one map")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    _check_finite(arr, name)
    return arr


def _check_int(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        valid = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {valid}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------------------------------
# Pointing game


def pointing_game(maps, boxes=None, masks=None, *, tolerance: float = 0.0, return_hits: bool = False):
    """The fraction of maps whose maximum falls on the object (Zhang et al. 2016).

    Give the object as ``boxes`` ``(N, 4)`` = ``(top, left, bottom, right)``, bottom/right exclusive,
    or as ``masks`` ``(N, H, W)`` bool; exactly one of them. A maximum within ``tolerance`` pixels
    (Euclidean, between pixel centres) of the object also counts (the original game allowed 15 px
    at 224 px). When the maximum is reached at several pixels, *all* of them must be on the object:
    a map that ties the object with somewhere else has not pointed at it, and a constant map (no
    maximum at all) is always a miss. With ``return_hits=True`` the result is ``(rate, hits)``,
    ``hits`` a bool array ``(N,)``, to find the images a method gets wrong.

    Example:
        >>> maps = np.zeros((2, 8, 8)); maps[0, 2, 2] = maps[1, 7, 7] = 1
        >>> boxes = np.array([[1, 1, 4, 4], [1, 1, 4, 4]])
        >>> pointing_game(maps, boxes=boxes)
        0.5
        >>> pointing_game(maps, boxes=boxes, tolerance=6, return_hits=True)   # (7, 7) is 5.7 px from (3, 3)
        (1.0, array([ True,  True]))
    """
    maps = _as_maps(maps)
    if (boxes is None) == (masks is None):
        raise ValueError("give exactly one of boxes= or masks= (got "
                         f"{'both' if boxes is not None else 'neither'})")
    region = _box_region(boxes, maps.shape) if boxes is not None else _mask_region(masks, maps.shape)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not np.isfinite(tolerance) \
            or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number of pixels >= 0, got {tolerance!r}")
    n = len(maps)
    if tolerance > 0:
        # Distance of every pixel to the nearest object pixel; within tolerance counts as on it.
        region = np.stack([ndimage.distance_transform_edt(~r) <= tolerance for r in region])
    flat = maps.reshape(n, -1)
    peak = flat == flat.max(axis=1, keepdims=True)
    constant = peak.all(axis=1)
    hits = ~constant & ~(peak & ~region.reshape(n, -1)).any(axis=1)
    rate = float(hits.mean())
    return (rate, hits) if return_hits else rate


def _box_region(boxes, shape) -> np.ndarray:
    n, h, w = shape
    arr = np.asarray(boxes)
    if arr.shape != (n, 4):
        raise ValueError(f"boxes must have shape (N, 4) = {(n, 4)} to match maps of shape {shape}; "
                         f"got boxes of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"boxes must hold integer pixel coordinates, got dtype {arr.dtype}")
    top, left, bottom, right = arr.T
    bad = (top < 0) | (left < 0) | (bottom > h) | (right > w) | (bottom <= top) | (right <= left)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"box {i} {tuple(int(v) for v in arr[i])} is empty or outside the {h}x{w} map; "
                         f"boxes are (top, left, bottom, right) with 0 <= top < bottom <= {h} and "
                         f"0 <= left < right <= {w}")
    region = np.zeros(shape, bool)
    for i, (t, l, b, r) in enumerate(arr):
        region[i, t:b, l:r] = True
    return region


def _mask_region(masks, shape) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.shape != tuple(shape):
        raise ValueError(f"masks of shape {arr.shape} do not match maps of shape {tuple(shape)}")
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise TypeError(f"masks must be bool (or 0/1), got dtype {arr.dtype}")
        arr = arr.astype(bool)
    empty = ~arr.reshape(len(arr), -1).any(axis=1)
    if empty.any():
        raise ValueError(f"masks of sample(s) {_first_indices(empty)} are empty: there is no object to point at")
    return arr


# ---------------------------------------------------------------------------------------------------
# Deletion and insertion (RISE)


def deletion_auc(model, images, maps, *, class_index=None, steps: int = 32, substrate=0.0,
                 batch_size: int = 256, return_curves: bool = False):
    """Area under the class probability as the pixels the map ranks first are deleted (lower is better).

    RISE's deletion metric: pixels are ranked by the map (equal values in raster order, so the
    result is deterministic), and in ``steps`` equal chunks the top ones are set to ``substrate``
    (default 0, black in [0, 255]; a number, one per channel, or an array broadcastable to
    ``images``). The score is the probability of the original image's top-1 class (or
    ``class_index``: one int, or one per image), read from the model's softmax/sigmoid output or a
    softmax of its logits. The AUC is the trapezoid over the ``steps + 1`` points, x from 0 to 1,
    so it lies in [0, 1]. Images are channels-last ``(N, H, W, C)`` as the model takes them, maps
    ``(N, H, W)``; perturbed images go through the model ``batch_size`` at a time. With
    ``return_curves=True`` the result is ``(aucs, curves)``, curves ``(N, steps + 1)``.

    Example:
        >>> data = make_object_dataset(32, seed=777)
        >>> deletion_auc(model, data.images, data.masks).mean()     # about 0.27; random maps: about 0.48
    """
    images, maps, classes = _check_causal(model, images, maps, class_index, steps, batch_size)
    first = _substrate(substrate, images.shape)
    return _causal_auc(model, first, images, maps, classes, steps, batch_size,
                       original_step=0, return_curves=return_curves)


def insertion_auc(model, images, maps, *, class_index=None, steps: int = 32, blur_sigma: float | None = None,
                  batch_size: int = 256, return_curves: bool = False):
    """Area under the class probability as the pixels the map ranks first are put back (higher is better).

    RISE's insertion metric: start from a Gaussian-blurred copy of each image and copy the image's
    pixels back, top-ranked first, in ``steps`` equal chunks; scoring, ties and the AUC are as in
    `deletion_auc`. RISE blurred 224-px images with sigma 5, 2.2% of the side; on small images that
    fraction leaves a 5-px object recognizable (sigma 0.7 at 32 px), so the default ``blur_sigma``
    is that fraction of the shorter side but at least `MIN_BLUR_SIGMA` (2) pixels. The blur is a
    full Gaussian with mirrored borders (RISE's zero padding darkened the image edges).

    Example:
        >>> insertion_auc(model, data.images, data.masks).mean()    # about 0.97; random maps: about 0.67
    """
    images, maps, classes = _check_causal(model, images, maps, class_index, steps, batch_size)
    if blur_sigma is None:
        blur_sigma = max(MIN_BLUR_SIGMA, _RISE_BLUR_FRACTION * min(images.shape[1:3]))
    if isinstance(blur_sigma, bool) or not isinstance(blur_sigma, numbers.Real) or not np.isfinite(blur_sigma) \
            or blur_sigma <= 0:
        raise ValueError(f"blur_sigma must be a number of pixels > 0 (or None for the default), got {blur_sigma!r}")
    blurred = ndimage.gaussian_filter(images, sigma=(0, blur_sigma, blur_sigma, 0), mode="reflect")
    return _causal_auc(model, images, blurred.astype(np.float32), maps, classes, steps, batch_size,
                       original_step=steps, return_curves=return_curves)


def _check_causal(model, images, maps, class_index, steps, batch_size):
    """Everything is checked before the first model call; returns float32 images and float64 maps."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras Model, got {type(model).__name__}")
    expected = tuple(model_input(model).shape[1:])
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected or len(images) == 0:
        raise ValueError(f"images of shape {images.shape} do not fit model {model.name!r}: expected "
                         f"(N, {', '.join(map(str, expected))}) with N >= 1, channels last")
    images = images.astype(np.float32)
    _check_finite(images, "images")
    maps_arr = np.asarray(maps)
    if maps_arr.shape != images.shape[:3]:
        raise ValueError(f"maps of shape {maps_arr.shape} do not match images of shape {images.shape}: "
                         f"expected maps of shape {images.shape[:3]}")
    maps = _as_maps(maps_arr)
    _check_int(steps, "steps", 1, images.shape[1] * images.shape[2])
    _check_int(batch_size, "batch_size", 1)
    outputs = model.outputs
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise ValueError(f"deletion/insertion need a classifier with one output (batch, classes); model "
                         f"{model.name!r} has outputs of shapes {[tuple(o.shape) for o in outputs]}")
    num_classes = int(outputs[0].shape[-1])
    return images, maps, _class_indices(class_index, len(images), num_classes)


def _class_indices(class_index, n: int, num_classes: int) -> np.ndarray | None:
    if class_index is None:
        return None
    if isinstance(class_index, numbers.Integral) and not isinstance(class_index, bool):
        classes = np.full(n, int(class_index))
    else:
        classes = np.asarray(class_index)
        if classes.ndim != 1 or not np.issubdtype(classes.dtype, np.integer):
            raise TypeError(f"class_index must be None, an int or one int per image; got {class_index!r}")
        if len(classes) != n:
            raise ValueError(f"class_index has {len(classes)} entries but there are {n} images; "
                             "give one per image or a single int")
    bad = (classes < 0) | (classes >= num_classes)
    if bad.any():
        raise ValueError(f"class_index {int(classes[bad][0])} is out of range: the model has {num_classes} "
                         f"classes (valid 0..{num_classes - 1})")
    return classes


def _substrate(substrate, shape) -> np.ndarray:
    arr = np.asarray(substrate, dtype=np.float32)
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"substrate of shape {arr.shape} does not broadcast to images of shape {shape}; "
                         "give a number, one value per channel, or an image") from None
    if not np.isfinite(arr).all():
        raise ValueError("substrate has NaN or Inf values")
    return np.ascontiguousarray(arr)


def _pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """Rank of every pixel, 0 for the most salient; ties keep raster order (stable sort)."""
    n = len(maps)
    flat = maps.reshape(n, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(flat.shape[1]), flat.shape), axis=1)
    return ranks.reshape(maps.shape).astype(np.int32)


def _normalised_trapezoid(curves: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trapezoid area under each row of ``curves`` sampled at ``x`` (from 0 to 1): RISE's AUC."""
    curves = np.asarray(curves, np.float64)
    x = np.asarray(x, np.float64)
    return ((curves[:, 1:] + curves[:, :-1]) / 2 * np.diff(x)).sum(axis=1) / (x[-1] - x[0])


def _causal_auc(model, first, second, maps, classes, steps, batch_size, original_step, return_curves):
    """At step k the ``counts[k]`` top-ranked pixels come from ``first``, the others from ``second``."""
    n, h, w = maps.shape
    counts = np.rint(np.arange(steps + 1) * (h * w) / steps).astype(np.int32)
    score = _scorer(model)
    tensors = (tf.constant(first), tf.constant(second), tf.constant(_pixel_ranks(maps)))

    def probabilities(index, count):
        # One compiled call per chunk: memory is bounded by batch_size perturbed images.
        for start in range(0, len(index), batch_size):
            part = slice(start, start + batch_size)
            probs = score(*tensors, tf.constant(index[part], tf.int32), tf.constant(count[part], tf.int32)).numpy()
            bad = ~np.isfinite(probs).all(axis=1)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise FloatingPointError(f"model {model.name!r} returned NaN/Inf for image {int(index[part][j])} "
                                         f"with {int(count[part][j])} of {h * w} pixels replaced")
            yield part, probs

    if classes is None:  # the top-1 class of the unperturbed image
        index = np.arange(n)
        classes = np.empty(n, np.int64)
        for part, probs in probabilities(index, np.full(n, counts[original_step])):
            classes[part] = probs.argmax(axis=1)
    index = np.repeat(np.arange(n), steps + 1)
    scores = np.empty(len(index))
    for part, probs in probabilities(index, np.tile(counts, n)):
        scores[part] = probs[np.arange(len(probs)), classes[index[part]]]
    curves = scores.reshape(n, steps + 1)
    aucs = _normalised_trapezoid(curves, counts / (h * w))
    return (aucs, curves) if return_curves else aucs


def _scorer(model: keras.Model):
    """The model's compiled RISE scorer, cached per model (weakly: the cache never keeps a model alive)."""
    return cached(model, ("rise-scorer",), lambda: _build_scorer(model))


def _build_scorer(model: keras.Model):
    to_probability = _probability_transform(model)
    ref = weakref.ref(model)
    shape = tuple(model_input(model).shape[1:])
    image_spec = tf.TensorSpec((None,) + shape, tf.float32)
    # A fixed signature: one trace per model whatever the number of images or the last chunk's size.
    signature = [image_spec, image_spec, tf.TensorSpec((None,) + shape[:2], tf.int32),
                 tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=signature)
    def score(first, second, ranks, index, count):
        take = tf.gather(ranks, index) < count[:, None, None]
        x = tf.where(take[..., None], tf.gather(first, index), tf.gather(second, index))
        return to_probability(ref()(x, training=False))

    return score


def _output_layer(model: keras.Model) -> keras.layers.Layer:
    layer = model.layers[-1]  # the output layer comes last in a graph's topological order
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    return layer


def _probability_transform(model: keras.Model):
    """softmax/sigmoid outputs are already probabilities; log_softmax is exponentiated; logits get a softmax."""
    name = activation_name(_output_layer(model))
    if name in ("softmax", "sigmoid"):
        return lambda out: out
    if name == "log_softmax":
        return tf.exp
    return tf.nn.softmax


# ---------------------------------------------------------------------------------------------------
# Rank correlation and the model-randomization check


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
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras Model, got {type(model).__name__}")
    if not callable(explain):
        raise TypeError(f"explain must be a function explain(model, images) -> maps, got {explain!r}")
    images = np.asarray(images)
    if images.ndim < 1 or len(images) == 0:
        raise ValueError(f"images must hold at least one image, got shape {images.shape}")
    _check_int(seed, "seed", 0)
    weighted = _weight_layers(model)
    if not weighted:
        raise ValueError(f"model {model.name!r} has no layers with weights to randomize")
    steps = _chosen_steps(model, weighted, layers)

    work = _clone(model)
    work.set_weights(model.get_weights())
    keras.utils.set_random_seed(seed)
    fresh = _clone(model)
    work_layers, fresh_layers = _weight_layers(work), _weight_layers(fresh)
    for other in (work_layers, fresh_layers):
        if [(l.name, [tuple(v.shape) for v in l.weights]) for l in other] != \
                [(l.name, [tuple(v.shape) for v in l.weights]) for l in weighted]:
            raise RuntimeError(f"keras.models.clone_model did not reproduce the layers of model {model.name!r}")

    original = _explained(explain, work, images, "the original model")
    flat = original.reshape(len(original), -1)
    constant = (flat == flat[:, :1]).all(axis=1)
    if constant.any():
        raise ValueError(f"explain returned constant maps for image(s) {_first_indices(constant)} on the original "
                         "model: a rank correlation with them is undefined; leave those images out")
    correlations, names, constant_steps = [], [], []
    maps = original
    for i in steps:
        work_layers[i].set_weights(fresh_layers[i].get_weights())
        name = weighted[i].name
        maps = _explained(explain, work, images, f"the model randomized down to {name!r}")
        if maps.shape != original.shape:
            raise ValueError(f"explain returned maps of shape {maps.shape} after randomizing {name!r}, "
                             f"but {original.shape} on the original model")
        rho, constant = _spearman(original, maps)
        correlations.append(rho)
        names.append(name)
        if constant.any():
            constant_steps.append(f"{name!r}: {int(constant.sum())}")
    if constant_steps:
        warnings.warn("explain returned constant maps on the randomized model (image count per step: "
                      f"{', '.join(constant_steps)}); they count as correlation 0", RuntimeWarning, stacklevel=2)
    return RandomizationResult(layers=tuple(names), correlations=np.array(correlations),
                               original_maps=original, randomized_maps=maps)


def _weight_layers(model: keras.Model) -> list:
    """Layers that own weights, nested models flattened in place: topological order, input first."""
    found, seen = [], set()
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            sub = _weight_layers(layer)
        else:
            sub = [layer] if layer.weights else []
        for item in sub:
            if id(item) not in seen:  # a shared layer is one layer
                seen.add(id(item))
                found.append(item)
    return found


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
