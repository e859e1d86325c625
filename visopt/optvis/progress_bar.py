"""A progress bar (tqdm, notebook-aware) showing the mean of each loss term."""

from __future__ import annotations

from tqdm.auto import tqdm

from visopt.optvis.optimizer_callback import OptimizerCallback


class ProgressBar(OptimizerCallback):
    """Show progress and the batch-mean of every named loss; ``minimize(verbose=True)`` adds one.

    Args:
        refresh_every: update the loss read-out every this many steps.

    Example:
        >>> opt.minimize(verbose=False, callbacks=[ProgressBar(refresh_every=25)])
    """

    wants_images = False

    def __init__(self, refresh_every: int = 10):
        self.refresh_every = max(1, int(refresh_every))
        self._bar = None

    def on_begin(self, max_iter, batch_size):
        self._bar = tqdm(total=max_iter, desc=f"visopt ({batch_size} images)", leave=True)

    def on_step(self, step, images, values):
        self._bar.update(1)
        if step % self.refresh_every == 0:
            self._bar.set_postfix({name: f"{float(value.mean()):.3g}" for name, value in values.items()})

    def on_end(self, result):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_abort(self, error):
        self.on_end(None)  # the bar stays where the run stopped
