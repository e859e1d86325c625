"""Progress recording in the Optimizer: one frame per (thinned) step, through the frame writer."""

import imageio
import imageio.v3 as iio
import numpy as np
import pytest

from conftest import small_conv_model
from visopt import ActivationMaximization, LPNorm, Optimizer, ProgressRecorder, TotalVariation


@pytest.fixture(scope="module")
def optimizer():
    model = small_conv_model((16, 16, 3), seed=3)
    return Optimizer(model, ActivationMaximization("conv_b", [0, 1, 2]) + 0.1 * TotalVariation())


def test_keras_vis_seed_call_writes_a_gif_with_one_frame_per_step(tmp_path, demo_model):
    losses = [(ActivationMaximization(demo_model.get_layer("predictions"), [2]), 1), (LPNorm(), 10),
              (TotalVariation(), 1)]
    opt = Optimizer(demo_model.input, losses)
    target = tmp_path / "missing" / "opt_progress"
    opt.minimize(max_iter=30, verbose=True, jitter=0, progress_gif_path=str(target))
    gif = tmp_path / "missing" / "opt_progress.gif"
    decoded = iio.imread(gif, index=None)
    assert decoded.shape[0] == 30
    assert np.abs(decoded[0].astype(int) - decoded[-1].astype(int)).mean() > 3  # the image forms


def test_frame_every_thins_and_keeps_the_last_step(tmp_path, optimizer):
    path = tmp_path / "thin.gif"
    recorder = ProgressRecorder(path, frame_every=5)
    optimizer.minimize(max_iter=12, seed=0, verbose=False, callbacks=[recorder])
    assert recorder.frames == 4  # steps 0, 5, 10 and the last, 11
    assert iio.imread(path, index=None).shape[0] == 4
    optimizer.minimize(max_iter=12, seed=0, verbose=False, progress_gif_path=tmp_path / "b.gif", frame_every=3)
    assert iio.imread(tmp_path / "b.gif", index=None).shape[0] == 5  # steps 0, 3, 6, 9 and the last, 11


def test_one_image_of_the_batch_as_mp4(tmp_path, optimizer):
    tiled, single = tmp_path / "all.mp4", tmp_path / "one.mp4"
    optimizer.minimize(max_iter=6, seed=0, verbose=False, callbacks=[ProgressRecorder(tiled, annotate=False, min_size=1)])
    optimizer.minimize(max_iter=6, seed=0, verbose=False,
                       callbacks=[ProgressRecorder(single, image_index=1, annotate=False, min_size=1)])
    all_frames = [f for f in imageio.get_reader(tiled)]  # not list(): the reader's length is inf
    one_frames = [f for f in imageio.get_reader(single)]
    assert len(all_frames) == len(one_frames) == 6
    assert all_frames[0].shape[:2] == (34, 34)  # three 16-pixel tiles in a 2x2 grid (33, padded to even)
    assert one_frames[0].shape[:2] == (16, 16)


def test_float_range_images_are_mapped_with_the_input_range(tmp_path):
    model = small_conv_model((16, 16, 1), seed=4)
    opt = Optimizer(model, ActivationMaximization("conv_b", 0), input_range=(-1, 1))
    path = tmp_path / "float.gif"
    result = opt.minimize(max_iter=5, seed=0, verbose=False, progress_gif_path=path)
    last = iio.imread(path, index=None)[-1][..., 0]
    expected = np.rint((result.images[0, ..., 0] + 1) * 127.5)
    # the recorded frame is the image one update before the result, in the same grey scale
    assert abs(float(np.median(last)) - float(np.median(expected))) < 40


def test_a_failing_recorder_warns_once_and_the_optimization_finishes(tmp_path, optimizer, monkeypatch):
    recorder = ProgressRecorder(tmp_path / "fail.gif")
    original = recorder.on_begin

    def begin_then_break(max_iter, batch_size):
        original(max_iter, batch_size)

        def broken(frame):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(recorder.writer._sink, "add", broken)

    recorder.on_begin = begin_then_break
    with pytest.warns(RuntimeWarning, match="progress recording stopped: .*No space left") as caught:
        result = optimizer.minimize(max_iter=40, seed=0, verbose=False, callbacks=[recorder])
    assert result.steps == 40
    assert len([w for w in caught if "progress recording" in str(w.message)]) == 1
    assert not (tmp_path / "fail.gif").exists()


def test_recorder_arguments_are_checked():
    with pytest.raises(ValueError, match="frame_every must be a positive int, got 0"):
        ProgressRecorder("x.gif", frame_every=0)
    assert ProgressRecorder("opt_progress").path.name == "opt_progress.gif"
    assert ProgressRecorder("run.mp4").path.name == "run.mp4"


def test_an_image_index_outside_the_batch_raises_before_the_first_step(tmp_path, optimizer):
    recorder = ProgressRecorder(tmp_path / "one.gif", image_index=5)
    with pytest.raises(IndexError, match="image_index 5 is out of range for a batch of 3 images"):
        optimizer.minimize(max_iter=4, seed=0, verbose=False, callbacks=[recorder])
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
