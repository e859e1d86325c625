"""Weight tensor -> image: one frame of a weight animation, through a colormap and a fixed colour scale.

A tensor is laid out as a 2-D picture according to its *layout*
(:mod:`visopt.render.weight_layouts`: matrix, conv, vector, rnn, tensor; big matrices folded into
blocks), then every value is mapped through a 256-entry colour table taken from a matplotlib colormap.

The colour scale is *given*, not computed per frame: :func:`~visopt.render.colormaps.colour_scale`
finds it over every snapshot of one weight (min/max, or ``+-max|w|`` for a diverging colormap, so that zero is the
neutral middle colour), and every frame of that weight is drawn with it. A colour therefore means
the same value in the first and the last frame, and a weight that does not change keeps its
colour. That needs the whole run, which is why weight animations are rendered after training.

Frame size: the picture is enlarged by the largest integer factor (nearest-neighbour) that keeps
its longest side within ``max_size`` pixels, with at most ``max_size // 8`` pixels per value. A
very thin strip is thickened to at least ``max_size // 32`` pixels.

Example:
    >>> renderer = WeightRenderer((3, 3, 16, 32), "conv", cmap="RdBu", value_range=(-0.4, 0.4))
    >>> frame = renderer(kernel)            # (H, W, 3) uint8, H and W <= 512
    >>> frame2 = weight_image(dense_kernel, cmap="viridis", value_range=colour_scale([dense_kernel]))
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from visopt._checks import check_int, positive_int
from visopt.render.colormaps import colormap_lut, colour_scale, special_colours
from visopt.render.weight_layouts import LAYOUTS, arrange, default_layout, legible

__all__ = ["LAYOUTS", "WeightRenderer", "default_layout", "weight_image"]

_NONFINITE_CODE = 257  # colour-table slot of NaN/Inf (256 is the separator)


# -- rendering ------------------------------------------------------------------------------
class WeightRenderer:
    """Draw successive values of one weight tensor with the same layout, colormap and colour scale.

    The pixel layout is computed once; each call then costs one colour-table lookup per pixel.

    Args:
        shape: the weight's shape.
        layout: one of :data:`LAYOUTS`; from the shape when None (see :func:`default_layout`).
        gates: gate blocks along the last axis for ``layout="rnn"`` (LSTM 4, GRU 3, SimpleRNN 1).
        cmap: a matplotlib colormap name.
        value_range: ``(low, high)`` mapped onto the ends of the colormap; values outside are
            clipped. Use :func:`~visopt.render.colormaps.colour_scale` over all snapshots so that frames are comparable.
        max_size: the longest side of a frame, in pixels.
        min_value_size: the fewest pixels a value gets each way. A matrix (or a long strip) that
            would get fewer is folded into a near-square grid of blocks (runs of rows side by side
            for a tall one, runs of columns stacked for a wide one; a strip into the fewest lines),
            the first index of each block labelled above (left of) it; when even that is not
            enough, an evenly spaced sample of its rows (columns) is drawn, labelled with their
            indices. A matrix whose single row is wider than ``max_size`` at this size is
            area-downscaled instead, as are conv grids and gate blocks.
        row_labels: the indices of the tensor's rows in a bigger one (``WeightSnapshot(max_rows=)``
            keeps a sample of rows): used for the labels and :attr:`rows`.

    Attributes:
        index_map: ``(H, W)`` flat index of the value drawn at each pixel (``prod(shape)`` on
            separators and labels), the frame's layout unless a big weight is area-downscaled.
        shape: ``(H, W)`` of the frames returned.
        scale: pixels per value along each side (before any downscaling).
        blocks: how many blocks a folded matrix or strip is drawn as (1: not folded).
        rows: the row indices drawn, in order, when not every row is (a sample), or the
            ``row_labels`` given; None when every row is drawn under its own index.
        columns: the column indices drawn when a wide matrix is shown by a sample of its columns.

    Example:
        >>> renderer = WeightRenderer(kernel.shape, "rnn", gates=4, cmap="RdBu", value_range=(-1, 1))
        >>> frames = [renderer(k) for k in kernel_snapshots]
    """

    def __init__(self, shape, layout: str | None = None, gates: int = 1, cmap: str = "gray", value_range=(0.0, 1.0),
                 max_size: int = 512, *, min_value_size: int = 2, row_labels=None):
        self.weight_shape = tuple(int(side) for side in shape)
        self.layout = default_layout(self.weight_shape) if layout is None else layout
        labels = self._check(gates, max_size, min_value_size, row_labels)
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"value_range must be finite (low, high) with low < high, got {value_range!r}")
        self.low, self.high = low, high
        self.cmap = cmap
        self.separator, self.nonfinite = special_colours(cmap)
        self._lut = np.concatenate([colormap_lut(cmap), np.array([self.separator, self.nonfinite], np.uint8)])
        self.size = int(np.prod(self.weight_shape)) if self.weight_shape else 1
        self._place(gates, max_size, min_value_size, labels, row_labels is not None)
        self._fit(max_size)

    def _check(self, gates, max_size, min_value_size, row_labels) -> np.ndarray:
        """Refuse bad arguments by name; the row labels (the rows' own indices when not given)."""
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown weight layout {self.layout!r}; valid: {list(LAYOUTS)}")
        positive_int(gates, "gates")
        check_int(max_size, "max_size", 8)
        check_int(min_value_size, "min_value_size", 1)
        rows = self.weight_shape[0] if len(self.weight_shape) >= 2 else 1
        labels = np.arange(rows) if row_labels is None else np.asarray(row_labels, dtype=np.int64).reshape(-1)
        if len(labels) != rows:
            raise ValueError(f"row_labels must give one index per row ({rows}), got {len(labels)}")
        return labels

    def _place(self, gates, max_size, min_value_size, labels, labelled: bool) -> None:
        """The value layout (folded when values would be too small), its scale and what rows it shows."""
        layout = arrange(self.weight_shape, self.layout, gates)
        self._folded = legible(self.weight_shape, self.layout, max_size, min_value_size, labels)
        folded = self._folded
        self.scale = layout.largest_scale(max_size) if folded is None else folded.scale
        layout = layout if folded is None else folded.layout
        self.blocks = 1 if folded is None else folded.blocks
        tall = folded is not None and folded.tall
        shown = folded.shown if tall else None
        self.rows = (labels if shown is None else labels[shown]) if labelled or shown is not None else None
        self.columns = None if folded is None or tall else folded.shown
        # one panel and no separators: a big matrix is shrunk as values, before the colour lookup
        self._plain = layout.panels.shape[:3] == (1, 1, 1)
        order = layout.panels[0, 0, 0]
        self._order = None if np.array_equal(order.reshape(-1), np.arange(order.size)) else order
        self._plain_shape = order.shape
        self._layout = layout
        self._index_map = self._gather = None

    def _fit(self, max_size) -> None:
        """The frame size: labelled folds as laid out, too big shrunk by area, too thin thickened."""
        height, width = original = self._layout.size(self.scale) if self._folded is None else self._folded.size()
        thinnest = max(1, max_size // 32)  # a long strip stays visible
        self._repeat = (1, 1)
        self._labels = None if self._folded is None else self._folded.label_mask()
        separator_light = sum(self.separator) > 3 * 128
        self._label_colour = np.array((0, 0, 0) if separator_light else (255, 255, 255), np.uint8)
        if self._labels is not None:
            pass  # a labelled fold fits max_size and is never thin: drawn as laid out
        elif max(height, width) > max_size:  # too big at one pixel per value: area-downscale
            factor = max_size / max(height, width)
            height, width = max(1, round(height * factor)), max(1, round(width * factor))
        elif min(height, width) < thinnest:  # thicken a thin strip in the pixel layout itself
            along_height = height <= width
            stretch = math.ceil(thinnest / (height if along_height else width))
            self._repeat = (stretch, 1) if along_height else (1, stretch)
            height, width = height * self._repeat[0], width * self._repeat[1]
        self._shrunk = (height, width) if max(original) > max_size else None
        self.shape = (max(height, thinnest), width) if height <= width else (height, max(width, thinnest))

    @property
    def index_map(self) -> np.ndarray:
        if self._index_map is None:
            index = self._layout.index_map(self.scale) if self._folded is None else self._folded.index_map()
            index[index < 0] = self.size  # the slot of the separator colour
            index = np.repeat(np.repeat(index, self._repeat[0], axis=0), self._repeat[1], axis=1)
            self._index_map = index.astype(np.intp)
        return self._index_map

    def codes(self, values, check: bool = True) -> np.ndarray:
        """Colour-table index (0..255) of every value, in flat order; NaN/Inf get the non-finite code."""
        array = np.asarray(values, dtype=np.float32).reshape(-1)
        if check and array.size != self.size:
            raise ValueError(f"expected {self.size} values of a weight shaped {self.weight_shape}, got shape "
                             f"{np.shape(values)}")
        scaled = (array - self.low) * (255.0 / (self.high - self.low))
        finite = np.isfinite(scaled)
        codes = np.clip(np.rint(np.where(finite, scaled, 0.0)), 0, 255).astype(np.int16)
        codes[~finite] = _NONFINITE_CODE
        return codes

    def __call__(self, values) -> np.ndarray:
        if self._plain and self._shrunk is not None:
            # area-average the values (cheaper than shrinking millions of colour pixels), then colour
            array = np.asarray(values, dtype=np.float32).reshape(-1)
            array = array.reshape(self._plain_shape) if self._order is None else array[self._order]
            shrunk = cv2.resize(array, self._shrunk[::-1], interpolation=cv2.INTER_AREA)
            frame = self._lut[self.codes(shrunk, check=False).reshape(self._shrunk)]
        else:
            # colour each value shown once, then gather 4-byte RGBA pixels (one uint32 each): several
            # times faster than indexing the colour table per pixel
            used, gather = self._gather_map()
            array = np.asarray(values, dtype=np.float32).reshape(-1)
            if array.size != self.size:
                self.codes(values)  # raises with the shapes
            array = array if used is None else array[used]
            colours = np.zeros((len(array) + 1, 4), np.uint8)
            colours[:-1, :3] = self._lut[self.codes(array, check=False)]
            colours[-1, :3] = self.separator
            pixels = np.take(colours.view(np.uint32).reshape(-1), gather)
            frame = cv2.cvtColor(pixels.view(np.uint8).reshape(pixels.shape + (4,)), cv2.COLOR_RGBA2RGB)
            if self._labels is not None:
                frame[self._labels] = self._label_colour
            if self._shrunk is not None:
                frame = cv2.resize(frame, self._shrunk[::-1], interpolation=cv2.INTER_AREA)
        if frame.shape[:2] != self.shape:
            frame = cv2.resize(frame, self.shape[::-1], interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(frame)


    def _gather_map(self):
        """(the flat indices shown, or None for all; the index map into them, the separator last)."""
        if self._gather is None:
            index = self.index_map
            if self._folded is None or self._folded.shown is None:  # every value is drawn
                self._gather = (None, index)
            else:  # a sample of rows (columns): colour only what is drawn
                used = np.unique(index[index < self.size])
                self._gather = (used, np.searchsorted(used, index).astype(np.intp))
        return self._gather


def weight_image(values, layout: str | None = None, gates: int = 1, cmap: str = "gray", value_range=None,
                 max_size: int = 512, min_value_size: int = 2) -> np.ndarray:
    """One weight tensor as an ``(H, W, 3)`` uint8 image (see the module docstring for the layouts).

    ``value_range`` defaults to this tensor's own range (:func:`~visopt.render.colormaps.colour_scale` of it alone); pass the
    range of a whole run to compare images between snapshots.

    Example:
        >>> image = weight_image(model.get_layer("conv_1").kernel.numpy(), cmap="RdBu")
        >>> image.dtype, image.shape[2]
        (dtype('uint8'), 3)
    """
    array = np.asarray(values, dtype=np.float32)
    if value_range is None:
        value_range = colour_scale([array], cmap)
    return WeightRenderer(array.shape, layout, gates, cmap, value_range, max_size, min_value_size=min_value_size)(array)
