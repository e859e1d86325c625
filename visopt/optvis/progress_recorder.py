"""Record an optimization as an animation (GIF, MP4, PNG sequence or TensorBoard) through the frame writer."""

from __future__ import annotations

import warnings
from pathlib import Path

from visopt._checks import positive_int
from visopt.frames.writer import FrameWriter, FrameWriterError
from visopt.optvis.optimizer_callback import OptimizerCallback


class ProgressRecorder(OptimizerCallback):
    """Write one frame every ``frame_every`` steps (and the last step) of ``minimize``.

    ``minimize(progress_gif_path=...)`` adds one; pass your own for other formats or options.
    A path that cannot be written raises before the first step; a failure during the run warns
    once and lets the optimization finish, and nothing is left under the final name then.

    Args:
        path: ``name.gif`` or ``name.mp4``; a path without suffix gets ``.gif`` (keras-vis'
            ``progress_gif_path='opt_progress'``) unless ``format`` is given (``format="png"``
            makes it a folder of PNGs). Missing folders are created.
        frame_every: record every this many steps.
        image_index: record only this image of the batch; None tiles the whole batch.
        input_range: the images' range when they are float (set by ``minimize``).
        **writer_options: passed to :class:`~visopt.frames.writer.FrameWriter` (``fps``, ``format``,
            ``min_size``, ``max_size``, ``annotate``, ``cols``, ``loop``...).

    Example:
        >>> opt.minimize(max_iter=200, callbacks=[ProgressRecorder("runs/opt.mp4", frame_every=2, fps=30)])
    """

    def __init__(self, path, frame_every: int = 1, image_index: int | None = None, input_range=None,
                 **writer_options):
        frame_every = positive_int(frame_every, "frame_every")
        path = Path(path)
        if not path.suffix and writer_options.get("format") is None:
            path = path.with_name(path.name + ".gif")
        self.path = path
        self.frame_every = frame_every
        self.image_index = image_index
        self.input_range = input_range
        self.writer_options = writer_options
        self.writer: FrameWriter | None = None
        self.frames = 0
        self._last_step = None
        self.failed = False

    def on_begin(self, max_iter, batch_size):
        if self.image_index is not None and not -batch_size <= self.image_index < batch_size:
            raise IndexError(f"ProgressRecorder image_index {self.image_index} is out of range for a batch of "
                             f"{batch_size} images")
        self._last_step = max_iter - 1
        self.frames = 0
        self.failed = False
        options = dict(self.writer_options)
        options.setdefault("value_range", self.input_range)
        self.writer = FrameWriter(self.path, image_index=self.image_index, **options)

    def on_step(self, step, images, values):
        if self.failed or (step % self.frame_every and step != self._last_step):
            return
        loss = float(values["loss"].mean())
        try:
            self.writer.write(images, text=f"step {step}  loss {loss:.4g}")
            self.frames += 1
        except FrameWriterError as err:
            self._fail(err)

    def on_end(self, result):
        if self.writer is None:
            return
        try:
            self.writer.close()
        except FrameWriterError as err:
            self._fail(err)
        self.writer = None

    def _fail(self, err):
        if not self.failed:
            self.failed = True
            warnings.warn(f"progress recording stopped: {err}", RuntimeWarning, stacklevel=3)
