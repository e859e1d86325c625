"""Validation shared by the metrics: maps, finite values, and how bad samples are named."""

from __future__ import annotations

import numpy as np


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
