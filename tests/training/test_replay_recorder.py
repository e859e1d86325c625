"""ReplayRecorder: the points it records (epochs, batches, a second fit), the probe bound, float16 storage."""

import keras
import numpy as np
import pytest

import visopt
from conftest import WeightCheckpoints, replay_data, replay_model
from visopt.replay import Replay


def test_a_second_fit_appends_and_new_run_starts_over(tmp_path):
    model, _, _ = replay_model("binary")
    x, y = replay_data("binary")
    recorder = visopt.ReplayRecorder(tmp_path, x, y)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[recorder])
    checkpoints = WeightCheckpoints()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0,
              callbacks=[visopt.ReplayRecorder(tmp_path, x, y), checkpoints])  # a new recorder, same folder
    replay = Replay(tmp_path)
    assert [(p["epoch"], p["step"]) for p in replay.points] == [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]
    np.testing.assert_array_equal(replay.model_at(4).get_weights()[0], checkpoints.weights[-1][0])
    np.testing.assert_array_equal(replay.model_at(2).get_weights()[0], checkpoints.weights[0][0])

    fresh, _, _ = replay_model("binary")  # a re-run script: a new model, appended by mistake
    with pytest.warns(UserWarning, match="weights differ from its last recorded point"):
        fresh.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[visopt.ReplayRecorder(tmp_path, x, y)])
    with pytest.warns(UserWarning, match="its probe sample comes from the first fit"):
        fresh.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[visopt.ReplayRecorder(tmp_path, x[:50], y[:50])])

    model.fit(x, y, epochs=1, batch_size=32, verbose=0,
              callbacks=[visopt.ReplayRecorder(tmp_path, x, y, new_run=True)])
    assert [(p["epoch"], p["step"]) for p in Replay(tmp_path).points] == [(0, 0), (1, 3)]


def test_batch_points_and_the_probe_bound(tmp_path):
    model, _, _ = replay_model("binary")
    x, y = replay_data("binary", 200)
    with pytest.warns(UserWarning, match="keeps a random sample of 50 of the 200 samples of x"):
        recorder = visopt.ReplayRecorder(tmp_path, x, y, batch_interval=4, max_samples=50)
    model.fit(x, y, epochs=2, batch_size=20, verbose=0, callbacks=[recorder])  # 10 batches an epoch
    replay = Replay(tmp_path)
    assert [(p["epoch"], p["batch"], p["step"]) for p in replay.points] == [
        (0, 0, 0), (0, 4, 4), (0, 8, 8), (1, 0, 10), (1, 4, 14), (1, 8, 18), (2, 0, 20)]
    assert len(replay.x) == len(replay.y) == 50
    rows = {tuple(row) for row in x}
    assert all(tuple(row) in rows for row in replay.x)  # a sample of x, not something else
    assert "loss" in replay.points[3]["logs"] and "loss" not in replay.points[1]["logs"]


def test_float16_storage_is_close_and_half_the_size(tmp_path):
    model, _, _ = replay_model("softmax")
    x, y = replay_data("softmax")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[visopt.ReplayRecorder(tmp_path / "32", x, y),
                         visopt.ReplayRecorder(tmp_path / "16", x, y, dtype="float16")])
    full, half = Replay(tmp_path / "32"), Replay(tmp_path / "16")
    for k in range(len(full)):
        np.testing.assert_allclose(half.probabilities(k), full.probabilities(k), atol=5e-3)
    payload = [sum(np.load(f, mmap_mode="r").nbytes for f in (tmp_path / d / "snapshots").iterdir())
               for d in ("32", "16")]
    assert payload[1] * 2 == payload[0] > 0


def test_bad_arguments(tmp_path):
    x, y = replay_data("binary")
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float16'\], got 'int8'"):
        visopt.ReplayRecorder(tmp_path, x, y, dtype="int8")
    with pytest.raises(ValueError, match="x and y need the same number of samples"):
        visopt.ReplayRecorder(tmp_path, x, y[:3])
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        visopt.ReplayRecorder(tmp_path, x, y, validation_data=x)


def test_an_interrupted_fit_keeps_its_points_and_the_next_one_goes_on(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    model, _, _ = replay_model("binary")
    x, y = replay_data("binary")
    recorder = visopt.ReplayRecorder(tmp_path, x, y)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[recorder, Interrupt()])
    assert [p["epoch"] for p in Replay(tmp_path).points] == [0, 1, 2]
    checkpoints = WeightCheckpoints()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[recorder, checkpoints])
    replay = Replay(tmp_path)
    assert [p["epoch"] for p in replay.points] == [0, 1, 2, 3]
    np.testing.assert_array_equal(replay.model_at(3).get_weights()[0], checkpoints.weights[-1][0])
