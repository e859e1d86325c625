"""The snapshot store: weight snapshots written to disk during training, one growing ``.npy`` stack per tensor.

A snapshot folder (what :class:`~visopt.training.weight_snapshot.WeightSnapshot` and
:class:`~visopt.training.replay_recorder.ReplayRecorder` write during training) holds::

    manifest.json                                what was recorded (below)
    snapshots/layer_conv_1-weights_01.npy        float32 array (snapshots, *shape), one per weight tensor
    snapshots/layer_conv_1-weights_02.npy
    ...

Each ``.npy`` stack is grown by appending one snapshot at a time, and its header is rewritten after
every append, so the file is a valid ``.npy`` at every moment (``np.load(path, mmap_mode="r")``
reads it while training goes on). ``manifest.json`` is replaced atomically; it lists every weight
(``path`` = ``Variable.path``, ``layer``, ``index`` = 1-based position in ``layer.weights``,
``name``, ``shape``, ``kind`` (the picture layout, see :mod:`visopt.render.weight_images`;
the key keeps its first name so that old folders still read), ``gates``, ``file``) and every snapshot (``epoch``, ``batch``,
``step``; epochs and batches 0-based as Keras passes them to callbacks, ``step`` the number of
batches trained before the snapshot in the ``fit`` call, one timeline across epochs; optionally
``logs``, the Keras logs of that moment, name -> number). Stacks are float32, or float16 when the
manifest's ``dtype`` says so. It is
rewritten at every epoch end and at the end of training (``"complete": true``). Beside it,
``journal.jsonl`` gets one line per snapshot (its record) once the snapshot's arrays are on disk:
a run that was killed, or whose disk filled up, keeps every snapshot it journaled, and the reader
(which checks the manifest as untrusted input) renders them. ``.visopt.lock`` keeps a second
process from writing into the folder while a run records (:mod:`visopt._locks`).

A folder is read back by :class:`~visopt.store.folder.SnapshotFolder` and rendered by
:func:`~visopt.training.videos.render_snapshots`.

Example:
    >>> store = SnapshotStore("runs/w", [weight_record(entry) for entry in trainable_entries(model)])
    >>> store.append({"epoch": 0, "batch": 0, "step": 0}, [read(e.variable) for e in entries])
    >>> store.close()
"""

from __future__ import annotations

import json
import math
import struct
import threading
from pathlib import Path

import numpy as np

from visopt._atomic import atomic_write_bytes
from visopt._locks import FolderLock
from visopt._worker import BackgroundWorker
from visopt.model.weights import WeightEntry
from visopt.render.weight_images import default_layout

MANIFEST_NAME = "manifest.json"
#: A replay folder (ReplayRecorder) holds these two beside the store: the model once, the probe sample.
REPLAY_MODEL_NAME = "model.keras"
REPLAY_PROBE_NAME = "probe.npz"
JOURNAL_NAME = "journal.jsonl"
SNAPSHOT_FOLDER = "snapshots"
FORMAT_NAME = "visopt-weight-snapshots"
FORMAT_VERSION = 1
RENDER_FORMATS = ("mp4", "gif", "png")
DEFAULTS = {"cmap": "gray", "fps": 10, "video_format": "mp4", "max_frame_size": 512, "per_epoch": False}

_MAGIC = b"\x93NUMPY\x01\x00"


def weight_record(entry: WeightEntry) -> dict:
    """The manifest entry of one weight tensor (its picture layout under the key ``kind``)."""
    layout = "rnn" if entry.gates is not None else default_layout(entry.shape)
    return {"path": entry.path, "layer": entry.layer, "index": entry.index, "name": entry.name,
            "shape": list(entry.shape), "kind": layout, "gates": entry.gates or 1}


# -- writing --------------------------------------------------------------------------------
DTYPES = {"float32": "<f4", "float16": "<f2"}


def _npy_header(count: int, item_shape: tuple[int, ...], size: int, descr: str = "<f4") -> bytes:
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, (count,) + tuple(item_shape))
    padding = size - len(_MAGIC) - 2 - len(text) - 1
    if padding < 0:
        raise ValueError(f"snapshot count {count} does not fit the .npy header")
    return _MAGIC + struct.pack("<H", size - len(_MAGIC) - 2) + (text + " " * padding + "\n").encode("latin1")


def _npy_header_size(item_shape: tuple[int, ...]) -> int:
    """Header bytes with room for any count up to 10**18, a multiple of 64 as the format asks."""
    text = len("{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % ((10 ** 18,) + tuple(item_shape),))
    return int(math.ceil((len(_MAGIC) + 2 + text + 1) / 64) * 64)


class NpyStack:
    """A float32 (or float16) ``.npy`` file of shape ``(count, *item_shape)`` grown one item at a time.

    The header has a fixed size (room for a 19-digit count) and is rewritten after each append,
    so the file always loads with ``np.load``. The file is opened for each append and closed
    after it: no handle stays open between snapshots (a ``fit`` stopped by Ctrl-C leaves none),
    and what was appended is in the operating system's hands, so a killed process loses nothing.

    Example:
        >>> stack = NpyStack("w.npy", (3, 4))
        >>> stack.append(np.zeros((3, 4)))
        >>> np.load("w.npy").shape
        (1, 3, 4)
    """

    def __init__(self, path, item_shape, dtype: str = "float32", count: int | None = None):
        self.path = Path(path)
        self.item_shape = tuple(int(side) for side in item_shape)
        self.descr = DTYPES[dtype]
        self._header_size = _npy_header_size(self.item_shape)
        if count is None:  # a new stack
            self.count = 0
            with open(self.path, "wb") as handle:
                handle.write(_npy_header(0, self.item_shape, self._header_size, self.descr))
        else:  # continue an existing one after its first ``count`` items (later ones are overwritten)
            self.count = int(count)

    def append(self, array) -> None:
        array = np.asarray(array, dtype=self.descr)
        if array.shape != self.item_shape:
            raise ValueError(f"{self.path.name}: expected shape {self.item_shape}, got {array.shape}")
        with open(self.path, "r+b") as handle:
            # the data first, then the count: a crash in between leaves a valid file one item short
            handle.seek(self._header_size + self.count * array.nbytes)
            handle.write(np.ascontiguousarray(array).tobytes())
            handle.seek(0)
            handle.write(_npy_header(self.count + 1, self.item_shape, self._header_size, self.descr))
        self.count += 1


class SnapshotStore:
    """Create a snapshot folder and append snapshots to it (from one thread).

    Args:
        directory: the folder (created). Earlier ``.npy`` stacks in its ``snapshots/`` folder are
            deleted; the manifest and journal are replaced. Another process writing there is
            refused (``FolderBusyError``); an earlier store of this process is stopped.
        weights: one dict per weight tensor: ``path``, ``layer``, ``index``, ``name``, ``shape``,
            ``kind``, ``gates``. ``file`` is added.
        settings: rendering defaults stored in the manifest (``cmap``, ``fps``, ...).
        model: the model's name, for the manifest.
        dtype: ``"float32"`` or ``"float16"`` stacks (half the disk; values rounded to 11 bits).
        append: continue the snapshots of the folder's existing store (same weights, same dtype)
            instead of starting over; a folder without one starts a new store.

    Attributes:
        records: the snapshots appended (``epoch``, ``batch``, ``step``).
        nonfinite: ``{weight path: index of the first snapshot where it held NaN/Inf}``.

    Example:
        >>> store = SnapshotStore("runs/w", [{"path": "d/kernel", "layer": "d", "index": 1,
        ...     "name": "layer_d-weights_01", "shape": [3, 2], "kind": "matrix", "gates": 1}])
        >>> store.append({"epoch": 0, "batch": 0, "step": 0}, [kernel])
        >>> store.close()
    """

    def __init__(self, directory, weights, settings=None, model: str | None = None, *, dtype: str = "float32",
                 append: bool = False):
        if dtype not in DTYPES:
            raise ValueError(f"snapshot dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.directory = Path(directory)
        self.dtype = dtype
        folder = self.directory / SNAPSHOT_FOLDER
        if folder.is_symlink():  # stale stacks are deleted in it: never in a folder elsewhere
            raise OSError(f"{folder} is a link; WeightSnapshot writes only into a real folder")
        folder.mkdir(parents=True, exist_ok=True)
        self.superseded = False
        self._guard = threading.Lock()  # an append and a takeover by a newer store never overlap
        self._lock = FolderLock(self.directory, "weight snapshots", on_takeover=self._taken_over)
        self.weights = []
        for weight in weights:
            weight = dict(weight, shape=[int(side) for side in weight["shape"]])
            weight["file"] = f"{SNAPSHOT_FOLDER}/{weight['name']}.npy"
            self.weights.append(weight)
        self.settings = dict(DEFAULTS, **(settings or {}))
        self.model = model
        self.records: list[dict] = []
        self.nonfinite: dict[str, int] = {}
        self.complete = False
        self._stacks: list[NpyStack] = []
        try:
            if append and (self.directory / MANIFEST_NAME).exists():
                self._continue()
            else:
                self._start()
            self.write_manifest()
        except BaseException:
            self._lock.release()
            raise

    def _start(self) -> None:
        for stale in (self.directory / SNAPSHOT_FOLDER).glob("*.npy"):
            stale.unlink()
        journal = self.directory / JOURNAL_NAME
        if journal.is_symlink():  # replaced, never written through
            journal.unlink()
        journal.write_bytes(b"")
        for weight in self.weights:
            self._stacks.append(NpyStack(self.directory / weight["file"], weight["shape"], self.dtype))

    def _continue(self) -> None:
        """Take up the folder's store where it ends: its snapshots (those on disk), its journal."""
        from visopt.store.folder import SnapshotFolder  # the reader checks what it reads; it imports this module

        existing = SnapshotFolder(self.directory)
        before = [(w["path"], list(w["shape"])) for w in existing.weights]
        now = [(w["path"], w["shape"]) for w in self.weights]
        if before != now or existing.dtype != self.dtype:
            changed = sorted(set(map(str, before)) ^ set(map(str, now))) or [f"dtype {existing.dtype} -> {self.dtype}"]
            raise ValueError(f"cannot append to {self.directory}: it records other variables or another dtype "
                             f"(differences: {changed[:4]}); start a new run there or use another folder")
        self.records = list(existing.records)
        self.nonfinite = dict(existing.nonfinite)
        journal = b"".join(json.dumps(record).encode("utf-8") + b"\n" for record in self.records)
        atomic_write_bytes(self.directory / JOURNAL_NAME, journal)  # drops lines of arrays never written
        for weight, old in zip(self.weights, existing.weights):
            weight["file"] = old["file"]
            self._stacks.append(NpyStack(self.directory / weight["file"], weight["shape"], self.dtype,
                                         count=len(self.records)))

    def append(self, record: dict, arrays) -> None:
        """Add one snapshot: its ``{"epoch", "batch", "step"}`` record (and optional ``"logs"``) and
        one array per weight, in order."""
        if len(arrays) != len(self._stacks):
            raise ValueError(f"expected {len(self._stacks)} arrays, one per weight, got {len(arrays)}")
        logs = record.get("logs")
        record = {key: int(record[key]) for key in ("epoch", "batch", "step")}
        if logs:
            record["logs"] = {str(k): (float(v) if np.isfinite(v) else None) for k, v in logs.items()}
        with self._guard:
            if self.superseded:
                raise RuntimeError(f"a newer recording took over {self.directory}")
            for stack, array in zip(self._stacks, arrays):
                stack.append(array)
            # the journal line comes last: a snapshot it lists has all its arrays on disk
            with open(self.directory / JOURNAL_NAME, "a", encoding="utf-8") as journal:
                journal.write(json.dumps(record) + "\n")
            self.records.append(record)
            self._check_finite(arrays)

    def _check_finite(self, arrays) -> None:
        found = {weight["path"]: len(self.records) - 1 for weight, array in zip(self.weights, arrays)
                 if weight["path"] not in self.nonfinite and not np.isfinite(array).all()}
        if found:
            self.nonfinite = {**self.nonfinite, **found}  # rebound, not mutated: read from the training thread

    def write_manifest(self) -> None:
        """Replace ``manifest.json`` (atomically) with the weights and the snapshots so far."""
        with self._guard:
            if self.superseded:
                return  # the folder is the newer recording's now
            manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "complete": self.complete,
                        "model": self.model, "dtype": self.dtype, "render": self.settings, "weights": self.weights,
                        "snapshots": self.records, "nonfinite": self.nonfinite}
            atomic_write_bytes(self.directory / MANIFEST_NAME, json.dumps(manifest, indent=1).encode("utf-8"))

    def close(self, write: bool = True, complete: bool = True) -> None:
        """Write the final manifest (unless ``write`` is false; ``"complete"`` as given) and let go of the folder."""
        try:
            if write:
                self.complete = complete
                self.write_manifest()
        finally:
            self._lock.release()

    def _taken_over(self) -> None:
        with self._guard:
            self.superseded = True


class SnapshotWriter:
    """A :class:`SnapshotStore` fed from a bounded queue by a worker thread, off the training thread.

    ``put`` blocks only while ``queue_size`` snapshots are waiting. A failure on the worker (disk
    full...) is kept in ``error``; later snapshots are dropped, never blocked on.

    Example:
        >>> writer = SnapshotWriter(store)
        >>> writer.put({"epoch": 0, "batch": 0, "step": 0}, arrays)
        >>> writer.close()   # waits for the queue, writes the final manifest
    """

    def __init__(self, store: SnapshotStore, queue_size: int = 8):
        self.store = store
        self._store_error: BaseException | None = None
        self._closed = False
        # idle_timeout: after a fit stopped by Ctrl-C (no on_train_end), no thread stays behind
        self._worker = BackgroundWorker(self._handle, name="visopt-weight-snapshots", queue_size=queue_size,
                                        idle_timeout=2.0)

    @property
    def error(self) -> BaseException | None:
        """The first failure of writing (on the worker, or when closing the store), None while all is well."""
        return self._worker.error or self._store_error

    def put(self, record: dict, arrays) -> bool:
        """Queue one snapshot; False (and nothing queued) once the writer has failed."""
        return self._worker.submit(("append", record, arrays))

    def write_manifest(self) -> bool:
        """Queue a manifest update (after the snapshots queued before it)."""
        return self._worker.submit(("manifest",))

    def close(self, complete: bool = True) -> BaseException | None:
        """Wait for the queue, close the files and return the error if writing failed (None when all went well)."""
        if not self._closed:
            self._closed = True
            self._worker.close()
            try:
                # after a failure the manifest is still brought up to date if the disk allows: the
                # journal already lists every snapshot on disk, this is for readers of the manifest
                self.store.close(complete=complete and self.error is None)
            except Exception as err:  # noqa: BLE001 - reported to the caller
                self._store_error = self._store_error or err
        return self.error

    def _handle(self, item) -> None:
        if item[0] == "append":
            self.store.append(item[1], item[2])
        else:
            self.store.write_manifest()
