"""Big weight tensors as readable pictures: tall and wide matrices folded, huge ones shown by a sample of rows."""

import numpy as np
import pytest

from visopt.render.colormaps import colormap_lut, special_colours
from visopt.render.weight_images import WeightRenderer, weight_image


def stripes(rows, cols):
    """Row i holds one grey level, different from both neighbours: a row averaged with another is seen."""
    levels = (np.arange(rows) * 97 % 251 + 2) / 255.0
    return np.repeat(levels[:, None], cols, axis=1).astype(np.float32), levels


def test_a_20000x64_embedding_shows_single_rows_with_their_indices():
    values, levels = stripes(20000, 64)
    renderer = WeightRenderer(values.shape, "matrix", cmap="gray", value_range=(0, 1))
    frame = renderer(values)
    assert min(frame.shape[:2]) >= 64 and max(frame.shape[:2]) <= 512
    assert renderer.scale >= 2 and renderer.blocks >= 2  # folded: at least 2x2 pixels per value
    shown = renderer.rows
    assert shown[0] == 0 and len(set(np.diff(shown))) == 1 and len(shown) * renderer.scale * renderer.blocks > 1000
    index = renderer.index_map
    for position, row in enumerate(shown[::37]):  # every shown row: its own grey level, exactly, on whole pixels
        pixels = frame[(index >= row * 64) & (index < (row + 1) * 64)]
        assert len(pixels) == 64 * renderer.scale ** 2, row
        assert (pixels == np.rint(levels[row] * 255)).all(), row
    # rows are stacked in order, each scale pixels tall, down the first block
    column = index[:, 0]
    firsts = column[column < values.size] // 64
    runs = np.flatnonzero(np.diff(firsts)) + 1
    assert (np.diff(runs) == renderer.scale).all() and list(np.unique(firsts)) == list(shown[:len(np.unique(firsts))])


def test_the_first_row_index_of_each_block_labels_it():
    values, _ = stripes(20000, 64)
    renderer = WeightRenderer(values.shape, "matrix", cmap="gray", value_range=(0, 1))
    frame = renderer(values)
    band = int(np.argmax((renderer.index_map < values.size).any(axis=1)))  # rows above the first value
    assert 8 <= band <= 20
    separator = np.array(special_colours("gray")[0])
    text = ~(frame[:band] == separator).all(axis=2)
    assert text.sum() > 50  # digits drawn in the band
    block_width = 64 * renderer.scale + 1
    starts = [x * block_width for x in range(renderer.blocks)]
    assert all(text[:, start:start + 6].any() for start in starts)  # a label at every block's left edge

    sampled = WeightRenderer((512, 64), "matrix", cmap="gray", value_range=(0, 1),
                             row_labels=np.arange(0, 20000, 20000 // 512)[:512])
    assert list(sampled.rows[:3]) == [0, 39, 78] and sampled.blocks >= 2  # recorded indices, not positions


@pytest.mark.parametrize("shape", [(1280, 10), (10, 1280), (1, 1, 12, 1280), (4096, 3)])
def test_tall_and_wide_matrices_fold_into_near_square_pictures_of_every_value(shape):
    values = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    renderer = WeightRenderer(shape, cmap="RdBu", value_range=(-3, 3))
    frame = renderer(values)
    assert renderer.blocks >= 2 and renderer.scale >= 2 and renderer.rows is None
    assert 0.5 <= frame.shape[0] / frame.shape[1] <= 2.0 and max(frame.shape[:2]) <= 512
    index = renderer.index_map
    assert set(np.unique(index[index < values.size])) == set(range(values.size))  # each value once, none lost
    lut = colormap_lut("RdBu")
    flat = values.reshape(-1)
    for element in (0, values.size // 2, values.size - 1):
        pixels = frame[index == element]
        assert len(pixels) == renderer.scale ** 2
        assert (pixels == lut[renderer.codes(flat)[element]]).all()


def test_small_and_square_weights_keep_their_plain_layout():
    assert WeightRenderer((108, 2), cmap="gray").shape == (432, 16)  # 4 px per value: legible, not folded
    assert WeightRenderer((96, 16), cmap="gray").blocks == 1
    assert weight_image(np.zeros((1500, 900)), max_size=256).shape == (256, 154, 3)  # a row wider than the frame
    strip = WeightRenderer((1280,), cmap="gray", value_range=(0, 1))
    assert strip.blocks == 5 and strip.scale == 2  # a long bias: the fewest lines that give 2 px per value
    with pytest.raises(ValueError, match="min_value_size must be a positive int, got 0"):
        WeightRenderer((10, 10), min_value_size=0)
    with pytest.raises(ValueError, match=r"row_labels must give one index per row \(10\), got 3"):
        WeightRenderer((10, 10), row_labels=[1, 2, 3])


def test_a_wide_matrix_too_big_to_fold_shows_a_sample_of_its_columns():
    values = np.random.default_rng(1).normal(size=(112, 1280)).astype(np.float32)  # a 1x1 conv to 1280 units
    renderer = WeightRenderer((1, 1, 112, 1280), cmap="RdBu", value_range=(-3, 3))
    renderer(values.reshape(1, 1, 112, 1280))
    assert renderer.scale == 2 and renderer.columns is not None and renderer.rows is None
    assert renderer.columns[0] == 0 and len(set(np.diff(renderer.columns))) == 1
    index = renderer.index_map
    assert set(np.unique(index[index < values.size]) % 1280) == set(renderer.columns)  # every row, those columns
    every = WeightRenderer((1, 1, 112, 1280), cmap="RdBu", value_range=(-3, 3), min_value_size=1)
    assert every.columns is None and every.scale == 1  # all of it, at one pixel per value
