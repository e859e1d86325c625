"""What ``Optimizer.minimize`` returns: the images, the history of every term, the best iterate."""

from __future__ import annotations

from typing import Callable

import numpy as np


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

    Unpacks like keras-vis' return value: ``images, gradients = opt.minimize()``.

    Example:
        >>> result = opt.minimize(max_iter=100, keep_best=True)
        >>> result.history["loss"].shape, result.best_loss.shape
        ((100, 4), (4,))
    """

    def __init__(self, images, history, steps, best_images=None, best_loss=None,
                 gradient_fn: Callable[[], np.ndarray] | None = None):
        self.images = images
        self.history = history
        self.steps = steps
        self.best_images = best_images
        self.best_loss = best_loss
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

    def __repr__(self):
        return f"OptimizationResult(images={self.images.shape} {self.images.dtype}, steps={self.steps})"
