"""Weight snapshots on disk, and their rendering to one animation per weight tensor.

A snapshot folder (what :class:`~visopt.callbacks.WeightSnapshot` writes during training) holds::

    manifest.json                                what was recorded (below)
    snapshots/layer_conv_1-weights_01.npy        float32 array (snapshots, *shape), one per weight tensor
    snapshots/layer_conv_1-weights_02.npy
    ...

Each ``.npy`` stack is grown by appending one snapshot at a time, and its header is rewritten after
every append, so the file is a valid ``.npy`` at every moment (``np.load(path, mmap_mode="r")``
reads it while training goes on). ``manifest.json`` is replaced atomically; it lists every weight
(``path`` = ``Variable.path``, ``layer``, ``index`` = 1-based position in ``layer.weights``,
``name``, ``shape``, ``kind``, ``gates``, ``file``) and every snapshot (``epoch``, ``batch``,
``step``; epochs and batches 0-based as Keras passes them to callbacks, ``step`` the number of
batches trained before the snapshot in the ``fit`` call, one timeline across epochs). It is
rewritten at every epoch end and at the end of training (``"complete": true``); a run that died
keeps the snapshots its manifest lists.

Rendering (:func:`render_snapshots`, or ``visopt render DIR`` on the command line) needs the whole
run: the colour scale of a weight is fixed over all its snapshots (see :mod:`visopt.weight_images`),
found in a first pass over the stack before any frame is drawn. That is why animations are made
after training and not while it runs, and why one colour means one value in every frame.

Example:
    >>> folder = SnapshotFolder("runs/weights")
    >>> len(folder), [w["name"] for w in folder.weights][:2]
    (16, ['layer_conv_1-weights_01', 'layer_conv_1-weights_02'])
    >>> folder.values("conv_1/kernel").shape
    (16, 3, 3, 3, 16)
    >>> render_snapshots("runs/weights", format="gif", cmap="RdBu", fps=8)
    [PosixPath('runs/weights/layer_conv_1-weights_01.gif'), ...]
"""

from __future__ import annotations

import json
import math
import os
import queue
import struct
import threading
from pathlib import Path

import numpy as np

from visopt.captions import caption_width
from visopt.frame_writer import FrameWriter
from visopt.io import atomic_write_bytes
from visopt.weight_images import WeightRenderer, check_colormap, value_range

MANIFEST_NAME = "manifest.json"
SNAPSHOT_FOLDER = "snapshots"
FORMAT_NAME = "visopt-weight-snapshots"
FORMAT_VERSION = 1
RENDER_FORMATS = ("mp4", "gif", "png")
DEFAULTS = {"cmap": "gray", "fps": 10, "video_format": "mp4", "max_frame_size": 512, "per_epoch": False}

_MAGIC = b"\x93NUMPY\x01\x00"


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
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="visopt-weight-snapshots", daemon=True)
        self._worker.start()

    def put(self, record: dict, arrays) -> bool:
        """Queue one snapshot; False (and nothing queued) once the writer has failed."""
        return self._submit(("append", record, arrays))

    def write_manifest(self) -> bool:
        """Queue a manifest update (after the snapshots queued before it)."""
        return self._submit(("manifest",))

    def close(self, complete: bool = True) -> BaseException | None:
        """Wait for the queue, close the files and return the error if writing failed (None when all went well)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._worker.join()
            try:
                self.store.close(write=complete and self.error is None)
            except Exception as err:  # noqa: BLE001 - reported to the caller
                self.error = self.error or err
        return self.error

    def _submit(self, item) -> bool:
        if self._closed or self.error is not None:
            return False
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                if self.error is not None or not self._worker.is_alive():
                    return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain
            try:
                if item[0] == "append":
                    self.store.append(item[1], item[2])
                else:
                    self.store.write_manifest()
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                self.error = err


# -- reading --------------------------------------------------------------------------------
class SnapshotFolder:
    """A snapshot folder opened for reading: its manifest, weights, snapshot records and value stacks.

    ``len(folder)`` is the number of snapshots present in the manifest and in every stack (a run
    that stopped early keeps what it wrote).

    Example:
        >>> folder = SnapshotFolder("runs/weights")
        >>> kernel = folder.values("conv_1/kernel")      # memory-mapped (snapshots, 3, 3, 3, 16)
        >>> folder.records[-1]
        {'epoch': 1, 'batch': 10, 'step': 30}
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        path = self.directory / MANIFEST_NAME
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory} is not a folder of weight snapshots")
        if not path.is_file():
            raise FileNotFoundError(f"no {MANIFEST_NAME} in {self.directory}: not a WeightSnapshot output folder")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a visopt weight snapshot manifest (version {FORMAT_VERSION})")
        self.manifest = manifest
        self.weights: list[dict] = manifest["weights"]
        self.settings = dict(DEFAULTS, **(manifest.get("render") or {}))
        self._values: dict[str, np.ndarray] = {}
        count = len(manifest["snapshots"])
        for weight in self.weights:
            count = min(count, len(self._load(weight)))
        self.records: list[dict] = manifest["snapshots"][:count]

    def __len__(self) -> int:
        return len(self.records)

    def weight(self, key: str) -> dict:
        """The manifest entry of a weight, by ``path`` or file ``name``."""
        for weight in self.weights:
            if key in (weight["path"], weight["name"]):
                return weight
        raise KeyError(f"no weight {key!r} in {self.directory}; recorded: "
                       f"{[weight['path'] for weight in self.weights]}")

    def values(self, key: str) -> np.ndarray:
        """The snapshots of one weight (by path or name): a read-only memory-mapped ``(len(self), *shape)`` array."""
        weight = self.weight(key)
        return self._load(weight)[:len(self)]

    def _load(self, weight: dict) -> np.ndarray:
        if weight["path"] not in self._values:
            path = self.directory / weight["file"]
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise ValueError(f"cannot read the snapshots of {weight['path']} from {path}: {err}") from err
            if array.size == 0:  # np.memmap cannot map an empty file region
                array = np.zeros((0,) + tuple(weight["shape"]), np.float32)
            self._values[weight["path"]] = array
        return self._values[weight["path"]]


# -- rendering ------------------------------------------------------------------------------
def render_snapshots(directory, *, format: str | None = None, cmap: str | None = None, fps: float | None = None,
                     per_epoch: bool | None = None, max_frame_size: int | None = None, out=None,
                     annotate: bool = True, weights=None, concurrency: int | None = None) -> list[Path]:
    """Render a snapshot folder: one animation per weight tensor over all snapshots, named like the folder's stacks.

    ``layer_NAME-weights_YY.mp4`` (``YY`` the 1-based position in ``layer.weights``) holds every
    snapshot; with ``per_epoch``, ``epoch_XXX-layer_NAME-weights_YY.mp4`` (``XXX`` the 0-based
    epoch, as keras_weight_animator numbered them) holds one epoch's. The colour scale of a weight
    is fixed over all its snapshots (one pass over the stack first), so every frame uses the same
    value-to-colour mapping. Frames are captioned with epoch, batch and step when ``annotate``
    (a picture narrower than its caption is centred on a wider black frame).

    Args:
        directory: a folder written by ``WeightSnapshot``.
        format: ``"mp4"``, ``"gif"`` or ``"png"`` (a folder of frames per weight).
        cmap: a matplotlib colormap name; diverging maps are centred on zero.
        fps: frames per second.
        per_epoch: also write one animation per epoch and weight.
        max_frame_size: longest side of a frame in pixels (before the caption).
        out: folder for the animations (created); ``directory`` by default.
        weights: only these weights (paths or names); all by default.
        concurrency: weights encoded at the same time (one encoder thread and process each); the
            CPU count up to 8 by default (more encoders than cores only add switching: on 2 cores,
            8 at once took 20% more CPU than 2).

    Unset options take the values stored by the callback in the manifest (its ``cmap``, ``fps``,
    ``video_format``, ``per_epoch``, ``max_frame_size``). Returns the paths written.

    Example:
        >>> render_snapshots("runs/weights", format="gif", cmap="RdBu", per_epoch=True)
    """
    folder = SnapshotFolder(directory)
    settings = folder.settings
    format = settings["video_format"] if format is None else format
    if format not in RENDER_FORMATS:
        raise ValueError(f"unknown animation format {format!r}; valid: {list(RENDER_FORMATS)}")
    cmap = check_colormap(settings["cmap"] if cmap is None else cmap)
    fps = settings["fps"] if fps is None else fps
    per_epoch = settings["per_epoch"] if per_epoch is None else per_epoch
    max_frame_size = settings["max_frame_size"] if max_frame_size is None else max_frame_size
    if not (isinstance(max_frame_size, int) and max_frame_size >= 8):
        raise ValueError(f"max_frame_size must be an int >= 8, got {max_frame_size!r}")
    if concurrency is None:
        concurrency = max(1, min(8, os.cpu_count() or 1))
    if not (isinstance(concurrency, int) and concurrency >= 1):
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    if len(folder) == 0:
        raise ValueError(f"{folder.directory} holds no snapshots to render")
    selected = folder.weights if weights is None else [folder.weight(key) for key in weights]
    out = folder.directory if out is None else Path(out)
    suffix = "" if format == "png" else f".{format}"
    options = dict(format=format, fps=fps, min_size=1, max_size=max(max_frame_size, 8), annotate=annotate)
    texts = [f"epoch {r['epoch']}  batch {r['batch']}  step {r['step']}" for r in folder.records]
    # FrameWriter writes the caption on one line at its smallest font on narrow frames and cuts what
    # does not fit: narrow pictures (a Dense kernel with few outputs) are centred on a wider black frame
    caption_width = max(_caption_width(text) for text in texts) if annotate else 0

    written: list[Path] = []
    for start in range(0, len(selected), concurrency):
        group = selected[start:start + concurrency]
        # plain ndarray views of the memory maps: indexing a np.memmap costs ~0.2 ms per frame in bookkeeping
        stacks = [np.asarray(folder.values(weight["path"])) for weight in group]
        renderers = [WeightRenderer(weight["shape"], weight["kind"], int(weight.get("gates", 1)), cmap,
                                    value_range(stack, cmap), max_frame_size) for weight, stack in zip(group, stacks)]
        open_writers: list[FrameWriter] = []  # not yet closed: aborted on an error

        def start(path: Path) -> FrameWriter:
            writer = FrameWriter(path, **options)
            open_writers.append(writer)
            return writer

        def finish(writer: FrameWriter) -> None:
            open_writers.remove(writer)
            written.append(writer.close())

        try:
            writers = [start(out / f"{weight['name']}{suffix}") for weight in group]
            epoch_writers: list[FrameWriter | None] = [None] * len(group)
            for i, record in enumerate(folder.records):
                new_epoch = i == 0 or record["epoch"] != folder.records[i - 1]["epoch"]
                for j, (weight, stack, renderer) in enumerate(zip(group, stacks, renderers)):
                    frame = _widened(renderer(stack[i]), caption_width)
                    writers[j].write(frame, text=texts[i])
                    if per_epoch:
                        if new_epoch:
                            if epoch_writers[j] is not None:
                                finish(epoch_writers[j])
                            epoch_writers[j] = start(out / f"epoch_{record['epoch']:03d}-{weight['name']}{suffix}")
                        epoch_writers[j].write(frame, text=texts[i])
            while open_writers:
                finish(open_writers[0])
        except BaseException:
            for writer in open_writers:
                writer.abort()
            raise
    return sorted(path for path in written if path is not None)


def _caption_width(text: str) -> int:
    """Pixels a caption needs at the frame writer's smallest font (scale 0.35), with margins."""
    return caption_width(text, 0.35) + 8


def _widened(frame: np.ndarray, width: int) -> np.ndarray:
    """``frame`` centred on a black frame at least ``width`` pixels wide."""
    if frame.shape[1] >= width:
        return frame
    out = np.zeros((frame.shape[0], width, 3), np.uint8)
    left = (width - frame.shape[1]) // 2
    out[:, left:left + frame.shape[1]] = frame
    return out
