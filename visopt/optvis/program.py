"""The compiled step of the Optimizer: one ``tf.function`` per batch size and transform list.

A step runs parameterization -> random view -> energy -> gradient -> Adam -> projection, and keeps
each image's best iterate when asked. A step whose energy or gradient is not finite changes
nothing (variables, moments and step count stay at the last finite iterate); the loop around it
decides what to do.

Example:
    >>> program = Program(energy, param, pipeline, best=BestIterate(4, (32, 32, 3)))
    >>> program.reset(start_images)
    >>> image, total, values, finite = program.step(tf.constant([seed, t], tf.int64), learning_rate)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from visopt.optvis.adam import Adam

#: ``energy(image, view) -> (total (batch,), values (terms, batch))``
EnergyFn = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class BestIterate:
    """Each image's lowest finite energy so far and the image that had it."""

    def __init__(self, batch: int, image_shape: tuple[int, ...]):
        self.loss = tf.Variable(tf.fill((batch,), np.inf))
        self.image = tf.Variable(tf.zeros((batch,) + tuple(image_shape)))

    def reset(self) -> None:
        self.loss.assign(tf.fill(tf.shape(self.loss), np.inf))

    def update(self, image: tf.Tensor, total: tf.Tensor, finite: tf.Tensor) -> None:
        better = tf.logical_and(total < self.loss, finite)
        self.loss.assign(tf.where(better, total, self.loss))
        mask = tf.reshape(better, (-1,) + (1,) * (image.shape.rank - 1))
        self.image.assign(tf.where(mask, image, self.image))


class Program:
    """The variables of one batch (parameterization, Adam moments, best iterate) and its compiled functions.

    Args:
        energy: the energy of an image given its view (see :data:`EnergyFn`).
        param: the parameterization owning the batch's variables.
        pipeline: the random transforms, ``pipeline(image, seed) -> view``.
        best: where to track each image's lowest-energy iterate (None: not tracked).
    """

    def __init__(self, energy: EnergyFn, param, pipeline, best: BestIterate | None = None):
        self.param = param
        self.adam = Adam(param.variables)
        self.best = best
        self._energy = energy
        self._pipeline = pipeline
        self.step = tf.function(self._step)
        self.gradient = tf.function(self._gradient)

    def reset(self, images: np.ndarray) -> None:
        """Start a run from ``images`` (the whole batch): fresh moments, no best iterate yet."""
        self.param.assign(images)
        self.adam.reset()
        if self.best is not None:
            self.best.reset()

    def _step(self, seed, learning_rate):
        """One update; returns the image it was measured on, its energies and whether all was finite."""
        variables = self.param.variables
        with tf.GradientTape() as tape:
            image = self.param()
            total, values = self._energy(image, self._pipeline(image, seed))
            objective = tf.reduce_sum(total)  # a sum keeps each image's gradient independent of the batch
        grads = tape.gradient(objective, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        finite = tf.reduce_all(tf.math.is_finite(total))
        for g in grads:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
        if self.best is not None:
            self.best.update(image, total, finite)

        def update():
            self.adam.apply(grads, learning_rate * self.param.step_scale)
            self.param.project()
            return tf.constant(True)

        # A non-finite step leaves every variable at the last finite iterate. One tf.cond rather than
        # a tf.where on each variable (docs/benchmarks.md: the selects cost far more per step).
        tf.cond(finite, update, lambda: tf.constant(False))
        return image, total, values, finite

    def _gradient(self, image):
        """The energy's gradient at ``image`` (a batch of this program's images), without transforms."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, _ = self._energy(image, image)
            objective = tf.reduce_sum(total)
        return tape.gradient(objective, image)
