"""Record every trainable weight tensor during ``fit`` and animate how each one changes (keras_weight_animator, done right)."""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path

import keras

from visopt._atomic import temporary_file
from visopt._checks import check_int, positive_int, positive_number
from visopt._locks import FolderBusyError
from visopt.frames.display import Media, media_html
from visopt.model.weights import read, select, trainable_entries
from visopt.render.colormaps import check_colormap
from visopt.store.writer import RENDER_FORMATS, SnapshotStore, SnapshotWriter, weight_record
from visopt.training.videos import render_snapshots


class WeightSnapshot(keras.callbacks.Callback):
    """Snapshot the model's trainable weights during training; optionally render one video per weight tensor.

    **When.** In every ``epoch_interval``-th epoch (epochs 0, ``epoch_interval``, ... as Keras
    numbers them from 0), at the start of batch 0 and of every ``batch_interval``-th batch after it,
    before that batch's update. 2 epochs of 20 batches with ``batch_interval=10`` give 4 snapshots:
    (epoch 0, batch 0), (0, 10), (1, 0), (1, 10); the first shows the initial weights. Every
    trainable tensor is recorded, nested models included. Snapshots form one timeline across epochs:
    each is numbered by its ``step`` (batches trained before it in this ``fit``), and a video covers
    them all. A model that is only built by its first batch (no ``Input``) starts at the next batch.

    **How.** The training thread copies the values (a MirroredVariable reads its primary replica)
    and queues them; a worker thread behind a bounded queue appends them to one ``.npy`` stack per
    weight under ``output_dir/snapshots/`` and keeps ``output_dir/manifest.json`` (weights:
    path, layer, index, shape, kind (the picture layout); snapshots: epoch, batch, step) up to date at each epoch end.
    The format is described in :mod:`visopt.store.writer`.

    **Videos.** With ``render_videos=True`` they are rendered at ``on_train_end`` into
    ``output_dir``: ``layer_NAME-weights_YY.mp4`` per weight tensor (``YY`` its 1-based position
    in ``layer.weights``: ``01`` kernel, ``02`` bias), and with ``per_epoch=True`` also
    ``epoch_XXX-layer_NAME-weights_YY.mp4`` with one epoch's snapshots (``XXX`` the 0-based epoch,
    as keras_weight_animator numbered its folders). Otherwise the snapshots are kept and rendered
    later: ``visopt render OUTPUT_DIR [--format gif] [--cmap RdBu] [--fps 8]``. Rendering waits
    for the end because each weight's colour scale is fixed over the whole run (its min/max over all
    snapshots, or ``+-max|w|`` for diverging maps such as RdBu): one colour is one value in every
    frame, so frames can be compared. Layouts (matrices, conv filter grids, gate blocks of
    LSTM/GRU kernels, bias strips) are described in :mod:`visopt.render.weight_images`.

    **Errors.** An ``output_dir`` that is a file (``NotADirectoryError``), cannot be written
    (``PermissionError`` or ``OSError``) or is being recorded into by another process
    (``FolderBusyError``) raises in ``on_train_begin``, before the first batch. A write failure
    during training (disk full...) warns once, stops the recording and lets training finish; a
    failed rendering warns and keeps the snapshots. Weights that become NaN/Inf are reported once
    (which tensors, from which snapshot) and their video frames are marked. Every snapshot is
    journaled when its arrays are on disk: after a crash, a kill or a full disk,
    ``visopt render OUTPUT_DIR`` renders all of them (docs/faults.md).

    Args:
        output_dir: folder for the snapshots and videos (created). Calling ``fit`` again starts a
            new recording there, replacing the previous snapshots.
        epoch_interval: record in every this many epochs.
        batch_interval: record every this many batches within those epochs.
        cmap: matplotlib colormap name for the videos (gray, RdBu, viridis, jet...).
        render_videos: render the videos when training ends.
        video_format: ``"mp4"`` or ``"gif"`` (or ``"png"``: a folder of frames per weight).
        per_epoch: also render one video per epoch and weight.
        max_frame_size: longest side of a video frame in pixels; bigger weights are shrunk.
        fps: frames per second of the videos.
        weights: record only these weights: variable paths (``"conv_1/kernel"``) or layer names;
            all trainable weights by default.
        queue_size: snapshots waiting for the worker before training waits for it (each is a copy of
            the recorded weights, so this bounds the extra memory).

    Attributes:
        snapshots: snapshots taken in the last ``fit``.
        video_paths: the files rendered at the end of the last ``fit``.
        failed: whether recording or rendering failed (a warning said why).

    In a notebook, a ``WeightSnapshot`` shows its videos, each labelled with its weight's path
    (MP4s referenced by their path, small GIFs embedded); ``video(name)`` shows one.

    Example:
        >>> snapshot = WeightSnapshot("runs/weights", batch_interval=10, cmap="RdBu", render_videos=True)
        >>> model.fit(x, y, epochs=2, callbacks=[snapshot])
        >>> snapshot.video_paths[0]
        PosixPath('runs/weights/layer_conv_1-weights_01.mp4')
        >>> snapshot.video("conv_1/kernel")        # in a notebook: the kernel's video
    """

    def __init__(self, output_dir, epoch_interval: int = 1, batch_interval: int = 100, cmap: str = "gray",
                 render_videos: bool = False, video_format: str = "mp4", per_epoch: bool = False,
                 max_frame_size: int = 512, fps: float = 10, weights=None, queue_size: int = 4):
        super().__init__()
        for name, value in (("epoch_interval", epoch_interval), ("batch_interval", batch_interval),
                            ("queue_size", queue_size)):
            positive_int(value, name)
        if video_format not in RENDER_FORMATS:
            raise ValueError(f"video_format must be one of {list(RENDER_FORMATS)}, got {video_format!r}")
        max_frame_size = check_int(max_frame_size, "max_frame_size", 8)
        fps = positive_number(fps, "fps")
        fps = int(fps) if fps.is_integer() else fps  # plain numbers: they go into manifest.json
        self.output_dir = Path(output_dir)
        self.epoch_interval, self.batch_interval = epoch_interval, batch_interval
        self.cmap = check_colormap(cmap)
        self.render_videos, self.video_format, self.per_epoch = bool(render_videos), video_format, bool(per_epoch)
        self.max_frame_size, self.fps = max_frame_size, fps
        self.weights = weights
        self.queue_size = queue_size
        self.snapshots = 0
        self.video_paths: list[Path] = []
        self.failed = False
        self._writer: SnapshotWriter | None = None
        self._entries = None
        self._epoch = 0
        self._due: int | None = None
        self._calls = 0
        self._start_iteration: int | None = None
        self._nonfinite_reported = False

    # -- Keras hooks ----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._check_output_dir()
        if self._writer is not None:  # the last fit was interrupted (no on_train_end): let its files go
            self._writer.close(complete=False)
        self.snapshots = 0
        self.video_paths = []
        self.failed = False
        self._writer = None
        self._entries = None
        self._calls = 0
        self._start_iteration = self._iterations()
        self._nonfinite_reported = False
        self._open()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)
        self._due = 0 if self._epoch % self.epoch_interval == 0 else None

    def on_train_batch_begin(self, batch, logs=None):
        step = self._calls
        self._calls += 1
        if self._due is None or batch < self._due or self.failed:
            return
        if self._writer is None:
            try:
                if not self._open():
                    return  # not built yet: the snapshot is taken at the next batch
            except (OSError, FolderBusyError) as err:  # built by its first batch, and now the folder fails
                self._fail(err)
                return
        self._due = (batch // self.batch_interval + 1) * self.batch_interval
        self._snapshot(batch, self._step(step))

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is not None and not self.failed and not self._writer.write_manifest():
            self._fail(self._writer.error)
        self._report_nonfinite()

    def on_train_end(self, logs=None):
        if self._writer is None:
            return
        error = self._writer.close()
        self._report_nonfinite()
        self._writer = None
        if error is not None:
            self._fail(error)
            return
        if self.render_videos and self.snapshots:
            try:
                self.video_paths = render_snapshots(self.output_dir)
            except Exception as err:  # noqa: BLE001 - training is done; keep the snapshots
                self.failed = True
                warnings.warn(f"WeightSnapshot could not render videos in {self.output_dir}: {err}; the "
                              f"snapshots are kept: run `visopt render {self.output_dir}`", RuntimeWarning,
                              stacklevel=2)

    # -- display ------------------------------------------------------------------------
    def video(self, path_or_name) -> Media:
        """One video, shown in a notebook: by weight path (``"conv_1/kernel"``), file name or stem
        (``"layer_conv_1-weights_01"``, ``"epoch_000-layer_conv_1-weights_01.mp4"``) or path.

        Example:
            >>> snapshot.video("dense/bias")
            Media('runs/weights/layer_dense-weights_02.mp4', 41 KB)
        """
        given = Path(path_or_name)
        if given.is_file():
            return Media(given, self._label(given))
        files = self._video_files()
        key = str(path_or_name)
        stem = {entry.path: entry.name for entry in self._entries or ()}.get(key, key)
        found = next((f for f in files if key == f.name or stem == _stem(f)), None)
        if found is None:
            names = [entry.path for entry in self._entries or ()] + [f.name for f in files]
            raise ValueError(f"no video of {key!r} in {str(self.output_dir)!r}; valid: {names or 'none rendered'}")
        return Media(found, self._label(found))

    def _repr_html_(self) -> str:
        files = self._video_files()
        whole = [f for f in files if not f.name.startswith("epoch_")]
        head = (f"<div><b>WeightSnapshot</b>: {self.snapshots} snapshots of {len(self._entries or ())} weights in "
                f"<code>{html.escape(str(self.output_dir))}</code></div>")
        if not files:
            return head + (f"<div>no videos yet: <code>visopt.render_snapshots({str(self.output_dir)!r})</code> "
                           "renders them (or <code>render_videos=True</code>)</div>")
        per_epoch = len(files) - len(whole)
        more = f"<div>and {per_epoch} per-epoch videos: <code>.video(name)</code> shows one</div>" if per_epoch else ""
        return head + "".join(media_html(f, self._label(f), embed_limit=_EMBED_EACH) for f in whole) + more

    def _video_files(self) -> list[Path]:
        """The rendered videos: those of the last fit, else the animations found in ``output_dir``."""
        if self.video_paths:
            return list(self.video_paths)
        if not self.output_dir.is_dir():
            return []
        return sorted(p for p in self.output_dir.iterdir() if _VIDEO_NAME.match(p.name))

    def _label(self, path: Path) -> str:
        """``conv_1/kernel``, ``conv_1/kernel (epoch 3)``, or the file name when no weight matches."""
        match = re.match(r"epoch_(\d+)-(.*)", _stem(path))
        stem, epoch = (match.group(2), int(match.group(1))) if match else (_stem(path), None)
        weight = next((entry.path for entry in self._entries or () if entry.name == stem), path.name)
        return weight if epoch is None else f"{weight} (epoch {epoch})"

    # -- internals ------------------------------------------------------------------------
    def _check_output_dir(self) -> None:
        path = self.output_dir
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"WeightSnapshot output_dir {str(path)!r} exists and is not a directory")
        try:
            temporary_file(path / ".visopt-write-test").unlink()  # creates the folder too
        except OSError as err:
            raise _unwritable(path, err) from err

    def _open(self) -> bool:
        """Find the weights and start the writer; False while the model has no weights yet."""
        if not self.model.trainable_weights:
            return False
        entries = trainable_entries(self.model)
        if self.weights is not None:
            entries = select(entries, self.weights, "WeightSnapshot(weights=...)")
        settings = {"cmap": self.cmap, "fps": self.fps, "video_format": self.video_format,
                    "per_epoch": self.per_epoch, "max_frame_size": self.max_frame_size}
        try:
            store = SnapshotStore(self.output_dir, [weight_record(entry) for entry in entries], settings,
                                  model=self.model.name)
        except OSError as err:
            raise _unwritable(self.output_dir, err) from err
        self._entries = entries
        self._writer = SnapshotWriter(store, queue_size=self.queue_size)
        return True

    def _iterations(self) -> int | None:
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        return None if iterations is None else int(iterations.numpy())

    def _step(self, calls: int) -> int:
        """Batches trained in this ``fit`` before now: the hook count, or the optimizer's update count
        when it is ahead (``steps_per_execution`` > 1 calls the hook once per several batches)."""
        iterations = self._iterations()
        if iterations is None or self._start_iteration is None:
            return calls
        return max(calls, iterations - self._start_iteration)

    def _snapshot(self, batch: int, step: int) -> None:
        if self._writer.error is not None:
            self._fail(self._writer.error)
            return
        self._report_nonfinite()
        arrays = [read(entry.variable) for entry in self._entries]
        if not self._writer.put({"epoch": self._epoch, "batch": int(batch), "step": step}, arrays):
            self._fail(self._writer.error)
            return
        self.snapshots += 1

    def _report_nonfinite(self) -> None:
        """Warn once when the worker found NaN/Inf in recorded weights (it checks each snapshot off this thread)."""
        store = None if self._writer is None else self._writer.store
        if store is None or self._nonfinite_reported or not store.nonfinite:
            return
        self._nonfinite_reported = True
        found = dict(store.nonfinite)
        first = store.records[min(found.values())]
        names = sorted(found, key=found.get)
        warnings.warn(f"WeightSnapshot: weights became NaN/Inf during training: {names[:5]}"
                      f"{' and %d more' % (len(names) - 5) if len(names) > 5 else ''}, first in the snapshot of "
                      f"epoch {first['epoch']}, batch {first['batch']} (step {first['step']}); their videos mark "
                      "those frames", RuntimeWarning, stacklevel=3)

    def _fail(self, error) -> None:
        if not self.failed:
            self.failed = True
            warnings.warn(f"WeightSnapshot stopped recording weights to {self.output_dir}: {error}; training "
                          "goes on", RuntimeWarning, stacklevel=3)


#: Embedded GIFs of a snapshot's listing are at most this big each (bigger ones, and MP4s, are referenced).
_EMBED_EACH = 64 * 1024
_VIDEO_NAME = re.compile(r"(epoch_\d+-)?layer_.*-weights_\d+(\.mp4|\.gif)?$")


def _stem(path: Path) -> str:
    return path.name[:-len(path.suffix)] if path.suffix in (".mp4", ".gif") else path.name


def _unwritable(path: Path, err: OSError) -> OSError:
    kind = PermissionError if isinstance(err, PermissionError) else OSError
    return kind(f"WeightSnapshot cannot write to output_dir {str(path)!r}: {err}")
