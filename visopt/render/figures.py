"""Matplotlib figures that show themselves in a notebook, with or without pyplot, and ``plot_maps``.

A ``matplotlib.figure.Figure`` made without pyplot has no manager: a notebook cell that ends with
one prints ``<Figure size 800x780 with 3 Axes>`` unless matplotlib's inline backend happens to be
active. :class:`NotebookFigure` draws itself with Agg and answers IPython's ``_repr_png_``, so it
displays either way (with the inline backend active, IPython's own printer for figures is used and
the picture appears once). Nothing here touches pyplot's global state.

Example:
    >>> figure = plot_maps({"saliency": saliency_maps, "grad-cam": cams}, images, titles=labels)
    >>> figure          # the last expression of a notebook cell: one row per method, one column per image
    >>> figure.savefig("maps.png")
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from visopt._checks import positive_int
from visopt.render.colormaps import check_colormap
from visopt.render.images import display_images, overlay


class NotebookFigure(Figure):
    """A matplotlib ``Figure`` on an Agg canvas that displays as a PNG in a notebook (no pyplot needed).

    Example:
        >>> figure = NotebookFigure(figsize=(3, 2))
        >>> figure.add_subplot().plot([0, 1], [1, 0])
        >>> figure._repr_png_()[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)

    def png(self, dpi: float = 100) -> bytes:
        """The figure as PNG bytes at ``dpi`` (100 by default, whatever ``savefig.dpi`` says).

        Example:
            >>> len(figure.png()) > 0
            True
        """
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()


def plot_maps(maps, images=None, *, titles=None, cols: int | None = None, cmap: str = "jet", alpha: float = 0.5,
              boxes=None, input_range=None) -> NotebookFigure:
    """Attribution maps over their images: one row of panels per method, one panel per image.

    Args:
        maps: ``(N, H, W)`` maps (``(H, W)`` for one), or a dict ``{method name: maps}``, each with
            the same N. Maps in [0, 1] are drawn as they are; others are stretched to their own
            min..max. Maps of another size than the images are resized (bilinear) to them.
        images: ``(N, H, W[, C])`` (or one image for every map), any range: see ``input_range``.
            Without images the maps are drawn alone in ``cmap``.
        titles: one title per image, over its panels (of the first method).
        cols: panels per row; a method's N panels wrap onto more rows (``min(N, 8)`` by default).
        cmap, alpha: the colour map of the maps and its weight over the image (as in ``overlay``).
        boxes: ``(N, 4)`` boxes ``(top, left, bottom, right)`` in pixels, bottom/right exclusive (the
            convention of ``metrics.pointing_game``), drawn in white on every panel; None for none, or
            a list with None for images without one.
        input_range: the images' value range; guessed by ``display_range`` when None.

    Returns a :class:`NotebookFigure` (shows itself in a notebook; ``savefig`` as usual), with a
    colour bar of the map values.

    Example:
        >>> maps = {"gradient": visualize_saliency(model, "predictions", labels, images),
        ...         "grad-cam": visualize_cam(model, "predictions", labels, images)}
        >>> plot_maps(maps, images, titles=[f"class {c}" for c in labels], boxes=boxes)
    """
    methods = _methods(maps)
    count, size = methods[0][1].shape[0], methods[0][1].shape[1:]
    check_colormap(cmap)
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    pictures = None if images is None else _pictures(images, count, input_range)
    size = size if pictures is None else pictures.shape[1:3]
    titles = _per_image(titles, count, "titles")
    boxes = _per_image(None if boxes is None else list(boxes), count, "boxes")
    cols = min(count, 8 if cols is None else positive_int(cols, "cols"))
    block = math.ceil(count / cols)
    figure = NotebookFigure(figsize=(2.1 * cols + 0.8, 2.1 * block * len(methods) + 0.3), layout="constrained")
    axes = figure.subplots(block * len(methods), cols, squeeze=False)
    for m, (name, stack) in enumerate(methods):
        for i in range(count):
            ax = axes[m * block + i // cols, i % cols]
            heat = _resized(stack[i], size)
            panel = heat if pictures is None else overlay(pictures[i], heat, cmap=cmap, alpha=alpha)
            ax.imshow(panel, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            _box(ax, boxes[i])
            if m == 0 and titles[i] is not None:
                ax.set_title(str(titles[i]), fontsize="small")
            if name is not None and i % cols == 0:
                ax.set_ylabel(name)
        for ax in axes[m * block:(m + 1) * block].ravel():
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(bool(ax.images))
    _colour_bar(figure, axes, cmap)
    return figure


def _methods(maps) -> list[tuple[str | None, np.ndarray]]:
    """``[(name or None, (N, H, W) float32 in [0, 1])]``, every method with the same N."""
    if isinstance(maps, dict):
        if not maps:
            raise ValueError("plot_maps got an empty dict of maps; give {method name: (N, H, W) maps}")
        methods = [(str(name), _as_maps(value, repr(name))) for name, value in maps.items()]
    else:
        methods = [(None, _as_maps(maps, "maps"))]
    shapes = {name: stack.shape for name, stack in methods}
    if len({shape[0] for shape in shapes.values()}) > 1:
        raise ValueError(f"every method needs one map per image; got {dict(shapes)}")
    return methods


def _as_maps(value, what: str) -> np.ndarray:
    array = np.asarray(value, np.float32)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    array = array[None] if array.ndim == 2 else array
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{what}: maps are (N, H, W) or (H, W), got shape {np.shape(value)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: maps contain NaN or Inf")
    if array.min() >= 0 and array.max() <= 1:
        return array
    low = array.min(axis=(1, 2), keepdims=True)
    return (array - low) / np.maximum(array.max(axis=(1, 2), keepdims=True) - low, 1e-12)


def _pictures(images, count: int, input_range) -> np.ndarray:
    """The images as ``(count, H, W, 3)`` uint8 (one image is used for every map)."""
    array = np.asarray(images)
    single = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))
    pictures = display_images(array[None] if single else array, input_range)
    if pictures.shape[0] == 1 and count > 1:
        pictures = np.repeat(pictures, count, axis=0)
    if pictures.shape[0] != count:
        raise ValueError(f"plot_maps got {pictures.shape[0]} images for {count} maps; give one image per map "
                         "(or one image for all)")
    return pictures


def _per_image(values, count: int, what: str) -> list:
    if values is None:
        return [None] * count
    if isinstance(values, str) or len(values) != count:
        raise ValueError(f"{what} must hold one entry per image ({count}), got {values!r}")
    return list(values)


def _resized(heat: np.ndarray, size) -> np.ndarray:
    if heat.shape == tuple(size):
        return heat
    return np.clip(cv2.resize(heat, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR), 0, 1)


def _box(ax, box) -> None:
    if box is None:
        return
    from matplotlib.patches import Rectangle

    top, left, bottom, right = (float(v) for v in box)
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor="white",
                           linewidth=1.5))


def _colour_bar(figure: Figure, axes, cmap: str) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    used = [ax for ax in axes.ravel() if ax.images]
    figure.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=used, shrink=0.6, label="map value")
