"""Losses that read a layer's output: activation maximization and deep dream.

Both return the *negative* of what they maximize, one value per image, so that the Optimizer can
minimize the total energy (see :mod:`visopt.energy`).
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np
import tensorflow as tf

from visopt.energy import ImageSpec, Term, TermInputs
from visopt.surgery import LayerRequest, LayerSpec, activation_name, channel_axis

#: What ActivationMaximization climbs; "auto" picks log_probability for softmax layers.
SCORES = ("auto", "activation", "log_probability")


def channel_means(output: tf.Tensor, axis: int) -> tf.Tensor:
    """(batch, channels): the mean of each channel over every other non-batch axis."""
    rank = output.shape.rank
    axis = axis % rank
    spatial = [a for a in range(1, rank) if a != axis]
    means = tf.reduce_mean(output, axis=spatial) if spatial else output
    return tf.reshape(means, (-1, output.shape[axis]))


class ActivationMaximization(Term):
    """Maximize filters or units of a layer: ``-mean(activation)`` over the spatial axes, per image.

    Args:
        layer: a Keras layer, its name or its index in ``model.layers``.
        filter_indices: one entry per image of the batch. An int (or ``[i]``) applies to every image;
            ``[3, 7, 7]`` asks for three images, of filters 3, 7 and 7; a nested entry ``[[3, 5]]``
            makes one image that maximizes filters 3 and 5 together (their sum). ``None``: every
            filter of the layer, one image each.
        pre_activation: when the layer ends in softmax/sigmoid, read its logits, built by surgery
            (default). The saturated softmax output has vanishing gradients.
        score: ``"activation"`` climbs the (pre-)activation itself, as keras-vis did;
            ``"log_probability"`` climbs ``log_softmax`` of the units (computed from the logits),
            i.e. this unit *relative to the others*; ``"auto"`` (default) uses log_probability
            for softmax layers and activation otherwise. Measured on three demo CNNs (seeds 0-2, 16
            class images, 150 steps, default weights), plain logits gave images that each model
            itself recognised 75-88% of the time (one pattern can raise two logits at once),
            log-probability 100%; the price is fainter images once the class wins. For a model that outputs raw
            logits (``from_logits=True`` training), pass ``score="log_probability"`` yourself.

    Works on Dense outputs and Conv1D/2D/3D feature maps, channels_last and channels_first.

    Example:
        >>> loss = ActivationMaximization("predictions", [20, 20, 20])  # three images of class 20
    """

    name = "activation_maximization"

    def __init__(self, layer: LayerSpec, filter_indices=None, *, pre_activation: bool = True,
                 score: str = "auto", name: str | None = None):
        super().__init__(name)
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; valid: {list(SCORES)}")
        self.layer = layer
        self.filter_indices = normalize_indices(filter_indices)
        self.pre_activation = pre_activation
        self.score = score

    def requests(self):
        return (LayerRequest(self.layer, self.pre_activation),)

    def bind(self, layers, spec: ImageSpec):
        (layer,) = layers
        rank = len(layer.output.shape)
        axis = channel_axis(layer, rank)
        units = layer.output.shape[axis]
        rows = self.filter_indices if self.filter_indices is not None else [[i] for i in range(units)]
        for row in rows:
            check_indices(row, layer, units)
        selection = np.zeros((len(rows), units), np.float32)
        for r, row in enumerate(rows):
            for index in row:
                selection[r, index % units] += 1.0
        selection = tf.constant(selection)
        score = self.score
        if score == "auto":
            softmax = self.pre_activation and activation_name(layer) == "softmax"
            score = "log_probability" if softmax else "activation"

        def fn(inputs: TermInputs) -> tf.Tensor:
            means = channel_means(inputs.outputs[0], axis)
            if score == "log_probability":
                means = tf.nn.log_softmax(means, axis=1)
            return -tf.reduce_sum(means * selection, axis=1)

        return fn, (len(rows) if len(rows) > 1 else None)


class DeepDream(Term):
    """Maximize the mean squared activation of a layer (its energy): the deep-dream objective.

    Start from a photo (``seed_input``) to exaggerate whatever the layer sees in it.

    Args:
        layer: a Keras layer, its name or its index.
        filter_indices: restrict to these channels (all by default).

    Example:
        >>> energy = DeepDream("conv2d_1") + 0.1 * TotalVariation()
        >>> dreamed = Optimizer(model, energy).minimize(seed_input=photo, max_iter=50).images
    """

    name = "deep_dream"

    def __init__(self, layer: LayerSpec, filter_indices=None, *, name: str | None = None):
        super().__init__(name)
        self.layer = layer
        self.filter_indices = None if filter_indices is None else _flat_indices(filter_indices)

    def requests(self):
        return (LayerRequest(self.layer, False),)

    def bind(self, layers, spec: ImageSpec):
        (layer,) = layers
        rank = len(layer.output.shape)
        axis = channel_axis(layer, rank) % rank
        units = layer.output.shape[axis]
        if self.filter_indices is not None:
            check_indices(self.filter_indices, layer, units)
        indices = self.filter_indices

        def fn(inputs: TermInputs) -> tf.Tensor:
            out = inputs.outputs[0]
            if indices is not None:
                out = tf.gather(out, indices, axis=axis)
            return -tf.reduce_mean(tf.square(out), axis=list(range(1, rank)))

        return fn


def check_indices(indices, layer, units: int) -> None:
    """IndexError naming the layer and its unit count for an index outside ``-units..units-1``."""
    for index in indices:
        if not -units <= index < units:
            raise IndexError(f"filter index {index} is out of range for layer {layer.name!r}, which "
                             f"has {units} filters/units (valid indices 0..{units - 1})")


def _is_index(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def _flat_indices(value) -> list[int]:
    if _is_index(value):
        return [int(value)]
    if isinstance(value, (list, tuple, np.ndarray)) and all(_is_index(v) for v in value):
        return [int(v) for v in value]
    raise TypeError(f"filter_indices must be an int or a list of ints, got {value!r}")


def normalize_indices(value) -> list[list[int]] | None:
    """None, or one list of filter indices per image (see ActivationMaximization)."""
    if value is None:
        return None
    if _is_index(value):
        return [[int(value)]]
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0:
        return [_flat_indices(v) for v in value]
    raise TypeError(f"filter_indices must be an int, a non-empty list of ints (one per image) or of "
                    f"lists (filters maximized together); got {value!r}")


__all__: Sequence[str] = ("ActivationMaximization", "DeepDream")
