"""Post-processing of attributions: channels reduced, scales normalized, CAMs resized to the input.

Example:
    >>> maps = normalize_maps(reduce_channels(gradients, axis=-1), "per_sample")   # (N, H, W) in [0, 1]
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

#: ``normalize=`` values of the one-liners.
NORMALIZATIONS = ("per_sample", "shared", None)


def reduce_channels(attributions: np.ndarray, axis: int | None, reduction: str = "max",
                    keepdims: bool = False) -> np.ndarray:
    """Magnitudes per position: the largest |value| over channels (``"max"``) or |sum| (``"sum"``).

    ``keepdims`` keeps |value| per channel, moved last. ``axis`` None (flat inputs) has no channels.
    """
    if axis is None:
        return np.abs(attributions)
    if keepdims:
        return np.abs(np.moveaxis(attributions, axis, -1))
    if reduction == "sum":
        return np.abs(attributions.sum(axis=axis))
    return np.abs(attributions).max(axis=axis)


#: Why a gradient map comes out all zero (the default reason ``normalize_maps`` gives).
GRADIENT_VANISHED = "the score's gradient vanished there (a dead ReLU unit, or a saturated input)"


def normalize_maps(maps, mode: str | None = "per_sample", why_empty: str = GRADIENT_VANISHED) -> np.ndarray:
    """Scale non-negative maps into [0, 1]: each by its own maximum (``"per_sample"``) or all by the
    largest (``"shared"``, to compare samples); None leaves them. All-zero maps stay zero, with a
    warning naming them and ``why_empty`` (by default: the unit's gradient vanished there).

    Example:
        >>> normalize_maps(np.array([[[0., 2.]], [[1., 4.]]]), "shared").max(axis=(1, 2))
        array([0.5, 1. ], dtype=float32)
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalize {mode!r}; valid: {list(NORMALIZATIONS)}")
    maps = np.asarray(maps, np.float32)
    if not np.all(np.isfinite(maps)):
        raise FloatingPointError("the maps contain NaN or Inf: the model's gradient is not finite for these inputs")
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    empty = np.flatnonzero(peaks <= 0)
    if len(empty):
        warnings.warn(f"the maps of samples {empty.tolist()} are all zero: {why_empty}", RuntimeWarning, stacklevel=2)
    if mode is None:
        return maps
    scale = np.full_like(peaks, peaks.max()) if mode == "shared" else peaks
    scale = np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (maps.ndim - 1))
    return maps / scale


def upsample(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize of ``(N, *spatial)`` maps to ``size`` (1-D and 2-D spatial shapes)."""
    maps = np.asarray(maps, np.float32)
    if maps.shape[1:] == size:
        return maps
    if len(size) > 2:
        raise ValueError(f"CAMs are upsampled for 1-D and 2-D inputs; this input has spatial shape {size}")
    planes = maps if len(size) == 2 else maps[:, :, None]  # a sequence is an image one pixel wide
    height, width = (size[0], size[1]) if len(size) == 2 else (size[0], 1)
    out = np.empty((len(maps), height, width), np.float32)
    for start in range(0, len(maps), 128):  # OpenCV resizes up to 128 channels in one call
        group = slice(start, start + 128)
        stacked = np.ascontiguousarray(np.moveaxis(planes[group], 0, -1))
        resized = cv2.resize(stacked, (width, height), interpolation=cv2.INTER_LINEAR)
        out[group] = np.moveaxis(resized.reshape(height, width, -1), -1, 0)
    return out.reshape((len(maps),) + size)


def unit_range(maps: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1]; a constant map becomes zeros."""
    flat = maps.reshape(len(maps), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = np.where(high > low, high - low, 1.0)
    return ((flat - low[:, None]) / span[:, None] * (high > low)[:, None]).reshape(maps.shape).astype(np.float32)
