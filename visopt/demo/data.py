"""Synthetic images of four classes that differ by pattern orientation, generated from a seed."""

from __future__ import annotations

import numpy as np

#: Class index -> name.
CLASS_NAMES = ("horizontal", "vertical", "diagonal", "rings")


def make_dataset(count: int, size: int = 32, channels: int = 3, seed: int = 0):
    """``count`` images ``(size, size, channels)`` in [0, 255] and their labels, balanced over classes.

    Each image is a sinusoidal pattern (horizontal, vertical or diagonal stripes, or concentric
    rings around a random centre) with random frequency, phase, contrast and colour, plus noise.

    Example:
        >>> x, y = make_dataset(512, seed=0)
        >>> x.shape, x.dtype, np.bincount(y)
        ((512, 32, 32, 3), dtype('float32'), array([128, 128, 128, 128]))
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASS_NAMES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((count, size, size, channels), np.float32)
    for i, label in enumerate(labels):
        period = rng.uniform(4.0, 9.0)
        phase = rng.uniform(0, 2 * np.pi)
        if label == 0:
            coordinate = yy
        elif label == 1:
            coordinate = xx
        elif label == 2:
            coordinate = (xx + yy) / np.sqrt(2) if rng.random() < 0.5 else (xx - yy) / np.sqrt(2)
        else:
            cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
            coordinate = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        pattern = np.sin(2 * np.pi * coordinate / period + phase)
        colour = rng.uniform(0.4, 1.0, channels)
        contrast = rng.uniform(60, 110)
        image = 127.5 + contrast * pattern[..., None] * colour + rng.normal(0, 12, (size, size, channels))
        images[i] = np.clip(image, 0, 255)
    return images, labels.astype(np.int64)


def marker_task(samples: int = 2048, steps: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A sequence task for recurrent layers: noise sequences ``(samples, steps, 2)`` with one marker
    (+3 or -3 on channel 0) somewhere in the first half; the label is its sign, so a model must
    remember it to the end.

    Example:
        >>> x, y = marker_task(256, 30, seed=1)
        >>> x.shape, sorted(set(y))
        ((256, 30, 2), [0, 1])
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.5, (samples, steps, 2)).astype("float32")
    where = rng.integers(0, steps // 2, samples)
    y = rng.integers(0, 2, samples).astype("int32")
    x[np.arange(samples), where, 0] = np.where(y == 1, 3.0, -3.0)
    return x, y
