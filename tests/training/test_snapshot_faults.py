"""The snapshot store under faults: hostile manifests, kills, full disks, a second writer, NaN weights, Ctrl-C."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import FullDisk
from test_weight_snapshot import data, frames_of, tiny_cnn
from visopt import FolderBusyError, SnapshotFolder, WeightSnapshot, render_snapshots
from visopt.cli import main as cli_main
from visopt.training import SnapshotStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A small finished recording, copied by each test that edits it."""
    folder = tmp_path_factory.mktemp("recorded") / "w"
    model = tiny_cnn()
    x, y = data(48)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[WeightSnapshot(folder, batch_interval=2)])
    return folder


def copy_of(recorded, tmp_path):
    target = tmp_path / "w"
    target.mkdir()
    for path in recorded.rglob("*"):
        if path.is_file() and path.name != ".visopt.lock":
            (target / path.relative_to(recorded)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(recorded)).write_bytes(path.read_bytes())
    return target


def edit_manifest(folder, change):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


# -- hostile manifests ------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, message", [
    ("name", "../escaped/pwned", r"weights\[0\].name '../escaped/pwned' is not a plain file name"),
    ("name", "/tmp/absolute", r"weights\[0\].name '/tmp/absolute' is not a plain file name"),
    ("name", ".hidden", r"weights\[0\].name '.hidden' is not a plain file name"),
    ("file", "../secret.npy", r"weights\[0\].file '../secret.npy' is not a .npy file inside"),
    ("file", "/etc/secret.npy", r"weights\[0\].file '/etc/secret.npy' is not a .npy file inside"),
    ("shape", [3, "x"], r"weights\[0\].shape must be a list of non-negative ints"),
    ("kind", "evil", r"weights\[0\].kind must be one of"),
])
def test_hostile_manifest_fields_are_refused_before_anything_is_read_or_written(recorded, tmp_path, field, value,
                                                                                 message):
    folder = copy_of(recorded, tmp_path)
    secret = tmp_path / "secret.npy"
    np.save(secret, np.full((9, 3, 3, 1, 3), 7.0, np.float32))
    edit_manifest(folder, lambda m: m["weights"][0].__setitem__(field, value))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=message):
        render_snapshots(folder, format="gif")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written, inside or outside
    assert not (tmp_path / "escaped").exists()


def test_a_stack_that_links_outside_the_folder_is_refused(recorded, tmp_path):
    folder = copy_of(recorded, tmp_path)
    secret = tmp_path / "secret.npy"
    np.save(secret, np.zeros((9, 3, 3, 1, 3), np.float32))
    stack = folder / "snapshots" / "layer_conv-weights_01.npy"
    stack.unlink()
    stack.symlink_to(secret)
    with pytest.raises(ValueError, match="is not a .npy file inside"):
        SnapshotFolder(folder)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("weights"), "weights must be a non-empty list, got None"),
    (lambda m: m.__setitem__("version", 7), "written by a newer visopt .format version 7"),
    (lambda m: m["snapshots"].append({"epoch": -1, "batch": 0, "step": 0}), r"snapshots\[\d+\] must have"),
    (lambda m: m["render"].__setitem__("fps", "fast"), "render.fps has a bad value 'fast'"),
    (lambda m: m["weights"][0].__setitem__("shape", [4, 4]), r"holds float32 snapshots of shape \[3, 3, 1, 3\]"),
])
def test_malformed_manifests_give_one_line_errors_naming_the_field(recorded, tmp_path, change, message, capsys):
    folder = copy_of(recorded, tmp_path)
    edit_manifest(folder, change)
    with pytest.raises(ValueError, match=message):
        SnapshotFolder(folder)
    assert cli_main(["render", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("visopt render: error: ") and "Traceback" not in err


# -- a killed run, a full disk ----------------------------------------------------------------------
def test_a_run_killed_in_epoch_0_renders_every_snapshot_it_took(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT / 'tests' / 'training')!r})
        import keras
        from test_weight_snapshot import data, tiny_cnn
        from visopt import WeightSnapshot

        class Kill(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch == 7:  # after WeightSnapshot took the snapshot of batch 7
                    journal = {str(tmp_path / 'w' / 'journal.jsonl')!r}
                    deadline = time.monotonic() + 60
                    while open(journal).read().count("\\n") < 8 and time.monotonic() < deadline:
                        time.sleep(0.01)  # the worker writes them; the manifest still lists none
                    os.kill(os.getpid(), signal.SIGKILL)

        snapshot = WeightSnapshot({str(tmp_path / 'w')!r}, batch_interval=1)
        x, y = data(80)
        tiny_cnn().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[snapshot, Kill()])
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["snapshots"] == []  # never rewritten
    folder = SnapshotFolder(tmp_path / "w")
    assert folder.recovered and [r["batch"] for r in folder.records] == list(range(8))
    paths = render_snapshots(tmp_path / "w", format="gif")
    assert len(paths) == 4 and all(len(frames_of(p)) == 8 for p in paths)


def test_a_full_disk_mid_run_keeps_the_snapshots_before_it(tmp_path, monkeypatch):
    from visopt.store import writer as snapshot_store

    original = snapshot_store.NpyStack.append
    calls = {"n": 0}

    def append(self, array):
        calls["n"] += 1
        if calls["n"] > 4 * 5 + 2:  # 4 weights: snapshots 0-4 complete, the disk fills inside snapshot 5
            raise OSError(28, "No space left on device")
        original(self, array)

    monkeypatch.setattr(snapshot_store.NpyStack, "append", append)
    snapshot = WeightSnapshot(tmp_path / "w", batch_interval=1)
    x, y = data(80)
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        tiny_cnn().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[snapshot])
    monkeypatch.undo()
    folder = SnapshotFolder(tmp_path / "w")
    assert [r["batch"] for r in folder.records] == [0, 1, 2, 3, 4]
    assert all(len(frames_of(p)) == 5 for p in render_snapshots(tmp_path / "w", format="gif"))


# -- one writer per folder --------------------------------------------------------------------------
def test_a_second_process_is_locked_out_with_a_clear_error(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from visopt.training import SnapshotStore
        store = SnapshotStore({str(tmp_path / 'w')!r}, [{{"path": "d/kernel", "layer": "d", "index": 1,
            "name": "layer_d-weights_01", "shape": [2], "kind": "vector", "gates": 1}}])
        print("locked", flush=True)
        sys.stdin.readline()
        store.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert proc.stdout.readline().strip() == b"locked"
        x, y = data(16)
        model = tiny_cnn()
        before = [w.numpy().copy() for w in model.weights]
        with pytest.raises(FolderBusyError, match=f"being written by another process .pid {proc.pid}"):
            model.fit(x, y, batch_size=8, verbose=0, callbacks=[WeightSnapshot(tmp_path / "w")])
        assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))  # refused before training
    finally:
        proc.communicate(b"\n", timeout=60)
    assert SnapshotFolder(tmp_path / "w").weights[0]["path"] == "d/kernel"  # the other run's folder, intact


def test_after_ctrl_c_in_fit_no_thread_or_file_stays_and_a_new_recording_takes_over(tmp_path):
    class CtrlC(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 3:
                raise KeyboardInterrupt

    first = WeightSnapshot(tmp_path / "w", batch_interval=1)
    x, y = data(80)
    with pytest.raises(KeyboardInterrupt):
        tiny_cnn().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[first, CtrlC()])
    deadline = time.monotonic() + 10
    while any(t.name == "visopt-weight-snapshots" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(t.name == "visopt-weight-snapshots" for t in threading.enumerate())
    open_files = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")]
    assert [f for f in open_files if str(tmp_path) in f] == [str(tmp_path / "w" / ".visopt.lock")]
    assert len(SnapshotFolder(tmp_path / "w")) == 4  # batches 0-3 (3 is taken before the interrupt): readable

    second = WeightSnapshot(tmp_path / "w", batch_interval=1)
    with pytest.warns(RuntimeWarning, match="takes over"):
        tiny_cnn().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[second])
    assert second.snapshots == 10 and not second.failed
    assert len(SnapshotFolder(tmp_path / "w")) == 10


# -- NaN weights ------------------------------------------------------------------------------------
def test_nan_weights_are_reported_once_and_marked_in_the_video(tmp_path, monkeypatch):
    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 6:  # the snapshot of batch 7 holds it; NaN reaches the other weights only after
                kernel = self.model.get_layer("out").kernel
                kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    snapshot = WeightSnapshot(tmp_path / "w", batch_interval=1)
    x, y = data(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_cnn().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[snapshot, Poison()])
    reports = [str(w.message) for w in caught if "became NaN/Inf" in str(w.message)]
    assert len(reports) == 1 and "['out/kernel']" in reports[0] and "epoch 0, batch 7" in reports[0]
    assert SnapshotFolder(tmp_path / "w").nonfinite == {"out/kernel": 7}

    from visopt.training import videos

    captions = {}

    class Recording(videos.FrameWriter):
        def write(self, images, text=None):
            captions.setdefault(self.path.name, []).append(text)
            super().write(images, text=text)

    monkeypatch.setattr(videos, "FrameWriter", Recording)
    with pytest.warns(RuntimeWarning, match="1 weight.s. hold NaN/Inf values, first 'out/kernel'.*batch 7"):
        render_snapshots(tmp_path / "w", format="gif")
    marked = [text.endswith("NaN/Inf!") for text in captions["layer_out-weights_01.gif"]]
    assert marked == [False] * 7 + [True]
    assert not any(text.endswith("NaN/Inf!") for text in captions["layer_conv-weights_01.gif"])


def test_a_full_disk_while_rendering_aborts_every_writer_and_leaves_no_partial_file(recorded, tmp_path, monkeypatch):
    from visopt import FrameWriterError
    from visopt.frames import sinks

    folder = copy_of(recorded, tmp_path)
    original = sinks._GifSink.add

    def add(self, frame):
        if "out-weights_01" in self.path.name and self.count == 2:
            self.handle = FullDisk(self.handle)  # this file's disk fills; closing it fails too
        original(self, frame)

    monkeypatch.setattr(sinks._GifSink, "add", add)
    with pytest.raises(FrameWriterError, match="No space left on device"):
        render_snapshots(folder, format="gif", concurrency=4)
    names = sorted(p.name for p in folder.iterdir())
    assert not [name for name in names if ".part" in name]  # every writer cleaned up, the failed one too
    # the two finished before the failure stay complete; the failed one and the one after it are not published
    assert [name for name in names if name.endswith(".gif")] == ["layer_conv-weights_01.gif",
                                                                 "layer_conv-weights_02.gif"]
    assert all(len(frames_of(folder / name)) == len(SnapshotFolder(folder)) for name in names if name.endswith(".gif"))


# -- links and special files planted in a folder ----------------------------------------------------
def test_a_snapshots_folder_that_is_a_link_is_refused_by_the_reader_and_the_writer(recorded, tmp_path):
    folder = copy_of(recorded, tmp_path)
    victim = tmp_path / "victim"
    (folder / "snapshots").rename(victim)
    (folder / "snapshots").symlink_to(victim)
    with pytest.raises(ValueError, match="is not a .npy file inside"):
        SnapshotFolder(folder)
    precious = sorted(p.name for p in victim.iterdir())
    with pytest.raises(OSError, match="is a link"):
        SnapshotStore(folder, [{"path": "d/kernel", "layer": "d", "index": 1, "name": "layer_d-weights_01",
                                "shape": [2], "kind": "vector", "gates": 1}])
    assert sorted(p.name for p in victim.iterdir()) == precious  # nothing deleted through the link


def test_the_writer_replaces_planted_links_instead_of_writing_through_them(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    notes, config = tmp_path / "notes.txt", tmp_path / "cfg"
    notes.write_text("keep me")
    config.write_text("keep me too")
    (folder / "journal.jsonl").symlink_to(notes)
    (folder / ".visopt.lock").symlink_to(config)
    store = SnapshotStore(folder, [{"path": "d/kernel", "layer": "d", "index": 1, "name": "layer_d-weights_01",
                                    "shape": [2], "kind": "vector", "gates": 1}])
    store.append({"epoch": 0, "batch": 0, "step": 0}, [np.zeros(2)])
    store.close()
    assert notes.read_text() == "keep me" and config.read_text() == "keep me too"
    assert len(SnapshotFolder(folder)) == 1


def test_a_fifo_in_place_of_a_stack_is_refused_without_blocking(recorded, tmp_path):
    folder = copy_of(recorded, tmp_path)
    stack = folder / "snapshots" / "layer_conv-weights_01.npy"
    stack.unlink()
    os.mkfifo(stack)
    with pytest.raises(ValueError, match="is not a regular file"):
        SnapshotFolder(folder)


@pytest.mark.parametrize("name", ["a\nb", "x:ads", "D:evil", "é" * 3, "n" * 129])
def test_weight_names_are_limited_to_the_characters_the_writer_uses(recorded, tmp_path, name):
    folder = copy_of(recorded, tmp_path)
    edit_manifest(folder, lambda m: m["weights"][0].__setitem__("name", name))
    with pytest.raises(ValueError, match="is not a plain file name"):
        SnapshotFolder(folder)


def test_deeply_nested_json_is_a_one_line_error(recorded, tmp_path):
    folder = copy_of(recorded, tmp_path)
    (folder / "manifest.json").write_text("[" * 100000)
    with pytest.raises(ValueError, match="is not valid JSON"):
        SnapshotFolder(folder)
    (tmp_path / "second").mkdir()
    folder = copy_of(recorded, tmp_path / "second")
    (folder / "journal.jsonl").write_text("[" * 100000 + "\n")
    assert len(SnapshotFolder(folder)) == len(SnapshotFolder(recorded))  # the manifest's records, not a crash
