"""Colour maps: one vocabulary (matplotlib's names) for every picture visopt draws, and fixed colour scales.

Heatmap overlays, weight images and weight videos all take a matplotlib colormap name (``gray``,
``RdBu``, ``viridis``, ``jet``...), turned into a 256-entry RGB table once per process. A weight's
colour scale is *given*, not computed per frame: :func:`colour_scale` finds it over every snapshot
(min/max, or ``+-max|w|`` for a diverging map, so that zero is the neutral middle colour).

Example:
    >>> colormap_lut("jet")[255]
    array([128,   0,   0], dtype=uint8)
    >>> colour_scale([np.array([-1.0, 0.5]), np.array([2.0])], "RdBu")
    (-2.0, 2.0)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: Colormaps whose middle colour is neutral: their scale is centred on zero (``-m .. +m``, ``m = max|w|``).
DIVERGING = frozenset({"RdBu", "seismic", "coolwarm", "bwr", "PiYG", "PRGn", "BrBG", "PuOr", "RdGy", "RdYlBu",
                       "RdYlGn", "Spectral"})

# Separator lines take the first of these colours that stands out from every colour of the colormap
# (neutral ones first); NaN/Inf values take the saturated colour farthest from the map and the lines.
_NEUTRAL = ((255, 255, 255), (0, 0, 0), (128, 128, 128))
_MUTED = ((40, 90, 200), (0, 150, 0))
_SATURATED = ((255, 0, 255), (0, 255, 0), (0, 200, 255), (255, 140, 0))
_DISTINCT = 100.0  # RGB distance from the nearest colour of the map


def is_diverging(cmap: str) -> bool:
    """Whether ``cmap`` (or its reversed ``_r`` form) is one of the :data:`DIVERGING` colormaps.

    Example:
        >>> is_diverging("RdBu_r"), is_diverging("viridis")
        (True, False)
    """
    return str(cmap).removesuffix("_r") in DIVERGING


def check_colormap(cmap: str) -> str:
    """Return ``cmap`` if matplotlib knows it; otherwise raise ``ValueError`` listing a few valid names.

    Example:
        >>> check_colormap("viridis")
        'viridis'
    """
    import matplotlib

    if not isinstance(cmap, str) or cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colour map {cmap!r}; valid names include 'gray', 'RdBu', 'viridis', 'magma', "
                         "'coolwarm', 'jet', 'turbo', 'seismic' (any name in matplotlib.colormaps)")
    return cmap


@lru_cache(maxsize=32)
def colormap_lut(cmap: str = "gray") -> np.ndarray:
    """The ``(256, 3)`` uint8 colour table of a matplotlib colormap: entry 0 is the low end, 255 the high end.

    Example:
        >>> colormap_lut("gray")[[0, 255]]
        array([[  0,   0,   0],
               [255, 255, 255]], dtype=uint8)
    """
    import matplotlib

    check_colormap(cmap)
    rgba = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))
    lut = np.clip(np.rint(rgba[:, :3] * 255), 0, 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


@lru_cache(maxsize=32)
def special_colours(cmap: str = "gray") -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(separator, non-finite) RGB colours for ``cmap``: separators are white, black or grey when one of
    them differs from every colour of the map, else a muted blue or green; NaN/Inf get a saturated colour.

    Example:
        >>> special_colours("RdBu")[0], special_colours("viridis")[0]
        ((0, 0, 0), (255, 255, 255))
    """
    lut = colormap_lut(cmap).astype(np.float64)

    def distance(colour, table):
        return float(np.sqrt(((table - np.asarray(colour, np.float64)) ** 2).sum(axis=1)).min())

    separator = next((colour for colour in _NEUTRAL + _MUTED if distance(colour, lut) >= _DISTINCT),
                     max(_SATURATED, key=lambda colour: distance(colour, lut)))
    table = np.concatenate([lut, np.asarray([separator], np.float64)])
    nonfinite = max(_SATURATED, key=lambda colour: distance(colour, table))
    return separator, nonfinite


def colour_scale(snapshots, cmap: str = "gray") -> tuple[float, float]:
    """The fixed colour scale of one weight over all its ``snapshots`` (arrays, or one stacked array).

    ``(min, max)`` of the finite values, or ``(-m, m)`` with ``m = max|w|`` for a diverging
    ``cmap``. A constant weight gets a range around its value, so that it shows the middle colour.

    Example:
        >>> colour_scale([np.array([-1.0, 0.5]), np.array([2.0, 0.0])], "RdBu")
        (-2.0, 2.0)
    """
    low, high = math.inf, -math.inf
    arrays = [snapshots] if isinstance(snapshots, np.ndarray) else snapshots
    for stack in arrays:
        stack = np.asarray(stack)
        # a memory-mapped stack of many snapshots is read in slices of about 16 MB, never whole
        if stack.ndim < 2:
            stack = stack.reshape(1, -1)
        per_snapshot = max(1, int(np.prod(stack.shape[1:])))
        step = max(1, (1 << 22) // per_snapshot)
        for start in range(0, len(stack), step):
            array = stack[start:start + step]
            if array.size == 0:
                continue
            finite = np.isfinite(array)
            if finite.all():
                low, high = min(low, float(array.min())), max(high, float(array.max()))
            elif finite.any():
                low, high = min(low, float(array[finite].min())), max(high, float(array[finite].max()))
    if low > high:  # nothing finite
        low, high = -1.0, 1.0
    if is_diverging(cmap):
        bound = max(abs(low), abs(high))
        low, high = -bound, bound
    if not high > low:
        half = max(abs(low) * 1e-3, 1e-6)
        low, high = low - half, high + half
    return low, high
