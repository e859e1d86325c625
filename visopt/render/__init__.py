"""Numbers to pixels.

What belongs here: turning arrays into RGB pictures and nothing else: optimized images
(``deprocess_image``), grids (``stitch_images``), heatmap overlays (``overlay``), frames of any
channel count (``to_rgb``), any batch in the range it is meant to be seen in (``display_images``,
``display_range``), weight tensors laid out by their layout (:mod:`~visopt.render.weight_layouts`) and coloured on a
fixed scale (:mod:`~visopt.render.weight_images`), matplotlib figures that display in a notebook without pyplot
and attribution maps over images (:mod:`~visopt.render.figures`: ``NotebookFigure``,
``plot_maps``), and the colour maps all of them share (:mod:`~visopt.render.colormaps`:
matplotlib's names, one vocabulary). No files, no threads, no Keras: what is drawn comes in as
NumPy arrays.

Example:
    >>> from visopt.render import overlay, stitch_images, weight_image
    >>> grid = stitch_images(images, cols=8)
"""

from visopt.render.colormaps import check_colormap, colormap_lut, colour_scale
from visopt.render.figures import NotebookFigure, plot_maps
from visopt.render.images import deprocess_image, display_images, display_range, overlay, stitch_images, to_rgb
from visopt.render.weight_images import WeightRenderer, weight_image
from visopt.render.weight_layouts import LAYOUTS, default_layout

__all__ = ["LAYOUTS", "NotebookFigure", "WeightRenderer", "check_colormap", "colormap_lut", "colour_scale",
           "default_layout", "deprocess_image", "display_images", "display_range", "overlay", "plot_maps",
           "stitch_images", "to_rgb", "weight_image"]
