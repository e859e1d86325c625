"""show, Picture and Media: what a notebook displays, checked on the decoded PNG and the HTML."""

import base64
import re

import cv2
import numpy as np
import pytest

import visopt
from visopt.frames.display import EMBED_LIMIT, Media, Picture, in_notebook, media_html, show
from visopt.optvis import OptimizationResult
from visopt.render.colormaps import colormap_lut


def decoded(picture: Picture) -> np.ndarray:
    """The RGB pixels of the picture's PNG, as a notebook would receive them."""
    png = picture._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def html_image(html: str) -> np.ndarray:
    """The pixels of the first base64 PNG in ``html``."""
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)


def test_a_uint8_batch_is_enlarged_nearest_neighbour_and_tiled_with_white_margins():
    batch = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    pixels = decoded(show(batch, zoom=3, cols=2))
    assert pixels.shape == (12, 15 + 2 + 15, 3)
    np.testing.assert_array_equal(pixels[:, :15], np.repeat(np.repeat(batch[0], 3, axis=0), 3, axis=1))
    np.testing.assert_array_equal(pixels[:, 17:], np.repeat(np.repeat(batch[1], 3, axis=0), 3, axis=1))
    assert (pixels[:, 15:17] == 255).all()
    assert show(batch).shape[:2] == (4 * 25, 2 * 5 * 25 + 2)  # auto: the longer side (5) reaches >= 128 / 5 -> x25


def test_float_images_in_0_255_are_shown_as_they_are_not_clipped_white():
    image = np.full((4, 4, 3), 200.0, np.float32)
    image[0, 0] = 10.0
    pixels = decoded(show(image, zoom=1))
    assert pixels[1, 1].tolist() == [200, 200, 200] and pixels[0, 0].tolist() == [10, 10, 10]
    assert decoded(show(image / 255.0, zoom=1))[1, 1].tolist() == [200, 200, 200]    # [0, 1]
    assert decoded(show(image / 127.5 - 1, zoom=1))[1, 1].tolist() == [200, 200, 200]  # [-1, 1]
    gradient = np.linspace(-3.0, 5.0, 16).reshape(4, 4)  # no standard range: its own min..max
    assert decoded(show(gradient, zoom=1))[[0, 3], [0, 3], 0].tolist() == [0, 255]
    assert decoded(show(image, zoom=1, input_range=(0, 400)))[1, 1].tolist() == [128, 128, 128]


def test_maps_are_grey_or_coloured_by_cmap():
    maps = np.zeros((3, 2, 2), np.float32)
    maps[:, 0, 0] = 1.0
    maps[1, 1, 1] = 0.5
    grey = decoded(show(maps, zoom=1, cols=3))
    assert grey.shape == (2, 3 * 2 + 2 * 2, 3)
    assert grey[0, 0].tolist() == [255] * 3 and grey[1, 5].tolist() == [128] * 3 and grey[1, 1].tolist() == [0] * 3
    jet = decoded(show(maps, zoom=1, cols=3, cmap="jet"))
    assert jet[0, 0].tolist() == colormap_lut("jet")[255].tolist() == [128, 0, 0]
    assert jet[1, 1].tolist() == colormap_lut("jet")[0].tolist()
    with pytest.raises(ValueError, match=r"cmap colours single-channel images and maps; these have 3 channels"):
        show(np.zeros((2, 4, 4, 3)), cmap="jet")
    with pytest.raises(ValueError, match=r"unknown colour map 'jets'"):
        show(maps, cmap="jets")


def test_one_image_a_list_and_a_result_each_give_a_png():
    one = np.zeros((6, 6), np.uint8)
    assert decoded(show(one, zoom=2)).shape == (12, 12, 3)
    mixed = [np.zeros((4, 4), np.uint8), np.full((2, 6, 3), 255, np.uint8)]  # sizes differ: padded with white
    pixels = decoded(show(mixed, zoom=1, cols=2))
    assert pixels.shape == (4, 6 + 2 + 6, 3)
    assert (pixels[:, :4] == 0).all() and (pixels[:, 4:6] == 255).all() and (pixels[:2, 8:] == 255).all()
    result = OptimizationResult(np.full((2, 3, 3, 1), 0.5, np.float32), {"loss": np.zeros((4, 2))}, 4,
                                input_range=(-1, 1))
    assert decoded(show(result, zoom=1))[0, 0].tolist() == [191, 191, 191]  # 0.5 in [-1, 1], not in [0, 1]
    assert decoded(result.show(zoom=1)).tolist() == decoded(show(result, zoom=1)).tolist()
    assert visopt.show is show


def test_titles_are_drawn_in_a_band_above_each_image():
    batch = np.full((2, 40, 40, 3), 128, np.uint8)
    pixels = decoded(show(batch, titles=["cat", "a much longer title"], zoom=1))
    band = pixels[:pixels.shape[0] - 40]
    assert band.shape[0] > 10 and (pixels[-40:, :40] == 128).all()
    assert (band[:, :40] < 100).any() and (band[:, 42:] < 100).any()   # dark text in each band
    assert (band[:, 40:42] == 255).all()                                  # the margin between them stays white
    with pytest.raises(ValueError, match=r"one caption per image: got 1 for 2 images"):
        show(batch, titles=["cat"])


def test_html_holds_the_same_png_and_save_is_atomic(tmp_path):
    picture = show(np.eye(3, dtype=np.float32), zoom=2)
    html = picture._repr_html_()
    assert 'width="6" height="6"' in html and "pixelated" in html
    np.testing.assert_array_equal(html_image(html), decoded(picture))
    path = picture.save(tmp_path / "out" / "eye.png")
    saved = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(saved, decoded(picture))
    assert [p.name for p in path.parent.iterdir()] == ["eye.png"]  # no temporary file left
    assert "6x6 px" in repr(picture)


def test_bad_inputs_name_the_value_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"zoom must be 'auto' or a whole number >= 1, got 'big'"):
        show(np.zeros((4, 4)), zoom="big")
    with pytest.raises(ValueError, match=r"zoom must be a whole number >= 1, got 0"):
        show(np.zeros((4, 4)), zoom=0)
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        show(np.zeros(4))
    with pytest.raises(ValueError, match=r"empty list"):
        show([])
    with pytest.raises(ValueError, match=r"NaN or Inf \(1 values\)"):
        show(np.array([[0.0, np.nan]]))


def test_media_html_embeds_small_gifs_and_references_the_rest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = tmp_path / "runs" / "small.gif"
    small.parent.mkdir()
    small.write_bytes(b"GIF89a" + bytes(100))
    assert f'src="data:image/gif;base64,{base64.b64encode(small.read_bytes()).decode()}"' in media_html(small)
    big = tmp_path / "runs" / "big.gif"
    big.write_bytes(b"GIF89a" + bytes(EMBED_LIMIT))
    html = Media(big, label="progress")._repr_html_()
    assert '<img src="runs/big.gif"' in html and "progress" in html and len(html) < 1000
    video = tmp_path / "runs" / "w.mp4"
    video.write_bytes(bytes(10))
    assert '<video src="runs/w.mp4" controls' in media_html(video)
    assert "(missing)" in media_html(tmp_path / "nothing.gif")
    assert not in_notebook()


def test_ipython_shows_each_object_as_a_picture_without_pyplot():
    formatters = pytest.importorskip("IPython.core.formatters")
    from matplotlib.figure import Figure

    from visopt.render import plot_maps

    formatter = formatters.DisplayFormatter()
    picture = show(np.eye(4, dtype=np.float32))
    data, _ = formatter.format(picture)
    assert data["image/png"] == picture.png() and "base64" in data["text/html"]
    result = OptimizationResult(np.zeros((2, 3, 3, 3), np.uint8), {"loss": np.ones((2, 2))}, 2)
    assert "<b>OptimizationResult</b>" in formatter.format(result)[0]["text/html"]
    figure = plot_maps(np.zeros((2, 4, 4)))
    assert formatter.format(figure)[0]["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert "image/png" not in formatter.format(Figure())[0]  # what a plain Figure gives without the inline backend
