"""One frame writer: streams frames to a GIF, an MP4, a PNG sequence or TensorBoard, off the caller's thread.

Frames are composed (batch tiled or one image picked, scaled, annotated) and encoded on a worker
thread behind a bounded queue, so memory stays flat in the number of frames and the caller only
pays for a copy of each frame. The formats live in :mod:`visopt.frame_sinks`, which write under a
temporary name in the target folder and rename when complete: an interrupted run never leaves a
truncated file under the final name. Captions come from :mod:`visopt.captions`.

Example:
    >>> with FrameWriter("out/progress.gif", fps=20) as writer:
    ...     for step, images in enumerate(batches):
    ...         writer.write(images, text=f"step {step}")
    >>> writer.path
    PosixPath('out/progress.gif')
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path

import cv2
import numpy as np

from visopt.captions import caption_width, draw_caption
from visopt.frame_sinks import open_sink
from visopt.images import stitch_images

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


def to_rgb(image: np.ndarray, value_range=None) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 view of one image ``(H, W)`` or ``(H, W, C)``.

    1 channel is grey, 3 are RGB, 4 drop alpha, any other count shows the channel mean. Float
    images need ``value_range`` (a fixed range, so that frames stay comparable).
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"a frame image is (H, W) or (H, W, C), got shape {array.shape}")
    return _rgb_pixels(array, value_range)


def _rgb_pixels(array: np.ndarray, value_range) -> np.ndarray:
    """``to_rgb`` of an array whose last axis is the channels (one image or a whole batch at once)."""
    if array.dtype != np.uint8:
        if value_range is None:
            raise ValueError(f"{array.dtype} frames need value_range=(low, high) to map them to colours")
        low, high = (float(v) for v in value_range)
        array = np.clip(np.rint((array.astype(np.float32) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    channels = array.shape[-1]
    if channels == 3:
        return np.ascontiguousarray(array)
    if channels == 4:
        return np.ascontiguousarray(array[..., :3])
    grey = array[..., 0] if channels == 1 else np.rint(array.mean(axis=-1)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


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

    Example:
        >>> writer = FrameWriter("runs/opt.mp4", fps=30, image_index=0, annotate=True)
        >>> writer.write(images, text="step 0  loss -1.2")
        >>> writer.close()    # waits for the encoder, renames the file into place
    """

    def __init__(self, path, *, format: str | None = None, fps: float = 10, loop: int = 0,
                 image_index: int | None = None, cols: int | None = None, min_size: int | None = None,
                 max_size: int = 1024, annotate: bool = True, value_range=None, queue_size: int = 16,
                 tag: str = "frames"):
        self.format = format_for(path, format)
        self.path = Path(path)
        if not (isinstance(fps, (int, float)) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if min_size is None and isinstance(max_size, int):
            min_size = min(256, max_size)
        if not (isinstance(min_size, int) and isinstance(max_size, int) and 1 <= min_size <= max_size):
            raise ValueError(f"need 1 <= min_size <= max_size, got min_size={min_size!r}, max_size={max_size!r}")
        if not (isinstance(queue_size, int) and queue_size >= 1):
            raise ValueError(f"queue_size must be a positive int, got {queue_size!r}")
        self.fps, self.loop, self.image_index, self.cols = fps, int(loop), image_index, cols
        self.min_size, self.max_size, self.annotate, self.value_range = min_size, max_size, annotate, value_range
        self.tag = tag
        self.frames_written = 0
        self._size: tuple[int, int] | None = None  # (height, width) of every frame, fixed by the first
        self._error: BaseException | None = None
        self._error_reported = False  # an encoder failure is raised to the caller once
        self._closed = False
        try:
            self._sink = open_sink(self.format, self.path, self.fps, self.loop, self.tag)
        except OSError as err:
            raise FrameWriterError(str(err)) from err
        self._finalizer = weakref.finalize(self, _abandoned, self._sink, str(self.path))
        # Frames are handed over in batches: every hand-over wakes the worker, and on a machine whose
        # cores the model keeps busy each wake-up can preempt one of TensorFlow's threads mid-step
        # (recording with an encoder that did nothing cost 8% of a 7 ms-step run when woken per frame).
        self._batch_frames = max(1, min(8, queue_size // 2))
        self._pending: list = []
        self._pending_since = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, -(-queue_size // self._batch_frames)))
        # The worker holds the writer weakly, so that a writer nobody closes can still be collected
        self._worker = threading.Thread(target=_work, args=(weakref.ref(self), self._queue), daemon=True,
                                        name=f"visopt-frames-{self.path.name}")
        self._worker.start()

    # -- caller side ------------------------------------------------------------------------
    def write(self, images, text: str | None = None) -> None:
        """Queue one frame: an image ``(H, W[, C])`` or a batch ``(N, H, W, C)``; returns at once unless the queue is full.

        Raises ``FrameWriterError`` if the encoder has failed (once; later calls are ignored).
        """
        if self._closed:
            raise FrameWriterError(f"write() after close() on the frame writer of {self.path}")
        self._raise_error_once()
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append((np.array(images, copy=True), text))
        # a slow loop still hands frames over within a quarter second
        if len(self._pending) >= self._batch_frames or time.monotonic() - self._pending_since > 0.25:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._pending = self._pending, []
        while batch:
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                if not self._worker.is_alive():  # never block on a dead encoder
                    self._raise_error_once()
                    return

    def close(self) -> Path | None:
        """Wait for the queued frames, finish the file and rename it into place; returns the path.

        Raises ``FrameWriterError`` if encoding failed; nothing is left under the final name then.
        """
        if self._closed:
            return None if self._error else self.path
        self._closed = True
        self._hand_over()
        self._queue.put(None)
        self._worker.join()
        if self._error is None:
            try:
                self._sink.finish()
            except Exception as err:  # noqa: BLE001 - reported with the path below
                self._error = err
        self._finalizer.detach()
        if self._error is not None:
            self._sink.abort()
            self._raise_error_once()
            return None
        return self.path

    def abort(self) -> None:
        """Stop and delete the partial output; nothing appears under the final name."""
        self._closed = True
        self._pending = []
        self._queue.put(None)
        self._worker.join()
        self._finalizer.detach()
        self._sink.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _raise_error_once(self) -> None:
        if self._error is not None and not self._error_reported:
            self._error_reported = True
            raise FrameWriterError(f"writing frames to {self.path} failed: {self._error}") from self._error

    # -- worker side ------------------------------------------------------------------------
    def _encode(self, batch) -> None:
        for item in batch:
            if self._error is not None:
                return  # drain, so that the caller never blocks on a failed encoder
            try:
                self._sink.add(self._compose(*item))
                self.frames_written += 1
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                self._error = err

    def _compose(self, images: np.ndarray, text: str | None) -> "_Frame":
        if images.ndim == 4:
            if self.image_index is not None:
                if not -images.shape[0] <= self.image_index < images.shape[0]:
                    raise IndexError(f"image_index {self.image_index} is out of range for a batch of "
                                     f"{images.shape[0]}")
                images = images[self.image_index]
            else:
                images = stitch_images(_rgb_pixels(images, self.value_range), cols=self.cols, margin=1, fill=255)
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


def _work(writer_ref, frames: queue.Queue) -> None:
    """The encoder thread: encode batches until ``close`` (None) or until the writer is collected."""
    _yield_to_computation()
    while True:
        try:
            batch = frames.get(timeout=1.0)
        except queue.Empty:
            if writer_ref() is None:
                return
            continue
        writer = writer_ref()
        if batch is None or writer is None:
            return
        writer._encode(batch)
        del writer  # hold the writer only while encoding


def _abandoned(sink, path: str) -> None:
    """A writer collected without ``close``: delete its partial output, and say so."""
    sink.abort()
    warnings.warn(f"a FrameWriter for {path} was never closed: its partial output was deleted; call close() or "
                  "use it as a context manager", ResourceWarning, stacklevel=2)


def _yield_to_computation() -> None:
    """Lower this thread's CPU priority (Linux: +10 niceness, inherited by an ffmpeg child it starts).

    Encoding is background work: on a machine whose cores the model already keeps busy, a worker at
    normal priority takes its CPU from the optimization's step (recording every step of a 7 ms step
    cost 1.2-1.4x its time on 2 cores here); at lower priority it runs in the gaps between steps.
    Elsewhere (no per-thread niceness) the worker keeps its priority.
    """
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
        except OSError:  # a sandbox may forbid it; recording still works
            pass


class _Frame:
    """A composed frame: ``rgb`` at or below the output ``size``, to be enlarged (nearest) and captioned.

    Sinks that need pixels call ``render``; the GIF sink enlarges palette indices instead, which is
    cheaper than quantizing the enlarged frame.
    """

    def __init__(self, rgb: np.ndarray, size: tuple[int, int], text: str | None):
        self.rgb, self.size, self.text = rgb, size, text

    def render(self) -> np.ndarray:
        return self.finish(self.rgb, background=0, foreground=(255, 255, 255), antialias=True)

    def finish(self, pixels: np.ndarray, background, foreground, antialias: bool) -> np.ndarray:
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
