"""One frame writer: streams frames to a GIF, an MP4, a PNG sequence or TensorBoard, off the caller's thread.

Frames are composed (batch tiled or one image picked, scaled, annotated) and encoded on a worker
thread behind a bounded queue, so memory stays flat in the number of frames and the caller only
pays for a copy of each frame. Files are written under a temporary name in the target folder and
renamed when complete: an interrupted run never leaves a truncated file under the final name.

Example:
    >>> with FrameWriter("out/progress.gif", fps=20) as writer:
    ...     for step, images in enumerate(batches):
    ...         writer.write(images, text=f"step {step}")
    >>> writer.path
    PosixPath('out/progress.gif')
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import cv2
import numpy as np

from visopt.images import stitch_images
from visopt.io import save_image

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
        self._sink = _open_sink(self.format, self.path, self.fps, self.loop, self.tag)
        self._finalizer = weakref.finalize(self, self._sink.abort)
        # Frames are handed over in batches: every hand-over wakes the worker, and on a machine whose
        # cores the model keeps busy each wake-up can preempt one of TensorFlow's threads mid-step
        # (recording with an encoder that did nothing cost 8% of a 7 ms-step run when woken per frame).
        self._batch_frames = max(1, min(8, queue_size // 2))
        self._pending: list = []
        self._pending_since = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, -(-queue_size // self._batch_frames)))
        self._worker = threading.Thread(target=self._run, name=f"visopt-frames-{self.path.name}", daemon=True)
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
    def _run(self) -> None:
        _yield_to_computation()
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for item in batch:
                if self._error is not None:
                    break  # drain, so that the caller never blocks on a failed encoder
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
        _draw_caption(out, self.text, (3, band - max(3, band // 4)), scale, background, foreground, antialias)
        return out


# -- captions: Hershey glyphs drawn once per process -----------------------------------------------
# OpenCV's first text call on a thread costs about 21 ms of CPU (measured with OpenCV 5.0), and
# every FrameWriter encodes on a new thread. So each character is drawn once per process at a
# master size, and captions are assembled from those masks and resized: about 0.05 ms a caption.
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MASTER_HEIGHT, _MASTER_BASELINE = 32, 24  # canvas rows and baseline row of a glyph at scale 1
_GLYPHS: dict = {}
_GLYPH_LOCK = threading.Lock()


def _glyph(char: str) -> tuple[np.ndarray, int]:
    """The anti-aliased mask (32 rows, float32 in [0, 1]) and the advance of ``char`` at scale 1."""
    glyph = _GLYPHS.get(char)
    if glyph is None:
        with _GLYPH_LOCK:
            # the advance is what a second copy of the character adds (a lone one also counts the stroke)
            advance = cv2.getTextSize(char * 2, _FONT, 1.0, 1)[0][0] - cv2.getTextSize(char, _FONT, 1.0, 1)[0][0]
            canvas = np.zeros((_MASTER_HEIGHT, advance + 4), np.uint8)
            cv2.putText(canvas, char, (1, _MASTER_BASELINE), _FONT, 1.0, 255, 2, cv2.LINE_AA)
            glyph = _GLYPHS[char] = (canvas.astype(np.float32) / 255, advance)
    return glyph


def caption_width(text: str, scale: float) -> int:
    """Pixels ``text`` takes at ``scale`` (Hershey simplex, scaled linearly from its size at scale 1)."""
    return int(round((sum(_glyph(char)[1] for char in text) + 2) * scale))


def _draw_caption(out: np.ndarray, text: str, origin: tuple[int, int], scale: float, background, foreground,
                  antialias: bool) -> None:
    """Draw ``text`` with its baseline starting at ``origin`` (x, y), clipped to ``out``."""
    glyphs = [_glyph(char) for char in text]
    strip = np.zeros((_MASTER_HEIGHT, sum(g[1] for g in glyphs) + 4), np.float32)
    x = 0
    for mask, advance in glyphs:
        np.maximum(strip[:, x:x + mask.shape[1]], mask, out=strip[:, x:x + mask.shape[1]])
        x += advance
    size = (max(1, round(strip.shape[1] * scale)), max(1, round(_MASTER_HEIGHT * scale)))
    alpha = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
    left, top = origin[0], origin[1] - round(_MASTER_BASELINE * scale)
    rows = slice(max(0, top), min(out.shape[0], top + alpha.shape[0]))
    cols = slice(max(0, left), min(out.shape[1], left + alpha.shape[1]))
    alpha = alpha[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
    region = out[rows, cols]
    if antialias:  # blend RGB
        alpha = alpha[..., None] if region.ndim == 3 else alpha
        blended = region * (1 - alpha) + np.asarray(foreground, np.float32) * alpha
        region[...] = np.clip(np.rint(blended), 0, 255).astype(out.dtype)
    else:  # palette indices: a pixel is text or background
        region[alpha >= 0.5] = foreground


# -- sinks: one per format; each writes to a temporary name and renames in finish() -------------
def _temporary(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def _open_sink(format: str, path: Path, fps: float, loop: int, tag: str):
    try:
        if format == "gif":
            return _GifSink(path, fps, loop)
        if format == "mp4":
            return _Mp4Sink(path, fps)
        if format == "png":
            return _PngSink(path)
        return _TensorBoardSink(path, tag)
    except OSError as err:
        raise FrameWriterError(f"cannot write frames to {path}: {err}") from err


class _GifSink:
    """A GIF written frame by frame, each frame with its own colour table.

    Frames are quantized at their composed (small) size and the palette indices are enlarged, not
    the pixels. An adaptive palette (Pillow's fast octree, 0.3 ms for a 131x143 frame here) is
    built for each of the first frames and then for every ``PALETTE_EVERY``-th; the frames between
    are mapped onto the latest palette (0.03 ms: Pillow caches the colour lookup) unless that
    raises their mean colour error by more than ``MAX_EXTRA_ERROR`` over the palette's own frame
    (new colours came in), checked on a sample of pixels. An optimization changes its colours
    gradually, so most frames reuse the palette.
    """

    _BLACK, _WHITE = 254, 255  # palette entries reserved for the caption
    PALETTE_EVERY = 8
    MAX_EXTRA_ERROR = 2.0  # grey levels of mean error over the palette's own frame before a new palette

    def __init__(self, path: Path, fps: float, loop: int):
        self.path = path
        self.tmp = _temporary(path)
        self.handle = open(self.tmp, "wb")
        self.delay = max(2, int(round(100 / fps)))  # centiseconds; browsers treat < 2 as 10
        self.loop = loop
        self.count = 0
        self.palette = None  # a 1x1 "P" image holding the current palette
        self.colours = None  # the same palette as a (256, 3) array
        self.palette_error = 0.0  # mean colour error of the frame the palette was built for

    def add(self, frame: "_Frame") -> None:
        from PIL import Image

        image = Image.fromarray(frame.rgb)
        quantized = None
        if self.palette is not None and self.count >= self.PALETTE_EVERY and self.count % self.PALETTE_EVERY:
            quantized = image.quantize(palette=self.palette, dither=Image.Dither.NONE)
            indices = np.asarray(quantized)
            if self._error(frame.rgb, indices) > self.palette_error + self.MAX_EXTRA_ERROR:
                quantized = None  # new colours came in: build a new palette now
        if quantized is None:
            quantized = image.quantize(colors=254, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            colours = (quantized.getpalette() or [])[: 254 * 3]
            colours += [0] * (254 * 3 - len(colours)) + [0, 0, 0, 255, 255, 255]
            self.palette = Image.new("P", (1, 1))
            self.palette.putpalette(colours)
            self.colours = np.array(colours, np.int16).reshape(256, 3)
            indices = np.asarray(quantized)
            self.palette_error = self._error(frame.rgb, indices)
        indices = frame.finish(indices, background=self._BLACK, foreground=self._WHITE, antialias=False)
        # Pillow LZW-encodes the indices saved as a greyscale image (no palette handling: half the time
        # of a "P" image); the colour table written is our palette
        buffer = io.BytesIO()
        Image.fromarray(indices, mode="L").save(buffer, format="GIF", optimize=False)
        _, descriptor, data = _split_single_frame_gif(buffer.getvalue())
        table = self.palette.palette.tobytes()
        if self.count == 0:
            height, width = indices.shape[:2]
            self.handle.write(b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0))
            self.handle.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", self.loop) + b"\x00")
        self.handle.write(b"\x21\xf9\x04\x04" + struct.pack("<H", self.delay) + b"\x00\x00")
        self.handle.write(descriptor + table + data)
        self.count += 1

    def _error(self, rgb: np.ndarray, indices: np.ndarray) -> float:
        """Mean colour error of the quantized frame, on every 4th pixel each way."""
        return float(np.abs(self.colours[indices[::4, ::4]] - rgb[::4, ::4]).mean())

    def finish(self) -> None:
        if not self.count:
            raise ValueError("no frames were written, so there is no animation")
        self.handle.write(b"\x3b")
        self.handle.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def _split_single_frame_gif(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(colour table, image descriptor marked as having a local table, LZW data) of a one-frame GIF."""
    flags = data[10]
    position = 13
    table = b""
    if flags & 0x80:
        size = 3 * (2 ** ((flags & 0x07) + 1))
        table, position = data[position:position + size], position + size
    while data[position] == 0x21:  # skip extensions
        position += 2
        while data[position]:
            position += data[position] + 1
        position += 1
    if data[position] != 0x2C:
        raise ValueError("unexpected GIF structure from the encoder")
    descriptor = bytearray(data[position:position + 10])
    position += 10
    if descriptor[9] & 0x80:  # the encoder already gave a local table
        size = 3 * (2 ** ((descriptor[9] & 0x07) + 1))
        table, position = data[position:position + size], position + size
    else:
        descriptor[9] = (descriptor[9] & 0x78) | 0x80 | (flags & 0x07)
    end = data.rindex(b"\x3b")
    return table, bytes(descriptor), data[position:end]


class _Mp4Sink:
    """H.264 through the ffmpeg binary that imageio-ffmpeg ships (no system ffmpeg needed).

    Raw RGB frames go down a pipe to one ffmpeg process. It pads odd sides to even (yuv420p needs
    them) and encodes small frames on one thread: x264's thread pool costs more than it saves
    below about 512x512, and WeightSnapshot renders several videos at once.
    """

    def __init__(self, path: Path, fps: float):
        self.path = path
        self.tmp = _temporary(path, ".mp4")
        self.fps = fps
        self.process = None
        self.shape = None

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        threads = "1" if height * width <= 512 * 512 else "0"
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-nostdin",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{self.fps:g}",
                   "-i", "pipe:0", "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                   "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-crf", "18",
                   "-pix_fmt", "yuv420p", "-threads", threads, "-f", "mp4", str(self.tmp)]
        # stderr goes to a file: a pipe nobody reads could fill and stall the encoder
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        self.shape = (height, width, 3)

    def add(self, frame: "_Frame") -> None:
        pixels = np.ascontiguousarray(frame.render())
        if self.process is None:
            self._start(*pixels.shape[:2])
        try:
            self.process.stdin.write(memoryview(pixels).cast("B"))
        except (BrokenPipeError, OSError) as err:
            self.process.wait()
            raise OSError(f"the ffmpeg encoder stopped: {self._ffmpeg_error() or err}") from err

    def _ffmpeg_error(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace").strip()

    def finish(self) -> None:
        if self.process is None:
            raise ValueError("no frames were written, so there is no video")
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise OSError(f"ffmpeg exited with status {self.process.returncode}: {self._ffmpeg_error()}")
        self.log.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.log.close()
        self.tmp.unlink(missing_ok=True)


class _PngSink:
    """Numbered PNGs in a temporary folder, renamed to ``path`` when complete."""

    def __init__(self, path: Path):
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FrameWriterError(f"{path} exists and is not an empty folder; choose another path for the "
                                   "PNG sequence")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
        self.count = 0

    def add(self, frame: "_Frame") -> None:
        save_image(self.tmp / f"frame_{self.count:06d}.png", frame.render())
        self.count += 1

    def finish(self) -> None:
        if self.path.exists():
            self.path.rmdir()  # empty, checked at start
        os.chmod(self.tmp, 0o755)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _TensorBoardSink:
    """Image summaries in a TensorBoard log folder (event files are appended; there is no rename)."""

    def __init__(self, path: Path, tag: str):
        try:
            import tensorboard  # noqa: F401 - tf.summary.image is implemented by it
        except ImportError as err:
            raise ImportError("TensorBoard output needs the tensorboard package: pip install visopt[tensorboard]") \
                from err
        import tensorflow as tf

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.writer = tf.summary.create_file_writer(str(path))
        self.tag = tag
        self.step = 0

    def add(self, frame: "_Frame") -> None:
        import tensorflow as tf

        with self.writer.as_default():
            tf.summary.image(self.tag, frame.render()[None], step=self.step)
        self.step += 1

    def finish(self) -> None:
        self.writer.flush()
        self.writer.close()

    def abort(self) -> None:
        self.writer.close()
