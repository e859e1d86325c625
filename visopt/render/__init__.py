"""Numbers to pixels.

What belongs here: turning arrays into RGB pictures and nothing else: optimized images
(``deprocess_image``), grids (``stitch_images``), heatmap overlays (``overlay``), frames of any
channel count (``to_rgb``), weight tensors laid out by their layout and coloured on a fixed scale
(:mod:`~visopt.render.weight_images`), and the colour maps all of them share
(:mod:`~visopt.render.colormaps`: matplotlib's names, one vocabulary). No files, no threads, no
Keras: what is drawn comes in as NumPy arrays.

Example:
    >>> from visopt.render import overlay, stitch_images, weight_image
    >>> grid = stitch_images(images, cols=8)
"""

from visopt.render.colormaps import check_colormap, colormap_lut, colour_scale
from visopt.render.images import deprocess_image, overlay, stitch_images, to_rgb
from visopt.render.weight_images import LAYOUTS, WeightRenderer, default_layout, weight_image

__all__ = ["LAYOUTS", "WeightRenderer", "check_colormap", "colormap_lut", "colour_scale", "default_layout",
           "deprocess_image", "overlay", "stitch_images", "to_rgb", "weight_image"]
