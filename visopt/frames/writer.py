"""One frame writer: streams frames to a GIF, an MP4, a PNG sequence or TensorBoard, off the caller's thread.

Frames are composed (batch tiled or one image picked, scaled, annotated) and encoded on a worker
thread behind a bounded queue, so memory stays flat in the number of frames and the caller only
pays for a copy of each frame. The formats live in :mod:`visopt.frames.sinks`, which write under a
temporary name in the target folder and rename when complete: an interrupted run never leaves a
truncated file under the final name. Captions come from :mod:`visopt.frames.captions`.

Example:
    >>> with FrameWriter("out/progress.gif", fps=20) as writer:
    ...     for step, images in enumerate(batches):
    ...         writer.write(images, text=f"step {step}")
    >>> writer.path
    PosixPath('out/progress.gif')
"""

from __future__ import annotations

import time
import warnings
import weakref
from pathlib import Path

import cv2
import numpy as np

from visopt._checks import positive_int, positive_number
from visopt._worker import BackgroundWorker
from visopt.frames.captions import caption_width, draw_caption
from visopt.frames.sinks import open_sink
from visopt.render.images import rgb_pixels, stitch_images, to_rgb

FORMATS = ("gif", "mp4", "png", "tensorboard")
_SUFFIX_FORMATS = {".gif": "gif", ".mp4": "mp4"}
_BAND = 16  # height of the caption band, in pixels before scaling text


class FrameWriterError(RuntimeError):
    """Writing frames failed (permissions, disk full, encoder error); the message says where and why."""


def format_for(path, format: str | None = None) -> str:
    """The output format: ``format`` if given, else from the suffix (``.gif``, ``.mp4``); no suffix -> PNG folder."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown frame format {format!r}; valid: {list(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    if suffix:
        raise ValueError(f"cannot tell the frame format from {str(path)!r}: use a .gif or .mp4 suffix, a folder "
                         f"name for a PNG sequence, or format= one of {list(FORMATS)}")
    return "png"


def check_output_path(path, format: str) -> Path:
    """``path`` as a Path, refused before any frame is made if an animation cannot be published there."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise ValueError(f"the frame output path {str(path)!r} has no file name; give one such as 'progress.gif'")
    if format in ("gif", "mp4") and path.is_dir():
        raise IsADirectoryError(f"the frame output path {str(path)!r} is an existing folder; give a file name "
                                f"inside it, such as {str(path / ('progress.' + format))!r}")
    return path


def partial_path(path) -> Path:
    """Where an interrupted run's frames are kept when asked to: ``run.gif`` -> ``run.partial.gif``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class FrameWriter:
    """Stream frames to ``path``: a ``.gif``, an ``.mp4``, a folder of PNGs, or TensorBoard.

    Args:
        path: the output file or folder; missing parent folders are created. An existing file is
            replaced when the new one is complete; an existing non-empty PNG folder is an error.
        format: ``"gif"``, ``"mp4"``, ``"png"`` or ``"tensorboard"`` (a log folder; needs
            ``pip install visopt[tensorboard]``); from the suffix when None.
        fps: frames per second of the animation.
        loop: GIF loop count, 0 for forever.
        image_index: for a batch ``(N, H, W, C)``, write only this image; None tiles the batch.
        cols: columns of the tiled grid (about square by default).
        min_size, max_size: a frame whose longest side is below ``min_size`` is enlarged by the
            largest whole factor that keeps it at or below ``min_size`` (nearest-neighbour, so
            pixels stay sharp: 32 px becomes 256, 131 px stays 131); one above ``max_size`` is
            shrunk to it (area). ``min_size`` defaults to ``min(256, max_size)``.
        annotate: draw each frame's ``text`` in a band above it.
        value_range: ``(low, high)`` for float frames (uint8 frames need none).
        queue_size: frames waiting for the encoder before ``write`` blocks (they are handed over
            in batches of up to 8, or after a quarter second).
        tag: the TensorBoard image tag.
        sink: an opened sink to write to instead of one opened for ``format``: a video of an
            :class:`~visopt.frames.sinks.Mp4Batch` (several MP4s from one ffmpeg process).

    Example:
        >>> writer = FrameWriter("runs/opt.mp4", fps=30, image_index=0, annotate=True)
        >>> writer.write(images, text="step 0  loss -1.2")
        >>> writer.close()    # waits for the encoder, renames the file into place
    """

    def __init__(self, path, *, format: str | None = None, fps: float = 10, loop: int = 0,
                 image_index: int | None = None, cols: int | None = None, min_size: int | None = None,
                 max_size: int = 1024, annotate: bool = True, value_range=None, queue_size: int = 16,
                 tag: str = "frames", sink=None):
        self.format = format_for(path, format)
        self.path = Path(path)
        positive_number(fps, "fps")
        if min_size is None and isinstance(max_size, int):
            min_size = min(256, max_size)
        if not (isinstance(min_size, int) and isinstance(max_size, int) and 1 <= min_size <= max_size):
            raise ValueError(f"need 1 <= min_size <= max_size, got min_size={min_size!r}, max_size={max_size!r}")
        positive_int(queue_size, "queue_size")
        self.fps, self.loop, self.image_index, self.cols = fps, int(loop), image_index, cols
        self.min_size, self.max_size, self.annotate, self.value_range = min_size, max_size, annotate, value_range
        self.tag = tag
        self.frames_written = 0
        self._size: tuple[int, int] | None = None  # (height, width) of every frame, fixed by the first
        self._error: BaseException | None = None  # the first failure: the worker's, or the sink's finish
        self._error_reported = False  # an encoder failure is raised to the caller once
        self._closed = False
        self._done = False  # closed or aborted: the output is settled
        self._published: Path | None = None
        try:
            check_output_path(self.path, self.format)
            self._sink = open_sink(self.format, self.path, self.fps, self.loop, self.tag) if sink is None else sink
        except OSError as err:
            raise FrameWriterError(str(err)) from err
        self._finalizer = weakref.finalize(self, _abandoned, self._sink, str(self.path))
        # Frames are handed over in batches: every hand-over wakes the worker, and on a machine whose
        # cores the model keeps busy each wake-up can preempt one of TensorFlow's threads mid-step
        # (docs/benchmarks.md, "frame writer").
        self._batch_frames = max(1, min(8, queue_size // 2))
        self._pending: list = []
        self._pending_since = 0.0
        # The worker holds the writer weakly, so that a writer nobody closes can still be collected.
        # It runs at a lower CPU priority: encoding is background work, and on a machine whose cores
        # the model keeps busy it should fill the gaps between steps instead of taking time from them.
        self._worker = BackgroundWorker(self._encode, name=f"visopt-frames-{self.path.name}",
                                        queue_size=-(-queue_size // self._batch_frames), low_priority=True)

    # -- caller side ------------------------------------------------------------------------
    def write(self, images, text: str | None = None) -> None:
        """Queue one frame: an image ``(H, W[, C])`` or a batch ``(N, H, W, C)``; returns at once unless the queue is full.

        Raises ``FrameWriterError`` if the encoder has failed (once; later calls are ignored).
        """
        if self._closed:
            raise FrameWriterError(f"write() after close() on the frame writer of {self.path}")
        self._raise_error_once()
        images = np.array(images, copy=True)
        if images.ndim == 4 and self.image_index is not None and not -len(images) <= self.image_index < len(images):
            raise IndexError(f"image_index {self.image_index} is out of range for a batch of {len(images)}")
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append((images, text))
        # a slow loop still hands frames over within a quarter second
        if len(self._pending) >= self._batch_frames or time.monotonic() - self._pending_since > 0.25:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._pending = self._pending, []
        if batch and not self._worker.submit(batch):  # never blocks on a failed or dead encoder
            self._raise_error_once()

    def close(self) -> Path | None:
        """Wait for the queued frames, finish the file and rename it into place; returns the path.

        Raises ``FrameWriterError`` if encoding failed; nothing is left under the final name then.
        """
        if self._closed:
            return self._published
        self._closed = True
        pending, self._pending = self._pending, []
        if pending:
            self._worker.submit(pending)  # a failed encoder refuses it: the error is reported below
        self._error = self._worker.close()
        if self._error is None:
            try:
                self._sink.finish()
            except Exception as err:  # noqa: BLE001 - reported with the path below
                self._error = err
        self._finalizer.detach()
        self._done = True
        if self._error is not None:
            try:
                self._sink.abort()
            finally:
                self._raise_error_once()
            return None
        self._published = self.path
        return self.path

    def abort(self, keep_partial: bool = False) -> Path | None:
        """Stop without publishing: the final name keeps what it held before (or stays absent).

        The partial output is deleted, or with ``keep_partial`` published under
        :func:`partial_path` (``run.partial.gif``), which is returned. TensorBoard is the exception:
        events go into the log folder as they are written, so an aborted run's events stay there. Never raises: it runs while
        another error is on its way (an interrupt, a full disk), and a partial file that cannot be
        kept is deleted instead.
        """
        if self._done:
            return None
        self._closed = self._done = True
        if keep_partial and self._pending:
            self._worker.submit(self._pending)
        self._pending = []
        error = self._worker.close()
        self._finalizer.detach()
        # TensorBoard events are appended to the log folder as they come: there is nothing to keep apart
        if keep_partial and error is None and self.frames_written and self.format != "tensorboard":
            self._sink.path = partial_path(self.path)
            try:
                self._sink.finish()
                return self._sink.path
            except Exception:  # noqa: BLE001 - the partial file is a courtesy: delete it below
                pass
        try:
            self._sink.abort()
        except Exception as err:  # noqa: BLE001 - clean-up must not hide the error that caused it
            warnings.warn(f"could not delete the partial output of {self.path}: {err}", RuntimeWarning,
                          stacklevel=2)
        return None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _raise_error_once(self) -> None:
        error = self._error or self._worker.error
        if error is not None and not self._error_reported:
            self._error_reported = True
            raise FrameWriterError(f"writing frames to {self.path} failed: {error}") from error

    # -- worker side ------------------------------------------------------------------------
    def _encode(self, batch) -> None:
        """Compose and encode a batch of frames (on the worker; a failure stops it, see BackgroundWorker)."""
        for item in batch:
            self._sink.add(self._compose(*item))
            self.frames_written += 1

    def _compose(self, images: np.ndarray, text: str | None) -> "_Frame":
        if images.ndim == 4:
            if self.image_index is not None:  # checked against the batch in write()
                images = images[self.image_index]
            else:
                images = stitch_images(rgb_pixels(images, self.value_range), cols=self.cols, margin=1, fill=255)
        rgb = to_rgb(images, self.value_range)
        if self._size is None:
            height, width = rgb.shape[:2]
            longest = max(height, width)
            if longest < self.min_size:
                factor = max(1, self.min_size // longest)
            elif longest > self.max_size:
                factor = self.max_size / longest
            else:
                factor = 1
            self._size = (max(1, round(height * factor)), max(1, round(width * factor)))
        if rgb.shape[0] > self._size[0] or rgb.shape[1] > self._size[1]:  # shrink now, by area
            rgb = cv2.resize(rgb, self._size[::-1], interpolation=cv2.INTER_AREA)
        return _Frame(rgb, self._size, text if self.annotate else None)


def _abandoned(sink, path: str) -> None:
    """A writer collected without ``close``: delete its partial output, and say so."""
    sink.abort()
    warnings.warn(f"a FrameWriter for {path} was never closed: its partial output was deleted; call close() or "
                  "use it as a context manager", ResourceWarning, stacklevel=2)


class _Frame:
    """A composed frame: ``rgb`` at or below the output ``size``, to be enlarged (nearest) and captioned.

    Sinks that need pixels call ``render``; the GIF sink calls ``framed`` on palette indices
    instead, which is cheaper than quantizing the enlarged frame.
    """

    def __init__(self, rgb: np.ndarray, size: tuple[int, int], text: str | None):
        self.rgb, self.size, self.text = rgb, size, text

    def render(self) -> np.ndarray:
        return self.framed(self.rgb, background=0, foreground=(255, 255, 255), antialias=True)

    def framed(self, pixels: np.ndarray, background, foreground, antialias: bool) -> np.ndarray:
        """Enlarge ``pixels`` (RGB or palette indices) to ``size`` and add the caption band."""
        height, width = self.size
        if pixels.shape[:2] != (height, width):
            pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_NEAREST)
        if self.text is None:
            return pixels
        scale = max(0.35, width / 700)
        text_width = caption_width(self.text, scale)
        if text_width > width - 8:  # shrink the caption to fit a narrow frame rather than cut it
            scale = max(0.15, scale * (width - 8) / text_width)
        band = int(round(_BAND * max(scale, 0.35) / 0.45))
        out = np.empty((height + band,) + pixels.shape[1:], pixels.dtype)
        out[:band] = background
        out[band:] = pixels
        draw_caption(out, self.text, (3, band - max(3, band // 4)), scale, background, foreground, antialias)
        return out
