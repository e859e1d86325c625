"""Pictures for a notebook: ``show`` turns any batch into one captioned, enlarged grid that displays itself.

:func:`show` returns a :class:`Picture`: a notebook cell that ends with it shows the image (through
``_repr_png_`` and ``_repr_html_``; no pyplot), and ``.save(path)`` writes it atomically.
:class:`Media` and :func:`media_html` show a file written elsewhere (a progress GIF, a weight MP4):
small GIFs are embedded, anything else is referenced by its path relative to the notebook's folder
(the kernel's working directory), so that a notebook stays small. :func:`in_notebook` tells whether
the code runs in a Jupyter kernel (notebook, lab, VS Code, Colab).

Example:
    >>> picture = show(result, titles=[f"filter {i}" for i in range(8)])   # the cell shows the grid
    >>> picture.save("runs/filters.png")
    >>> Media("runs/opt.gif")                                                 # shows the animation
"""

from __future__ import annotations

import base64
import html
import math
import os
import sys
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np

from visopt.frames.captions import caption_width, draw_caption
from visopt.frames.image_file import save_image
from visopt.render.images import display_images, stitch_images

#: Files up to this size are embedded in a notebook's HTML (as base64); bigger ones are referenced.
EMBED_LIMIT = 256 * 1024
#: ``zoom="auto"`` enlarges tiles by a whole factor until their longer side is at least this ...
AUTO_TILE = 128
#: ... as long as the grid stays at most this wide.
AUTO_WIDTH = 1024
_TITLE_SCALE = (0.3, 0.45)  # smallest and largest caption scale of a title
_MARGIN = 2
_IMAGE_TYPES = {".gif": "image/gif", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm"}


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel that displays rich output (not a terminal, qtconsole or Spyder).

    Example:
        >>> in_notebook()
        False
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    try:
        shell = get_ipython() if callable(get_ipython) else None
        kernel = shell is not None and ("ipykernel.zmqshell" in sys.modules or "IPKernelApp" in shell.config)
    except Exception:  # noqa: BLE001 - a broken or fake shell is no notebook
        return False
    return bool(kernel) and not any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ)


class Picture:
    """An RGB picture that displays itself in a notebook; what :func:`show` returns.

    Attributes:
        pixels: ``(H, W, 3)`` uint8, read-only.

    Example:
        >>> picture = Picture(np.zeros((2, 3, 3), np.uint8))
        >>> picture.shape, picture.png()[:4]
        ((2, 3, 3), b'\\x89PNG')
        >>> picture.save("black.png")
        PosixPath('black.png')
    """

    def __init__(self, pixels):
        array = np.asarray(pixels)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"a Picture holds (H, W, 3) uint8 pixels, got {array.dtype} of shape {array.shape}")
        self.pixels = np.array(array)
        self.pixels.setflags(write=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.pixels.shape

    @cached_property
    def _png(self) -> bytes:
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(self.pixels, cv2.COLOR_RGB2BGR))
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB array
            raise RuntimeError("OpenCV could not encode the picture as PNG")
        return encoded.tobytes()

    def png(self) -> bytes:
        """The picture as PNG bytes."""
        return self._png

    def save(self, path) -> Path:
        """Write the picture to ``path`` (``.png`` or ``.jpg``) atomically; returns the path."""
        return save_image(path, self.pixels)

    def _repr_png_(self) -> bytes:
        return self._png

    def _repr_html_(self) -> str:
        height, width = self.shape[:2]
        return (f'<img src="data:image/png;base64,{base64.b64encode(self._png).decode("ascii")}" width="{width}" '
                f'height="{height}" style="image-rendering:pixelated" alt="visopt picture {width}x{height}">')

    def __repr__(self) -> str:
        height, width = self.shape[:2]
        return f"<visopt Picture {width}x{height} px: shown as an image in a notebook, .save(path) writes it>"


def show(x, *, titles=None, cols: int | None = None, zoom="auto", cmap: str | None = None,
         input_range=None) -> Picture:
    """Show images or maps as one grid: the last expression of a notebook cell displays it.

    Args:
        x: a batch ``(N, H, W, C)`` (uint8, or float in any range), maps ``(N, H, W)``, one image
            ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4, a list of images (sizes may differ), or
            anything with ``.images`` (an ``OptimizationResult``: its ``input_range`` is used).
        titles: one caption per image, drawn above it.
        cols: images per row (about square by default).
        zoom: whole enlargement factor (nearest neighbour: pixels stay sharp); ``"auto"`` enlarges
            small images until their longer side reaches 128 px, keeping the grid <= 1024 px wide.
        cmap: a matplotlib colour map for single-channel images and maps (grey without one).
        input_range: the values' range; guessed when None (``render.images.display_range``: uint8
            as is, else [0, 1], [-1, 1] or 0..255 when the values fit, else their min..max).

    Example:
        >>> show(visualize_activation(model, "conv_1", list(range(16))), cols=8)
        >>> show(saliency_maps, cmap="jet", titles=["cat", "dog"]).save("maps.png")
    """
    if isinstance(x, Picture):
        return x
    tiles = _rgb_tiles(x, input_range, cmap)
    count = len(tiles)
    titles = _titles(titles, count)
    cols = min(count, math.ceil(math.sqrt(count)) if cols is None else _whole(cols, "cols"))
    factor = _zoom_factor(zoom, tiles.shape[1], tiles.shape[2], cols)
    if factor > 1:
        tiles = np.repeat(np.repeat(tiles, factor, axis=1), factor, axis=2)
    if titles is not None:
        tiles = np.stack([_titled(tile, title) for tile, title in zip(tiles, titles)])
    return Picture(stitch_images(tiles, cols=cols, margin=_MARGIN, fill=255))


def _rgb_tiles(x, input_range, cmap) -> np.ndarray:
    """``x`` as ``(N, H, W, 3)`` uint8: one scale for a batch; list items of other sizes padded with white."""
    if not isinstance(x, (np.ndarray, list, tuple)) and hasattr(x, "images"):
        input_range = getattr(x, "input_range", None) if input_range is None else input_range
        x = x.images
    if not isinstance(x, (list, tuple)):
        return display_images(_batch_of(np.asarray(x)), input_range, cmap)
    if not x:
        raise ValueError("show got an empty list; give images or maps")
    batches = [_batch_of(np.asarray(item)) for item in x]
    if len({(b.shape[1:], b.dtype) for b in batches}) == 1:
        return display_images(np.concatenate(batches), input_range, cmap)
    parts = [display_images(b, input_range, cmap) for b in batches]
    height, width = max(p.shape[1] for p in parts), max(p.shape[2] for p in parts)
    out = np.full((sum(len(p) for p in parts), height, width, 3), 255, np.uint8)
    start = 0
    for part in parts:
        out[start:start + len(part), :part.shape[1], :part.shape[2]] = part
        start += len(part)
    return out


def _batch_of(array: np.ndarray) -> np.ndarray:
    """One image or map, maps or a batch as a batch: (H, W), (H, W, C<=4) -> one; (N, H, W), (N, H, W, C) -> N."""
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4)):
        return array[None]
    if array.ndim in (3, 4):
        return array
    raise ValueError(f"show takes images (N, H, W, C), maps (N, H, W), one image (H, W[, C]) or a list of them; "
                     f"got shape {array.shape}")


def _titles(titles, count: int):
    if titles is None:
        return None
    titles = [titles] if isinstance(titles, str) else list(titles)
    if len(titles) != count:
        raise ValueError(f"titles must hold one caption per image: got {len(titles)} for {count} images")
    return [str(title) for title in titles]


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _zoom_factor(zoom, height: int, width: int, cols: int) -> int:
    """The enlargement: ``zoom`` itself, or for "auto" the factor that brings tiles to ``AUTO_TILE`` px."""
    if zoom != "auto":
        if isinstance(zoom, str):
            raise ValueError(f"zoom must be 'auto' or a whole number >= 1, got {zoom!r}")
        return _whole(zoom, "zoom")
    factor = max(1, AUTO_TILE // max(height, width))
    while factor > 1 and cols * (width * factor + _MARGIN) > AUTO_WIDTH:
        factor -= 1
    return factor


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    """``tile`` under a white band with ``title`` in black, shrunk (down to a legible size) to fit its width."""
    low, high = _TITLE_SCALE
    band = np.full((math.ceil(32 * high) + 3, tile.shape[1], 3), 255, np.uint8)
    scale = min(high, max(low, (tile.shape[1] - 4) / max(caption_width(title, 1.0), 1)))
    draw_caption(band, title, (2, band.shape[0] - 4), scale, (255, 255, 255), (0, 0, 0), antialias=True)
    return np.concatenate([band, tile])


class Media:
    """A picture or animation file (GIF, MP4, PNG) shown in a notebook; see :func:`media_html`.

    Example:
        >>> Media("runs/opt.gif", label="progress")      # the last expression of a cell shows it
    """

    def __init__(self, path, label: str | None = None):
        self.path = Path(path)
        self.label = label

    def _repr_html_(self) -> str:
        return media_html(self.path, self.label)

    def __repr__(self) -> str:
        size = f"{self.path.stat().st_size / 1024:.0f} KB" if self.path.is_file() else "missing"
        return f"Media({str(self.path)!r}, {size})"


def media_html(path, label: str | None = None, *, embed_limit: int = EMBED_LIMIT) -> str:
    """HTML showing one file: ``<img>`` for GIF/PNG/JPEG, ``<video>`` for MP4/WebM, captioned.

    Pictures up to ``embed_limit`` bytes are embedded (they survive in a saved notebook's static
    views); others, and every video, are referenced by their path relative to the working directory
    (a notebook's folder), so the notebook stays small; a video outside it is embedded when small,
    else named. A missing file or a folder is named, not shown.

    Example:
        >>> media_html("runs/opt.mp4", "progress")
        '<figure ...><video src="runs/opt.mp4" controls loop muted ...></video><figcaption>progress ...'
    """
    path = Path(path)
    caption = html.escape(label or path.name)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "missing"
        return f"<div>{caption}: <code>{html.escape(str(path))}</code> ({what})</div>"
    size = path.stat().st_size
    suffix = path.suffix.lower()
    src = _source(path, size, suffix, embed_limit)
    if src is None or suffix not in _IMAGE_TYPES | _VIDEO_TYPES:
        return (f"<div>{caption}: <code>{html.escape(str(path))}</code> ({size / 1024:.0f} KB, too big to embed "
                "and outside the notebook's folder)</div>")
    if suffix in _VIDEO_TYPES:
        element = f'<video src="{src}" controls loop muted playsinline style="max-width:100%"></video>'
    else:
        element = f'<img src="{src}" alt="{caption}" style="image-rendering:pixelated;max-width:100%">'
    return (f'<figure style="display:inline-block;margin:4px 12px 4px 0;vertical-align:top">{element}'
            f'<figcaption style="font-size:smaller">{caption} ({size / 1024:.0f} KB)</figcaption></figure>')


def _source(path: Path, size: int, suffix: str, embed_limit: int) -> str | None:
    """A data URI for a small picture, else the relative path, else a data URI for a small video, else None."""
    mime = _IMAGE_TYPES.get(suffix) or _VIDEO_TYPES.get(suffix)
    if mime is None:
        return None
    data = f"data:{mime};base64,"
    if suffix in _IMAGE_TYPES and size <= embed_limit:
        return data + base64.b64encode(path.read_bytes()).decode("ascii")
    try:
        relative = os.path.relpath(path.resolve(), Path.cwd().resolve())
    except ValueError:  # another drive (Windows)
        relative = ".."
    if not relative.startswith(".."):
        return quote(Path(relative).as_posix())
    if size <= embed_limit:
        return data + base64.b64encode(path.read_bytes()).decode("ascii")
    return None
