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

Format version 2 (written only when used; version 1 folders stay readable by older visopt) adds,
per weight: ``every`` (row ``j`` of the stack is snapshot ``j * every``: a weight recorded less
often, or a stack thinned while the others were not yet), and ``rows`` / ``full_shape`` (the stack
keeps only these rows of a ``full_shape`` tensor, ``max_rows``); and at the top ``max_bytes`` and
``thinned`` (the store kept every ``thinned``-th snapshot to stay within ``max_bytes``).

**The budget** (``max_bytes``): before a snapshot would take the folder past it, the store thins
itself: it keeps every other snapshot (evenly spaced over the run, the first one kept) and from
then on keeps every other snapshot it is given, so the rate halves. A thinning rewrites one stack
at a time, each under a new name (``NAME.tN.npy``), and commits each with an atomic manifest
update; the journal is replaced and the records halved last. A kill at any moment leaves a folder
that reads as either side of each step, never a mix; a stack written but not yet committed, or
replaced but not yet deleted, is left over and removed by the next recording there. The
thinning's own extra file (the largest thinned stack) is counted before it is written, so the
folder never holds more than ``max_bytes``; after a thinning it holds half or less, and fills up
again at the halved rate.

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
import re
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from visopt._atomic import atomic_write_bytes, publish, temporary_file
from visopt._locks import FolderLock
from visopt._worker import BackgroundWorker
from visopt.render.weight_layouts import default_layout

if TYPE_CHECKING:  # only its attributes are read: the store itself loads without Keras
    from visopt.model.weights import WeightEntry

MANIFEST_NAME = "manifest.json"
#: A replay folder (ReplayRecorder) holds these two beside the store: the model once, the probe sample.
REPLAY_MODEL_NAME = "model.keras"
REPLAY_PROBE_NAME = "probe.npz"
JOURNAL_NAME = "journal.jsonl"
SNAPSHOT_FOLDER = "snapshots"
FORMAT_NAME = "visopt-weight-snapshots"
#: The newest folder format this visopt reads and writes (2: per-weight ``every``, sampled ``rows``).
FORMAT_VERSION = 2
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
_FLOAT16_MAX = float(np.finfo(np.float16).max)


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

    @property
    def item_bytes(self) -> int:
        """Bytes of one item."""
        return int(np.prod(self.item_shape, dtype=np.int64)) * np.dtype(self.descr).itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the file: the header and ``count`` items."""
        return self._header_size + self.count * self.item_bytes

    def append(self, array) -> None:
        array = _stored(array, self.descr)
        if array.shape != self.item_shape:
            raise ValueError(f"{self.path.name}: expected shape {self.item_shape}, got {array.shape}")
        with open(self.path, "r+b") as handle:
            # the data first, then the count: a crash in between leaves a valid file one item short
            handle.seek(self._header_size + self.count * array.nbytes)
            handle.write(np.ascontiguousarray(array).tobytes())
            handle.seek(0)
            handle.write(_npy_header(self.count + 1, self.item_shape, self._header_size, self.descr))
        self.count += 1

    def thinned(self, path, dtype: str) -> "NpyStack":
        """A new stack at ``path`` holding items 0, 2, 4, ... of this one, published complete (temporary
        name, rename); on any failure nothing is left at ``path`` and this stack is untouched.

        Example:
            >>> half = stack.thinned("w.t1.npy", "float32")     # (ceil(count / 2), *item_shape)
        """
        path = Path(path)
        keep = (self.count + 1) // 2
        tmp = temporary_file(path)
        try:
            source = np.load(self.path, mmap_mode="r", allow_pickle=False) if self.count else None
            with open(tmp, "wb") as handle:
                handle.write(_npy_header(keep, self.item_shape, self._header_size, self.descr))
                for start in range(0, keep, 64):  # a few items at a time: a big stack never sits in memory
                    handle.write(np.ascontiguousarray(source[2 * start:2 * (start + 64):2]).tobytes())
            del source
            publish(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return NpyStack(path, self.item_shape, dtype, count=keep)


def _stored(array, descr: str) -> np.ndarray:
    """``array`` in the stack's dtype; float16 keeps finite values finite (clipped to +-65504), NaN and Inf stay."""
    array = np.asarray(array)
    if descr != DTYPES["float16"]:
        return np.asarray(array, dtype=descr)
    with np.errstate(over="ignore", invalid="ignore"):
        half = array.astype(descr)
    overflow = np.isinf(half) & np.isfinite(array)
    if overflow.any():
        half[overflow] = np.copysign(_FLOAT16_MAX, array[overflow]).astype(descr)
    return half


class SnapshotStore:
    """Create a snapshot folder and append snapshots to it (from one thread).

    Args:
        directory: the folder (created). Earlier ``.npy`` stacks in its ``snapshots/`` folder are
            deleted; the manifest and journal are replaced. Another process writing there is
            refused (``FolderBusyError``); an earlier store of this process is stopped.
        weights: one dict per weight tensor: ``path``, ``layer``, ``index``, ``name``, ``shape``,
            ``kind``, ``gates``; optionally ``period`` (record it at every ``period``-th snapshot
            slot only, see :meth:`due`) and ``rows`` / ``full_shape`` (the stack keeps these rows of
            the tensor; ``shape`` is then the sampled shape). ``file`` and ``every`` are added.
        settings: rendering defaults stored in the manifest (``cmap``, ``fps``, ...).
        model: the model's name, for the manifest.
        dtype: ``"float32"`` or ``"float16"`` stacks (half the disk; values rounded to 11 bits,
            finite values beyond +-65504 clipped to it).
        append: continue the snapshots of the folder's existing store (same weights, same dtype)
            instead of starting over; a folder without one starts a new store.
        max_bytes: the most bytes the folder's stacks, journal and manifest may take; the store
            thins itself to stay within it (module docstring). ``ValueError`` when two snapshots
            cannot fit.

    Attributes:
        records: the snapshots kept (``epoch``, ``batch``, ``step``).
        nonfinite: ``{weight path: index of the first snapshot where it held NaN/Inf}``.
        factor: the store keeps the snapshot slots that are multiples of it (1, then 2, 4, ...
            after each thinning). Read from other threads: it is an int rebound, never mutated.

    Example:
        >>> store = SnapshotStore("runs/w", [{"path": "d/kernel", "layer": "d", "index": 1,
        ...     "name": "layer_d-weights_01", "shape": [3, 2], "kind": "matrix", "gates": 1}], max_bytes=2**20)
        >>> store.append({"epoch": 0, "batch": 0, "step": 0}, [kernel])
        True
        >>> store.close()
    """

    def __init__(self, directory, weights, settings=None, model: str | None = None, *, dtype: str = "float32",
                 append: bool = False, max_bytes: int | None = None):
        if dtype not in DTYPES:
            raise ValueError(f"snapshot dtype must be one of {list(DTYPES)}, got {dtype!r}")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
            raise ValueError(f"max_bytes must be a positive number of bytes or None, got {max_bytes!r}")
        self.directory = Path(directory)
        self.dtype, self.max_bytes = dtype, max_bytes
        self.weights, self._periods = _prepared(weights)
        self.settings = dict(DEFAULTS, **(settings or {}))
        self.model = model
        self.records: list[dict] = []
        self.nonfinite: dict[str, int] = {}
        self.complete = False
        self.factor = 1
        self._slots: list[int] = []
        self._generation = 0
        self._journal_bytes = self._manifest_bytes = self._manifest_pending = 0
        if max_bytes is not None:
            self._check_budget()
        folder = self.directory / SNAPSHOT_FOLDER
        if folder.is_symlink():  # stale stacks are deleted in it: never in a folder elsewhere
            raise OSError(f"{folder} is a link; WeightSnapshot writes only into a real folder")
        folder.mkdir(parents=True, exist_ok=True)
        self.superseded = False
        self._guard = threading.Lock()  # an append and a takeover by a newer store never overlap
        self._lock = FolderLock(self.directory, "weight snapshots", on_takeover=self._taken_over)
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
        folder = self.directory / SNAPSHOT_FOLDER
        for stale in [*folder.glob("*.npy"), *folder.glob(".*.part")]:  # a killed thinning leaves these too
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
        spread = [w["path"] for w in existing.weights + self.weights if w.get("every", 1) != 1 or "rows" in w]
        if spread or set(self._periods) != {1}:
            raise ValueError(f"cannot append to {self.directory}: {spread[:4] or 'the new weights'} are recorded "
                             "less often or sampled (intervals, thinning, max_rows); start a new run there")
        self.records = list(existing.records)
        self._slots = list(range(len(self.records)))
        self.nonfinite = dict(existing.nonfinite)
        journal = b"".join(json.dumps(record).encode("utf-8") + b"\n" for record in self.records)
        atomic_write_bytes(self.directory / JOURNAL_NAME, journal)  # drops lines of arrays never written
        self._journal_bytes = len(journal)
        for weight, old in zip(self.weights, existing.weights):
            weight["file"] = old["file"]
            self._stacks.append(NpyStack(self.directory / weight["file"], weight["shape"], self.dtype,
                                         count=len(self.records)))

    def due(self, slot: int) -> list[bool] | None:
        """Which weights the snapshot of the ``slot``-th scheduled moment (0, 1, 2, ...) records, in
        order; None when the store no longer keeps that slot (after a thinning: ``slot % factor``).
        A caller copies only the weights that are due.

        Example:
            >>> store.due(0), store.due(1)       # factor 1; the second weight has period 2
            ([True, True], [True, False])
        """
        if slot % self.factor:
            return None
        return [slot % period == 0 for period in self._periods]

    def append(self, record: dict, arrays, slot: int | None = None) -> bool:
        """Add one snapshot: its ``{"epoch", "batch", "step"}`` record (and optional ``"logs"``) and
        one array per weight, in order (None for a weight that is not :meth:`due`); ``slot`` is its
        scheduled moment (the next kept one when None). False when the snapshot is not kept (its
        slot is thinned away); it may first thin the store to stay within ``max_bytes``."""
        if len(arrays) != len(self._stacks):
            raise ValueError(f"expected {len(self._stacks)} arrays, one per weight, got {len(arrays)}")
        record = _clean_record(record)
        with self._guard:
            if self.superseded:
                raise RuntimeError(f"a newer recording took over {self.directory}")
            slot = len(self.records) * self.factor if slot is None else int(slot)
            due = self.due(slot)
            if due is not None and slot != len(self.records) * self.factor:
                raise ValueError(f"snapshot slot {slot} is out of order: the store expects slot "
                                 f"{len(self.records) * self.factor}")
            if due is not None and self.max_bytes is not None:
                due = self._make_room(slot, due, record)
            if due is None:
                return False
            missing = [w["path"] for w, is_due, array in zip(self.weights, due, arrays) if is_due and array is None]
            if missing:
                raise ValueError(f"snapshot slot {slot} needs arrays of {missing[:4]} (they are due), got None")
            for stack, is_due, array in zip(self._stacks, due, arrays):
                if is_due:
                    stack.append(array)
            # the journal line comes last: a snapshot it lists has all its arrays on disk
            line = json.dumps(record) + "\n"
            with open(self.directory / JOURNAL_NAME, "a", encoding="utf-8") as journal:
                journal.write(line)
            self._journal_bytes += len(line.encode("utf-8"))
            self._manifest_pending += _manifest_record_bytes(record)
            self.records.append(record)
            self._slots.append(slot)
            self._check_finite([array if is_due else None for is_due, array in zip(due, arrays)])
            return True

    def _check_finite(self, arrays) -> None:
        found = {weight["path"]: len(self.records) - 1 for weight, array in zip(self.weights, arrays)
                 if array is not None and weight["path"] not in self.nonfinite and not np.isfinite(array).all()}
        if found:
            self.nonfinite = {**self.nonfinite, **found}  # rebound, not mutated: read from the training thread

    # -- the budget -------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """What the folder's stacks, journal and manifest take now (the last manifest written, plus its
        growth since)."""
        return (sum(stack.nbytes for stack in self._stacks) + self._journal_bytes + self._manifest_bytes
                + self._manifest_pending)

    def _needed(self, due: list[bool], record: dict) -> int:
        """Bytes at the peak of appending this snapshot and, later, of thinning from there: the files
        after the append, a manifest being replaced (old and new), and the largest stack a thinning
        writes before it deletes the one it replaces."""
        rows = [stack.count + is_due for stack, is_due in zip(self._stacks, due)]
        stacks = sum(stack.nbytes + is_due * stack.item_bytes for stack, is_due in zip(self._stacks, due))
        manifest = self._manifest_bytes + self._manifest_pending + _manifest_record_bytes(record)
        journal = self._journal_bytes + len(json.dumps(record)) + 1
        thinning = max([stack.nbytes - stack.count * stack.item_bytes + (count + 1) // 2 * stack.item_bytes
                        for stack, count, weight in zip(self._stacks, rows, self.weights) if weight["every"] % 2]
                       + [journal // 2 + 1])
        return stacks + journal + 2 * manifest + thinning

    def _check_budget(self) -> None:
        """Refuse a ``max_bytes`` that cannot hold two snapshots (and the thinning from two to one)."""
        headers = sum(_npy_header_size(tuple(w["shape"])) for w in self.weights)
        items = [int(np.prod(w["shape"], dtype=np.int64)) * np.dtype(DTYPES[self.dtype]).itemsize
                 for w in self.weights]
        record = {"epoch": 0, "batch": 0, "step": 0}
        manifest = len(json.dumps(self._manifest(), indent=1)) + 2 * _manifest_record_bytes(record)
        needed = headers + 2 * sum(items) + max(items) + 2 * manifest + 3 * (len(json.dumps(record)) + 1)
        if self.max_bytes < needed:
            raise ValueError(f"max_bytes={self.max_bytes} cannot hold two snapshots of these weights: one takes "
                             f"{sum(items)} bytes ({self.dtype}), the folder needs at least {needed}; raise max_bytes, "
                             "record fewer weights (include=, exclude=), sample rows (max_rows=) or store float16")

    def _make_room(self, slot: int, due: list[bool], record: dict) -> list[bool] | None:
        """Thin until the snapshot fits the budget; the weights due then, or None when its slot is thinned away."""
        while self._needed(due, record) > self.max_bytes:
            if len(self.records) < 2:
                raise OSError(f"max_bytes={self.max_bytes} is too small for the snapshots of {self.directory}: "
                              f"{self._needed(due, record)} bytes needed for the next one")
            self._thin()
            due = self.due(slot)
            if due is None:
                return None
        return due

    def _thin(self) -> None:
        """Keep snapshots 0, 2, 4, ...: one stack at a time under a new name, each committed by the
        manifest; then the journal and the records (see the module docstring for why a kill is safe)."""
        self._write_manifest()  # from here the reader follows the manifest (the journal is no longer ahead)
        self._generation += 1
        for i, weight in enumerate(self.weights):
            if weight["every"] % 2 == 0:  # its rows are all on even snapshots already
                continue
            old = self._stacks[i]
            name = f"{SNAPSHOT_FOLDER}/{weight['name']}.t{self._generation}.npy"
            self._stacks[i] = old.thinned(self.directory / name, self.dtype)
            weight["file"], weight["every"] = name, weight["every"] * 2
            self._write_manifest()  # commits this stack; the old one is no longer read
            old.path.unlink(missing_ok=True)
        kept = self.records[::2]
        journal = b"".join(json.dumps(record).encode("utf-8") + b"\n" for record in kept)
        atomic_write_bytes(self.directory / JOURNAL_NAME, journal)  # shorter than the manifest's: not read yet
        # the training thread reads nonfinite, records and factor (each rebound whole): indices that
        # fit the shorter list come first
        self.nonfinite = {path: min((index + 1) // 2, len(kept) - 1) for path, index in self.nonfinite.items()}
        self.records, self._slots, self.factor = kept, self._slots[::2], self.factor * 2
        self._journal_bytes = len(journal)
        for weight in self.weights:
            weight["every"] //= 2
        self._write_manifest()

    # -- the manifest -----------------------------------------------------------------------
    def _manifest(self) -> dict:
        spread = any(weight["every"] != 1 or "rows" in weight for weight in self.weights)
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION if spread else 1, "complete": self.complete,
                    "model": self.model, "dtype": self.dtype, "render": self.settings, "weights": self.weights,
                    "snapshots": self.records, "nonfinite": self.nonfinite}
        if self.max_bytes is not None:
            manifest.update(max_bytes=self.max_bytes, thinned=self.factor)
        return manifest

    def _write_manifest(self) -> None:
        data = json.dumps(self._manifest(), indent=1).encode("utf-8")
        atomic_write_bytes(self.directory / MANIFEST_NAME, data)
        self._manifest_bytes, self._manifest_pending = len(data), 0

    def write_manifest(self) -> None:
        """Replace ``manifest.json`` (atomically) with the weights and the snapshots so far."""
        with self._guard:
            if self.superseded:
                return  # the folder is the newer recording's now
            self._write_manifest()

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


def thin_folder(directory, max_bytes: int) -> int:
    """Thin a finished snapshot folder in place until its stacks, journal and manifest fit ``max_bytes``
    (as a recording with that budget would have: every other snapshot kept each time, crash-safe);
    returns the number of snapshots kept. A folder being recorded into is refused (``FolderBusyError``).

    While a thinning runs the folder holds up to one thinned stack more than before (it was over the
    budget already); files that are not the snapshots (videos) are not counted and not touched.

    Example:
        >>> thin_folder("runs/weights", 200 * 2**20)      # visopt render runs/weights --max-bytes 200M
        37
    """
    from visopt.store.folder import SnapshotFolder  # the reader checks what it reads; it imports this module

    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
    folder = SnapshotFolder(directory)
    store = SnapshotStore.__new__(SnapshotStore)
    store.directory, store.dtype, store.max_bytes = folder.directory, folder.dtype, max_bytes
    store.weights, store._periods = [dict(weight) for weight in folder.weights], [1] * len(folder.weights)
    store.settings, store.model = folder.settings, folder.manifest.get("model")
    store.records, store.nonfinite = list(folder.records), dict(folder.nonfinite)
    store.complete, store.superseded = bool(folder.manifest.get("complete")), False
    store.factor = int(folder.manifest.get("thinned") or 1)
    store._slots = [i * store.factor for i in range(len(store.records))]
    store._generation = max([int(m.group(1)) for w in store.weights
                             if (m := re.search(r"\.t(\d+)\.npy$", w["file"]))], default=0)
    store._guard, store._lock = threading.Lock(), FolderLock(store.directory, "weight snapshots")
    try:
        store._stacks = [NpyStack(store.directory / w["file"], w["shape"], store.dtype,
                                  count=len(folder.indices(w["path"]))) for w in store.weights]
        journal = store.directory / JOURNAL_NAME
        store._journal_bytes = journal.stat().st_size if journal.is_file() else 0
        store._manifest_bytes, store._manifest_pending = (store.directory / MANIFEST_NAME).stat().st_size, 0
        while store.nbytes > max_bytes and len(store.records) > 1:
            store._thin()
        store._write_manifest()
    finally:
        store._lock.release()
    return len(store.records)


def _prepared(weights) -> tuple[list[dict], list[int]]:
    """The manifest entries (``file``, ``every`` added; shapes as ints) and the period of each weight."""
    prepared, periods = [], []
    for weight in weights:
        weight = dict(weight, shape=[int(side) for side in weight["shape"]])
        period = weight.pop("period", 1)
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"the period of {weight['path']} must be a positive int, got {period!r}")
        weight["file"] = f"{SNAPSHOT_FOLDER}/{weight['name']}.npy"
        weight["every"] = period  # factor 1: a row every period-th snapshot
        prepared.append(weight)
        periods.append(period)
    return prepared, periods


def _clean_record(record: dict) -> dict:
    logs = record.get("logs")
    clean = {key: int(record[key]) for key in ("epoch", "batch", "step")}
    if logs:
        clean["logs"] = {str(k): (float(v) if np.isfinite(v) else None) for k, v in logs.items()}
    return clean


def _manifest_record_bytes(record: dict) -> int:
    """About what one record adds to the indented manifest (its lines and their deeper indent)."""
    text = json.dumps(record, indent=1)
    return len(text) + 3 * (text.count("\n") + 1)


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

    def put(self, record: dict, arrays, slot: int | None = None) -> bool:
        """Queue one snapshot (``slot`` and None arrays as in :meth:`SnapshotStore.append`); False (and
        nothing queued) once the writer has failed."""
        return self._worker.submit(("append", record, arrays, slot))

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
            self.store.append(item[1], item[2], item[3])
        else:
            self.store.write_manifest()
