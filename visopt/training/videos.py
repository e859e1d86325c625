"""Weight videos: a snapshot folder rendered to one animation per weight tensor.

Rendering (:func:`render_snapshots`, or ``visopt render DIR`` on the command line) needs the whole
run: the colour scale of a weight is fixed over all its snapshots
(:func:`visopt.render.colormaps.colour_scale`), found in a first pass over the stack before any
frame is drawn. That is why animations are made after training and not while it runs, and why one
colour means one value in every frame.

Example:
    >>> render_snapshots("runs/weights", format="gif", cmap="RdBu", fps=8)
    [PosixPath('runs/weights/layer_conv_1-weights_01.gif'), ...]
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visopt._checks import check_int, positive_int
from visopt.frames.captions import caption_width
from visopt.frames.writer import FrameWriter
from visopt.render.colormaps import check_colormap, colour_scale
from visopt.render.weight_images import WeightRenderer
from visopt.store.folder import SnapshotFolder
from visopt.store.writer import RENDER_FORMATS

#: Appended to the caption of a frame whose weight holds NaN/Inf values.
_NONFINITE_MARK = "  NaN/Inf!"
#: The frame writer's smallest caption font (see visopt.frames.writer), for the width a caption needs.
_CAPTION_SCALE = 0.35


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

    @property
    def suffix(self) -> str:
        return "" if self.format == "png" else f".{self.format}"

    def writer_options(self) -> dict:
        return dict(format=self.format, fps=self.fps, min_size=1, max_size=max(self.max_frame_size, 8),
                    annotate=self.annotate)


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
            CPU count up to 8 by default (more encoders than cores only add switching; see
            docs/benchmarks.md).

    Unset options take the values stored by the callback in the manifest (its ``cmap``, ``fps``,
    ``video_format``, ``per_epoch``, ``max_frame_size``). Returns the paths written.

    Example:
        >>> render_snapshots("runs/weights", format="gif", cmap="RdBu", per_epoch=True)
    """
    folder = SnapshotFolder(directory)
    settings = _settings(folder, format, cmap, fps, per_epoch, max_frame_size, annotate, concurrency)
    if len(folder) == 0:
        raise ValueError(f"{folder.directory} holds no snapshots to render")
    selected = folder.weights if weights is None else [folder.weight(key) for key in weights]
    out = folder.directory if out is None else Path(out)
    texts = [f"epoch {r['epoch']}  batch {r['batch']}  step {r['step']}" for r in folder.records]
    # The frame writer cuts a caption that does not fit at its smallest font: narrow pictures (a
    # Dense kernel with few outputs) are centred on a frame wide enough for the longest caption.
    mark = _NONFINITE_MARK if folder.nonfinite else ""  # room for the mark where the recorder saw NaN/Inf
    width = max(caption_width(text + mark, _CAPTION_SCALE) + 8 for text in texts) if annotate else 0
    written: list[Path] = []
    nonfinite: dict[str, int] = {}
    for start in range(0, len(selected), settings.concurrency):
        group = selected[start:start + settings.concurrency]
        written += _render_group(folder, group, settings, out, texts, width, nonfinite)
    if nonfinite:
        first = folder.records[min(nonfinite.values())]
        warnings.warn(f"{len(nonfinite)} weight(s) hold NaN/Inf values, first {min(nonfinite, key=nonfinite.get)!r} in "
                      f"the snapshot of epoch {first['epoch']}, batch {first['batch']}: those frames are captioned "
                      f"{_NONFINITE_MARK.strip()!r} and the values drawn in the colour map's 'bad' colour",
                      RuntimeWarning, stacklevel=2)
    return sorted(written)


def _settings(folder: SnapshotFolder, format, cmap, fps, per_epoch, max_frame_size, annotate,
              concurrency) -> _Settings:
    """The options given, else the manifest's, checked before any file is opened."""
    stored = folder.settings
    format = stored["video_format"] if format is None else format
    if format not in RENDER_FORMATS:
        raise ValueError(f"unknown animation format {format!r}; valid: {list(RENDER_FORMATS)}")
    max_frame_size = stored["max_frame_size"] if max_frame_size is None else max_frame_size
    check_int(max_frame_size, "max_frame_size", 8)
    concurrency = max(1, min(8, os.cpu_count() or 1)) if concurrency is None else concurrency
    return _Settings(format=format, cmap=check_colormap(stored["cmap"] if cmap is None else cmap),
                     fps=stored["fps"] if fps is None else fps,
                     per_epoch=stored["per_epoch"] if per_epoch is None else per_epoch,
                     max_frame_size=max_frame_size, annotate=annotate,
                     concurrency=positive_int(concurrency, "concurrency"))


class _Writers:
    """The open writers of one group of weights: closed in order, all aborted on an error."""

    def __init__(self, settings: _Settings, out: Path):
        self.settings, self.out = settings, out
        self.open: list[FrameWriter] = []
        self.written: list[Path] = []

    def start(self, name: str) -> FrameWriter:
        writer = FrameWriter(self.out / f"{name}{self.settings.suffix}", **self.settings.writer_options())
        self.open.append(writer)
        return writer

    def close(self, writer: FrameWriter) -> None:
        self.open.remove(writer)
        path = writer.close()
        if path is not None:
            self.written.append(path)

    def close_all(self) -> None:
        while self.open:
            self.close(self.open[0])

    def abort_all(self) -> None:
        for writer in self.open:
            writer.abort()
        self.open = []


def _render_group(folder: SnapshotFolder, group: list[dict], settings: _Settings, out: Path, texts: list[str],
                  width: int, nonfinite: dict[str, int]) -> list[Path]:
    """Render the weights of ``group`` side by side, frame by frame (their encoders run at the same time).

    Frames of a weight holding NaN/Inf get a marked caption; ``nonfinite`` collects the first such
    snapshot of each weight.
    """
    # plain ndarray views of the memory maps: indexing a np.memmap costs bookkeeping on every frame
    stacks = [np.asarray(folder.values(weight["path"])) for weight in group]
    renderers = [WeightRenderer(weight["shape"], weight["kind"], int(weight.get("gates", 1)), settings.cmap,
                                colour_scale(stack, settings.cmap), settings.max_frame_size)
                 for weight, stack in zip(group, stacks)]
    writers = _Writers(settings, out)
    try:
        whole = [writers.start(weight["name"]) for weight in group]
        per_epoch: list[FrameWriter | None] = [None] * len(group)
        for i, record in enumerate(folder.records):
            new_epoch = i == 0 or record["epoch"] != folder.records[i - 1]["epoch"]
            for j, weight in enumerate(group):
                text = texts[i]
                if not np.isfinite(stacks[j][i]).all():
                    nonfinite.setdefault(weight["path"], i)
                    text += _NONFINITE_MARK
                frame = _widened(renderers[j](stacks[j][i]), width)
                whole[j].write(frame, text=text)
                if settings.per_epoch:
                    if new_epoch:
                        if per_epoch[j] is not None:
                            writers.close(per_epoch[j])
                        per_epoch[j] = writers.start(f"epoch_{record['epoch']:03d}-{weight['name']}")
                    per_epoch[j].write(frame, text=text)
        writers.close_all()
    except BaseException:
        writers.abort_all()
        raise
    return writers.written


def _widened(frame: np.ndarray, width: int) -> np.ndarray:
    """``frame`` centred on a black frame at least ``width`` pixels wide."""
    if frame.shape[1] >= width:
        return frame
    out = np.zeros((frame.shape[0], width, 3), np.uint8)
    left = (width - frame.shape[1]) // 2
    out[:, left:left + frame.shape[1]] = frame
    return out
