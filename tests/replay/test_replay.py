"""Replay equals the checkpoints: at every recorded point, what it computes is what a model holding
the weights saved at that moment (a plain callback saving ``get_weights()``) computes."""

import json

import keras
import numpy as np
import pytest

import visopt
from conftest import WeightCheckpoints, replay_data, replay_model
from visopt.replay import Replay

EPOCHS = 4


@pytest.fixture(scope="module", params=["binary", "softmax", "regression", "batchnorm"])
def recorded(request, tmp_path_factory):
    kind = request.param
    model, loss, metric = replay_model(kind)
    x, y = replay_data(kind)
    folder = tmp_path_factory.mktemp(f"replay_{kind}")
    checkpoints = WeightCheckpoints()
    model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0,
              callbacks=[visopt.ReplayRecorder(folder, x, y), checkpoints])
    twin, _, _ = replay_model(kind)  # an independent model object to hold the checkpoints
    return {"replay": Replay(folder), "twin": twin, "weights": checkpoints.weights, "x": x, "y": y,
            "loss": keras.losses.get(loss), "metric": metric, "kind": kind}


def test_every_point_equals_its_checkpoint(recorded):
    replay, twin, x, y = recorded["replay"], recorded["twin"], recorded["x"], recorded["y"]
    assert len(replay) == EPOCHS + 1 == len(recorded["weights"])
    assert [p["epoch"] for p in replay.points] == list(range(EPOCHS + 1))
    assert [p["step"] for p in replay.points] == [0, 6, 12, 18, 24]
    curves = replay.loss_and_metric(recorded["metric"])
    for k, weights in enumerate(recorded["weights"]):
        twin.set_weights(weights)
        outputs = twin.predict(x, verbose=0)
        np.testing.assert_allclose(replay.probabilities(k), outputs, atol=1e-5)
        np.testing.assert_allclose(replay.losses(k), keras.ops.convert_to_numpy(recorded["loss"](y, outputs)),
                                   atol=1e-5)
        evaluated = twin.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
        assert curves["loss"][k] == pytest.approx(evaluated["loss"], abs=1e-5)
        assert curves[recorded["metric"]][k] == pytest.approx(evaluated[recorded["metric"]], abs=1e-5)
        for variable, value in zip(replay.model_at(k).weights, weights):  # BatchNorm statistics too
            np.testing.assert_array_equal(variable.numpy(), value)
    assert np.isnan(curves["logged_loss"][0]) and np.all(np.isfinite(curves["logged_loss"][1:]))
    assert replay.points[-1]["logs"]["learning_rate"] == pytest.approx(0.3)


def test_training_moves_the_replayedreplay_model(recorded):
    replay = recorded["replay"]
    assert replay.losses(-1).mean() < replay.losses(0).mean()
    assert not np.allclose(replay.layer_output(0, "hidden"), replay.layer_output(-1, "hidden"))


def test_hostile_folders(tmp_path):
    x, y = replay_data("binary")
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        Replay(tmp_path)

    model, _, _ = replay_model("binary")
    folder = tmp_path / "run"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[visopt.ReplayRecorder(folder, x, y)])
    replay = Replay(folder)
    with pytest.raises(IndexError, match=r"point 2 is out of range: .* holds points 0-1"):
        replay.probabilities(2)
    np.savez(folder / "probe.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))  # a pickle
    with pytest.raises(ValueError, match="pickle"):
        Replay(folder)

    outside = tmp_path / "elsewhere.keras"
    (folder / "model.keras").rename(outside)
    (folder / "model.keras").symlink_to(outside)
    np.savez(folder / "probe.npz", x=x, y=y)
    with pytest.raises(ValueError, match="leads outside"):
        Replay(folder).model_at(0)

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["weights"][0]["file"] = "../../etc/passwd.npy"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="is not a .npy file inside"):
        Replay(folder)
