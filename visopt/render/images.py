"""Numbers to pixels: optimized images, batches and heatmaps turned into uint8 RGB pictures.

``deprocess_image`` maps any range to uint8, ``stitch_images`` tiles a batch, ``to_rgb`` makes a
frame of any channel count, ``overlay`` colours a map in [0, 1] over an image (colour maps by
their matplotlib names, see :mod:`visopt.render.colormaps`), ``display_images`` turns any batch
into RGB in the range ``display_range`` guesses (uint8, [0, 1], [-1, 1], 0..255, else min..max).

Example:
    >>> grid = stitch_images(deprocess_image(result.images, input_range=(0, 255)))
    >>> picture = overlay(image, saliency_map, cmap="jet")
"""

from __future__ import annotations

import math

import numpy as np

from visopt._checks import check_int, positive_int
from visopt.render.colormaps import check_colormap, colormap_lut


def deprocess_image(images, input_range=None, *, percentile: float = 0.0) -> np.ndarray:
    """Map images to uint8 for display.

    With ``input_range`` the range maps linearly onto 0..255 (what the model saw); without it each
    image is stretched between its own ``percentile`` and ``100 - percentile`` values (for
    gradients or deep-dream output outside any fixed range).

    Example:
        >>> deprocess_image(result.images, input_range=(-1, 1)).dtype
        dtype('uint8')
    """
    array = np.asarray(images, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("cannot display images that contain NaN or Inf")
    if input_range is not None:
        low, high = (float(v) for v in input_range)
        if not low < high:
            raise ValueError(f"input_range must be (low, high) with low < high, got {input_range!r}")
        unit = (array - low) / (high - low)
    else:
        batched = array if array.ndim == 4 else array[None]
        axes = tuple(range(1, batched.ndim))
        low = np.percentile(batched, percentile, axis=axes, keepdims=True)
        high = np.percentile(batched, 100 - percentile, axis=axes, keepdims=True)
        unit = (batched - low) / np.maximum(high - low, 1e-12)
        unit = unit if array.ndim == 4 else unit[0]
    return np.clip(np.rint(unit * 255), 0, 255).astype(np.uint8)


def stitch_images(images, cols: int | None = None, margin: int = 2, fill=None) -> np.ndarray:
    """Tile a batch ``(N, H, W, C)`` (or ``(N, H, W)``) into one grid image, row by row.

    Args:
        images: the batch; a list of equally shaped images works too.
        cols: images per row (about square by default).
        margin: pixels between tiles.
        fill: the value of the margins; by default the high end of the data: 255 for uint8 images,
            the largest finite value otherwise (1.0 for maps in [0, 1]), so that the margins are
            white under a grey colour map whatever the range, and never stretch a colour scale.

    Example:
        >>> grid = stitch_images(visualize_activation(model, "conv2d", None), cols=8)
        >>> stitch_images(np.full((2, 2, 2), 0.25), margin=1)[:, 2]   # the margin column: the data's max
        array([0.25, 0.25])
    """
    batch = np.asarray(images)
    if batch.ndim not in (3, 4) or batch.shape[0] == 0:
        raise ValueError(f"stitch_images takes a non-empty batch (N, H, W[, C]), got shape {batch.shape}")
    if cols is None:
        cols = math.ceil(math.sqrt(batch.shape[0]))
    cols = positive_int(cols, "cols")
    margin = check_int(margin, "margin", 0)
    n, h, w = batch.shape[:3]
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fill = _margin_value(batch) if fill is None else fill
    grid = np.full((rows * h + (rows - 1) * margin, cols * w + (cols - 1) * margin) + batch.shape[3:],
                   fill, dtype=batch.dtype)
    for i, image in enumerate(batch):
        r, c = divmod(i, cols)
        grid[r * (h + margin):r * (h + margin) + h, c * (w + margin):c * (w + margin) + w] = image
    return grid


def _margin_value(batch: np.ndarray):
    """The high end of the data: 255 for uint8, True for masks, else the largest finite value (0 if none)."""
    if batch.dtype == np.uint8:
        return 255
    if batch.dtype == bool:
        return True
    finite = batch[np.isfinite(batch)] if np.issubdtype(batch.dtype, np.floating) else batch
    return finite.max() if finite.size else 0


#: The ranges ``display_range`` tries, in this order, before falling back to the data's own min..max.
STANDARD_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def display_range(images) -> tuple[float, float]:
    """The range to show ``images`` in when none is given: (0, 255) for uint8, else the first of
    (0, 1), (-1, 1), (0, 255) that holds every value, else the data's own min..max.

    So float images in 0..255 are shown as they are (not clipped white), maps in [0, 1] are not
    stretched, and anything else (a gradient, a deep-dream image) fills the whole scale.

    Example:
        >>> display_range(np.array([0.0, 200.0])), display_range(np.array([-3.0, 5.0]))
        ((0.0, 255.0), (-3.0, 5.0))
    """
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return 0.0, 255.0
    array = array.astype(np.float64) if array.dtype == bool else array
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    for candidate in STANDARD_RANGES:
        if candidate[0] <= low and high <= candidate[1]:
            return candidate
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def display_images(batch, input_range=None, cmap: str | None = None) -> np.ndarray:
    """A batch ``(N, H, W)`` or ``(N, H, W, C)`` of any dtype as ``(N, H, W, 3)`` uint8 RGB for display.

    Values map linearly from ``input_range`` (by default :func:`display_range` of the whole batch,
    one scale for every image) onto 0..255. ``cmap`` colours single-channel images and maps; without
    it they are grey. 4 channels drop alpha, other counts than 1, 3, 4 show the channel mean.

    Example:
        >>> display_images(np.array([[[0.0, 0.5]]]))[0, 0].tolist()     # one (1, 2) map in [0, 1]
        [[0, 0, 0], [128, 128, 128]]
    """
    array = np.asarray(batch)
    array = array[..., None] if array.ndim == 3 else array
    if array.ndim != 4 or 0 in array.shape:
        raise ValueError(f"display_images takes a non-empty batch (N, H, W) or (N, H, W, C), got shape "
                         f"{np.shape(batch)}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"cannot display images that contain NaN or Inf "
                         f"({int(np.size(array) - np.isfinite(array).sum())} values)")
    if cmap is not None and array.shape[-1] != 1:
        raise ValueError(f"cmap colours single-channel images and maps; these have {array.shape[-1]} channels "
                         "(give cmap=None)")
    if array.dtype != np.uint8 or input_range is not None:
        low, high = display_range(array) if input_range is None else _checked_range(input_range)
        array = np.clip(np.rint((array.astype(np.float32) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    if cmap is not None:
        return colormap_lut(check_colormap(cmap))[array[..., 0]]
    return rgb_pixels(array, None)


def _checked_range(input_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ValueError(f"input_range must be (low, high), got {input_range!r}") from None
    if not low < high:
        raise ValueError(f"input_range must be (low, high) with low < high, got {input_range!r}")
    return low, high


def overlay(image, heatmap, cmap: str = "jet", alpha: float = 0.5, input_range=None) -> np.ndarray:
    """Blend a heatmap in [0, 1] over an image: ``(H, W, 3)`` uint8.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; uint8, or float with ``input_range``
            (stretched to its own min/max without one).
        heatmap: ``(H, W)`` in [0, 1], e.g. one map of ``visualize_saliency`` or ``visualize_cam``.
        cmap: a matplotlib colour map name: ``jet``, ``turbo``, ``viridis``, ``inferno``, ``hot``...
        alpha: the heatmap's weight (0 shows the image only, 1 the heatmap only).

    Example:
        >>> save_image("cam.png", overlay(images[0], visualize_cam(model, "predictions", 3, images[:1])[0]))
    """
    heat = np.asarray(heatmap, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be (H, W), got shape {heat.shape}")
    if not np.all(np.isfinite(heat)) or heat.min() < 0 or heat.max() > 1:
        raise ValueError("heatmap values must be finite and in [0, 1] (use normalize_maps first)")
    check_colormap(cmap)
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    picture = np.asarray(image)
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=-1)
    if picture.ndim != 3 or picture.shape[-1] != 3:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {np.shape(image)}")
    if picture.shape[:2] != heat.shape:
        raise ValueError(f"image {picture.shape[:2]} and heatmap {heat.shape} differ in size")
    if picture.dtype != np.uint8:
        picture = deprocess_image(picture, input_range)
    colours = colormap_lut(cmap)[np.rint(heat * 255).astype(np.uint8)]
    blended = (1 - alpha) * picture.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def to_rgb(image, value_range=None) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 view of one image ``(H, W)`` or ``(H, W, C)``.

    1 channel is grey, 3 are RGB, 4 drop alpha, any other count shows the channel mean. Float
    images need ``value_range`` (a fixed range, so that frames stay comparable).

    Example:
        >>> to_rgb(np.zeros((4, 4)), value_range=(0, 1)).shape
        (4, 4, 3)
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"a frame image is (H, W) or (H, W, C), got shape {array.shape}")
    return rgb_pixels(array, value_range)


def rgb_pixels(array: np.ndarray, value_range) -> np.ndarray:
    """``to_rgb`` of an array whose last axis is the channels (one image or a whole batch at once)."""
    if array.dtype != np.uint8:
        if value_range is None:
            raise ValueError(f"{array.dtype} frames need value_range=(low, high) to map them to colours")
        low, high = (float(v) for v in value_range)
        array = np.clip(np.rint((array.astype(np.float32) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    channels = array.shape[-1]
    if channels == 3:
        return np.ascontiguousarray(array)
    if channels == 4:
        return np.ascontiguousarray(array[..., :3])
    grey = array[..., 0] if channels == 1 else np.rint(array.mean(axis=-1)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
