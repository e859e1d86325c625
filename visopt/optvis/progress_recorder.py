"""Record an optimization as an animation (GIF, MP4, PNG sequence or TensorBoard) through the frame writer."""

from __future__ import annotations

import warnings
from pathlib import Path

from visopt._checks import positive_int
from visopt.frames.writer import FrameWriter, FrameWriterError, check_output_path, format_for
from visopt.optvis.optimizer_callback import OptimizerCallback


class ProgressRecorder(OptimizerCallback):
    """Write one frame every ``frame_every`` steps (and the last step) of ``minimize``.

    ``minimize(progress_gif_path=...)`` adds one; pass your own for other formats or options.
    A path that cannot be written raises before the first step; a failure during the run warns
    once and lets the optimization finish, and nothing is left under the final name then. Only a
    run that ends normally publishes the animation: after an interrupt or an error the file
    already under that name (a previous run's) is left as it was, and the partial animation is
    deleted, or kept as ``NAME.partial.gif`` with ``keep_partial=True``.

    Args:
        path: ``name.gif`` or ``name.mp4``; a path without suffix gets ``.gif`` (keras-vis'
            ``progress_gif_path='opt_progress'``) unless ``format`` is given (``format="png"``
            makes it a folder of PNGs). Missing folders are created.
        frame_every: record every this many steps.
        image_index: record only this image of the batch; None tiles the whole batch.
        input_range: the images' range when they are float (set by ``minimize``).
        keep_partial: after an interrupted or failed run, keep the frames written so far as
            ``NAME.partial.EXT`` (the path is in ``partial_path`` then) instead of deleting them.
        **writer_options: passed to :class:`~visopt.frames.writer.FrameWriter` (``fps``, ``format``,
            ``min_size``, ``max_size``, ``annotate``, ``cols``, ``loop``...).

    Example:
        >>> opt.minimize(max_iter=200, callbacks=[ProgressRecorder("runs/opt.mp4", frame_every=2, fps=30)])
    """

    def __init__(self, path, frame_every: int = 1, image_index: int | None = None, input_range=None,
                 keep_partial: bool = False, **writer_options):
        frame_every = positive_int(frame_every, "frame_every")
        if not str(path):
            raise ValueError("the progress animation path is empty; give a file name such as 'opt.gif'")
        path = Path(path)
        if path.name and not path.suffix and writer_options.get("format") is None:
            path = path.with_name(path.name + ".gif")
        self.path = check_output_path(path, format_for(path, writer_options.get("format")))
        self.keep_partial = bool(keep_partial)
        self.partial_path = None
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
        self.partial_path = None
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

    def on_abort(self, error):
        if self.writer is not None:
            self.partial_path = self.writer.abort(keep_partial=self.keep_partial)
            self.writer = None

    def _fail(self, err):
        if not self.failed:
            self.failed = True
            warnings.warn(f"progress recording stopped: {err}", RuntimeWarning, stacklevel=3)
