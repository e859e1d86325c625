"""Where frames go: one sink per format (GIF, MP4, PNG folder, TensorBoard), used by the frame writer.

A sink takes composed frames (``add``), writes them under a temporary name in the target folder
and publishes the file under its final name in ``finish`` (:mod:`visopt._atomic`); ``abort``
deletes the partial output. A frame is anything with ``rgb`` (its pixels at the composed size),
``render()`` (RGB pixels enlarged and captioned) and ``framed(pixels, background, foreground,
antialias)`` (the same for palette indices).

Example:
    >>> sink = open_sink("gif", Path("out/run.gif"), fps=10, loop=0, tag="frames")
    >>> sink.add(frame); sink.finish()
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from visopt._atomic import publish, temporary_file, temporary_folder
from visopt.frames.image_file import save_image


class Frame(Protocol):
    """What a sink is given: the composed pixels, and the enlarged, captioned frame on demand."""

    rgb: np.ndarray

    def render(self) -> np.ndarray:
        """RGB pixels at the output size, captioned."""

    def framed(self, pixels: np.ndarray, background, foreground, antialias: bool) -> np.ndarray:
        """``pixels`` (RGB or palette indices) enlarged to the output size, captioned."""


def open_sink(format: str, path: Path, fps: float, loop: int, tag: str):
    """The sink of ``format`` writing to ``path``; an OSError says which path could not be written."""
    try:
        if format == "gif":
            return _GifSink(path, fps, loop)
        if format == "mp4":
            return _Mp4Sink(path, fps)
        if format == "png":
            return _PngSink(path)
        return _TensorBoardSink(path, tag)
    except OSError as err:
        raise OSError(f"cannot write frames to {path}: {err}") from err


class _GifSink:
    """A GIF written frame by frame, each frame with its own colour table.

    Frames are quantized at their composed (small) size and the palette indices are enlarged, not
    the pixels. An adaptive palette (Pillow's fast octree) is built for each of the first frames
    and then for every ``PALETTE_EVERY``-th; the frames between are mapped onto the latest palette
    (about ten times cheaper: Pillow caches the colour lookup; docs/benchmarks.md) unless that
    raises their mean colour error by more than ``MAX_EXTRA_ERROR`` over the palette's own frame
    (new colours came in), checked on a sample of pixels. An optimization changes its colours
    gradually, so most frames reuse the palette.
    """

    _BLACK, _WHITE = 254, 255  # palette entries reserved for the caption
    PALETTE_EVERY = 8
    MAX_EXTRA_ERROR = 2.0  # grey levels of mean error over the palette's own frame before a new palette

    def __init__(self, path: Path, fps: float, loop: int):
        self.path = path
        self.tmp = temporary_file(path)
        self.handle = open(self.tmp, "wb")
        self.delay = max(2, int(round(100 / fps)))  # centiseconds; browsers treat < 2 as 10
        self.loop = loop
        self.count = 0
        self.palette = None  # a 1x1 "P" image holding the current palette
        self.colours = None  # the same palette as a (256, 3) array
        self.palette_error = 0.0  # mean colour error of the frame the palette was built for

    def add(self, frame: "Frame") -> None:
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
        indices = frame.framed(indices, background=self._BLACK, foreground=self._WHITE, antialias=False)
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
        publish(self.tmp, self.path)

    def abort(self) -> None:
        # on a full disk closing flushes and fails: the temporary file goes all the same
        with contextlib.suppress(OSError):
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
        self.tmp = temporary_file(path, ".mp4")
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

    def add(self, frame: "Frame") -> None:
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
        publish(self.tmp, self.path)

    def abort(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            with contextlib.suppress(OSError):  # the pipe is broken now; closing it must not stop the clean-up
                self.process.stdin.close()
            self.log.close()
        self.tmp.unlink(missing_ok=True)


class Mp4Batch:
    """Several MP4 videos encoded by one ffmpeg process: one input pipe and one H.264 output per video.

    Starting ffmpeg (a 170 MB static binary) and x264 costs about 25 ms of CPU per video; a model
    with 158 weight tensors paid it 158 times (docs/benchmarks.md). A batch pays it once. Each video
    is written through its own sink (:meth:`sink`), from its own frame writer's thread. The process
    starts when every video has its first frame (it needs every input's size), so the caller must
    hand each writer its first frame without waiting for the others (a frame writer with
    ``queue_size=2`` hands every frame over at once). ffmpeg moves its inputs forward together, so
    the videos of one batch must have the same frame times (the same frame rate and count); then
    frames can be written in any interleaving without blocking each other for good. The videos are
    published together when the last one finishes; any failure or ``abort`` deletes them all.

    Example:
        >>> batch = Mp4Batch(2, fps=10)
        >>> writers = [FrameWriter(p, format="mp4", queue_size=2, sink=batch.sink(p)) for p in paths]
    """

    supported = hasattr(os, "pipe") and os.name == "posix"  # inputs are inherited pipe descriptors

    def __init__(self, count: int, fps: float):
        self.count, self.fps = int(count), fps
        self._members: list[_BatchMember] = []
        self._cond = threading.Condition()
        self._process = None
        self._error: BaseException | None = None
        self._finished = 0
        self._log = None

    def sink(self, path: Path) -> "_BatchMember":
        """The sink of one more video of the batch (at most ``count``)."""
        with self._cond:
            if len(self._members) >= self.count:
                raise ValueError(f"this batch encodes {self.count} videos; {path} would be one more")
            member = _BatchMember(self, Path(path), len(self._members))
            self._members.append(member)
            return member

    def _register(self, member: "_BatchMember", shape: tuple[int, int]) -> None:
        """Wait until every video has its size (the last one starts the process)."""
        with self._cond:
            member.shape = shape
            if self._process is None and self._error is None and all(m.shape for m in self._members) \
                    and len(self._members) == self.count:
                try:
                    self._start()
                except BaseException as err:  # noqa: BLE001 - every member hears of it
                    self._error = err
                self._cond.notify_all()
            while self._process is None and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise OSError(f"the ffmpeg encoder of {member.path.name} failed: {self._error}")

    def _start(self) -> None:
        import imageio_ffmpeg

        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-nostdin"]
        pipes = [os.pipe() for _ in self._members]
        for member, (read, _) in zip(self._members, pipes):
            height, width = member.shape
            command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{self.fps:g}",
                        "-probesize", "32", "-analyzeduration", "0", "-i", f"pipe:{read}"]
        for i, member in enumerate(self._members):
            threads = "1" if member.shape[0] * member.shape[1] <= 512 * 512 else "0"
            command += ["-map", f"{i}:v", "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
                        "-preset", "ultrafast", "-tune", "zerolatency", "-crf", "18", "-pix_fmt", "yuv420p",
                        "-threads", threads, "-f", "mp4", str(member.tmp)]
        self._log = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=self._log, pass_fds=[read for read, _ in pipes])
        finally:
            for read, _ in pipes:
                os.close(read)
        for member, (_, write) in zip(self._members, pipes):
            member.pipe = os.fdopen(write, "wb")

    def _finish(self, member: "_BatchMember") -> None:
        """One video has all its frames; the last one waits for ffmpeg and publishes them all."""
        member.pipe.close()
        with self._cond:
            self._finished += 1
            if self._finished < self.count:
                return
        if self._process.wait() != 0:
            error = OSError(f"ffmpeg exited with status {self._process.returncode}: {self._ffmpeg_error()}")
            self.abort()
            raise error
        self._log.close()
        for each in self._members:
            publish(each.tmp, each.path)

    def _ffmpeg_error(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()

    def abort(self) -> None:
        """Stop the encoder and delete every video of the batch (idempotent; never raises)."""
        with self._cond:
            self._error = self._error or RuntimeError("the batch was aborted")
            self._cond.notify_all()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for member in self._members:
            if member.pipe is not None:
                with contextlib.suppress(OSError):  # a broken pipe: closing it must not stop the clean-up
                    member.pipe.close()
            member.tmp.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()


class _BatchMember:
    """The sink of one video of an :class:`Mp4Batch`."""

    def __init__(self, batch: Mp4Batch, path: Path, index: int):
        self.batch, self.path, self.index = batch, path, index
        self.tmp = temporary_file(path, ".mp4")
        self.shape: tuple[int, int] | None = None
        self.pipe = None
        self.frames = 0

    def add(self, frame: "Frame") -> None:
        pixels = np.ascontiguousarray(frame.render())
        if self.shape is None:
            self.batch._register(self, pixels.shape[:2])
        elif pixels.shape[:2] != self.shape:
            raise ValueError(f"{self.path.name}: frame of {pixels.shape[:2]} after frames of {self.shape}")
        try:
            self.pipe.write(memoryview(pixels).cast("B"))
        except (BrokenPipeError, OSError) as err:
            raise OSError(f"the ffmpeg encoder of {self.path.name} stopped: {err}") from err
        self.frames += 1

    def finish(self) -> None:
        if not self.frames:
            raise ValueError("no frames were written, so there is no video")
        self.batch._finish(self)

    def abort(self) -> None:
        self.batch.abort()


class _PngSink:
    """Numbered PNGs in a temporary folder, renamed to ``path`` when complete."""

    def __init__(self, path: Path):
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path} exists and is not an empty folder; choose another path for the "
                                  "PNG sequence")
        self.path = path
        self.tmp = temporary_folder(path)
        self.count = 0

    def add(self, frame: "Frame") -> None:
        save_image(self.tmp / f"frame_{self.count:06d}.png", frame.render())
        self.count += 1

    def finish(self) -> None:
        if self.path.exists():
            self.path.rmdir()  # empty, checked at start
        publish(self.tmp, self.path)

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

    def add(self, frame: "Frame") -> None:
        import tensorflow as tf

        with self.writer.as_default():
            tf.summary.image(self.tag, frame.render()[None], step=self.step)
        self.step += 1

    def finish(self) -> None:
        self.writer.flush()
        self.writer.close()

    def abort(self) -> None:
        self.writer.close()
