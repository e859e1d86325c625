"""The pointing game: does a map's maximum fall on the object (a box or a mask)?"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage

from visopt.attribution.metrics._checks import _as_maps, _first_indices


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
