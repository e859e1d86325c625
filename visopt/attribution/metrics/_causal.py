"""Deletion and insertion AUC (RISE, Petsiuk et al. 2018): the compiled scorer, pixel ranks, the trapezoid."""

from __future__ import annotations

import numbers
import weakref

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage

from visopt._cache import cached
from visopt._checks import check_int
from visopt.attribution.metrics._checks import _as_maps, _check_finite
from visopt.model.layers import activation_name, model_input, output_layer

#: RISE blurred the insertion start with sigma 5 px on 224 px images; the default keeps that fraction
#: of the image side, but never below this many pixels (see `insertion_auc`).
MIN_BLUR_SIGMA = 2.0
_RISE_BLUR_FRACTION = 5.0 / 224.0


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
    check_int(steps, "steps", 1, images.shape[1] * images.shape[2])
    check_int(batch_size, "batch_size", 1)
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


def _probability_transform(model: keras.Model):
    """softmax/sigmoid outputs are already probabilities; log_softmax is exponentiated; logits get a softmax."""
    name = activation_name(output_layer(model))
    if name in ("softmax", "sigmoid"):
        return lambda out: out
    if name == "log_softmax":
        return tf.exp
    return tf.nn.softmax
