"""How far back the loss gradient reaches in a sequence: "is my RNN learning long-term dependencies?" as a number.

Example:
    >>> reach = timestep_gradients(model, x, y)
    >>> reach.norms.shape, reach.earliest, round(reach.reach, 2)
    ((64, 30), 0, 0.93)
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from visopt.inspect.outputs import compiled_loss
from visopt.model.layers import find_embedding, find_layer
from visopt.model.surgery import LayerRequest, build_feature_model

#: A timestep "is reached" when its gradient norm is above this share of the largest one.
REACHED = 0.01


@dataclass
class TimestepGradients:
    """Loss-gradient norms per sample and timestep, and how far back they reach.

    Attributes:
        norms: ``(N, T)`` L2 norms of the loss gradient with respect to each timestep's vector.
        profile: ``(T,)`` their mean over samples, divided by its largest value.
        reach: the share of timesteps whose profile is above 1% (``REACHED``).
        earliest: the first timestep above 1% (0: the gradient reaches the start of the sequence).
    """

    norms: np.ndarray
    profile: np.ndarray
    reach: float
    earliest: int

    def __repr__(self) -> str:
        return (f"TimestepGradients(norms={self.norms.shape}, reach={self.reach:.2f} of the timesteps, "
                f"earliest reached step {self.earliest})")


def timestep_gradients(model, x, y, *, layer=None, sample_weight=None) -> TimestepGradients:
    """Norms of the compiled loss's gradient at each timestep of the input (token models: of the
    embedding's output) or, with ``layer``, of that layer's output sequence.

    Example:
        >>> timestep_gradients(model, x, y, layer="lstm_1").earliest
        0
    """
    target = _target(model, layer)
    with tf.GradientTape() as tape:
        if target is None:  # the model's own (float) input
            sequence = tf.convert_to_tensor(x, tf.float32)
            tape.watch(sequence)
            y_pred = model(sequence, training=False)
        else:
            features = build_feature_model(model, [LayerRequest(target), LayerRequest(model)])
            sequence, y_pred = features(tf.convert_to_tensor(x), training=False)
        loss = compiled_loss(model, x, y, y_pred, sample_weight)
    grads = keras.ops.convert_to_numpy(tape.gradient(loss, sequence))
    if grads.ndim < 3:
        raise ValueError(f"the gradient has shape {grads.shape}: timestep_gradients needs a sequence "
                         "(batch, time, features); name a layer with return_sequences=True")
    norms = np.sqrt((grads.reshape(grads.shape[:2] + (-1,)) ** 2).sum(axis=2))
    profile = norms.mean(axis=0)
    profile = profile / profile.max() if profile.max() > 0 else profile
    above = np.flatnonzero(profile > REACHED)
    return TimestepGradients(norms, profile, float(len(above) / len(profile)),
                             int(above[0]) if len(above) else len(profile))


def _target(model, layer):
    """The layer whose output sequence is differentiated; None for the model's input itself."""
    if layer is not None:
        return find_layer(model, layer)
    return find_embedding(model)  # token inputs: their vectors; float inputs: None
