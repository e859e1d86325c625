"""WeightSnapshot at scale: a disk budget, float16, chosen tensors, intervals, sampled rows, batched MP4s, videos
in the background."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from test_weight_snapshot import frames_of
from visopt import SnapshotFolder, WeightSnapshot, render_snapshots
from visopt.cli import main as cli_main
from visopt.frames import sinks

ROOT = Path(__file__).resolve().parents[2]


def embedding_model(vocabulary=2000, width=16, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,), dtype="int32")
    hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(vocabulary, width, name="embedding")(inputs))
    hidden = keras.layers.Dense(4, name="hidden")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def tokens(batches, vocabulary=2000, batch_size=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, vocabulary, (batches * batch_size, 5)), rng.integers(0, 2, batches * batch_size)


def snapshot_bytes(folder):
    """What max_bytes counts: the manifest, the journal and everything in snapshots/ (not the videos)."""
    folder = Path(folder)
    files = [folder / "manifest.json", folder / "journal.jsonl", *(folder / "snapshots").iterdir()]
    return sum(p.stat().st_size for p in files)


# -- the budget --------------------------------------------------------------------------------------
def test_a_run_recorded_with_a_budget_stays_within_it_and_renders_every_tensor_over_the_whole_run(tmp_path):
    budget = 400_000  # a snapshot is 128 KB of embedding and a little more; 80 of them would take 10 MB
    callback = WeightSnapshot(tmp_path, batch_interval=1, max_bytes=budget, render_videos=True, video_format="gif")
    x, y = tokens(40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedding_model().fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    thinning = [w for w in caught if "reached max_bytes=400000" in str(w.message)]
    assert len(thinning) == 1 and not callback.failed  # said once

    used = snapshot_bytes(tmp_path)
    assert used <= budget and used >= budget // 4  # within it (not just within 10%), and used
    folder = SnapshotFolder(tmp_path)
    factor = folder.manifest["thinned"]
    steps = [r["step"] for r in folder.records]
    assert factor >= 8 and steps == list(range(0, 80, factor))  # evenly spaced from the first batch ...
    assert steps[-1] >= 80 - factor  # ... to the last interval of the run
    assert len(steps) < callback.snapshots < 40  # after each thinning it copied half as often
    assert sorted(p.name for p in callback.video_paths) == [
        "layer_embedding-weights_01.gif", "layer_hidden-weights_01.gif", "layer_hidden-weights_02.gif",
        "layer_out-weights_01.gif", "layer_out-weights_02.gif"]
    assert all(len(frames_of(path)) == len(steps) for path in callback.video_paths)


# -- which tensors, how often, which rows ------------------------------------------------------------
def test_include_exclude_and_intervals_select_and_space_the_right_tensors(tmp_path):
    x, y = tokens(12)
    callback = WeightSnapshot(tmp_path, batch_interval=2, include=["*kernel", "*embeddings"], exclude="out/*",
                              intervals={"embedding/*": 6})
    embedding_model().fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    folder = SnapshotFolder(tmp_path)
    assert [w["path"] for w in folder.weights] == ["embedding/embeddings", "hidden/kernel"]
    assert [r["batch"] for r in folder.records] == [0, 2, 4, 6, 8, 10]
    assert list(folder.indices("embedding/embeddings")) == [0, 3] and len(folder.values("hidden/kernel")) == 6
    first = folder.values("embedding/embeddings")[0]
    np.testing.assert_array_equal(first, embedding_model().get_layer("embedding").embeddings.numpy())

    paths = ["embedding/embeddings", "hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    with pytest.raises(ValueError, match=r"the pattern '\*embeding\*' matches no weight path; valid paths: "
                                         + ", ".join(paths)):
        embedding_model().fit(x, y, verbose=0, callbacks=[WeightSnapshot(tmp_path / "typo", include="*embeding*")])
    with pytest.raises(ValueError, match=r"intervals\['\*emb\*'\]=5 must be a positive multiple of batch_interval=2 "
                                         r"\(2, 4, 6, ...\)"):
        WeightSnapshot(tmp_path, batch_interval=2, intervals={"*emb*": 5})
    with pytest.raises(ValueError, match="render_videos must be True, False or 'background', got 'yes'"):
        WeightSnapshot(tmp_path, render_videos="yes")
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float16'\], got 'float64'"):
        WeightSnapshot(tmp_path, dtype="float64")


def test_max_rows_keeps_an_evenly_spaced_sample_its_indices_in_the_manifest_and_the_pictures(tmp_path):
    x, y = tokens(4, vocabulary=3000)
    model = embedding_model(vocabulary=3000, width=8)
    initial = model.get_layer("embedding").embeddings.numpy()
    callback = WeightSnapshot(tmp_path, batch_interval=2, max_rows=100, dtype="float16", render_videos=True,
                              video_format="png")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    folder = SnapshotFolder(tmp_path)
    weight = folder.weight("embedding/embeddings")
    rows = np.rint(np.linspace(0, 2999, 100)).astype(int)
    assert weight["rows"] == rows.tolist() and weight["full_shape"] == [3000, 8] and weight["shape"] == [100, 8]
    assert folder.dtype == "float16" and folder.weight("hidden/kernel").get("rows") is None  # 4 rows: kept whole
    np.testing.assert_allclose(folder.values("embedding/embeddings")[0], initial[rows], rtol=1e-3, atol=1e-6)
    from visopt.render.weight_images import WeightRenderer
    renderer = WeightRenderer([100, 8], "matrix", row_labels=weight["rows"], value_range=(-1, 1))
    assert list(renderer.rows) == weight["rows"]  # the pictures are labelled with the recorded indices
    assert len(frames_of(tmp_path / "layer_embedding-weights_01")) == 2


# -- videos: batched MP4s, in the background ----------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale") / "w"
    x, y = tokens(6)
    embedding_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[WeightSnapshot(folder, batch_interval=1)])
    return folder


def test_one_ffmpeg_for_several_videos_writes_what_one_each_writes(recorded, tmp_path, monkeypatch):
    starts = []
    original = sinks.Mp4Batch._start
    monkeypatch.setattr(sinks.Mp4Batch, "_start", lambda self: starts.append(self.count) or original(self))
    batched = render_snapshots(recorded, out=tmp_path / "batched", format="mp4")
    assert starts == [5]  # five videos, one encoder process
    single = render_snapshots(recorded, out=tmp_path / "single", format="mp4", concurrency=1)
    assert starts == [5] and [p.name for p in batched] == [p.name for p in single]
    for one, other in zip(batched, single):
        a, b = frames_of(one), frames_of(other)
        assert len(a) == len(b) == 6 and all(np.array_equal(f, g) for f, g in zip(a, b))


def test_a_failure_inside_a_batch_leaves_no_video_and_no_partial_file(recorded, tmp_path, monkeypatch):
    original = sinks._BatchMember.add

    def add(self, frame):
        if self.index == 2 and self.frames == 3:
            raise OSError(28, "No space left on device")
        original(self, frame)

    monkeypatch.setattr(sinks._BatchMember, "add", add)
    with pytest.raises(Exception, match="No space left on device"):
        render_snapshots(recorded, out=tmp_path / "out", format="mp4")
    assert list((tmp_path / "out").iterdir()) == []  # no video, no .part file


def test_background_videos_let_fit_return_and_wait_gets_them(tmp_path):
    x, y = tokens(6)
    callback = WeightSnapshot(tmp_path, batch_interval=2, render_videos="background")
    embedding_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    paths = callback.wait()
    assert len(paths) == 5 and paths == callback.video_paths and not callback.failed
    assert all(len(frames_of(path)) == 3 for path in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part") or ".part." in p.name]


def test_a_script_that_exits_right_after_fit_still_gets_complete_videos(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'tests' / 'training')!r})
        from test_weight_snapshot_scale import embedding_model, tokens
        from visopt import WeightSnapshot
        x, y = tokens(6)
        callback = WeightSnapshot({str(tmp_path / 'w')!r}, batch_interval=1, render_videos="background")
        embedding_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        print("fit returned", callback.video_paths)   # nothing rendered yet; the interpreter exits next
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    videos = sorted((tmp_path / "w").glob("*.mp4"))
    assert len(videos) == 5 and all(len(frames_of(path)) == 6 for path in videos)
    assert not [p for p in (tmp_path / "w").iterdir() if ".part" in p.name]


# -- visopt render: the same budget and selection options ---------------------------------------------
def test_render_command_thins_to_a_budget_and_selects_by_pattern(recorded, tmp_path, capsys):
    folder = tmp_path / "w"
    folder.mkdir()
    for path in recorded.rglob("*"):
        if path.is_file() and path.name != ".visopt.lock":
            (folder / path.relative_to(recorded)).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(recorded)).write_bytes(path.read_bytes())
    assert cli_main(["render", str(folder), "--max-bytes", "400K", "--include", "*kernel", "--exclude", "out/*",
                     "--format", "gif"]) == 0
    out, err = capsys.readouterr()
    assert out.split() == [str(folder / "layer_hidden-weights_01.gif")]
    assert "kept 3 snapshot(s) within 409600 bytes" in err
    assert [r["batch"] for r in SnapshotFolder(folder).records] == [0, 2, 4]
    assert snapshot_bytes(folder) <= 400 * 1024
    with pytest.raises(SystemExit) as exit_:
        cli_main(["render", str(folder), "--max-bytes", "lots"])
    assert exit_.value.code == 2 and "--max-bytes: 'lots' is not a size" in capsys.readouterr().err
