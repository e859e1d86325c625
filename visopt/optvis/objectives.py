"""Objectives that read a layer's output: activation maximization and deep dream.

Both return the *negative* of what they maximize, one value per image, so that the Optimizer can
minimize the total energy (see :mod:`visopt.optvis.energy`).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from visopt.model.layers import LayerSpec, activation_name, channel_axis
from visopt.model.surgery import LayerRequest
from visopt.model.units import channel_means, check_indices, flat_indices, normalize_indices, selection_matrix
from visopt.optvis.energy import ImageSpec, Term, TermInputs

#: What ActivationMaximization climbs; "auto" picks log_odds for softmax layers.
SCORES = ("auto", "activation", "log_probability", "log_odds", "margin")


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
        score: what is climbed, computed from the logits of a softmax/sigmoid layer:
            ``"activation"``, the (pre-)activation itself, as keras-vis did;
            ``"log_probability"``, ``log_softmax`` of the units (flat once the unit wins, and
            already high at a grey image for a "default" class); ``"log_odds"``, the unit minus
            the log-sum-exp of the *other* units, ``log(p / (1 - p))``: it counts the other classes
            and keeps climbing; ``"margin"``, the unit minus the mean of the others;
            ``"auto"`` (default), log_odds for softmax layers and activation otherwise (chosen on
            the quality benchmark: docs/quality.md). For a model that outputs raw logits
            (``from_logits=True`` training), pass ``score="log_odds"`` yourself.

    Works on Dense outputs and Conv1D/2D/3D feature maps, channels_last and channels_first.

    Example:
        >>> loss = ActivationMaximization("predictions", [20, 20, 20])  # three images of class 20
    """

    name = "activation_maximization"
    reads_rows = True

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
        selection = tf.constant(selection_matrix(rows, layer, units))
        score = self.score
        if score == "auto":
            softmax = self.pre_activation and activation_name(layer) == "softmax"
            score = "log_odds" if softmax else "activation"

        climb = _SCORES[score]
        per_image = len(rows) > 1

        def fn(inputs: TermInputs) -> tf.Tensor:
            chosen = inputs.rows(selection) if per_image else selection
            return -climb(channel_means(inputs.outputs[0], axis), chosen)

        return fn, (len(rows) if len(rows) > 1 else None)


def _activation(means, selection):
    return tf.reduce_sum(means * selection, axis=1)


def _log_probability(means, selection):
    return tf.reduce_sum(tf.nn.log_softmax(means, axis=1) * selection, axis=1)


def _log_odds(means, selection):
    """The chosen units minus the log-sum-exp of the others: ``log(p / (1 - p))`` for one unit of a softmax.

    Unlike the log-probability it does not flatten once the unit wins (it keeps growing with the
    lead over the strongest other unit), and unlike the logit it counts the other units.
    """
    others = tf.equal(selection, 0.0)
    rest = tf.reduce_logsumexp(tf.where(others, means, tf.fill(tf.shape(means), -1e30)), axis=1)
    rest = tf.where(tf.reduce_any(others, axis=1), rest, 0.0)  # every unit chosen: nothing to beat
    return tf.reduce_sum(means * selection, axis=1) - rest * tf.reduce_sum(selection, axis=1)


def _margin(means, selection):
    units = means.shape[1]
    centred = (units * means - tf.reduce_sum(means, axis=1, keepdims=True)) / max(units - 1, 1)
    return tf.reduce_sum(centred * selection, axis=1)


_SCORES = {"activation": _activation, "log_probability": _log_probability, "log_odds": _log_odds,
           "margin": _margin}


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
    parameterization = "pixels"  # it edits a photo: the change is wanted in pixel space

    def __init__(self, layer: LayerSpec, filter_indices=None, *, name: str | None = None):
        super().__init__(name)
        self.layer = layer
        self.filter_indices = None if filter_indices is None else flat_indices(filter_indices)

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


__all__: Sequence[str] = ("ActivationMaximization", "DeepDream")
