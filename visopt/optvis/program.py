"""The compiled step of the Optimizer: one ``tf.function`` per batch size and transform list, and its replicas.

A step runs parameterization -> random view -> energy -> gradient -> Adam -> projection, and keeps
each image's best iterate when asked. A step whose energy or gradient is not finite changes
nothing (variables, moments and step count stay at the last finite iterate); the loop around it
decides what to do.

The program also holds the position of each of its images in the whole request (``index``, set
by ``reset``): a request of many objectives runs through one program chunk after chunk, and the
terms read the rows of their per-image constants at those positions. Changing the chunk changes a
variable, never a shape, so the step is traced once.

Example:
    >>> program = Program(energy, param, pipeline, best=BestIterate(4, (32, 32, 3)))
    >>> program.reset(start_images, positions=[8, 9, 10, 11])
    >>> image, total, values, finite = program.step(tf.constant([seed, t], tf.int64), learning_rate)
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import tensorflow as tf

from visopt._devices import local_results, replica_id
from visopt.optvis.adam import Adam

#: ``energy(image, view, index) -> (total (batch,), values (terms, batch))``; ``index``: the images'
#: positions in the request.
EnergyFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


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
        self.batch = int(param.variables[0].shape[0])
        self.index = tf.Variable(tf.range(self.batch), trainable=False, name="positions")
        self.step = tf.function(self.step_fn)
        self.gradient = tf.function(self._gradient)

    def reset(self, images: np.ndarray, positions=None) -> None:
        """Start a run from ``images`` (the whole batch) at ``positions`` of the request (``0..batch-1``
        by default): fresh moments, no best iterate yet."""
        self.param.assign(images)
        positions = np.arange(self.batch) if positions is None else positions
        self.index.assign(np.asarray(positions, np.int32))
        self.adam.reset()
        if self.best is not None:
            self.best.reset()

    def step_fn(self, seed, learning_rate):
        """One update; returns the image it was measured on, its energies and whether all was finite.

        ``step`` is this function compiled; a strategy traces this one inside ``strategy.run``.
        """
        variables = self.param.variables
        with tf.GradientTape() as tape:
            image = self.param()
            total, values = self._energy(image, self._pipeline(image, seed), self.index)
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

    def _gradient(self, image, index):
        """The energy's gradient at ``image`` (images at ``index`` of the request), without transforms."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, _ = self._energy(image, image, index)
            objective = tf.reduce_sum(total)
        return tape.gradient(objective, image)


class Replicas:
    """One :class:`Program` per replica device, stepped together: a round of a request.

    Without a strategy it is one program and its own compiled step (what ``minimize`` always ran).
    With one, each replica's program is built on its device (``make_program`` called under
    ``tf.device``), and one compiled ``strategy.run`` steps them all: replica ``k`` traces the step
    of program ``k``. Nothing is reduced across replicas; the images of a round are the replicas'
    chunks side by side.

    Example:
        >>> replicas = Replicas(lambda: Program(energy, param_fn(), pipeline), ["/cpu:0", "/cpu:1"], strategy)
        >>> replicas.reset(start_images, positions)          # 2 x chunk images
        >>> image, total, values, finite = replicas.step(seed, learning_rate)
    """

    def __init__(self, make_program: Callable[[], Program], devices: list, strategy=None):
        self.programs = []
        for device in devices:
            with tf.device(device) if device else contextlib.nullcontext():
                self.programs.append(make_program())
        self.strategy = strategy
        if strategy is None:
            self._step = self.programs[0].step
        else:
            self._step = tf.function(lambda seed, rate: strategy.run(self._replica_step, args=(seed, rate)))
        self.best = self.programs[0].best is not None

    def _replica_step(self, seed, learning_rate):
        return self.programs[replica_id()].step_fn(seed, learning_rate)

    def reset(self, images: np.ndarray, positions: np.ndarray) -> None:
        """Start a round: ``images`` and their request ``positions`` cut into one chunk per replica."""
        chunk = self.programs[0].batch
        for k, program in enumerate(self.programs):
            program.reset(images[k * chunk:(k + 1) * chunk], positions[k * chunk:(k + 1) * chunk])

    def step(self, seed, learning_rate):
        """One step of every replica: ``(image, total, values, finite)`` of the whole round."""
        out = self._step(seed, learning_rate)
        if self.strategy is None:
            return out
        parts = local_results(self.strategy, out)
        image = tf.concat([p[0] for p in parts], 0)
        total = tf.concat([p[1] for p in parts], 0)
        values = tf.concat([p[2] for p in parts], 1)
        return image, total, values, tf.reduce_all(tf.stack([p[3] for p in parts]))

    def images(self) -> np.ndarray:
        """The round's images now (float32, channels last)."""
        return np.concatenate([program.param().numpy() for program in self.programs])

    def best_iterates(self) -> tuple[np.ndarray, np.ndarray]:
        """Each image's lowest-energy iterate and its energy (``keep_best``)."""
        return (np.concatenate([p.best.image.numpy() for p in self.programs]),
                np.concatenate([p.best.loss.numpy() for p in self.programs]))

    def gradient(self, images: np.ndarray) -> np.ndarray:
        """The energy's gradient at ``images`` (the whole request, in order), chunk by chunk on the first
        replica's program (the last chunk padded: one trace)."""
        program, count = self.programs[0], len(images)
        grads = []
        for start in range(0, count, program.batch):
            positions = np.minimum(np.arange(start, start + program.batch), count - 1).astype(np.int32)
            part = program.gradient(tf.constant(images[positions]), tf.constant(positions))
            grads.append(part.numpy()[:count - start])
        return np.concatenate(grads)
