"""visualize_activation end to end: recognisable class images, the keras-vis calls, helpers, deep dream, demo."""

import numpy as np
import pytest

from conftest import logits_of
from visopt import (ActivationMaximization, DeepDream, LPNorm, Optimizer, OptimizerCallback, TotalVariation,
                    deprocess_image, stitch_images, visualize_activation)
from visopt.demo import CLASS_NAMES, make_dataset
from visopt.optvis.parameterizations import initial_images


@pytest.fixture(scope="module")
def class_images(demo_model):
    indices = [0, 1, 2, 3] * 3
    return indices, visualize_activation(demo_model, "predictions", indices, max_iter=150, seed=0)


def test_class_images_are_classified_as_their_class(demo_model, class_images):
    indices, images = class_images
    assert images.dtype == np.uint8 and images.shape == (12, 32, 32, 3)
    predicted = demo_model.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
    assert np.array_equal(predicted, indices), predicted


def test_class_images_are_recognised_by_an_independent_model(judge_model, class_images):
    indices, images = class_images
    predicted = judge_model.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
    assert np.mean(predicted == np.array(indices)) >= 0.75, predicted


def test_class_images_look_like_their_class(class_images):
    """Horizontal-stripe images vary along y, vertical ones along x (the generated classes)."""
    indices, images = class_images
    grey = images.astype(np.float32).mean(axis=-1)
    dy = np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))
    dx = np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2))
    for i, c in enumerate(indices):
        if CLASS_NAMES[c] == "horizontal":
            assert dy[i] > 1.5 * dx[i]
        elif CLASS_NAMES[c] == "vertical":
            assert dx[i] > 1.5 * dy[i]


def test_none_gives_every_filter(demo_model):
    images = visualize_activation(demo_model, "conv_1", None, max_iter=5, seed=0)
    assert images.shape[0] == demo_model.get_layer("conv_1").filters == 16
    assert len({im.tobytes() for im in images}) == 16


def test_keras_vis_readme_calls_run_with_import_changes_only(demo_model):
    model = demo_model
    layer_dict = dict([(layer.name, layer) for layer in model.layers])
    keras_layer = layer_dict["predictions"]
    # losses as (term, weight) tuples + Optimizer(model.input, ...) + minimize(...)
    losses = [
        (ActivationMaximization(keras_layer, [2]), 1),
        (LPNorm(model.input), 10),
        (TotalVariation(model.input), 10),
    ]
    opt = Optimizer(model.input, losses)
    opt_img, grads = opt.minimize(max_iter=500, verbose=True, jitter=0)
    assert opt_img.shape == (1, 32, 32, 3) and grads.shape == (1, 32, 32, 3)
    assert logits_of(model, opt_img)[0, 2] > logits_of(model, initial_images(1, (32, 32, 3), (0, 255), 0))[0, 2]
    # three different images of the same output index
    img = visualize_activation(model.input, layer_dict["predictions"], filter_indices=[2, 2, 2], max_iter=500)
    assert img.shape[0] == 3
    # tv_weight=0 first, then a second call seeded with that image
    no_tv = visualize_activation(model.input, layer_dict["conv_3"], filter_indices=[7], tv_weight=0, verbose=True)
    post_tv = visualize_activation(model.input, layer_dict["conv_3"], filter_indices=[7], tv_weight=1,
                                   seed_img=no_tv, verbose=True, max_iter=300)
    tv = lambda x: np.abs(np.diff(x.astype(np.float32), axis=1)).mean() + np.abs(np.diff(x.astype(np.float32), axis=2)).mean()
    assert tv(post_tv) < tv(no_tv)


def test_deep_dream_exaggerates_a_photo_without_replacing_it(demo_model, test_images):
    x, _ = test_images
    photo = x[:2]
    energy = DeepDream("conv_2") + 0.5 * TotalVariation()
    result = Optimizer(demo_model, energy, parameterization="pixels").minimize(seed_input=photo, max_iter=40, seed=0, verbose=False,
                                                    jitter=0)
    dream = result.history["deep_dream"]
    assert np.all(dream[-1] < dream[0] * 1.5)  # the (negative) activation energy grew by half
    changed = result.images.astype(np.float32)
    assert np.abs(changed - photo).mean() > 5  # visibly changed
    for before, after in zip(photo, changed):
        assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.5  # still the same picture


def test_stitch_images_places_tiles_row_by_row():
    tiles = np.stack([np.full((2, 3, 1), i, np.uint8) for i in range(5)])
    grid = stitch_images(tiles, cols=3, margin=1, fill=255)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 1)
    assert grid[0, 0, 0] == 0 and grid[0, 4, 0] == 1 and grid[0, 8, 0] == 2
    assert grid[3, 0, 0] == 3 and grid[3, 4, 0] == 4
    assert grid[2, 0, 0] == 255 and grid[3, 8, 0] == 255  # margin and the empty sixth tile
    with pytest.raises(ValueError, match="cols must be a positive int, got 0"):
        stitch_images(tiles, cols=0)
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        stitch_images(np.zeros(3))


def test_deprocess_image_maps_the_range_and_stretches():
    assert deprocess_image(np.array([[-1.0, 0.0, 1.0]])[..., None], input_range=(-1, 1)).ravel().tolist() == \
        [0, 128, 255]
    stretched = deprocess_image(np.array([[[[2.0], [3.0], [4.0]]]]))
    assert stretched.ravel().tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="NaN"):
        deprocess_image(np.array([np.nan]))


def test_dataset_is_balanced_and_reproducible():
    x, y = make_dataset(40, seed=3)
    x2, y2 = make_dataset(40, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.bincount(y).tolist() == [10, 10, 10, 10]
    assert 0 <= x.min() and x.max() <= 255 and x.std() > 30


def test_saved_images_are_readable_and_atomic(tmp_path):
    import os
    import stat

    from visopt import save_image

    path = save_image(tmp_path / "sub" / "grid.png", np.zeros((4, 5, 3), np.uint8))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary left behind
    with pytest.raises(ValueError, match="uint8"):
        save_image(tmp_path / "bad.png", np.zeros((4, 5, 3), np.float32))
    assert not (tmp_path / "bad.png").exists()


def test_visualize_activation_passes_score(demo_model):
    logits = visualize_activation(demo_model, "predictions", [1], max_iter=30, seed=0, score="activation",
                                  parameterization="pixels")
    log_p = visualize_activation(demo_model, "predictions", [1], max_iter=30, seed=0, score="log_probability",
                                 parameterization="pixels")
    assert np.abs(logits.astype(int) - log_p.astype(int)).mean() > 5
    with pytest.raises(ValueError, match="unknown score 'prob'"):
        visualize_activation(demo_model, "predictions", [1], score="prob")


def test_repeated_requests_reuse_the_optimizer_and_free_deleted_models():
    import gc
    import time
    import weakref

    from conftest import small_conv_model
    from visopt import _cache

    model = small_conv_model((12, 12, 3), seed=9, name="cached")
    first = visualize_activation(model, "conv_b", [1, 2], max_iter=5, seed=0, input_range=(0, 1))
    entries = _cache._CACHE[model]
    assert len(entries) == 1
    again = visualize_activation(model, "conv_b", [1, 2], max_iter=5, seed=0, input_range=(0, 1))
    assert len(entries) == 1  # the same Optimizer served the second call
    np.testing.assert_array_equal(first, again)  # and its state was reset: same seed, same images
    visualize_activation(model, "conv_b", [1, 2], max_iter=5, seed=0, input_range=(0, 1), tv_weight=0)
    assert len(entries) == 2  # another energy is another entry
    ref = weakref.ref(model)
    del model, entries
    deadline = time.monotonic() + 5
    while ref() is not None and time.monotonic() < deadline:  # a worker thread may hold a frame for a moment
        gc.collect()
        time.sleep(0.05)
    assert ref() is None  # the cache did not keep the model alive


def test_lp_norm_joins_the_energy_of_pixel_images_only(demo_model):
    """A Fourier image is bounded by its sigmoid; LPNorm's pull, which does not fade at grey, is left out."""
    class Terms(OptimizerCallback):
        def on_end(self, result):
            self.names = set(result.history)

    for options, expected in (({}, False), ({"parameterization": "fourier"}, False),
                              ({"parameterization": "pixels"}, True),
                              ({"parameterization": "fourier", "lp_norm_weight": 0.5}, True)):
        terms = Terms()
        visualize_activation(demo_model, "predictions", 0, max_iter=2, callbacks=[terms], **options)
        assert ("lp_norm" in terms.names) is expected, options
        assert "total_variation" in terms.names
