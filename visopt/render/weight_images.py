"""Weight tensor -> image: one frame of a weight animation, through a colormap and a fixed colour scale.

A tensor is laid out as a 2-D picture according to its *layout*, then every value is mapped through
a 256-entry colour table taken from a matplotlib colormap:

- ``"matrix"`` (a Dense kernel, an Embedding): rows are inputs, columns outputs, ``(in, out)``.
- ``"conv"`` (a 1-D, 2-D or 3-D convolution kernel ``(*spatial, in, out)``): a grid of small
  tiles separated by 1-pixel lines, each tile enlarged by the same integer factor so that a 3x3
  kernel stays readable. 2-D: one ``kh x kw`` tile per (input channel, filter), one row per input
  channel and one column per filter (a near-square grid when there is one input channel or one
  filter). 3-D: the same grid, with the ``kd`` depth slices of a tile side by side (1-pixel lines
  between slices, 3-pixel lines between tiles). 1-D: one ``k x in`` tile per filter, filters in a
  near-square grid. Kernels whose spatial size is 1 are shown as the ``(in, out)`` matrix.
- ``"vector"`` (a bias, a normalization scale, a scalar): a one-row strip.
- ``"rnn"`` (LSTM, GRU, SimpleRNN weights): the last axis holds ``gates`` blocks (LSTM 4: input,
  forget, cell, output; GRU 3: update, reset, new; SimpleRNN 1); the blocks are drawn side by
  side, each as a matrix (or strip), separated by a 3-pixel line.
- ``"tensor"`` (anything else): the ``(prod(shape[:-1]), shape[-1])`` matrix.

The colour scale is *given*, not computed per frame: :func:`~visopt.render.colormaps.colour_scale`
finds it over every snapshot of one weight (min/max, or ``+-max|w|`` for a diverging colormap, so that zero is the
neutral middle colour), and every frame of that weight is drawn with it. A colour therefore means
the same value in the first and the last frame, and a weight that does not change keeps its
colour. That needs the whole run, which is why weight animations are rendered after training.

Frame size: the picture is enlarged by the largest integer factor (nearest-neighbour) that keeps
its longest side within ``max_size`` pixels, with at most ``max_size // 8`` pixels per value; a
picture already bigger than that at one pixel per value is shrunk with area interpolation, so a big
matrix never makes a huge frame. A very thin strip is thickened to at least ``max_size // 32``
pixels.

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

#: How a weight tensor is laid out as a picture (see the module docstring).
LAYOUTS = ("matrix", "conv", "vector", "rnn", "tensor")

_TILE_GAP = 1   # pixels between conv tiles
_SLICE_GAP = 1  # pixels between the depth slices of a 3-D conv tile
_DEPTH_TILE_GAP = 3  # pixels between the tiles of a 3-D conv kernel, wider than between its slices
_GATE_GAP = 3   # pixels between the gate blocks of a recurrent weight
_NONFINITE_CODE = 257  # colour-table slot of NaN/Inf (256 is the separator)


# -- layout ---------------------------------------------------------------------------------
def default_layout(shape) -> str:
    """The layout of a weight from its shape alone: ``vector`` (0-D, 1-D), ``matrix`` (2-D), ``conv`` (3-D to 5-D), else ``tensor``.

    Recurrent weights have the shapes of matrices and vectors; the caller, who knows the layer,
    passes ``layout="rnn"`` for them.

    Example:
        >>> default_layout((3, 3, 16, 32)), default_layout((32,))
        ('conv', 'vector')
    """
    ndim = len(tuple(shape))
    if ndim <= 1:
        return "vector"
    if ndim == 2:
        return "matrix"
    if ndim <= 5:
        return "conv"
    return "tensor"


class _Layout:
    """Where each value goes: a grid of ``rows x cols`` tiles, each tile ``depth`` panels of ``(height, width)`` values.

    ``panels[r, c, d, i, j]`` is the flat index of the value drawn there, -1 for an empty tile.
    """

    def __init__(self, panels: np.ndarray, tile_gap: int, panel_gap: int = _SLICE_GAP):
        self.panels = panels
        self.rows, self.cols, self.depth, self.height, self.width = panels.shape
        self.tile_gap, self.panel_gap = tile_gap, panel_gap

    def size(self, scale: int) -> tuple[int, int]:
        height = self.rows * self.height * scale + (self.rows - 1) * self.tile_gap
        tile_width = self.depth * self.width * scale + (self.depth - 1) * self.panel_gap
        return height, self.cols * tile_width + (self.cols - 1) * self.tile_gap

    def largest_scale(self, max_size: int) -> int:
        """The largest pixels-per-value that fits ``max_size``, at most ``max_size // 8`` (a bias of 4 values
        is a 64x256 strip at 512, not 128x512: the same picture for a quarter of the pixels to encode)."""
        fixed_h = (self.rows - 1) * self.tile_gap
        fixed_w = (self.cols - 1) * self.tile_gap + self.cols * (self.depth - 1) * self.panel_gap
        by_height = (max_size - fixed_h) // (self.rows * self.height)
        by_width = (max_size - fixed_w) // (self.cols * self.depth * self.width)
        return max(1, min(by_height, by_width, max_size // 8))

    def index_map(self, scale: int) -> np.ndarray:
        """``(H, W)`` int array: the flat index of the value at each pixel, -1 on separators and empty tiles."""
        tile_y, elem_y, gap_y = _axis(self.rows, 1, self.height, scale, self.tile_gap, 0)
        tile_x, elem_x, gap_x, panel_x = _axis(self.cols, self.depth, self.width, scale, self.tile_gap,
                                               self.panel_gap, with_panel=True)
        index = self.panels[tile_y[:, None], tile_x[None, :], panel_x[None, :], elem_y[:, None], elem_x[None, :]]
        index = index.astype(np.int64)
        index[gap_y[:, None] | gap_x[None, :]] = -1
        return index


def _axis(tiles: int, panels: int, elements: int, scale: int, tile_gap: int, panel_gap: int, with_panel=False):
    """Per pixel along one axis: tile, element within the panel, whether it is a gap, and the panel."""
    tile, elem, gap, panel = [], [], [], []
    per_panel = np.repeat(np.arange(elements), scale)

    def add(t, p, e, g):
        tile.append(np.full(len(e), t)), panel.append(np.full(len(e), p)), elem.append(e)
        gap.append(np.full(len(e), g))

    for t in range(tiles):
        if t:
            add(0, 0, np.zeros(tile_gap, np.int64), True)
        for p in range(panels):
            if p:
                add(0, 0, np.zeros(panel_gap, np.int64), True)
            add(t, p, per_panel, False)
    out = [np.concatenate(tile), np.concatenate(elem), np.concatenate(gap).astype(bool)]
    if with_panel:
        out.append(np.concatenate(panel))
    return tuple(out)


def _near_square(count: int, height: int, width: int, gap: int) -> tuple[int, int]:
    """(rows, cols) of a grid of ``count`` tiles whose longest side is smallest."""
    best = None
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        longest = max(rows * (height + gap), cols * (width + gap))
        if best is None or longest < best[0]:
            best = (longest, rows, cols)
    return best[1], best[2]


def _grid(tiles: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Place a list of tiles ``(n, depth, h, w)`` row by row into ``(rows, cols, depth, h, w)``, -1 elsewhere."""
    out = np.full((rows * cols,) + tiles.shape[1:], -1, np.int64)
    out[:len(tiles)] = tiles
    return out.reshape((rows, cols) + tiles.shape[1:])


def _arrange(shape: tuple[int, ...], layout: str, gates: int) -> _Layout:
    size = int(np.prod(shape)) if shape else 1
    index = np.arange(size, dtype=np.int64).reshape(shape if shape else (1,))
    if layout == "tensor" or (layout == "conv" and len(shape) not in (3, 4, 5)):
        index = index.reshape(-1, shape[-1]) if len(shape) >= 2 else index.reshape(1, -1)
        layout = "matrix"
    if layout == "conv" and all(side == 1 for side in shape[:-2]):
        index = index.reshape(shape[-2], shape[-1])
        layout = "matrix"
    if layout == "vector":
        return _Layout(index.reshape(1, 1, 1, 1, -1), _TILE_GAP)
    if layout == "matrix":
        if index.ndim == 1:
            index = index.reshape(1, -1)
        return _Layout(index.reshape((1, 1, 1) + index.shape), _TILE_GAP)
    if layout == "rnn":
        if index.ndim == 1:
            index = index.reshape(1, -1)
        elif index.ndim > 2:
            index = index.reshape(-1, index.shape[-1])
        rows, columns = index.shape
        if columns % gates:
            raise ValueError(f"a recurrent weight of shape {shape} cannot be split into {gates} gates")
        blocks = index.reshape(rows, gates, columns // gates).transpose(1, 0, 2)  # (gates, rows, units)
        return _Layout(blocks[None, :, None], _GATE_GAP)
    # conv
    channels_in, filters = shape[-2], shape[-1]
    if len(shape) == 3:  # (k, in, out): one k x in tile per filter
        tiles = index.transpose(2, 0, 1)[:, None]  # (out, 1, k, in)
        rows, cols = _near_square(filters, shape[0], channels_in, _TILE_GAP)
        return _Layout(_grid(tiles, rows, cols), _TILE_GAP)
    if len(shape) == 4:  # (kh, kw, in, out): one kh x kw tile per (in, out)
        tiles = index.transpose(2, 3, 0, 1)[:, :, None]  # (in, out, 1, kh, kw)
    else:  # (kd, kh, kw, in, out): kd slices side by side per (in, out)
        tiles = index.transpose(3, 4, 0, 1, 2)  # (in, out, kd, kh, kw)
    gap = _TILE_GAP if len(shape) == 4 else _DEPTH_TILE_GAP
    if channels_in > 1 and filters > 1:
        return _Layout(tiles, gap)
    flat = tiles.reshape((channels_in * filters,) + tiles.shape[2:])
    rows, cols = _near_square(len(flat), flat.shape[2], flat.shape[1] * flat.shape[3] + flat.shape[1] - 1, gap)
    return _Layout(_grid(flat, rows, cols), gap)


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

    Attributes:
        index_map: ``(H, W)`` flat index of the value drawn at each pixel (``prod(shape)`` on
            separators), the frame's layout unless a big weight is area-downscaled.
        shape: ``(H, W)`` of the frames returned.
        scale: pixels per value along each side (before any downscaling).

    Example:
        >>> renderer = WeightRenderer(kernel.shape, "rnn", gates=4, cmap="RdBu", value_range=(-1, 1))
        >>> frames = [renderer(k) for k in kernel_snapshots]
    """

    def __init__(self, shape, layout: str | None = None, gates: int = 1, cmap: str = "gray", value_range=(0.0, 1.0),
                 max_size: int = 512):
        self.weight_shape = tuple(int(side) for side in shape)
        self.layout = default_layout(self.weight_shape) if layout is None else layout
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown weight layout {layout!r}; valid: {list(LAYOUTS)}")
        positive_int(gates, "gates")
        check_int(max_size, "max_size", 8)
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"value_range must be finite (low, high) with low < high, got {value_range!r}")
        self.low, self.high = low, high
        self.cmap = cmap
        lut = colormap_lut(cmap)
        self.separator, self.nonfinite = special_colours(cmap)
        self._lut = np.concatenate([lut, np.array([self.separator, self.nonfinite], np.uint8)])
        self.size = int(np.prod(self.weight_shape)) if self.weight_shape else 1
        layout = _arrange(self.weight_shape, self.layout, gates)
        scale = layout.largest_scale(max_size)
        self.scale = scale
        # one panel and no separators: a big matrix is shrunk as values, before the colour lookup
        self._plain = layout.panels.shape[:3] == (1, 1, 1)
        order = layout.panels[0, 0, 0]
        self._order = None if np.array_equal(order.reshape(-1), np.arange(order.size)) else order
        self._plain_shape = order.shape
        self._layout = layout
        self._index_map = None
        height, width = original = layout.size(scale)
        thinnest = max(1, max_size // 32)  # a long strip stays visible
        self._repeat = (1, 1)
        if max(height, width) > max_size:  # too big at one pixel per value: area-downscale
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
            index = self._layout.index_map(self.scale)
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
            # colour each value once, then gather 4-byte RGBA pixels (one uint32 each): several times
            # faster than indexing the colour table per pixel
            colours = np.zeros((self.size + 1, 4), np.uint8)
            colours[:-1, :3] = self._lut[self.codes(values)]
            colours[-1, :3] = self.separator
            pixels = np.take(colours.view(np.uint32).reshape(-1), self.index_map)
            frame = cv2.cvtColor(pixels.view(np.uint8).reshape(pixels.shape + (4,)), cv2.COLOR_RGBA2RGB)
            if self._shrunk is not None:
                frame = cv2.resize(frame, self._shrunk[::-1], interpolation=cv2.INTER_AREA)
        if frame.shape[:2] != self.shape:
            frame = cv2.resize(frame, self.shape[::-1], interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(frame)


def weight_image(values, layout: str | None = None, gates: int = 1, cmap: str = "gray", value_range=None,
                 max_size: int = 512) -> np.ndarray:
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
    return WeightRenderer(array.shape, layout, gates, cmap, value_range, max_size)(array)
