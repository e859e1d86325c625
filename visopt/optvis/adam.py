"""Adam, written out for the compiled step of the Optimizer.

Not ``keras.optimizers.Adam``: the step must be able to skip an update in the graph (a non-finite
energy or gradient leaves the variables, the moments and the step count at the last finite
iterate), and every ``minimize`` starts from fresh moments. Moments are per element, hence per
image, so the images of a batch stay independent.

Example:
    >>> adam = Adam(param.variables)
    >>> adam.apply(grads, learning_rate)    # inside a tf.function
    >>> adam.reset()                         # before the next run
"""

from __future__ import annotations

import tensorflow as tf

BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8


class Adam:
    """First and second moments of ``variables`` and the update they give."""

    def __init__(self, variables):
        self.variables = list(variables)
        self.moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in self.variables]
        self.count = tf.Variable(0.0)

    def reset(self) -> None:
        """Zero the moments and the step count (eagerly, before a run)."""
        for first, second in self.moments:
            first.assign(tf.zeros_like(first))
            second.assign(tf.zeros_like(second))
        self.count.assign(0.0)

    def apply(self, grads, learning_rate) -> None:
        """One bias-corrected Adam step of size ``learning_rate`` (in the variables' units) along ``grads``."""
        count = self.count.assign_add(1.0)
        rate = learning_rate * tf.sqrt(1 - BETA2 ** count) / (1 - BETA1 ** count)
        for variable, grad, (first, second) in zip(self.variables, grads, self.moments):
            first.assign(BETA1 * first + (1 - BETA1) * grad)
            second.assign(BETA2 * second + (1 - BETA2) * tf.square(grad))
            variable.assign_sub(rate * first / (tf.sqrt(second) + EPSILON))
