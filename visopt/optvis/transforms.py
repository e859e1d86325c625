"""Random transforms applied to a *view* of the image at each step (never written back into it).

They make the optimized image robust to small shifts, scales and rotations, which is what keeps
activation maximization from producing adversarial high-frequency noise. All are TF ops that run
inside the compiled step. Consecutive affine transforms (jitter, scale, rotation) are fused into one
bilinear resample with reflected borders.

One random draw per step is shared by the whole batch, so a batch of N objectives is exactly N
independent optimizations (image ``i`` never depends on the others).

Example:
    >>> Optimizer(model, energy, transforms=[Pad(4), RandomScale((0.9, 1.1)), RandomRotate(10)])
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import tensorflow as tf


class Transform:
    """A random, differentiable map from images ``(batch, *spatial, channels)`` to images.

    ``seed`` is a stateless-random seed pair that changes every step; use ``tf.random.stateless_*``
    ops with it so that runs are reproducible.

    Example (random brightness, the same draw for the whole batch)::

        class RandomBrightness(Transform):
            def __call__(self, images, seed):
                return images + tf.random.stateless_uniform((), seed, -5.0, 5.0)
    """

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise if the transform cannot apply to images of ``shape`` (channels last, no batch)."""


class AffineTransform(Transform):
    """A transform given by a 3x3 matrix that maps output pixel coordinates (x, y, 1) to input ones.

    Subclasses implement ``matrix``; consecutive affine transforms are fused into one resample.

    Example (a random horizontal flip)::

        class RandomFlip(AffineTransform):
            def matrix(self, height, width, seed):
                flip = tf.random.stateless_uniform((), seed) < 0.5
                sign = tf.where(flip, -1.0, 1.0)
                return tf.stack([[sign, 0.0, tf.where(flip, width - 1.0, 0.0)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    """

    def matrix(self, height: int, width: int, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def check(self, shape):
        if len(shape) != 3:
            raise ValueError(f"{type(self).__name__} needs 2-D images; the input has shape {shape}")

    def __call__(self, images, seed):
        height, width = images.shape[1], images.shape[2]
        return _resample(images, self.matrix(height, width, seed))


def _about_center(linear: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Embed a 2x2 output->input map applied about the image centre into a 3x3 matrix."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    center = tf.constant([cx, cy], tf.float32)
    offset = center - tf.linalg.matvec(linear, center)
    top = tf.concat([linear, offset[:, None]], axis=1)
    return tf.concat([top, tf.constant([[0.0, 0.0, 1.0]])], axis=0)


class Jitter(AffineTransform):
    """Shift by a random offset of up to ``amount`` pixels (an int) or that fraction of each side (a float < 1).

    On 2-D images the shift is a resample with reflected borders; on other inputs (sequences,
    volumes) it is a circular roll along every spatial axis.

    Example:
        >>> Jitter(8)      # up to 8 pixels
        >>> Jitter(0.05)   # up to 5% of the height and width
    """

    def __init__(self, amount: float = 0.05):
        if not isinstance(amount, numbers.Real) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"jitter must be a number of pixels (int) or a fraction (< 1) >= 0, got {amount!r}")
        self.amount = amount

    def pixels(self, size: int) -> int:
        if isinstance(self.amount, numbers.Integral) or self.amount >= 1:
            return int(self.amount)
        return int(round(self.amount * size))

    def check(self, shape):
        """Any input rank works."""

    def matrix(self, height, width, seed):
        dx, dy = self.pixels(width), self.pixels(height)
        shift = tf.random.stateless_uniform((2,), seed, -1.0, 1.0) * tf.constant([dx, dy], tf.float32)
        shift = tf.round(shift)
        return tf.stack([[1.0, 0.0, -shift[0]], [0.0, 1.0, -shift[1]], [0.0, 0.0, 1.0]])

    def __call__(self, images, seed):
        if images.shape.rank == 4:
            return super().__call__(images, seed)
        spatial = list(range(1, images.shape.rank - 1))
        limits = [self.pixels(images.shape[a]) for a in spatial]
        shifts = [tf.random.stateless_uniform((), tf.stack([seed[0], seed[1] * 8 + a]), -limit, limit + 1, tf.int32)
                  for a, limit in zip(spatial, limits)]
        return tf.roll(images, shift=shifts, axis=spatial)


class RandomScale(AffineTransform):
    """Zoom about the centre by a factor drawn uniformly from ``scales = (low, high)``.

    Example:
        >>> RandomScale((0.9, 1.1))
    """

    def __init__(self, scales: Sequence[float] = (0.95, 1.05)):
        low, high = _pair(scales, "scales")
        if not 0 < low <= high:
            raise ValueError(f"scales must satisfy 0 < low <= high, got {scales!r}")
        self.scales = (low, high)

    def matrix(self, height, width, seed):
        scale = tf.random.stateless_uniform((), seed, self.scales[0], self.scales[1])
        return _about_center(tf.eye(2) / scale, height, width)


class RandomRotate(AffineTransform):
    """Rotate about the centre by an angle drawn uniformly from ``[-degrees, degrees]`` (or a (low, high) pair).

    Example:
        >>> RandomRotate(10)
    """

    def __init__(self, degrees: float | Sequence[float] = 5.0):
        if isinstance(degrees, numbers.Real):
            degrees = (-abs(degrees), abs(degrees))
        self.degrees = _pair(degrees, "degrees")

    def matrix(self, height, width, seed):
        angle = tf.random.stateless_uniform((), seed, self.degrees[0], self.degrees[1]) * (math.pi / 180.0)
        cos, sin = tf.cos(angle), tf.sin(angle)
        # output -> input is the inverse rotation
        return _about_center(tf.stack([[cos, sin], [-sin, cos]]), height, width)


class Pad(Transform):
    """Pad every spatial side by ``pixels``; the view is centre-cropped back to the model's size at the end.

    Args:
        pixels: padding width.
        mode: ``"reflect"``, ``"symmetric"`` or ``"constant"``.
        value: the fill for ``"constant"``, in input units (mid-range if None).

    Example:
        >>> [Pad(8, mode="constant"), Jitter(8)]   # lucid's standard start
    """

    MODES = ("reflect", "symmetric", "constant")

    def __init__(self, pixels: int = 4, mode: str = "reflect", value: float | None = None):
        if not isinstance(pixels, numbers.Integral) or pixels < 0:
            raise ValueError(f"Pad needs a non-negative int, got pixels={pixels!r}")
        if mode not in self.MODES:
            raise ValueError(f"unknown pad mode {mode!r}; valid: {list(self.MODES)}")
        self.pixels, self.mode, self.value = int(pixels), mode, value
        self.fill = 0.0

    def __call__(self, images, seed):
        rank = images.shape.rank
        paddings = [[0, 0]] + [[self.pixels, self.pixels]] * (rank - 2) + [[0, 0]]
        value = self.fill if self.value is None else self.value
        return tf.pad(images, paddings, mode=self.mode.upper(), constant_values=value)


def _pair(value, what: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (low, high) pair of numbers, got {value!r}") from None
    if low > high:
        raise ValueError(f"{what} must be (low, high) with low <= high, got {value!r}")
    return low, high


def _resample(images: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    batch = tf.shape(images)[0]
    flat = tf.reshape(matrix / matrix[2, 2], (9,))[:8]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.tile(flat[None], (batch, 1)),
        output_shape=tf.shape(images)[1:3], fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")


def default_transforms(shape: tuple[int, ...]) -> list[Transform]:
    """The default stack: a random scale (0.9-1.1) and rotation (+-5 degrees) for 2-D images, nothing else.

    Chosen with the fourier parameterization on the quality benchmark (docs/quality.md).
    """
    if len(shape) == 3:
        return [RandomScale((0.9, 1.1)), RandomRotate(5.0)]
    return []


class TransformPipeline:
    """Apply transforms in order, fusing runs of affine transforms into one resample.

    The view is finally centre-cropped (after padding) or resized back to ``shape``.
    """

    def __init__(self, transforms: Sequence[Transform], shape: tuple[int, ...], input_range):
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"transforms must be visopt Transform objects, got {t!r}")
            t.check(shape)
            if isinstance(t, Pad):
                t.fill = (input_range[0] + input_range[1]) / 2.0
        self.transforms = list(transforms)
        self.shape = tuple(shape)

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        pending = None
        for index, transform in enumerate(self.transforms):
            sub_seed = tf.stack([seed[0], seed[1] * 64 + index])
            if isinstance(transform, AffineTransform) and images.shape.rank == 4:
                m = transform.matrix(images.shape[1], images.shape[2], sub_seed)
                pending = m if pending is None else pending @ m
                continue
            if pending is not None:
                images, pending = _resample(images, pending), None
            images = transform(images, sub_seed)
        if pending is not None:
            images = _resample(images, pending)
        return self._fit(images)

    def _fit(self, images: tf.Tensor) -> tf.Tensor:
        spatial = self.shape[:-1]
        current = tuple(images.shape[1:-1])
        if current == spatial:
            return images
        if all(c >= s for c, s in zip(current, spatial)):
            starts = [(c - s) // 2 for c, s in zip(current, spatial)]
            return images[(slice(None),) + tuple(slice(b, b + s) for b, s in zip(starts, spatial))]
        if len(spatial) == 2:
            return tf.image.resize(images, spatial)
        raise ValueError(f"transforms produced a view of spatial shape {current}, smaller than {spatial}")
