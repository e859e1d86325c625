"""Record an optimization as an animation (GIF, MP4, PNG sequence or TensorBoard) through the frame writer."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from visopt._checks import check_int, positive_int
from visopt.frames.display import in_notebook
from visopt.frames.writer import FrameWriter, FrameWriterError, check_output_path, format_for
from visopt.optvis.optimizer_callback import OptimizerCallback

#: In a notebook (``max_frames="auto"``): at most this many frames ...
NOTEBOOK_MAX_FRAMES = 30
#: ... and small frames enlarged to at most this many pixels (``min_size`` of the frame writer), so
#: that a progress GIF shown in the notebook stays near 200 KB (an MP4 is 4-5 times smaller still).
NOTEBOOK_MIN_SIZE = 128


class ProgressRecorder(OptimizerCallback):
    """Write one frame every ``frame_every`` steps (and the last step) of ``minimize``.

    ``minimize(progress_gif_path=...)`` adds one; pass your own for other formats or options.
    A path that cannot be written raises before the first step; a failure during the run warns
    once and lets the optimization finish, and nothing is left under the final name then. Only a
    run that ends normally publishes the animation: after an interrupt or an error the file
    already under that name (a previous run's) is left as it was, and the partial animation is
    deleted, or kept as ``NAME.partial.gif`` with ``keep_partial=True``. The published path is set
    as the result's ``animation_path`` (the first recorder's, when there are several).

    A request run in chunks (``minimize(batch_size=...)``) is recorded on its first chunk: the
    animation shows the first chunk's images (``image_index`` counts within it), whose steps are
    the same as in one batch.

    In a notebook, animations are notebook-sized by default: at most 30 frames (``frame_every`` is
    raised for long runs; the last step is always recorded) and frames enlarged to 128 px rather than
    256 (60 steps of a 32x32 image: a GIF of about 200 KB, not 900 KB). ``max_frames=None`` and
    ``min_size=256`` give the full animation; an ``.mp4`` path is smaller still.

    Args:
        path: ``name.gif`` or ``name.mp4``; a path without suffix gets ``.gif`` (keras-vis'
            ``progress_gif_path='opt_progress'``) unless ``format`` is given (``format="png"``
            makes it a folder of PNGs). Missing folders are created.
        frame_every: record every this many steps.
        max_frames: at most this many frames (>= 2), the last step's included: ``frame_every`` becomes
            at least ``ceil(max_iter / (max_frames - 1))``; None for no limit; ``"auto"``: 30 in a
            notebook, no limit elsewhere.
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
                 keep_partial: bool = False, max_frames: int | str | None = "auto", **writer_options):
        frame_every = positive_int(frame_every, "frame_every")
        notebook = in_notebook()
        if max_frames == "auto":
            max_frames = NOTEBOOK_MAX_FRAMES if notebook else None
            max_size = writer_options.get("max_size", 1024)
            if notebook and isinstance(max_size, int) and max_size >= NOTEBOOK_MIN_SIZE:
                writer_options.setdefault("min_size", NOTEBOOK_MIN_SIZE)
        self.max_frames = None if max_frames is None else check_int(max_frames, "max_frames", 2)
        if not str(path):
            raise ValueError("the progress animation path is empty; give a file name such as 'opt.gif'")
        path = Path(path)
        if path.name and not path.suffix and writer_options.get("format") is None:
            path = path.with_name(path.name + ".gif")
        self.path = check_output_path(path, format_for(path, writer_options.get("format")))
        self.keep_partial = bool(keep_partial)
        self.partial_path = None
        self.frame_every = frame_every
        self._every = frame_every  # frame_every, raised to keep within max_frames (set at each on_begin)
        self.image_index = image_index
        self.input_range = input_range
        self.writer_options = writer_options
        self.writer: FrameWriter | None = None
        self.frames = 0
        self._last_step = None
        self._recording = True  # only the first chunk of a request is recorded
        self.failed = False

    def on_begin(self, max_iter, batch_size):
        if self.image_index is not None and not -batch_size <= self.image_index < batch_size:
            raise IndexError(f"ProgressRecorder image_index {self.image_index} is out of range for a batch of "
                             f"{batch_size} images")
        self._last_step = max_iter - 1
        self._every = self.frame_every
        if self.max_frames is not None:  # the last step is recorded too: room for it
            self._every = max(self.frame_every, math.ceil(max_iter / (self.max_frames - 1)))
        self.frames = 0
        self.failed = False
        self._recording = True
        self.partial_path = None
        options = dict(self.writer_options)
        options.setdefault("value_range", self.input_range)
        self.writer = FrameWriter(self.path, image_index=self.image_index, **options)

    def on_chunk(self, index, chunks, positions):
        self._recording = index == 0

    def on_step(self, step, images, values):
        if self.failed or not self._recording or (step % self._every and step != self._last_step):
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
        published = None
        try:
            published = self.writer.close()
        except FrameWriterError as err:
            self._fail(err)
        self.writer = None
        if published is not None and result is not None and getattr(result, "animation_path", None) is None:
            result.animation_path = Path(published)

    def on_abort(self, error):
        if self.writer is not None:
            self.partial_path = self.writer.abort(keep_partial=self.keep_partial)
            self.writer = None

    def _fail(self, err):
        if not self.failed:
            self.failed = True
            warnings.warn(f"progress recording stopped: {err}", RuntimeWarning, stacklevel=3)
