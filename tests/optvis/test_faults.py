"""Faults during an optimization: an interrupted or failed run publishes nothing, threads do not mix runs."""

import threading
import warnings

import imageio.v2 as imageio
import numpy as np
import pytest

from visopt import ActivationMaximization, Optimizer, OptimizerCallback, ProgressRecorder, visualize_activation


class StopAt(OptimizerCallback):
    """Raise ``error`` at ``step``: a Ctrl-C, or a failing user callback."""

    wants_images = False

    def __init__(self, step, error):
        self.step, self.error = step, error
        self.aborted = self.ended = None

    def on_step(self, step, images, values):
        if step == self.step:
            raise self.error

    def on_end(self, result):
        self.ended = result

    def on_abort(self, error):
        self.aborted = error


def gif_frames(path):
    return len(imageio.mimread(path))


@pytest.fixture(scope="module")
def optimizer(demo_model):
    return Optimizer(demo_model, ActivationMaximization("predictions", [0, 1]))


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("a callback failed")])
def test_an_interrupted_run_keeps_the_previous_animation_and_leaves_no_partial_file(optimizer, tmp_path, error):
    path = tmp_path / "run.gif"
    optimizer.minimize(max_iter=12, seed=0, verbose=False, progress_gif_path=path)
    before = path.read_bytes()
    assert gif_frames(path) == 12

    stop = StopAt(4, error)
    with pytest.raises(type(error)):
        optimizer.minimize(max_iter=12, seed=1, verbose=False, progress_gif_path=path, callbacks=[stop])
    assert path.read_bytes() == before  # the complete animation of the first run, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gif"]  # no .part file, no partial file
    assert stop.aborted is error and stop.ended is None  # aborted, not ended


def test_a_nan_failure_publishes_nothing(optimizer, demo_model, tmp_path):
    from test_optimizer import ExplodesAfter

    path = tmp_path / "nan.gif"
    opt = Optimizer(demo_model, ActivationMaximization("predictions", 0) + ExplodesAfter(3))
    with pytest.raises(FloatingPointError):
        opt.minimize(max_iter=10, seed=0, verbose=False, progress_gif_path=path)
    assert list(tmp_path.iterdir()) == []


def test_keep_partial_keeps_the_frames_under_a_partial_name(optimizer, tmp_path):
    path = tmp_path / "run.gif"
    recorder = ProgressRecorder(path, keep_partial=True)
    with pytest.raises(KeyboardInterrupt):
        optimizer.minimize(max_iter=12, seed=0, verbose=False, callbacks=[recorder, StopAt(4, KeyboardInterrupt())])
    assert not path.exists()
    assert recorder.partial_path == tmp_path / "run.partial.gif"
    assert gif_frames(recorder.partial_path) == 5  # steps 0-4 were recorded before the stop
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.partial.gif"]


def test_bad_progress_paths_fail_before_the_first_step(optimizer, tmp_path):
    (tmp_path / "folder.gif").mkdir()
    stop = StopAt(0, AssertionError("a step ran"))
    with pytest.raises(IsADirectoryError, match="folder.gif' is an existing folder"):
        optimizer.minimize(max_iter=5, verbose=False, progress_gif_path=tmp_path / "folder.gif", callbacks=[stop])
    with pytest.raises(ValueError, match="path is empty"):
        optimizer.minimize(max_iter=5, verbose=False, progress_gif_path="", callbacks=[stop])


def test_warn_returns_the_last_finite_iterate(demo_model):
    from test_optimizer import ExplodesAfter, Recorder

    opt = Optimizer(demo_model, ActivationMaximization("predictions", 0) + ExplodesAfter(5))
    recorder = Recorder()
    with pytest.warns(RuntimeWarning, match="the images of step 4"):
        result = opt.minimize(max_iter=20, seed=0, verbose=False, on_nonfinite="warn", callbacks=[recorder])
    assert result.steps == 5 and recorder.steps == [0, 1, 2, 3, 4]
    # the images the last finite energy was measured on, not the update after them that gave NaN
    np.testing.assert_array_equal(result.images, recorder.images[-1])
    assert np.all(np.isfinite(result.gradients)) and np.abs(result.gradients).max() > 0


def test_warn_at_the_first_step_returns_the_starting_images(demo_model):
    from test_optimizer import ExplodesAfter

    opt = Optimizer(demo_model, ActivationMaximization("predictions", 0) + ExplodesAfter(0))
    start = np.full((1, 32, 32, 3), 100, np.uint8)
    with pytest.warns(RuntimeWarning, match="the starting images"):
        result = opt.minimize(seed_input=start, max_iter=5, seed=0, verbose=False, on_nonfinite="warn")
    assert result.steps == 0
    assert np.abs(result.images.astype(int) - 100).max() <= 1


def test_two_threads_on_one_model_equal_sequential_runs(demo_model):
    # one request, so one cached Optimizer (one set of variables) shared by the threads; other seeds
    requests = [([0, 1, 2, 3], seed) for seed in range(4)]

    def run(indices, seed):
        return visualize_activation(demo_model, "predictions", indices, max_iter=25, seed=seed, verbose=False)

    sequential = [run(*r) for r in requests]
    results = [None] * len(requests)
    errors = []

    def worker(i):
        try:
            results[i] = run(*requests[i])
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, sequential):
        np.testing.assert_array_equal(got, want)


def test_a_failing_on_abort_does_not_hide_the_error_or_skip_the_others(optimizer, tmp_path):
    class BadAbort(OptimizerCallback):
        def on_abort(self, error):
            raise OSError("cannot clean up")

    path = tmp_path / "a.gif"
    recorder = ProgressRecorder(path)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(KeyboardInterrupt):
        warnings.simplefilter("always")
        optimizer.minimize(max_iter=6, seed=0, verbose=False,
                           callbacks=[BadAbort(), recorder, StopAt(2, KeyboardInterrupt())])
    assert any("BadAbort.on_abort failed: cannot clean up" in str(w.message) for w in caught)
    assert list(tmp_path.iterdir()) == []  # the recorder after it was still aborted


def test_minimize_called_from_its_own_callback_is_refused(optimizer):
    class Nested(OptimizerCallback):
        wants_images = False

        def on_step(self, step, images, values):
            if step == 1:
                optimizer.minimize(max_iter=2, verbose=False)

    with pytest.raises(RuntimeError, match="from inside a run of the same Optimizer"):
        optimizer.minimize(max_iter=4, seed=0, verbose=False, callbacks=[Nested()])
    assert optimizer.minimize(max_iter=2, seed=0, verbose=False).steps == 2  # the lock was released


@pytest.mark.parametrize("parameterization", ["pixels", "fourier"])
def test_result_gradients_belong_to_the_result_even_after_another_run(demo_model, parameterization):
    opt = Optimizer(demo_model, ActivationMaximization("predictions", [0, 1]), parameterization=parameterization)
    first = opt.minimize(max_iter=5, seed=0, verbose=False)
    opt.minimize(max_iter=5, seed=1, verbose=False)  # the same variables, other images
    again = Optimizer(demo_model, ActivationMaximization("predictions", [0, 1]), parameterization=parameterization)
    reference = again.minimize(max_iter=5, seed=0, verbose=False)
    np.testing.assert_allclose(first.gradients, reference.gradients, rtol=1e-4, atol=1e-6)


def test_an_interrupt_while_the_animation_is_finished_leaves_no_temporary_file(optimizer, tmp_path, monkeypatch):
    from visopt.frames import sinks

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(sinks._GifSink, "finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        optimizer.minimize(max_iter=3, seed=0, verbose=False, progress_gif_path=tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []
