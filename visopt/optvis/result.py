"""What ``Optimizer.minimize`` returns: the images, the history of every term, the best iterate."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

import numpy as np

from visopt.frames.display import Picture, media_html, show


class OptimizationResult:
    """What ``Optimizer.minimize`` returns.

    Attributes:
        images: ``(batch, *spatial, channels)`` channels-last, uint8 when ``input_range`` is (0, 255),
            else float32 in input units.
        history: term name (and ``"loss"``, the overall energy) -> array ``(steps, batch)``. Row ``t`` is
            the energy of step ``t``'s image, measured on that step's randomly transformed view,
            before the update; so the last row is one update behind ``images``.
        best_images, best_loss: with ``keep_best=True``, each image's lowest-energy iterate.
        steps: iterations run (fewer than asked when a non-finite value stopped a ``"warn"`` run).
        gradients: the energy's gradient at the final images (computed on first access).
        input_range: the images' value range (the Optimizer's), used to display float images.
        animation_path: the progress animation a ``ProgressRecorder`` published for this run, or None.

    Unpacks like keras-vis' return value: ``images, gradients = opt.minimize()``. In a notebook, a
    result shows itself: its images, its steps, the final value of each term and its animation.

    Example:
        >>> result = opt.minimize(max_iter=100, keep_best=True)
        >>> result.history["loss"].shape, result.best_loss.shape
        ((100, 4), (4,))
        >>> result.show(cols=4).save("runs/result.png")
    """

    def __init__(self, images, history, steps, best_images=None, best_loss=None,
                 gradient_fn: Callable[[], np.ndarray] | None = None, input_range=None):
        self.images = images
        self.history = history
        self.steps = steps
        self.best_images = best_images
        self.best_loss = best_loss
        self.input_range = None if input_range is None else tuple(float(v) for v in input_range)
        self.animation_path: Path | None = None
        self._gradient_fn = gradient_fn
        self._gradients = None

    @property
    def gradients(self) -> np.ndarray:
        if self._gradients is None and self._gradient_fn is not None:
            self._gradients = self._gradient_fn()
        return self._gradients

    @property
    def loss(self) -> np.ndarray:
        """The overall energy of each image at the last step, ``(batch,)``."""
        return self.history["loss"][-1]

    def __iter__(self):
        yield self.images
        yield self.gradients

    def show(self, **options) -> Picture:
        """The images as one grid (``visopt.show`` with this result's ``input_range``); ``options`` go to ``show``.

        Example:
            >>> result.show(titles=["cat", "dog"], zoom=4)
        """
        return show(self, **options)

    def final_values(self) -> dict[str, np.ndarray]:
        """Each term's (and ``"loss"``'s) value per image at the last step: ``{name: (batch,)}``.

        Example:
            >>> {name: values.mean() for name, values in result.final_values().items()}
        """
        return {name: np.asarray(values[-1]) for name, values in self.history.items() if len(values)}

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{float(v.mean()):.4g}</td><td>{float(v.min()):.4g}</td>"
                       f"<td>{float(v.max()):.4g}</td></tr>" for name, v in self.final_values().items())
        table = ('<table style="font-size:smaller"><tr><th>term (last step)</th><th>mean</th><th>min</th>'
                 f"<th>max</th></tr>{rows}</table>") if rows else ""
        animation = "" if self.animation_path is None else media_html(self.animation_path, "progress")
        try:
            grid = self.show()._repr_html_()
        except ValueError as err:  # inputs that are no pictures (a 3-D volume...)
            grid = f"(no picture: {html.escape(str(err))})"
        return (f'<div class="visopt-result"><div><b>OptimizationResult</b>: {html.escape(self._summary())}</div>'
                f'<div style="display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap">'
                f"<div>{grid}</div><div>{table}{animation}</div></div></div>")

    def _summary(self) -> str:
        shape = "x".join(str(side) for side in self.images.shape[1:])
        return f"{self.images.shape[0]} images {shape} {self.images.dtype}, {self.steps} steps"

    def __repr__(self):
        loss = "" if not len(self.history.get("loss", ())) else f", loss={float(self.loss.mean()):.4g}"
        animation = "" if self.animation_path is None else f", animation_path={str(self.animation_path)!r}"
        return (f"OptimizationResult(images={self.images.shape} {self.images.dtype}, steps={self.steps}{loss}"
                f"{animation})")
