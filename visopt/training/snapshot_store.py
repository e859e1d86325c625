"""The snapshot store: weight snapshots written to disk during training, one growing ``.npy`` stack per tensor.

A snapshot folder (what :class:`~visopt.training.weight_snapshot.WeightSnapshot` writes during training) holds::

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
batches trained before the snapshot in the ``fit`` call, one timeline across epochs). It is
rewritten at every epoch end and at the end of training (``"complete": true``); a run that died
keeps the snapshots its manifest lists.

A folder is read back by :class:`~visopt.training.snapshot_folder.SnapshotFolder` and rendered by
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
from pathlib import Path

import numpy as np

from visopt._atomic import atomic_write_bytes
from visopt._worker import BackgroundWorker
from visopt.model.weights import WeightEntry
from visopt.render.weight_images import default_layout

MANIFEST_NAME = "manifest.json"
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
def _npy_header(count: int, item_shape: tuple[int, ...], size: int) -> bytes:
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % ((count,) + tuple(item_shape),)
    padding = size - len(_MAGIC) - 2 - len(text) - 1
    if padding < 0:
        raise ValueError(f"snapshot count {count} does not fit the .npy header")
    return _MAGIC + struct.pack("<H", size - len(_MAGIC) - 2) + (text + " " * padding + "\n").encode("latin1")


def _npy_header_size(item_shape: tuple[int, ...]) -> int:
    """Header bytes with room for any count up to 10**18, a multiple of 64 as the format asks."""
    text = len("{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % ((10 ** 18,) + tuple(item_shape),))
    return int(math.ceil((len(_MAGIC) + 2 + text + 1) / 64) * 64)


class NpyStack:
    """A float32 ``.npy`` file of shape ``(count, *item_shape)`` grown one item at a time.

    The header has a fixed size (room for a 19-digit count) and is rewritten after each append,
    so the file always loads with ``np.load``.

    Example:
        >>> stack = NpyStack("w.npy", (3, 4))
        >>> stack.append(np.zeros((3, 4))); stack.close()
        >>> np.load("w.npy").shape
        (1, 3, 4)
    """

    def __init__(self, path, item_shape):
        self.path = Path(path)
        self.item_shape = tuple(int(side) for side in item_shape)
        self.count = 0
        self._header_size = _npy_header_size(self.item_shape)
        self._handle = open(self.path, "wb")
        self._handle.write(_npy_header(0, self.item_shape, self._header_size))
        self._handle.flush()

    def append(self, array) -> None:
        array = np.asarray(array, dtype="<f4")
        if array.shape != self.item_shape:
            raise ValueError(f"{self.path.name}: expected shape {self.item_shape}, got {array.shape}")
        self._handle.seek(0, 2)
        self._handle.write(np.ascontiguousarray(array).tobytes())
        self.count += 1
        self._handle.seek(0)
        self._handle.write(_npy_header(self.count, self.item_shape, self._header_size))

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class SnapshotStore:
    """Create a snapshot folder and append snapshots to it (from one thread).

    Args:
        directory: the folder (created). Earlier ``.npy`` stacks in its ``snapshots/`` folder are
            deleted; the manifest is replaced.
        weights: one dict per weight tensor: ``path``, ``layer``, ``index``, ``name``, ``shape``,
            ``kind``, ``gates``. ``file`` is added.
        settings: rendering defaults stored in the manifest (``cmap``, ``fps``, ...).
        model: the model's name, for the manifest.

    Example:
        >>> store = SnapshotStore("runs/w", [{"path": "d/kernel", "layer": "d", "index": 1,
        ...     "name": "layer_d-weights_01", "shape": [3, 2], "kind": "matrix", "gates": 1}])
        >>> store.append({"epoch": 0, "batch": 0, "step": 0}, [kernel])
        >>> store.close()
    """

    def __init__(self, directory, weights, settings=None, model: str | None = None):
        self.directory = Path(directory)
        folder = self.directory / SNAPSHOT_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.npy"):
            stale.unlink()
        self.weights = []
        for weight in weights:
            weight = dict(weight, shape=[int(side) for side in weight["shape"]])
            weight["file"] = f"{SNAPSHOT_FOLDER}/{weight['name']}.npy"
            self.weights.append(weight)
        self.settings = dict(DEFAULTS, **(settings or {}))
        self.model = model
        self.records: list[dict] = []
        self.complete = False
        self._stacks: list[NpyStack] = []
        try:
            for weight in self.weights:
                self._stacks.append(NpyStack(self.directory / weight["file"], weight["shape"]))
            self.write_manifest()
        except BaseException:
            self.close(write=False)
            raise

    def append(self, record: dict, arrays) -> None:
        """Add one snapshot: its ``{"epoch", "batch", "step"}`` record and one array per weight, in order."""
        if len(arrays) != len(self._stacks):
            raise ValueError(f"expected {len(self._stacks)} arrays, one per weight, got {len(arrays)}")
        for stack, array in zip(self._stacks, arrays):
            stack.append(array)
        self.records.append({key: int(record[key]) for key in ("epoch", "batch", "step")})

    def write_manifest(self) -> None:
        """Replace ``manifest.json`` (atomically) with the weights and the snapshots so far."""
        for stack in self._stacks:
            stack.flush()
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "complete": self.complete,
                    "model": self.model, "render": self.settings, "weights": self.weights,
                    "snapshots": self.records}
        atomic_write_bytes(self.directory / MANIFEST_NAME, json.dumps(manifest, indent=1).encode("utf-8"))

    def close(self, write: bool = True) -> None:
        """Close the stacks and, unless ``write`` is false, write the final manifest (``"complete": true``)."""
        try:
            if write:
                self.complete = True
                self.write_manifest()
        finally:
            for stack in self._stacks:
                stack.close()


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
        self._worker = BackgroundWorker(self._handle, name="visopt-weight-snapshots", queue_size=queue_size)

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
                self.store.close(write=complete and self.error is None)
            except Exception as err:  # noqa: BLE001 - reported to the caller
                self._store_error = err
        return self.error

    def _handle(self, item) -> None:
        if item[0] == "append":
            self.store.append(item[1], item[2])
        else:
            self.store.write_manifest()
