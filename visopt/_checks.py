"""Argument checks shared by every part of visopt: each raises before any work starts and names the bad value.

One function per kind of check, so that the same mistake gets the same message everywhere:
integers (:func:`check_int`, :func:`positive_int`), value ranges (:func:`check_range`) and batches
of inputs (:func:`input_batch`, the seed-input check of the Optimizer and of every attribution
method).

Example:
    >>> positive_int(8, "batch_size")
    8
    >>> input_batch(np.zeros((32, 32, 3)), (32, 32, 3)).shape
    (1, 32, 32, 3)
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def is_int(value) -> bool:
    """Whether ``value`` is an integer (NumPy integers included) and not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def check_int(value, name: str, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else a ValueError naming ``name`` and the valid values
    (a float, a bool or a string is not an int).

    Example:
        >>> check_int(32, "steps", 1, 1024)
        32
        >>> check_int(4, "max_size", 8)
        Traceback (most recent call last):
        ValueError: max_size must be an int >= 8, got 4
    """
    if not is_int(value) or value < low or (high is not None and value > high):
        if high is not None:
            valid = f"an int in [{low}, {high}]"
        else:
            valid = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    return int(value)


def positive_int(value, name: str) -> int:
    """``check_int(value, name, 1)``: an int >= 1.

    Example:
        >>> positive_int(0, "samples")
        Traceback (most recent call last):
        ValueError: samples must be a positive int, got 0
    """
    return check_int(value, name, 1)


def positive_number(value, name: str) -> float:
    """``value`` as a finite float > 0, else a ValueError naming ``name``."""
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_range(value, name: str = "input_range") -> tuple[float, float]:
    """A finite ``(low, high)`` pair with ``low < high``, as floats.

    Example:
        >>> check_range((0, 255))
        (0.0, 255.0)
    """
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high, got {value!r}")
    return low, high


def input_batch(value, shape: tuple[int, ...], name: str = "seed_input", *, layout: str = "") -> np.ndarray:
    """``value`` as a float32 batch ``(N,) + shape``: one input gets a batch axis; empty, misshaped or
    non-finite input raises a ValueError naming ``name`` and the expected shape.

    Example:
        >>> input_batch(np.zeros((2, 8, 8, 1)), (8, 8, 1)).shape
        (2, 8, 8, 1)
    """
    array = np.asarray(value, dtype=np.float32)
    if array.shape == tuple(shape):
        array = array[None]
    if array.ndim != len(shape) + 1 or array.shape[1:] != tuple(shape) or not len(array):
        where = f", {layout}" if layout else ""
        raise ValueError(f"{name} has shape {np.shape(value)}; the model takes {tuple(shape)}: expected "
                         f"{tuple(shape)} or a batch (N,) + {tuple(shape)}{where}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return array
