"""NotebookFigure and plot_maps: figures that display in a notebook without pyplot, panel by panel."""

import cv2
import numpy as np
import pytest

import visopt
from visopt.render import overlay
from visopt.render.colormaps import colormap_lut
from visopt.render.figures import NotebookFigure, plot_maps


def png_pixels(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def panels(figure):
    """The axes that show a picture (the colour bar's axes hold none)."""
    return [ax for ax in figure.axes if ax.images]


def test_a_notebook_figure_displays_without_pyplot():
    figure = NotebookFigure(figsize=(2, 1), dpi=100)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(np.zeros((1, 2, 3), np.uint8), aspect="auto")  # black left half... and right half
    figure.set_facecolor("white")
    pixels = png_pixels(figure._repr_png_())
    assert pixels.shape == (100, 200, 3) and (pixels[10:90, 10:190] == 0).all()
    assert figure.canvas.manager is None  # not one of pyplot's figures: nothing global was made


def test_one_panel_per_method_and_image_with_the_overlay_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    maps = {"gradient": rng.uniform(0, 1, (3, 8, 8)), "grad-cam": rng.uniform(0, 1, (3, 8, 8))}
    figure = plot_maps(maps, images, titles=["a", "b", "c"], alpha=0.4)
    shown = panels(figure)
    assert len(shown) == 6
    for m, name in enumerate(maps):
        for i in range(3):
            ax = shown[m * 3 + i]
            expected = overlay(images[i], maps[name][i].astype(np.float32), cmap="jet", alpha=0.4)
            np.testing.assert_array_equal(ax.images[0].get_array(), expected)
            assert ax.get_title() == (["a", "b", "c"][i] if m == 0 else "")
            assert ax.get_ylabel() == (name if i == 0 else "")
    assert png_pixels(figure._repr_png_()).shape[0] > 100
    assert visopt.plot_maps is plot_maps


def test_maps_alone_wrapped_rows_raw_ranges_and_boxes():
    maps = np.zeros((5, 4, 4), np.float32)
    maps[:, 0, 0] = 10.0  # not in [0, 1]: each map is stretched to its own min..max
    figure = plot_maps(maps, cols=2, cmap="viridis", boxes=[(1, 1, 3, 4), None, None, None, None])
    shown = panels(figure)
    assert len(shown) == 5 and len(figure.axes) == 3 * 2 + 1  # 3 rows of 2, one empty, and the colour bar
    assert shown[0].images[0].get_array()[0, 0] == 1.0 and shown[0].images[0].get_array()[1, 1] == 0.0
    assert shown[0].images[0].get_cmap().name == "viridis"
    (box,) = shown[0].patches
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (0.5, 0.5, 3.0, 2.0)
    assert not shown[1].patches
    low = png_pixels(figure.png())
    lut = colormap_lut("viridis")
    assert (np.abs(low.astype(int) - lut[0]).sum(axis=-1) < 4).sum() > 100  # the maps' low colour is drawn


def test_small_maps_are_resized_to_the_images_and_one_image_serves_every_map():
    image = np.full((8, 8), 0.5, np.float32)
    cam = np.zeros((2, 2, 2), np.float32)
    cam[:, 0, 0] = 1.0
    figure = plot_maps({"cam": cam}, image, alpha=1.0)
    picture = panels(figure)[0].images[0].get_array()
    assert picture.shape == (8, 8, 3)
    assert picture[0, 0].tolist() == colormap_lut("jet")[255].tolist()
    assert picture[7, 7].tolist() == colormap_lut("jet")[0].tolist()


def test_bad_inputs_name_the_value():
    maps = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match=r"got 3 images for 2 maps"):
        plot_maps(maps, np.zeros((3, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"one map per image; got \{'a': \(2, 4, 4\), 'b': \(3, 4, 4\)\}"):
        plot_maps({"a": maps, "b": np.zeros((3, 4, 4))})
    with pytest.raises(ValueError, match=r"titles must hold one entry per image \(2\)"):
        plot_maps(maps, titles=["x"])
    with pytest.raises(ValueError, match=r"maps are \(N, H, W\) or \(H, W\), got shape \(4,\)"):
        plot_maps(np.zeros(4))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2"):
        plot_maps(maps, alpha=2)
    with pytest.raises(ValueError, match=r"unknown colour map 'nope'"):
        plot_maps(maps, cmap="nope")
