"""Units of a layer: which filters or units an objective or an explanation is about, and their means.

``filter_indices`` is parsed here, once, for every part of visopt that takes it: an int, a list
with one entry per image, or an entry that is itself a list (units taken together). The chosen
units become a one-hot *selection* matrix ``(images, units)``; a score is then
``sum(selection * channel_means(output))`` per image.

Example:
    >>> rows = normalize_indices([3, [1, 2]])        # [[3], [1, 2]]
    >>> selection_matrix(rows, layer, 10)             # (2, 10): row 0 one-hot at 3, row 1 at 1 and 2
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from visopt._checks import is_int


def channel_means(output: tf.Tensor, axis: int) -> tf.Tensor:
    """(batch, channels): the mean of each channel over every other non-batch axis."""
    rank = output.shape.rank
    axis = axis % rank
    spatial = [a for a in range(1, rank) if a != axis]
    means = tf.reduce_mean(output, axis=spatial) if spatial else output
    return tf.reshape(means, (-1, output.shape[axis]))


def check_indices(indices, layer, units: int) -> None:
    """IndexError naming the layer and its unit count for an index outside ``-units..units-1``."""
    for index in indices:
        if not -units <= index < units:
            raise IndexError(f"filter index {index} is out of range for layer {layer.name!r}, which "
                             f"has {units} filters/units (valid indices 0..{units - 1})")


def flat_indices(value) -> list[int]:
    """An int or a list of ints as a list of ints (TypeError otherwise)."""
    if is_int(value):
        return [int(value)]
    if isinstance(value, (list, tuple, np.ndarray)) and all(is_int(v) for v in value):
        return [int(v) for v in value]
    raise TypeError(f"filter_indices must be an int or a list of ints, got {value!r}")


def normalize_indices(value) -> list[list[int]] | None:
    """None, or one list of filter indices per image (an int is one image of one unit)."""
    if value is None:
        return None
    if is_int(value):
        return [[int(value)]]
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0:
        return [flat_indices(v) for v in value]
    raise TypeError(f"filter_indices must be an int, a non-empty list of ints (one per image) or of "
                    f"lists (filters maximized together); got {value!r}")


def selection_matrix(rows: list[list[int]], layer, units: int) -> np.ndarray:
    """One-hot rows ``(len(rows), units)`` float32: row ``r`` counts the units of ``rows[r]``, checked
    against ``layer``'s unit count (negative indices count from the end)."""
    selection = np.zeros((len(rows), units), np.float32)
    for r, row in enumerate(rows):
        check_indices(row, layer, units)
        for index in row:
            selection[r, index % units] += 1.0
    return selection
