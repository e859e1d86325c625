"""Record every trainable weight tensor during ``fit`` and animate how each one changes (keras_weight_animator, done right)."""

from __future__ import annotations

import fnmatch
import html
import re
import warnings
from pathlib import Path

import keras
import numpy as np

from visopt._atomic import temporary_file
from visopt._checks import check_int, positive_int, positive_number
from visopt._locks import FolderBusyError
from visopt.frames.display import Media, media_html
from visopt.model.weights import read, select, trainable_entries
from visopt.render.colormaps import check_colormap
from visopt.store.writer import DTYPES, RENDER_FORMATS, SnapshotStore, SnapshotWriter, weight_record
from visopt.training.videos import RenderJob, matching, render_in_background, render_snapshots


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

    **At scale.** ``max_bytes`` caps the folder: before a snapshot would pass it, the store keeps
    every other snapshot (still evenly spaced over the whole run) and halves the rate from then on,
    with one warning; a kill in the middle leaves a readable folder (:mod:`visopt.store.writer`).
    ``dtype="float16"`` halves the disk (values rounded to 11 significant bits: in the videos at
    most one colour step of 256 for weights spread around zero; docs/animations.md). ``include``
    / ``exclude`` pick weights by ``Variable.path`` pattern (``fnmatch``: ``"*embedding*"``),
    ``intervals`` records some less often, ``max_rows`` keeps an evenly spaced sample of the rows
    of a huge matrix (their indices go into the manifest and label the pictures).
    ``render_videos="background"`` renders after ``fit`` returns, on a worker thread; ``wait()``
    blocks for the videos, and a script that exits first still gets them.

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
        render_videos: render the videos when training ends: ``True`` (``fit`` returns when they
            are written), ``"background"`` (``fit`` returns at once; ``wait()``), or ``False``.
        video_format: ``"mp4"`` or ``"gif"`` (or ``"png"``: a folder of frames per weight).
        per_epoch: also render one video per epoch and weight.
        max_frame_size: longest side of a video frame in pixels; bigger weights are shrunk.
        fps: frames per second of the videos.
        weights: record only these weights: variable paths (``"conv_1/kernel"``) or layer names;
            all trainable weights by default.
        queue_size: snapshots waiting for the worker before training waits for it (each is a copy of
            the recorded weights, so this bounds the extra memory).
        max_bytes: the most bytes the snapshot folder (stacks, journal, manifest; not the videos)
            may take; None for no limit.
        dtype: ``"float32"`` or ``"float16"`` snapshots on disk.
        include, exclude: record only the weights whose path matches one of the ``include``
            patterns (``fnmatch``, case-sensitive) and none of ``exclude``.
        intervals: ``{pattern: batches}``: record the matching weights every that many batches (a
            multiple of ``batch_interval``; the first matching pattern counts), e.g.
            ``{"*embedding*": 100}``.
        max_rows: keep at most this many evenly spaced rows (first axis) of a 1-D or 2-D weight
            with more (an Embedding's tokens, a Dense kernel's inputs); None keeps every row.

    Attributes:
        snapshots: snapshots taken in the last ``fit`` (with ``max_bytes``, the folder may keep fewer).
        video_paths: the files rendered at the end of the last ``fit`` (in the background: once done).
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
                 max_frame_size: int = 512, fps: float = 10, weights=None, queue_size: int = 4, *,
                 max_bytes: int | None = None, dtype: str = "float32", include=None, exclude=None,
                 intervals: dict | None = None, max_rows: int | None = None):
        super().__init__()
        for name, value in (("epoch_interval", epoch_interval), ("batch_interval", batch_interval),
                            ("queue_size", queue_size)):
            positive_int(value, name)
        if render_videos not in (True, False, "background"):
            raise ValueError(f"render_videos must be True, False or 'background', got {render_videos!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.max_bytes = None if max_bytes is None else positive_int(max_bytes, "max_bytes")
        self.max_rows = None if max_rows is None else positive_int(max_rows, "max_rows")
        self.intervals = _checked_intervals(intervals, batch_interval)
        self.include, self.exclude, self.dtype = _patterns(include, "include"), _patterns(exclude, "exclude"), dtype
        if video_format not in RENDER_FORMATS:
            raise ValueError(f"video_format must be one of {list(RENDER_FORMATS)}, got {video_format!r}")
        max_frame_size = check_int(max_frame_size, "max_frame_size", 8)
        fps = positive_number(fps, "fps")
        fps = int(fps) if fps.is_integer() else fps  # plain numbers: they go into manifest.json
        self.output_dir = Path(output_dir)
        self.epoch_interval, self.batch_interval = epoch_interval, batch_interval
        self.cmap = check_colormap(cmap)
        self.render_videos, self.video_format, self.per_epoch = render_videos, video_format, bool(per_epoch)
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
        self._slot = 0  # scheduled snapshot moments so far (the store keeps those it is due: max_bytes)
        self._rows: list = []  # per recorded weight: the row indices kept (max_rows), or None
        self._job: RenderJob | None = None
        self._thinning_reported = False

    # -- Keras hooks ----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.wait()  # the previous fit's videos, still rendering in the background, are read from this folder
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
        self._nonfinite_reported = self._thinning_reported = False
        self._slot = 0
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
        self._report_thinning()

    def on_train_end(self, logs=None):
        if self._writer is None:
            return
        error = self._writer.close()
        self._report_nonfinite()
        self._report_thinning()
        self._writer = None
        if error is not None:
            self._fail(error)
            return
        if self.render_videos == "background" and self.snapshots:
            self._job = render_in_background(self.output_dir, on_done=self._rendered)
        elif self.render_videos and self.snapshots:
            try:
                self.video_paths = render_snapshots(self.output_dir)
            except Exception as err:  # noqa: BLE001 - training is done; keep the snapshots
                self._render_failed(err)

    def wait(self, timeout: float | None = None) -> list[Path]:
        """Block until the videos rendering in the background (``render_videos="background"``) are
        written, or ``timeout`` seconds passed; returns :attr:`video_paths` (at once when none render).

        Example:
            >>> model.fit(x, y, callbacks=[snapshot])      # returns before the videos are done
            >>> snapshot.wait()
            [PosixPath('runs/weights/layer_conv_1-weights_01.mp4'), ...]
        """
        if self._job is not None:
            self._job.wait(timeout)
        return list(self.video_paths)

    def _rendered(self, job: RenderJob) -> None:
        """The background rendering ended (on its worker thread)."""
        if job.error is not None:
            self._render_failed(job.error)
        else:
            self.video_paths = list(job.paths)

    def _render_failed(self, err: BaseException) -> None:
        self.failed = True
        warnings.warn(f"WeightSnapshot could not render videos in {self.output_dir}: {err}; the "
                      f"snapshots are kept: run `visopt render {self.output_dir}`", RuntimeWarning, stacklevel=3)

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

    def __repr__(self) -> str:
        # what a text export of a notebook keeps: the folder, the schedule, what was written
        return (f"WeightSnapshot({str(self.output_dir)!r}, batch_interval={self.batch_interval}: "
                f"{self.snapshots} snapshots, {len(self.video_paths)} videos)")

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
        if self.include is not None or self.exclude is not None:
            chosen = matching([entry.path for entry in entries], self.include, self.exclude, "WeightSnapshot")
            entries = [entry for entry, keep in zip(entries, chosen) if keep]
        if self.intervals:
            matching([entry.path for entry in entries], list(self.intervals), None, "WeightSnapshot(intervals=...)")
        records = [self._record(entry) for entry in entries]
        settings = {"cmap": self.cmap, "fps": self.fps, "video_format": self.video_format,
                    "per_epoch": self.per_epoch, "max_frame_size": self.max_frame_size}
        try:
            store = SnapshotStore(self.output_dir, records, settings, model=self.model.name, dtype=self.dtype,
                                  max_bytes=self.max_bytes)
        except OSError as err:
            raise _unwritable(self.output_dir, err) from err
        self._entries = entries
        self._rows = [np.asarray(record["rows"]) if "rows" in record else None for record in records]
        self._writer = SnapshotWriter(store, queue_size=self.queue_size)
        return True

    def _record(self, entry) -> dict:
        """The store's entry of a weight: its period (``intervals``) and its sampled rows (``max_rows``)."""
        record = weight_record(entry)
        matched = next((pattern for pattern in self.intervals if fnmatch.fnmatchcase(entry.path, pattern)), None)
        record["period"] = 1 if matched is None else self.intervals[matched] // self.batch_interval
        rows = _sampled_rows(entry.shape, self.max_rows)
        if rows is not None:
            record.update(rows=rows.tolist(), full_shape=list(entry.shape), shape=[len(rows), *entry.shape[1:]])
        return record

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
        self._report_thinning()
        slot, self._slot = self._slot, self._slot + 1
        due = self._writer.store.due(slot)  # None: a thinned store keeps fewer moments (max_bytes)
        if due is None:
            return
        arrays = [None if not is_due else read(entry.variable) if rows is None else read(entry.variable)[rows]
                  for entry, rows, is_due in zip(self._entries, self._rows, due)]
        if not self._writer.put({"epoch": self._epoch, "batch": int(batch), "step": step}, arrays, slot):
            self._fail(self._writer.error)
            return
        self.snapshots += 1

    def _report_thinning(self) -> None:
        """Warn once when the store first thinned itself to stay within ``max_bytes`` (on the worker)."""
        store = None if self._writer is None else self._writer.store
        if store is None or self._thinning_reported or store.factor == 1:
            return
        self._thinning_reported = True
        warnings.warn(f"WeightSnapshot: the snapshots in {self.output_dir} reached max_bytes={self.max_bytes}; "
                      f"every other snapshot was dropped (those kept stay evenly spaced over the run) and from "
                      f"now on every {store.factor * self.batch_interval} batches are recorded (it halves again "
                      "each time the budget fills, without another warning); raise max_bytes, use "
                      "dtype='float16', max_rows= or fewer weights to keep more", RuntimeWarning, stacklevel=3)

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


def _checked_intervals(intervals, batch_interval: int) -> dict[str, int]:
    """``{pattern: batches}`` with every value a positive multiple of ``batch_interval``."""
    if intervals is None:
        return {}
    if not isinstance(intervals, dict):
        raise ValueError(f"intervals must be a dict {{pattern: batches}}, got {intervals!r}")
    for pattern, value in intervals.items():
        if not isinstance(pattern, str):
            raise ValueError(f"intervals keys must be Variable.path patterns (str), got {pattern!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % batch_interval:
            raise ValueError(f"intervals[{pattern!r}]={value!r} must be a positive multiple of batch_interval="
                             f"{batch_interval} ({batch_interval}, {2 * batch_interval}, {3 * batch_interval}, ...)")
    return dict(intervals)


def _patterns(value, name: str) -> list[str] | None:
    """``include`` / ``exclude``: None, a pattern or a list of patterns (str)."""
    if value is None:
        return None
    patterns = [value] if isinstance(value, str) else list(value)
    if not patterns or not all(isinstance(pattern, str) for pattern in patterns):
        raise ValueError(f"{name} must be a Variable.path pattern or a non-empty list of them, got {value!r}")
    return patterns


def _sampled_rows(shape: tuple[int, ...], max_rows: int | None) -> np.ndarray | None:
    """``max_rows`` evenly spaced row indices (the first and the last included) of a 1-D or 2-D weight with
    more rows, else None."""
    if max_rows is None or len(shape) not in (1, 2) or shape[0] <= max_rows:
        return None
    return np.rint(np.linspace(0, shape[0] - 1, max_rows)).astype(np.int64)


#: Embedded GIFs of a snapshot's listing are at most this big each (bigger ones, and MP4s, are referenced).
_EMBED_EACH = 64 * 1024
_VIDEO_NAME = re.compile(r"(epoch_\d+-)?layer_.*-weights_\d+(\.mp4|\.gif)?$")


def _stem(path: Path) -> str:
    return path.name[:-len(path.suffix)] if path.suffix in (".mp4", ".gif") else path.name


def _unwritable(path: Path, err: OSError) -> OSError:
    kind = PermissionError if isinstance(err, PermissionError) else OSError
    return kind(f"WeightSnapshot cannot write to output_dir {str(path)!r}: {err}")
