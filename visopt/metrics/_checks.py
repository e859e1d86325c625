"""Validation shared by the metrics: maps, finite values, integer arguments, and how bad samples are named."""

from __future__ import annotations

import numbers

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


def _check_int(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        valid = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {valid}, got {value}")
    return int(value)
