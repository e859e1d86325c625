"""The snapshot store at scale: a budget that holds, crash-safe thinning, float16, sampled rows, the reader's checks."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from visopt.render.colormaps import colour_scale
from visopt.render.weight_images import WeightRenderer
from visopt.store import SnapshotFolder, SnapshotStore
from visopt.store import writer as store_writer
from visopt.store.writer import thin_folder

ROOT = Path(__file__).resolve().parents[2]
BIG = {"path": "emb/embeddings", "layer": "emb", "index": 1, "name": "layer_emb-weights_01", "shape": [200, 32],
       "kind": "matrix", "gates": 1}
SMALL = {"path": "out/kernel", "layer": "out", "index": 1, "name": "layer_out-weights_01", "shape": [32, 2],
         "kind": "matrix", "gates": 1}


def disk(folder):
    """Bytes of the snapshot files (what max_bytes counts; no lock file, no videos)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*")
               if p.is_file() and p.name != ".visopt.lock" and p.suffix not in (".mp4", ".gif"))


def record(slot):
    return {"epoch": slot // 50, "batch": slot % 50, "step": slot}


def run_store(folder, slots, weights=(BIG, SMALL), **options):
    """Feed ``slots`` scheduled snapshots, each array filled with its slot number; returns the store."""
    store = SnapshotStore(folder, [dict(w) for w in weights], **options)
    for slot in range(slots):
        due = store.due(slot)
        if due is not None:
            arrays = [np.full(w["shape"], slot, np.float32) if is_due else None for w, is_due in zip(weights, due)]
            store.append(record(slot), arrays, slot=slot)
    return store


def assert_consistent(folder):
    """Every row the reader gives is the snapshot its record names (arrays hold their slot number)."""
    folder = SnapshotFolder(folder)
    for weight in folder.weights:
        values, indices = folder.values(weight["path"]), folder.indices(weight["path"])
        assert len(values) == len(indices)
        steps = [folder.records[i]["step"] for i in indices]
        np.testing.assert_array_equal(values.reshape(len(values), -1)[:, 0], steps)
    return folder


# -- the budget --------------------------------------------------------------------------------------
def test_a_budget_holds_at_every_moment_and_the_kept_snapshots_span_the_run(tmp_path, monkeypatch):
    budget = 300_000  # one snapshot: 25.9 KB; 300 of them would take 7.8 MB
    peaks = []
    original = store_writer.NpyStack.thinned

    def thinned(self, path, dtype):  # the peak of a thinning: the new stack is on disk, the old one not yet gone
        stack = original(self, path, dtype)
        peaks.append(disk(tmp_path / "w"))
        return stack

    monkeypatch.setattr(store_writer.NpyStack, "thinned", thinned)
    store = SnapshotStore(tmp_path / "w", [dict(BIG), dict(SMALL)], max_bytes=budget)
    sizes = []
    for slot in range(300):
        due = store.due(slot)
        if due is not None:
            store.append(record(slot), [np.full(w["shape"], slot, np.float32) for w in (BIG, SMALL)], slot=slot)
        sizes.append(disk(tmp_path / "w"))
    store.close()

    assert max(sizes) <= budget and peaks and max(peaks) <= budget  # within it, thinning included
    assert disk(tmp_path / "w") >= budget // 4  # the budget is used, not squandered
    folder = assert_consistent(tmp_path / "w")
    steps = [r["step"] for r in folder.records]
    assert store.factor == 64 and steps == list(range(0, 300, 64))  # evenly spaced from the first snapshot
    assert steps[-1] >= 300 - store.factor  # ... to the end of the run
    assert folder.manifest["thinned"] == 64 and folder.manifest["max_bytes"] == budget
    assert sorted(p.name for p in (tmp_path / "w" / "snapshots").iterdir()) == [  # no stale stack, no temp file
        "layer_emb-weights_01.t6.npy", "layer_out-weights_01.t6.npy"]


def test_periods_and_thinning_keep_rows_on_their_snapshots(tmp_path):
    weights = (BIG, dict(SMALL, period=3))
    store = run_store(tmp_path / "w", 200, weights, max_bytes=250_000)
    store.close()
    folder = assert_consistent(tmp_path / "w")
    every = {w["path"]: w["every"] for w in folder.weights}
    assert store.factor == 64 and every == {"emb/embeddings": 1, "out/kernel": 3}  # lcm(64, 3) / 64
    assert list(folder.indices("out/kernel")) == list(range(0, len(folder), 3))
    assert folder.manifest["version"] == 2  # readers that do not know "every" refuse it


def test_a_budget_too_small_for_two_snapshots_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"max_bytes=30000 cannot hold two snapshots .*one takes 25856 bytes "
                                         r"\(float32\).*at least \d+"):
        SnapshotStore(tmp_path / "w", [dict(BIG), dict(SMALL)], max_bytes=30_000)
    assert not (tmp_path / "w").exists()
    with pytest.raises(ValueError, match="max_bytes must be a positive number of bytes or None, got -1"):
        SnapshotStore(tmp_path / "w", [dict(BIG)], max_bytes=-1)


# -- faults while thinning ---------------------------------------------------------------------------
class Killed(BaseException):
    """The process dies here: nothing after it runs, not even clean-up."""


def first_thinning(folder, budget=300_000):
    """The slot whose append sets off the first thinning of a store of BIG and SMALL with ``budget``."""
    probe = run_store(folder, 1, max_bytes=budget)
    slot = 1
    while probe.factor == 1:
        probe.append(record(slot), [np.full(w["shape"], slot, np.float32) for w in (BIG, SMALL)], slot=slot)
        slot += 1
    probe.close()
    return slot - 1


@pytest.mark.parametrize("target, operations", [("publish", 2), ("atomic_write_bytes", 5), ("unlink", 2)])
def test_a_kill_at_any_step_of_a_thinning_leaves_a_readable_consistent_folder(tmp_path, monkeypatch, target,
                                                                                operations):
    # find the snapshot that sets off the first thinning; then, for every n, die right after the n-th
    # file operation of that thinning (2 stacks published, 5 atomic writes: manifest, 2 commits, journal,
    # manifest; 2 old stacks deleted) and read what is left
    first = first_thinning(tmp_path / "probe")
    for n in range(1, operations + 2):
        folder = tmp_path / f"{target}{n}"
        store = run_store(folder, first, max_bytes=300_000)
        assert store.factor == 1
        calls = {"n": 0}
        owner = Path if target == "unlink" else store_writer
        original = getattr(owner, target)

        def dying(*args, _original=original, **kwargs):
            result = _original(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == n:
                raise Killed
            return result

        monkeypatch.setattr(owner, target, dying)
        with pytest.raises(Killed) if n <= operations else _no_kill():
            for slot in range(first, first + 3):
                store.append(record(slot), [np.full(w["shape"], slot, np.float32) for w in (BIG, SMALL)], slot=slot)
        monkeypatch.undo()
        store._lock.release()  # the kernel drops a killed process's lock
        read = assert_consistent(folder)  # one side of every step, never a mix
        steps = [r["step"] for r in read.records]
        assert steps in [list(range(first))] + [list(range(0, end, 2)) for end in range(first, first + 4)], steps
        again = run_store(folder, 5)  # the next recording there clears what the kill left
        again.close()
        assert sorted(p.name for p in (folder / "snapshots").iterdir()) == ["layer_emb-weights_01.npy",
                                                                             "layer_out-weights_01.npy"]


class _no_kill:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_full_disk_while_thinning_keeps_the_previous_snapshots(tmp_path, monkeypatch):
    from conftest import FullDisk

    class FullDiskFile(FullDisk):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    first = first_thinning(tmp_path / "probe")
    store = run_store(tmp_path / "w", first, max_bytes=300_000)
    real_open = open

    def full_open(path, mode="r", *args, **kwargs):  # the disk is full when the first thinned stack is written
        handle = real_open(path, mode, *args, **kwargs)
        stack = "w" in mode and str(path).endswith(".part") and ".npy." in str(path)
        return FullDiskFile(handle, after_bytes=4096) if stack else handle

    monkeypatch.setattr("builtins.open", full_open)
    with pytest.raises(OSError, match="No space left"):
        store.append(record(first), [np.full(w["shape"], first, np.float32) for w in (BIG, SMALL)], slot=first)
    monkeypatch.undo()
    store._lock.release()
    read = assert_consistent(tmp_path / "w")
    assert [r["step"] for r in read.records] == list(range(first))  # nothing lost, nothing half-thinned
    assert not list((tmp_path / "w" / "snapshots").glob(".*.part"))  # no temporary file left


def test_a_process_killed_while_it_thins_leaves_a_readable_folder(tmp_path):
    """A real SIGKILL at two moments of a store that thins every few snapshots."""
    script = textwrap.dedent(f"""
        import sys, types
        package = types.ModuleType("visopt")  # the store without visopt/__init__ (and TensorFlow): a fast start
        package.__path__ = [{str(ROOT / 'visopt')!r}]
        sys.modules["visopt"] = package
        sys.path.insert(0, {str(ROOT / 'tests' / 'store')!r})
        from test_budget import run_store
        run_store(sys.argv[1], 10 ** 9, max_bytes=150_000)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for delay in (0.7, 1.3):
        folder = tmp_path / f"killed{delay}"
        proc = subprocess.Popen([sys.executable, "-c", script, str(folder)], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not (folder / "manifest.json").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -9, proc.stderr.read().decode()[-2000:]
        read = assert_consistent(folder)
        assert len(read) >= 2 and json.loads((folder / "manifest.json").read_text())["thinned"] >= 2


# -- float16, sampled rows, offline thinning ---------------------------------------------------------
def test_float16_keeps_values_finite_and_renders_within_one_colour_step(tmp_path):
    rng = np.random.default_rng(0)
    snapshots = rng.normal(0, 0.05, (6, 64, 48)).astype(np.float32)
    snapshots[5, 0, 0] = 1e5  # beyond float16: clipped to 65504, not Inf
    store = SnapshotStore(tmp_path / "h", [dict(BIG, shape=[64, 48])], dtype="float16")
    for i, array in enumerate(snapshots):
        store.append(record(i), [array])
    store.close()
    half = SnapshotFolder(tmp_path / "h").values("emb/embeddings")
    assert half.dtype == np.float16 and half[5, 0, 0] == 65504 and np.isfinite(half).all()
    assert (tmp_path / "h" / "snapshots" / "layer_emb-weights_01.npy").stat().st_size < snapshots.nbytes / 2 + 256
    snapshots[5, 0, 0] = 0.0
    half = np.array(half)
    half[5, 0, 0] = 0.0
    for cmap in ("gray", "RdBu", "viridis"):
        exact = WeightRenderer((64, 48), cmap=cmap, value_range=colour_scale(snapshots, cmap))
        rounded = WeightRenderer((64, 48), cmap=cmap, value_range=colour_scale(half, cmap))
        steps = np.concatenate([np.abs(exact.codes(a).astype(int) - rounded.codes(h).astype(int))
                                for a, h in zip(snapshots, half)])
        # the stated error: at most one of 256 colour steps, and on few values
        assert steps.max() <= 1 and steps.mean() < 0.05, (cmap, steps.max(), steps.mean())


def test_the_reader_refuses_bad_every_and_rows_naming_the_field(tmp_path):
    store = run_store(tmp_path / "w", 3)
    store.close()
    manifest_path = tmp_path / "w" / "manifest.json"
    good = json.loads(manifest_path.read_text())
    for change, message in [
            (dict(every=0), r"weights\[0\].every must be a positive int, got 0"),
            (dict(rows=[0, 1], full_shape=[300, 32]),
             r"weights\[0\].rows must be 200 increasing row indices below 300"),
            (dict(rows=list(range(200))[::-1], full_shape=[300, 32]), r"weights\[0\].rows must be 200 increasing"),
            (dict(rows=list(range(200)), full_shape=[100, 32]), r"weights\[0\].rows must be 200 increasing row indices "
                                                                r"below 100"),
            (dict(rows=list(range(200)), full_shape=[300, 8]),
             r"weights\[0\].full_shape must be .* ending like shape")]:
        manifest = json.loads(json.dumps(good))
        manifest["weights"][0].update(change)
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(ValueError, match=message):
            SnapshotFolder(tmp_path / "w")


def test_thin_folder_brings_a_finished_folder_within_a_budget(tmp_path):
    store = run_store(tmp_path / "w", 40)
    store.close()
    assert disk(tmp_path / "w") > 900_000
    kept = thin_folder(tmp_path / "w", 300_000)
    folder = assert_consistent(tmp_path / "w")
    assert kept == len(folder) == 10 and disk(tmp_path / "w") <= 300_000
    assert [r["step"] for r in folder.records] == list(range(0, 40, 4))
    assert thin_folder(tmp_path / "w", 300_000) == 10  # already within: unchanged
    with pytest.raises(ValueError, match="max_bytes must be a positive number of bytes, got 0"):
        thin_folder(tmp_path / "w", 0)
