"""A progress bar (tqdm, imported when a run begins) and one plain summary line when the run ends.

The bar is a widget in a notebook with ipywidgets, else text on stderr refreshed at most once a
second (a 200-step run writes a handful of updates, not one per step). It starts after the first
step, which traces the compiled step, so its rate and ETA count only the steps that follow. At the
end it is replaced by one plain line (steps, time, the final mean of each term) that any static
view of a notebook keeps: the text bar is cleared and the line printed; the widget's display is
updated in place to the line (a saved widget would read "0%" in a static view).

A request run in chunks (``minimize(batch_size=...)``) gets one bar over all its chunks' steps.
"""

from __future__ import annotations

import sys
import time

from visopt.frames.display import in_notebook
from visopt.optvis.optimizer_callback import OptimizerCallback


class ProgressBar(OptimizerCallback):
    """Show progress and the batch mean of every named term; ``minimize(verbose=True)`` adds one.

    Args:
        refresh_every: update the term read-out every this many steps (shown at the next refresh).
        mininterval: seconds between two refreshes of the bar; by default 1 for text (terminals,
            notebooks without ipywidgets, logs), 0.2 for a notebook widget.
        file: where the text bar and the summary go (``sys.stderr`` at the time of the run by default).

    Attributes:
        summary: the last run's summary line, e.g. ``visopt: 200 steps of 4 images in 3.3 s (first
            step 1.9 s, with tracing; then 143 steps/s); mean loss -12.3, ActivationMaximization -14.1``;
            for a request in chunks, ``visopt: 16 chunks x 200 steps of 256 images in ...`` (the means:
            the last chunk's).

    Example:
        >>> opt.minimize(verbose=False, callbacks=[ProgressBar(refresh_every=25)])
        visopt: 200 steps of 4 images in 3.3 s (first step 1.9 s, with tracing; then 143 steps/s); mean loss -12.3
    """

    wants_images = False

    def __init__(self, refresh_every: int = 10, *, mininterval: float | None = None, file=None):
        self.refresh_every = max(1, int(refresh_every))
        self.mininterval = None if mininterval is None else float(mininterval)
        self.file = file
        self.summary: str | None = None
        self._bar = None
        self._total = self._batch = self._steps = self._max_iter = self._images = self._offset = 0
        self._chunks = 1
        self._begin = self._first = 0.0
        self._values = None
        self._display = None  # the widget's IPython display handle

    def on_begin(self, max_iter, batch_size):
        self._total, self._batch, self._steps = int(max_iter), int(batch_size), 0
        self._max_iter, self._chunks, self._images, self._offset = int(max_iter), 1, 0, 0
        self._begin, self._first = time.perf_counter(), 0.0
        self._values, self._bar, self._display = None, None, None

    def on_chunk(self, index, chunks, positions):
        self._chunks, self._offset = int(chunks), int(index) * self._max_iter
        self._images += len(positions)
        self._total = self._chunks * self._max_iter

    def on_step(self, step, images, values):
        step += self._offset  # the step of the whole request
        self._steps, self._values = step + 1, values
        if self._bar is None:  # the first step traced the program: the bar's clock starts now
            self._first = time.perf_counter() - self._begin
            self._bar = self._open(initial=step + 1)
            self._bar.set_postfix(_means(values), refresh=False)
            return
        self._bar.update(1)
        if step % self.refresh_every == 0:
            self._bar.set_postfix(_means(values), refresh=False)

    def on_end(self, result):
        self._finish(None)

    def on_abort(self, error):
        self._finish(error)

    def _open(self, initial: int):
        """The bar, created at the first step: a widget in a notebook with ipywidgets, else text."""
        bar_class, widget = _bar_class()
        interval = self.mininterval if self.mininterval is not None else (0.2 if widget else 1.0)
        options = {"display": False} if widget else {"file": self._file(), "dynamic_ncols": True}
        what = f"{self._batch} images" if self._chunks == 1 else f"{self._chunks} chunks of {self._batch} images"
        bar = bar_class(total=self._total, initial=initial, desc=f"visopt ({what})", leave=False,
                        mininterval=interval, smoothing=0.1, **options)
        if widget:  # shown here, with a handle: the summary replaces it at the end
            from IPython.display import display

            self._display = display(bar.container, display_id=True)
        return bar

    def _finish(self, error) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._total:
            self.summary = self._summary_line(error)
            if self._display is not None:
                self._display.update({"text/plain": self.summary}, raw=True)
            else:
                print(self.summary, file=self._file(), flush=True)
            self._total, self._display = 0, None

    def _summary_line(self, error) -> str:
        elapsed = time.perf_counter() - self._begin
        if error is None and self._chunks > 1:
            head = (f"visopt: {self._chunks} chunks x {self._max_iter} steps of {self._images} images in "
                    f"{elapsed:.1f} s")
        elif error is None:
            head = f"visopt: {self._steps} steps of {self._batch} images in {elapsed:.1f} s"
        else:
            head = (f"visopt: stopped after {self._steps} of {self._total} steps ({type(error).__name__}) "
                    f"in {elapsed:.1f} s")
        if self._steps > 1:
            rate = (self._steps - 1) / max(elapsed - self._first, 1e-9)
            head += f" (first step {self._first:.1f} s, with tracing; then {rate:.3g} steps/s)"
        terms = ", ".join(f"{name} {value}" for name, value in _means(self._values or {}).items())
        return f"{head}; mean {terms}" if terms else head

    def _file(self):
        return sys.stderr if self.file is None else self.file


def _bar_class():
    """(tqdm class, whether it is a widget): tqdm.notebook only in a notebook with ipywidgets.

    tqdm.auto would warn (TqdmWarning) in a notebook without ipywidgets: the choice is made here instead.
    """
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as notebook_tqdm
        except ImportError:
            pass
        else:
            return notebook_tqdm, True
    from tqdm.std import tqdm

    return tqdm, False


def _means(values) -> dict[str, str]:
    """``{"loss": "-12.3", ...}``: each term's batch mean, "loss" first."""
    ordered = sorted(values.items(), key=lambda item: item[0] != "loss")
    return {name: f"{float(value.mean()):.4g}" for name, value in ordered}
