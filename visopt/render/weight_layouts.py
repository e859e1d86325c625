"""Where each value of a weight tensor goes in its picture: layouts, and big matrices folded into blocks.

A tensor is laid out as a 2-D picture according to its *layout*:

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

Big tensors: a matrix (and a long strip) never gets fewer than ``min_value_size`` pixels per value
(default 2). A tall matrix that would is *folded*: runs of consecutive rows side by side as
blocks, as many as give the largest (near-square) picture, the first row index of each block
printed in a band above it; a wide one the same with runs of columns stacked (labels on the left);
a strip into the fewest lines. If even the fold cannot give every value its pixels, an evenly
spaced sample of rows (columns) is drawn and labelled (``0 (1 in 27)``): an ``Embedding(20000,
64)`` at 512 pixels is 3 blocks of 247 rows, every 27th row, 2x2 pixels per value. A matrix whose
single row does not fit, and a conv grid or gate blocks too big at one pixel per value, are shrunk
with area interpolation, so a big weight never makes a huge frame.

Example:
    >>> layout = arrange((3, 3, 16, 32), "conv", gates=1)   # 16 x 32 tiles of 3x3
    >>> layout.index_map(layout.largest_scale(512)).shape    # pixel -> flat index, -1 on separators
    (255, 511)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: How a weight tensor is laid out as a picture (see the module docstring).
LAYOUTS = ("matrix", "conv", "vector", "rnn", "tensor")

_TILE_GAP = 1   # pixels between conv tiles
_SLICE_GAP = 1  # pixels between the depth slices of a 3-D conv tile
_DEPTH_TILE_GAP = 3  # pixels between the tiles of a 3-D conv kernel, wider than between its slices
_GATE_GAP = 3   # pixels between the gate blocks of a recurrent weight


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


def arrange(shape: tuple[int, ...], layout: str, gates: int) -> _Layout:
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


# -- big matrices: folded into blocks, or a sample of their rows -------------------------------
_LABEL_FONT = cv2.FONT_HERSHEY_PLAIN
_LABEL_SCALE = 0.7


class _Folded:
    """A matrix ``(R, C)`` of flat indices drawn as ``blocks`` side by side (``tall``: runs of rows)
    or stacked (runs of columns), the first shown index of each block labelled in a band above (tall)
    or left of (wide) the blocks."""

    def __init__(self, index: np.ndarray, tall: bool, blocks: int, scale: int, shown: np.ndarray | None,
                 labels: np.ndarray, band: int):
        self.tall, self.blocks, self.scale, self.shown, self.band = tall, blocks, scale, shown, band
        along = index if tall else index.T  # runs along axis 0
        run = -(-len(along) // blocks)
        tiles = np.full((blocks * run, along.shape[1]), -1, np.int64)
        tiles[:len(along)] = along
        tiles = tiles.reshape(blocks, run, along.shape[1])
        self.firsts = [str(int(labels[b * run])) for b in range(blocks) if b * run < len(labels)]
        if shown is not None and len(shown) > 1:  # sampled: say so in the first label, if there is room
            note = f"{self.firsts[0]} (1 in {int(shown[1] - shown[0])})"
            if _label_size(note)[0] + 3 <= (along.shape[1] * scale if tall else band):
                self.firsts[0] = note
        if tall:
            self.layout = _Layout(_grid(tiles[:, None], 1, blocks), _TILE_GAP)
        else:
            self.layout = _Layout(_grid(tiles.transpose(0, 2, 1)[:, None], blocks, 1), _TILE_GAP)

    def size(self) -> tuple[int, int]:
        height, width = self.layout.size(self.scale)
        return (height + self.band, width) if self.tall else (height, width + self.band)

    def index_map(self) -> np.ndarray:
        index = self.layout.index_map(self.scale)
        pad = ((self.band, 0), (0, 0)) if self.tall else ((0, 0), (self.band, 0))
        return np.pad(index, pad, constant_values=-1)

    def label_mask(self) -> np.ndarray | None:
        """Pixels of the block labels (the first original index of each block), None without a band."""
        if not self.band:
            return None
        mask = np.zeros(self.size(), np.uint8)
        height, width = self.layout.height, self.layout.width
        step = (width if self.tall else height) * self.scale + _TILE_GAP  # pixels from one block to the next
        room = max(_label_size(first)[0 if self.tall else 1] + 3 for first in self.firsts[1:] or self.firsts)
        every = max(1, -(-room // step))  # labels that would overlap: every few blocks only
        for b in range(0, len(self.firsts), every):
            text_h = _label_size(self.firsts[b])[1]
            origin = (b * step + 1, self.band - 3) if self.tall else (1, b * step + text_h + 1)
            if self.tall or origin[1] <= mask.shape[0]:
                cv2.putText(mask, self.firsts[b], origin, _LABEL_FONT, _LABEL_SCALE, 1, 1, cv2.LINE_8)
        return mask.astype(bool)


def _label_size(text: str) -> tuple[int, int]:
    (width, height), baseline = cv2.getTextSize(text, _LABEL_FONT, _LABEL_SCALE, 1)
    return width, height + baseline


def _plain_matrix(shape: tuple[int, ...], layout: str) -> np.ndarray | None:
    """The ``(rows, cols)`` flat indices of a weight drawn as one plain matrix (a vector as one row), else None."""
    size = int(np.prod(shape)) if shape else 1
    if layout == "vector" or len(shape) <= 1:
        return np.arange(size).reshape(1, -1)
    if layout in ("matrix", "tensor") or (layout == "conv" and (len(shape) not in (3, 4, 5)
                                                                 or all(side == 1 for side in shape[:-2]))):
        return np.arange(size).reshape(-1, shape[-1])
    return None


def _fold(index: np.ndarray, max_size: int, min_value_size: int, labels: np.ndarray,
          square: bool) -> _Folded | None:
    """``index`` folded (and if need be its rows sampled) so that every shown value gets at least
    ``min_value_size`` pixels each way within ``max_size``; None when even one row does not fit.

    A matrix (``square``) is cut into runs along its longer side, placed side by side (tall) or
    stacked (wide) with the number of blocks that gives the largest scale (the fewest on a tie): a
    near-square picture. A strip (a vector) gets the fewest lines that reach the minimum size.
    """
    tall = square and index.shape[0] >= index.shape[1]
    along, across = index.shape if tall else index.shape[::-1]
    widest = int(labels.max(initial=0)) if tall else along - 1  # labels: row indices (tall), columns (wide)
    band = _label_size("0" * len(str(widest)))[int(tall)] + 4 if square else 0
    most_blocks = (max_size + _TILE_GAP) // (across * min_value_size + _TILE_GAP)
    longest_run = (max_size - band) // min_value_size
    if most_blocks < 1 or longest_run < 1:
        return None
    step = max(1, -(-along // (most_blocks * longest_run)))  # show every step-th row (tall) or column
    shown = np.arange(0, along, step)
    kept = index[shown] if tall else index[:, shown]
    best = None
    for blocks in range(1, most_blocks + 1):
        run = -(-len(shown) // blocks)
        scale = min((max_size - (band if blocks > 1 or step > 1 else 0)) // run,
                    (max_size - (blocks - 1) * _TILE_GAP) // (blocks * across), max_size // 8)
        if scale >= min_value_size and (best is None or scale > best[1]):
            best = (blocks, scale)
            if not square:
                break  # a strip: the fewest lines that reach the minimum size
    if best is None:
        return None
    return _Folded(kept, tall, best[0], best[1], shown if step > 1 else None,
                   labels[shown] if tall else shown, band if best[0] > 1 or step > 1 else 0)


def legible(shape: tuple[int, ...], layout: str, max_size: int, min_value_size: int,
             labels: np.ndarray) -> "_Folded | None":
    """The fold of a matrix or strip whose values would get fewer than ``min_value_size`` pixels drawn
    plainly, None when it needs none (or cannot have one: a row wider than ``max_size``)."""
    index = _plain_matrix(shape, layout)
    if index is None or min(max_size / index.shape[0], max_size / index.shape[1]) >= min_value_size:
        return None
    if len(labels) != index.shape[0]:  # a conv or n-D tensor drawn as a matrix: its rows are numbered plainly
        labels = np.arange(index.shape[0])
    return _fold(index, max_size, min_value_size, labels, square=len(shape) >= 2)
