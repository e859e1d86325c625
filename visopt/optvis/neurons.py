"""Objectives on one position, one direction, or a path between two channels of a layer.

They complete ``ActivationMaximization`` (a channel's mean over all positions) the way lucid's
objectives do, and compose with it in the energy algebra:

- ``Neuron``: one channel at one spatial position (the centre by default), what a single unit
  of a convolution responds to;
- ``Direction``: the projection of the activations onto a vector in the layer's channel space
  (a direction found elsewhere: a class-mean difference, a concept vector, a principal component);
- ``ChannelInterpolation``: a batch whose image ``i`` maximizes ``(1 - t) a + t b`` with ``t``
  going from 0 to 1, to see how two channels blend.

Example:
    >>> energy = Neuron("conv_2", 7) + 0.5 * TotalVariation()
    >>> Optimizer(model, ChannelInterpolation("conv_3", 4, 9, images=5)).minimize()   # 5 images, 4 -> 9
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from visopt._checks import check_int
from visopt.model.layers import LayerSpec, channel_axis
from visopt.model.surgery import LayerRequest
from visopt.model.units import channel_means, check_indices, flat_indices, selection_matrix
from visopt.optvis.energy import ImageSpec, Term, TermInputs


def _channels_last(output: tf.Tensor, axis: int) -> tf.Tensor:
    rank = output.shape.rank
    axis = axis % rank
    if axis == rank - 1:
        return output
    order = [0] + [a for a in range(1, rank) if a != axis] + [axis]
    return tf.transpose(output, order)


class _LayerTerm(Term):
    """A term that reads one layer's output (after its activation), channels moved last."""

    def __init__(self, layer: LayerSpec, name: str | None):
        super().__init__(name)
        self.layer = layer

    def requests(self):
        return (LayerRequest(self.layer, False),)

    @staticmethod
    def _layout(layer) -> tuple[int, int, tuple[int, ...]]:
        """(channel axis, channel count, spatial shape) of the layer's output."""
        shape = tuple(layer.output.shape)
        axis = channel_axis(layer, len(shape)) % len(shape)
        spatial = tuple(int(side) for a, side in enumerate(shape) if a not in (0, axis))
        return axis, int(shape[axis]), spatial


class Neuron(_LayerTerm):
    """Maximize one channel at one spatial position: ``-activation[position, channel]`` per image.

    Args:
        layer: a Keras layer, its name or its index.
        channels: an int (one image) or a list of ints (one image each).
        position: the spatial index, e.g. ``(y, x)``; the centre of the feature map when None.

    Example:
        >>> Optimizer(model, Neuron("conv_2", [3, 7], position=(4, 4))).minimize(max_iter=100)
    """

    name = "neuron"
    reads_rows = True

    def __init__(self, layer: LayerSpec, channels, position=None, *, name: str | None = None):
        super().__init__(layer, name)
        self.channels = flat_indices(channels)
        self.position = None if position is None else tuple(int(p) for p in np.atleast_1d(position))

    def bind(self, layers, spec: ImageSpec):
        (layer,) = layers
        axis, units, spatial = self._layout(layer)
        if not spatial:
            raise ValueError(f"Neuron needs a layer with spatial axes; {layer.name!r} outputs "
                             f"{tuple(layer.output.shape)}: use ActivationMaximization for its units")
        selection = tf.constant(selection_matrix([[c] for c in self.channels], layer, units))
        position = tuple(side // 2 for side in spatial) if self.position is None else self.position
        if len(position) != len(spatial) or not all(0 <= p < s for p, s in zip(position, spatial)):
            raise ValueError(f"position {position} is outside the spatial shape {spatial} of layer {layer.name!r}")
        index = list(position)
        per_image = len(self.channels) > 1

        def fn(inputs: TermInputs) -> tf.Tensor:
            at = _channels_last(inputs.outputs[0], axis)[(slice(None), *index)]  # (batch, units)
            return -tf.reduce_sum(at * (inputs.rows(selection) if per_image else selection), axis=1)

        return fn, (len(self.channels) if len(self.channels) > 1 else None)


class Direction(_LayerTerm):
    """Maximize the projection of a layer's activations onto a direction of its channel space.

    ``-mean over positions of <activation, v / |v|>`` per image; with ``cosine=True`` the cosine of
    the angle instead, which rewards pointing along ``v`` rather than being large.

    Args:
        layer: a Keras layer, its name or its index.
        vector: ``(channels,)`` for every image, or ``(N, channels)``: one direction per image.
        cosine: climb the cosine similarity instead of the projection.

    Example:
        >>> v = features[labels == 1].mean(axis=(0, 1, 2)) - features[labels == 0].mean(axis=(0, 1, 2))
        >>> Optimizer(model, Direction("conv_3", v)).minimize(max_iter=200)
    """

    name = "direction"
    reads_rows = True

    def __init__(self, layer: LayerSpec, vector, *, cosine: bool = False, name: str | None = None):
        super().__init__(layer, name)
        vectors = np.asarray(vector, np.float32)
        if vectors.ndim not in (1, 2) or not np.all(np.isfinite(vectors)) or not np.all(np.abs(vectors).sum(-1) > 0):
            raise ValueError(f"vector must be a finite, non-zero (channels,) or (N, channels) array, got shape "
                             f"{vectors.shape}")
        self.vectors = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
        self.cosine = bool(cosine)

    def bind(self, layers, spec: ImageSpec):
        (layer,) = layers
        axis, units, _ = self._layout(layer)
        if self.vectors.shape[-1] != units:
            raise ValueError(f"vector has {self.vectors.shape[-1]} entries; layer {layer.name!r} has {units} channels")
        vectors = tf.constant(np.atleast_2d(self.vectors))
        cosine = self.cosine
        per_image = len(vectors) > 1

        def fn(inputs: TermInputs) -> tf.Tensor:
            out = _channels_last(inputs.outputs[0], axis)
            flat = tf.reshape(out, (tf.shape(out)[0], -1, units))  # (batch, positions, units)
            if cosine:
                flat = tf.math.l2_normalize(flat, axis=-1, epsilon=1e-6)
            rows = inputs.rows(vectors) if per_image else vectors
            return -tf.reduce_mean(tf.einsum("bpu,bu->bp", flat, tf.broadcast_to(rows, (tf.shape(flat)[0], units))),
                                   axis=1)

        return fn, (len(self.vectors) if self.vectors.ndim == 2 and len(self.vectors) > 1 else None)


class ChannelInterpolation(_LayerTerm):
    """A batch of ``images`` pictures going from channel ``a`` to channel ``b``: image ``i`` maximizes
    ``(1 - t_i) * mean(a) + t_i * mean(b)`` with ``t_i = i / (images - 1)``.

    Example:
        >>> result = Optimizer(model, ChannelInterpolation("conv_3", 4, 9, images=6)).minimize(seed=0)
        >>> visopt.stitch_images(result.images, cols=6)
    """

    name = "channel_interpolation"
    reads_rows = True

    def __init__(self, layer: LayerSpec, a: int, b: int, *, images: int = 5, name: str | None = None):
        super().__init__(layer, name)
        self.pair = flat_indices([a, b])
        self.images = check_int(images, "images", 2)

    def bind(self, layers, spec: ImageSpec):
        (layer,) = layers
        axis, units, _ = self._layout(layer)
        check_indices(self.pair, layer, units)
        t = np.linspace(0.0, 1.0, self.images, dtype=np.float32)
        weights = np.zeros((self.images, units), np.float32)
        weights[:, self.pair[0] % units] += 1 - t
        weights[:, self.pair[1] % units] += t
        weights = tf.constant(weights)

        def fn(inputs: TermInputs) -> tf.Tensor:
            return -tf.reduce_sum(channel_means(inputs.outputs[0], axis) * inputs.rows(weights), axis=1)

        return fn, self.images
