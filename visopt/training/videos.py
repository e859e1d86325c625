"""Weight videos: a snapshot folder rendered to one animation per weight tensor.

Rendering (:func:`render_snapshots`, or ``visopt render DIR`` on the command line) needs the whole
run: the colour scale of a weight is fixed over all its snapshots
(:func:`visopt.render.colormaps.colour_scale`), found in a first pass over the stack before any
frame is drawn. That is why animations are made after training and not while it runs, and why one
colour means one value in every frame. :func:`render_in_background` does the same off the
caller's thread (``WeightSnapshot(render_videos="background")``).

Encoding: GIFs are encoded in this process; MP4s of weights rendered side by side share one
ffmpeg process (:class:`~visopt.frames.sinks.Mp4Batch`), so a model with 158 tensors starts ffmpeg
a few times instead of 158. A weight recorded less often (``every`` > 1 in the manifest) gets a
frame per recorded snapshot at ``fps / every``: its video lasts as long as the others and each of
its frames shows at the moment of training it was taken.

Example:
    >>> render_snapshots("runs/weights", format="gif", cmap="RdBu", fps=8)
    [PosixPath('runs/weights/layer_conv_1-weights_01.gif'), ...]
"""

from __future__ import annotations

import atexit
import fnmatch
import os
import threading
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visopt._checks import check_int, positive_int
from visopt._worker import BackgroundWorker
from visopt.frames.captions import caption_width
from visopt.frames.sinks import Mp4Batch
from visopt.frames.writer import FrameWriter
from visopt.render.colormaps import check_colormap, colour_scale
from visopt.render.weight_images import WeightRenderer
from visopt.store.folder import SnapshotFolder
from visopt.store.writer import RENDER_FORMATS

#: Appended to the caption of a frame whose weight holds NaN/Inf values.
_NONFINITE_MARK = "  NaN/Inf!"
#: The frame writer's smallest caption font (see visopt.frames.writer), for the width a caption needs.
_CAPTION_SCALE = 0.35
#: MP4s encoded by one ffmpeg process by default (docs/benchmarks.md, "weight recording at scale").
MP4_BATCH = 16


@dataclass
class _Settings:
    """The options of one rendering, the manifest's defaults filled in and checked."""

    format: str
    cmap: str
    fps: float
    per_epoch: bool
    max_frame_size: int
    annotate: bool
    concurrency: int
    min_value_size: int

    @property
    def suffix(self) -> str:
        return "" if self.format == "png" else f".{self.format}"

    def writer_options(self, fps: float) -> dict:
        return dict(format=self.format, fps=fps, min_size=1, max_size=max(self.max_frame_size, 8),
                    annotate=self.annotate)


def render_snapshots(directory, *, format: str | None = None, cmap: str | None = None, fps: float | None = None,
                     per_epoch: bool | None = None, max_frame_size: int | None = None, out=None,
                     annotate: bool = True, weights=None, concurrency: int | None = None, include=None,
                     exclude=None, min_value_size: int = 2) -> list[Path]:
    """Render a snapshot folder: one animation per weight tensor over all snapshots, named like the folder's stacks.

    ``layer_NAME-weights_YY.mp4`` (``YY`` the 1-based position in ``layer.weights``) holds every
    snapshot; with ``per_epoch``, ``epoch_XXX-layer_NAME-weights_YY.mp4`` (``XXX`` the 0-based
    epoch, as keras_weight_animator numbered them) holds one epoch's. The colour scale of a weight
    is fixed over all its snapshots (one pass over the stack first), so every frame uses the same
    value-to-colour mapping. Frames are captioned with epoch, batch and step when ``annotate``
    (a picture narrower than its caption is centred on a wider black frame); a weight shown by a
    sample of its rows says how many (``rows 741 of 20000``).

    Args:
        directory: a folder written by ``WeightSnapshot``.
        format: ``"mp4"``, ``"gif"`` or ``"png"`` (a folder of frames per weight).
        cmap: a matplotlib colormap name; diverging maps are centred on zero.
        fps: frames per second.
        per_epoch: also write one animation per epoch and weight.
        max_frame_size: longest side of a frame in pixels (before the caption).
        out: folder for the animations (created); ``directory`` by default.
        weights: only these weights (paths or names); all by default.
        include, exclude: only the weights whose path matches one of these ``fnmatch`` patterns
            (``"*embedding*"``), and none that matches one of ``exclude``.
        concurrency: weights rendered side by side. Their MP4s share one ffmpeg process (default
            16 at once); GIFs and PNGs are encoded on one thread each (default the CPU count up
            to 8: more encoders than cores only add switching; see docs/benchmarks.md).
        min_value_size: the fewest pixels a value gets each way: a matrix or strip that would get
            fewer is folded into blocks, and shown by a sample of its rows if folding is not enough
            (:class:`~visopt.render.weight_images.WeightRenderer`).

    Unset options take the values stored by the callback in the manifest (its ``cmap``, ``fps``,
    ``video_format``, ``per_epoch``, ``max_frame_size``). Returns the paths written.

    Example:
        >>> render_snapshots("runs/weights", format="gif", cmap="RdBu", per_epoch=True, include=["*kernel*"])
    """
    folder = SnapshotFolder(directory)
    settings = _settings(folder, format, cmap, fps, per_epoch, max_frame_size, annotate, concurrency, min_value_size)
    if len(folder) == 0:
        raise ValueError(f"{folder.directory} holds no snapshots to render")
    selected = folder.weights if weights is None else [folder.weight(key) for key in weights]
    if include is not None or exclude is not None:
        chosen = matching([w["path"] for w in selected], include, exclude, "render_snapshots")
        selected = [weight for weight, keep in zip(selected, chosen) if keep]
    out = folder.directory if out is None else Path(out)
    written: list[Path] = []
    nonfinite: dict[str, int] = {}
    for group in _groups(selected, settings.concurrency):
        written += _render_group(folder, group, settings, out, nonfinite)
    if nonfinite:
        first = folder.records[min(nonfinite.values())]
        warnings.warn(f"{len(nonfinite)} weight(s) hold NaN/Inf values, first {min(nonfinite, key=nonfinite.get)!r} in "
                      f"the snapshot of epoch {first['epoch']}, batch {first['batch']}: those frames are captioned "
                      f"{_NONFINITE_MARK.strip()!r} and the values drawn in the colour map's 'bad' colour",
                      RuntimeWarning, stacklevel=2)
    return sorted(written)


def matching(paths: list[str], include, exclude, what: str) -> list[bool]:
    """Which ``paths`` match a pattern of ``include`` (all when None) and none of ``exclude`` (``fnmatch``,
    case-sensitive). A pattern that matches no path is an error naming it and the valid paths.

    Example:
        >>> matching(["emb/embeddings", "out/kernel"], ["*emb*"], None, "WeightSnapshot")
        [True, False]
    """
    def patterns(value, name):
        value = [value] if isinstance(value, str) else list(value or ())
        for pattern in value:
            if not isinstance(pattern, str) or not any(fnmatch.fnmatchcase(p, pattern) for p in paths):
                shown = ", ".join(paths[:8]) + (", ..." if len(paths) > 8 else "")
                raise ValueError(f"{what}({name}=...): the pattern {pattern!r} matches no weight path; valid paths: "
                                 f"{shown}")
        return value

    included, excluded = patterns(include, "include"), patterns(exclude, "exclude")
    chosen = [(include is None or any(fnmatch.fnmatchcase(p, pat) for pat in included))
              and not any(fnmatch.fnmatchcase(p, pat) for pat in excluded) for p in paths]
    if not any(chosen):
        raise ValueError(f"{what}: include={include!r} and exclude={exclude!r} leave no weight of {paths[:8]}")
    return chosen


def _settings(folder: SnapshotFolder, format, cmap, fps, per_epoch, max_frame_size, annotate,
              concurrency, min_value_size) -> _Settings:
    """The options given, else the manifest's, checked before any file is opened."""
    stored = folder.settings
    format = stored["video_format"] if format is None else format
    if format not in RENDER_FORMATS:
        raise ValueError(f"unknown animation format {format!r}; valid: {list(RENDER_FORMATS)}")
    max_frame_size = stored["max_frame_size"] if max_frame_size is None else max_frame_size
    check_int(max_frame_size, "max_frame_size", 8)
    if concurrency is None:
        batched = format == "mp4" and Mp4Batch.supported
        concurrency = MP4_BATCH if batched else max(1, min(8, os.cpu_count() or 1))
    return _Settings(format=format, cmap=check_colormap(stored["cmap"] if cmap is None else cmap),
                     fps=stored["fps"] if fps is None else fps,
                     per_epoch=stored["per_epoch"] if per_epoch is None else per_epoch,
                     max_frame_size=max_frame_size, annotate=annotate,
                     concurrency=positive_int(concurrency, "concurrency"),
                     min_value_size=check_int(min_value_size, "min_value_size", 1))


def _groups(weights: list[dict], size: int) -> list[list[dict]]:
    """Weights rendered side by side: at most ``size``, all with the same frame times (the same ``every``)."""
    groups = []
    for every in sorted({weight["every"] for weight in weights}):
        same = [weight for weight in weights if weight["every"] == every]
        groups += [same[start:start + size] for start in range(0, len(same), size)]
    return groups


class _Writers:
    """The open writers of one group of weights: started together, closed in order, all aborted on an error."""

    def __init__(self, settings: _Settings, out: Path, fps: float):
        self.settings, self.out, self.fps = settings, out, fps
        self.open: list[FrameWriter] = []
        self.batches: list[Mp4Batch] = []
        self.written: list[Path] = []

    def start(self, names: list[str]) -> list[FrameWriter]:
        """One writer per name; MP4s of several weights share one ffmpeg process."""
        paths = [self.out / f"{name}{self.settings.suffix}" for name in names]
        options = self.settings.writer_options(self.fps)
        if self.settings.format == "mp4" and Mp4Batch.supported and len(paths) > 1:
            batch = Mp4Batch(len(paths), self.fps)
            self.batches.append(batch)
            # queue_size=2: every frame is handed over at once, so every video reaches its first
            # frame (the batch starts ffmpeg then) without waiting for another
            writers = [FrameWriter(path, queue_size=2, sink=batch.sink(path), **options) for path in paths]
        else:
            writers = [FrameWriter(path, **options) for path in paths]
        self.open += writers
        return writers

    def close(self, writers: list[FrameWriter] | None = None) -> None:
        for writer in list(self.open if writers is None else writers):
            self.open.remove(writer)
            path = writer.close()
            if path is not None:
                self.written.append(path)

    def abort_all(self) -> None:
        for batch in self.batches:  # first: a writer blocked on its batch's encoder is released
            batch.abort()
        for writer in self.open:
            writer.abort()
        self.open = []


def _render_group(folder: SnapshotFolder, group: list[dict], settings: _Settings, out: Path,
                  nonfinite: dict[str, int]) -> list[Path]:
    """Render the weights of ``group`` side by side, frame by frame (their encoders run at the same time).

    Frames of a weight holding NaN/Inf get a marked caption; ``nonfinite`` collects the first such
    snapshot of each weight.
    """
    indices = folder.indices(group[0]["path"])  # one frame per row; the group shares its frame times
    records = [folder.records[i] for i in indices]
    # plain ndarray views of the memory maps: indexing a np.memmap costs bookkeeping on every frame
    stacks = [np.asarray(folder.values(weight["path"])) for weight in group]
    renderers = [_renderer(weight, stack, settings) for weight, stack in zip(group, stacks)]
    captions = [f"epoch {r['epoch']}  batch {r['batch']}  step {r['step']}" for r in records]
    notes = [_sample_note(weight, renderer) for weight, renderer in zip(group, renderers)]
    # The frame writer cuts a caption that does not fit at its smallest font: narrow pictures (a
    # Dense kernel with few outputs) are centred on a frame wide enough for the longest caption.
    mark = _NONFINITE_MARK if folder.nonfinite else ""  # room for the mark where the recorder saw NaN/Inf
    longest = max(captions, key=len)
    widths = [caption_width(longest + note + mark, _CAPTION_SCALE) + 8 if settings.annotate else 0 for note in notes]
    writers = _Writers(settings, out, settings.fps / group[0]["every"])
    try:
        whole = writers.start([weight["name"] for weight in group])
        per_epoch: list[FrameWriter] = []
        for row, record in enumerate(records):
            if settings.per_epoch and (row == 0 or record["epoch"] != records[row - 1]["epoch"]):
                writers.close(per_epoch)
                per_epoch = writers.start([f"epoch_{record['epoch']:03d}-{weight['name']}" for weight in group])
            for j, weight in enumerate(group):
                text = captions[row] + notes[j]
                if not np.isfinite(stacks[j][row]).all():
                    nonfinite.setdefault(weight["path"], int(indices[row]))
                    text += _NONFINITE_MARK
                frame = _widened(renderers[j](stacks[j][row]), widths[j])
                for writer in [whole[j]] + per_epoch[j:j + 1]:
                    writer.write(frame, text=text)
        writers.close()
    except BaseException:
        writers.abort_all()
        raise
    return writers.written


def _renderer(weight: dict, stack: np.ndarray, settings: _Settings) -> WeightRenderer:
    return WeightRenderer(weight["shape"], weight["kind"], int(weight.get("gates", 1)), settings.cmap,
                          colour_scale(stack, settings.cmap), settings.max_frame_size,
                          min_value_size=settings.min_value_size, row_labels=weight.get("rows"))


def _sample_note(weight: dict, renderer: WeightRenderer) -> str:
    """``"  rows 741 of 20000"`` for a weight shown by a sample of its rows (recorded or drawn), or of its
    columns, else ``""``."""
    if renderer.rows is not None:
        return f"  rows {len(renderer.rows)} of {(weight.get('full_shape') or weight['shape'])[0]}"
    if renderer.columns is not None:
        return f"  columns {len(renderer.columns)} of {weight['shape'][-1]}"
    return ""


def _widened(frame: np.ndarray, width: int) -> np.ndarray:
    """``frame`` centred on a black frame at least ``width`` pixels wide."""
    if frame.shape[1] >= width:
        return frame
    out = np.zeros((frame.shape[0], width, 3), np.uint8)
    left = (width - frame.shape[1]) // 2
    out[:, left:left + frame.shape[1]] = frame
    return out


# -- in the background ----------------------------------------------------------------------
class RenderJob:
    """:func:`render_snapshots` running on a worker thread; ``wait()`` for its paths.

    The thread runs at a lower CPU priority (Linux), so a training or notebook cell that goes on
    keeps its speed. The videos appear atomically, each complete or not at all. When the
    interpreter exits, the job is waited for first (registered with ``threading``'s exit hook,
    which runs before Python stops allowing new threads and processes; ``atexit`` where it is
    missing), so a script that ends right after ``fit`` still gets every video; no partial file
    is ever left under a final name (a kill leaves at most ``.NAME.XXXX.part`` files, which the
    next rendering there ignores).

    Attributes:
        paths: the files written (empty until done, or after a failure).
        error: the exception that stopped it, None while running or after success.

    Example:
        >>> job = render_in_background("runs/weights", format="gif")
        >>> job.wait()            # blocks until every video is written
        [PosixPath('runs/weights/layer_conv_1-weights_01.gif'), ...]
    """

    def __init__(self, directory, on_done=None, **options):
        self.directory = Path(directory)
        self.paths: list[Path] = []
        self.error: BaseException | None = None
        self._options, self._on_done = options, on_done
        self._done = threading.Event()
        self._worker = BackgroundWorker(self._run, name="visopt-render-videos", queue_size=1, low_priority=True)
        _RUNNING.add(self)  # the worker holds its owner weakly: a job nobody keeps still runs to its end
        _wait_at_exit(self)
        self._worker.submit("render")

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _run(self, _item) -> None:
        try:
            self.paths = render_snapshots(self.directory, **self._options)
        except BaseException as err:  # noqa: BLE001 - kept for wait(); the callback reports it
            self.error = err
        finally:
            try:
                if self._on_done is not None:
                    self._on_done(self)  # before done: wait() returns after the owner has the paths
            finally:
                self._done.set()
                _RUNNING.discard(self)

    def wait(self, timeout: float | None = None) -> list[Path]:
        """Block until the videos are written (or ``timeout`` seconds passed); returns :attr:`paths`."""
        if self._done.wait(timeout):
            self._worker.close()
        return self.paths


_RUNNING: set = set()


def _wait_at_exit(job: RenderJob) -> None:
    """Wait for ``job`` when the interpreter exits, while threads and processes can still start.

    ``threading._register_atexit`` (what ``concurrent.futures`` uses) runs before the interpreter
    joins its threads and, since Python 3.12, before it refuses new ones; plain ``atexit`` runs
    after that, when rendering could no longer start its encoders. Held weakly: a finished,
    forgotten job is not kept alive.
    """
    ref = weakref.ref(job)

    def wait() -> None:
        job = ref()
        if job is not None:
            job.wait()

    register = getattr(threading, "_register_atexit", None)
    try:
        register(wait) if register is not None else atexit.register(wait)
    except RuntimeError:  # the interpreter is already exiting: wait here instead
        wait()


def render_in_background(directory, *, on_done=None, **options) -> RenderJob:
    """Start :func:`render_snapshots` on a worker thread (same options); ``job.wait()`` blocks for its paths.

    ``on_done(job)`` is called on the worker when it ends (``job.error`` says whether it failed).

    Example:
        >>> job = render_in_background("runs/weights", cmap="RdBu")
        >>> paths = job.wait()
    """
    return RenderJob(directory, on_done=on_done, **options)
