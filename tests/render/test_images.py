"""Numbers to pixels: heatmap overlays and weight images, checked pixel by pixel."""

import numpy as np
import pytest

from visopt.render import overlay, weight_image
from visopt.render.colormaps import colormap_lut, colour_scale
from visopt.render.weight_images import WeightRenderer


def test_overlay_blends_the_colour_map_over_the_image():
    image = np.full((4, 4, 3), 100, np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    np.testing.assert_array_equal(overlay(image, heat, alpha=0.0), image)
    full = overlay(image, heat, alpha=1.0)
    assert tuple(full[0, 0]) == (128, 0, 0) and tuple(full[1, 1]) == (0, 0, 128)  # jet: 1 is dark red, 0 dark blue
    with pytest.raises(ValueError, match=r"unknown colour map 'jets'.*'jet'"):
        overlay(image, heat, cmap="jets")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        overlay(image, heat * 3)


def test_weight_image_layouts_and_sizes():
    dense = np.arange(12, dtype=np.float32).reshape(3, 4)  # (in, out)
    image = weight_image(dense, cmap="gray", value_range=(0, 11), max_size=128)
    assert image.shape == (3 * 16, 4 * 16, 3)  # integer upscaling, nearest-neighbour, <= 128 // 8 per value
    assert (image[0, 0] == 0).all() and (image[-1, -1] == 255).all() and (image[:16, :16] == image[0, 0]).all()

    conv = np.random.default_rng(0).normal(size=(3, 3, 8, 16)).astype(np.float32)
    renderer = WeightRenderer(conv.shape, cmap="viridis", value_range=colour_scale([conv], "viridis"))
    frame = renderer(conv)
    assert max(frame.shape[:2]) <= 512 and renderer.scale >= 8  # a 3x3 kernel gets >= 8x8 pixels per value

    big = np.random.default_rng(1).normal(size=(1500, 900)).astype(np.float32)
    shrunk = weight_image(big, cmap="RdBu", max_size=256)
    assert shrunk.shape == (256, 154, 3)  # area-downscaled to the longest side
    strip = weight_image(np.linspace(-1, 1, 10), max_size=100)
    assert strip.shape == (10, 100, 3)  # a bias is a one-row strip, 10 pixels per value

    assert colour_scale([np.array([-1.0, 0.5]), np.array([2.0])], "RdBu") == (-2.0, 2.0)
    assert colour_scale([np.array([-1.0, 0.5]), np.array([2.0])], "viridis") == (-1.0, 2.0)
    centred = weight_image(np.array([[-1.0, 0.0, 2.0]]), cmap="RdBu_r", max_size=240)
    assert centred.shape == (30, 90, 3)
    assert tuple(centred[0, 45]) == tuple(colormap_lut("RdBu_r")[128])  # zero is the neutral middle

    with pytest.raises(ValueError, match="unknown colour map 'nope'.*viridis"):
        colormap_lut("nope")


def test_stitch_margins_take_the_high_end_of_the_data():
    from visopt.render import stitch_images

    maps = np.zeros((2, 3, 3), np.float32)
    maps[1, 0, 0] = 0.8
    grid = stitch_images(maps, cols=2, margin=1)
    assert grid.dtype == np.float32 and (grid[:, 3] == np.float32(0.8)).all()  # not 255 on maps in [0, 1]
    assert grid.max() == np.float32(0.8)  # so a colour scale fitted to the grid is the maps' own
    uint8 = stitch_images(np.zeros((2, 2, 2, 3), np.uint8), cols=2, margin=1)
    assert (uint8[:, 2] == 255).all()  # uint8 keeps white margins
    assert (stitch_images(maps, cols=2, margin=1, fill=-1)[:, 3] == -1).all()
    with_nan = maps.copy()
    with_nan[0, 0, 0] = np.nan
    assert stitch_images(with_nan, cols=2, margin=1)[0, 3] == np.float32(0.8)


def test_display_range_and_display_images():
    from visopt.render import display_images, display_range

    assert display_range(np.array([0, 255], np.uint8)) == (0.0, 255.0)
    assert display_range(np.array([0.1, 0.9])) == (0.0, 1.0)
    assert display_range(np.array([-0.5, 0.9])) == (-1.0, 1.0)
    assert display_range(np.array([3.0, 250.0])) == (0.0, 255.0)
    assert display_range(np.array([-20.0, 300.0])) == (-20.0, 300.0)
    assert display_range(np.array([7.0, 7.0, 300.0]) * 0 + 300.0) == (299.5, 300.5)
    rgb = display_images(np.array([[[[0.0, 127.5, 255.0, 51.0]]]], np.float32))  # 4 channels: alpha dropped
    assert rgb.tolist() == [[[[0, 128, 255]]]]
    many = display_images(np.full((1, 1, 1, 5), 0.5, np.float32))  # 5 channels: their mean, grey
    assert many.tolist() == [[[[128, 128, 128]]]]
    with pytest.raises(ValueError, match=r"input_range must be \(low, high\) with low < high, got \(1, 0\)"):
        display_images(np.zeros((1, 2, 2)), input_range=(1, 0))
