"""How the optimized image is represented: plain pixels or a decorrelated Fourier spectrum.

A parameterization owns the optimized variables of one batch and turns them into an image
``(batch, *spatial, channels)`` in input units, always inside ``input_range``.

- ``"pixels"``: the variable *is* the image, projected back into the range after every update.
- ``"fourier"``: the variable is a spectrum scaled by 1/frequency with colours decorrelated (as
  in lucid), squashed into the range by a sigmoid; favours low frequencies, so images come out
  smoother without a strong total-variation weight. 2-D images only.

Example:
    >>> Optimizer(model, energy, parameterization="fourier")
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PARAMETERIZATIONS = ("pixels", "fourier")

# Square root of the colour covariance of natural images (ImageNet statistics, as published with
# lucid); decorrelated channels make the Fourier step sizes comparable across colours.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02],
                        [0.27, 0.00, -0.05],
                        [0.27, -0.09, 0.03]], np.float32)
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


def initial_images(batch, shape: tuple[int, ...], input_range, seed: int) -> np.ndarray:
    """Mid-range images with a little noise; image ``i`` depends only on ``(seed, i)``.

    ``batch`` is a number of images (positions ``0..batch-1``) or the positions themselves: a chunk
    of a request starts from the same noise as in one batch.

    Example:
        >>> np.array_equal(initial_images(8, (4, 4, 3), (0, 1), 0)[6:], initial_images([6, 7], (4, 4, 3), (0, 1), 0))
        True
    """
    positions = range(batch) if np.ndim(batch) == 0 else [int(p) for p in batch]
    low, high = input_range
    images = np.empty((len(positions),) + tuple(shape), np.float32)
    for row, i in enumerate(positions):
        rng = np.random.default_rng([seed, i])
        images[row] = (low + high) / 2 + (high - low) * 0.1 * rng.uniform(-1, 1, shape)
    return images


class PixelImage:
    """The optimized variable is the image itself, kept inside ``input_range`` by projection.

    ``step_scale`` converts the optimizer's learning rate (a fraction of the range) to pixel units.
    """

    def __init__(self, batch: int, shape: tuple[int, ...], input_range):
        self.input_range = tuple(float(v) for v in input_range)
        self.pixels = tf.Variable(tf.zeros((batch,) + tuple(shape)), name="pixels")
        self.variables = [self.pixels]
        self.step_scale = self.input_range[1] - self.input_range[0]

    def __call__(self) -> tf.Tensor:
        return self.pixels

    def assign(self, images: np.ndarray) -> None:
        low, high = self.input_range
        self.pixels.assign(np.clip(images, low, high).astype(np.float32))

    def project(self) -> None:
        low, high = self.input_range
        self.pixels.assign(tf.clip_by_value(self.pixels, low, high))


class FourierImage:
    """The image is ``sigmoid(decorrelate(irfft2d(spectrum * 1/f)))`` scaled into ``input_range``."""

    def __init__(self, batch: int, shape: tuple[int, ...], input_range, decay_power: float = 1.0):
        if len(shape) != 3:
            raise ValueError(f"the fourier parameterization needs 2-D images (height, width, channels); "
                             f"the input has shape {shape}. Use parameterization='pixels'")
        self.input_range = tuple(float(v) for v in input_range)
        self.height, self.width, self.channels = shape
        fy = np.fft.fftfreq(self.height)[:, None]
        fx = np.fft.rfftfreq(self.width)[None, :]
        frequency = np.sqrt(fx * fx + fy * fy)
        scale = 1.0 / np.maximum(frequency, 1.0 / max(self.height, self.width)) ** decay_power
        scale *= np.sqrt(self.height * self.width)
        self._scale = tf.constant(scale.astype(np.float32))
        spectrum_shape = (batch, self.channels, self.height, self.width // 2 + 1)
        self.real = tf.Variable(tf.zeros(spectrum_shape), name="spectrum_real")
        self.imag = tf.Variable(tf.zeros(spectrum_shape), name="spectrum_imag")
        self.variables = [self.real, self.imag]
        self.step_scale = 1.0
        self._color = tf.constant(_COLOR_SQRT.T) if self.channels == 3 else None

    def _logits(self) -> tf.Tensor:
        spectrum = tf.complex(self.real * self._scale, self.imag * self._scale)
        spatial = tf.signal.irfft2d(spectrum, fft_length=[self.height, self.width])
        spatial = tf.transpose(spatial, (0, 2, 3, 1)) / 4.0
        return spatial @ self._color if self._color is not None else spatial

    def __call__(self) -> tf.Tensor:
        low, high = self.input_range
        return low + (high - low) * tf.sigmoid(self._logits())

    def assign(self, images: np.ndarray) -> None:
        """Set the spectrum so that the image reproduces ``images`` (clipped to 0.1%..99.9% of the range)."""
        low, high = self.input_range
        unit = np.clip((np.asarray(images, np.float32) - low) / (high - low), 1e-3, 1 - 1e-3)
        logits = np.log(unit / (1 - unit))
        if self._color is not None:
            logits = logits @ np.linalg.inv(self._color.numpy())
        spatial = np.transpose(logits * 4.0, (0, 3, 1, 2))
        spectrum = np.fft.rfft2(spatial) / self._scale.numpy()
        self.real.assign(spectrum.real.astype(np.float32))
        self.imag.assign(spectrum.imag.astype(np.float32))

    def project(self) -> None:
        """Nothing to do: the sigmoid keeps the image inside the range."""
        return None  # an explicit body: autograph cannot convert a docstring-only function


def make_parameterization(name: str, batch: int, shape: tuple[int, ...], input_range):
    """Create the named parameterization for a batch of images of ``shape`` (channels last)."""
    if name == "pixels":
        return PixelImage(batch, shape, input_range)
    if name == "fourier":
        return FourierImage(batch, shape, input_range)
    raise ValueError(f"unknown parameterization {name!r}; valid: {list(PARAMETERIZATIONS)}")
