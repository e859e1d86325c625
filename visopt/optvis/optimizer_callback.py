"""The base class of optimizer callbacks: ``on_begin``, ``on_chunk``, ``on_step``, ``on_end`` and ``on_abort`` hooks."""

from __future__ import annotations

from typing import Mapping

import numpy as np


class OptimizerCallback:
    """Called by ``Optimizer.minimize`` around and at each iteration. Override what you need.

    ``on_step`` receives the iteration index, the images the energy was computed on (a NumPy array
    ``(batch, *spatial, channels)`` in the result's dtype) and the term values: a dict from each
    term's name (and ``"loss"``, the overall energy) to a ``(batch,)`` array. Images are made only
    for callbacks whose ``wants_images`` is true, so a loss-only callback costs nothing.

    A request cut into chunks (``minimize(batch_size=...)``, or a strategy's replicas) runs its
    chunks one after the other: ``on_chunk`` announces each, then ``on_step`` sees that chunk's
    ``max_iter`` steps (``step`` counts from 0 again) with its images and values only. One
    ``on_begin`` and one ``on_end`` (with the whole request's result) frame the request.

    Example:
        >>> class PrintLoss(OptimizerCallback):
        ...     wants_images = False
        ...     def on_step(self, step, images, values):
        ...         if step % 50 == 0:
        ...             print(step, values["loss"].mean())
        >>> opt.minimize(callbacks=[PrintLoss()])
    """

    #: Set to False when ``on_step`` ignores its ``images`` argument (it then receives None).
    wants_images = True

    def on_begin(self, max_iter: int, batch_size: int) -> None:
        """Called once before the first step; ``batch_size``: the images of the first chunk (of the request
        when it runs as one batch)."""

    def on_chunk(self, index: int, chunks: int, positions: np.ndarray) -> None:
        """Called before chunk ``index`` of ``chunks`` (0 of 1 for a request run as one batch); ``positions``
        are its images' places in the request."""

    def on_step(self, step: int, images: np.ndarray | None, values: Mapping[str, np.ndarray]) -> None:
        """Called after each step with that step's images and per-image term values."""

    def on_end(self, result) -> None:
        """Called once with the ``OptimizationResult`` when the run ended normally."""

    def on_abort(self, error: BaseException) -> None:
        """Called once instead of ``on_end`` when the run stops on ``error``, which is raised after it."""
