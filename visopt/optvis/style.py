"""Terms on Gram matrices of feature maps: diversity across the batch, and texture (style) matching.

A Gram matrix ``G = F^T F / positions`` of a layer's feature map ``F (positions, channels)``
keeps which channels fire together and drops where: it describes texture and style, not layout.

- ``Diversity(layer)``: penalizes the cosine similarity between the Gram matrices of the images
  of one batch, so that ``ActivationMaximization(layer, [20, 20, 20]) + Diversity(...)`` draws
  three *different* ways to excite unit 20 (lucid's diversity objective).
- ``Texture(model, layers, image)``: the distance between the Gram matrices of the image being
  optimized and those of a target image: texture synthesis from noise, or style transfer when
  added to a content term (what keras-vis promised and never shipped).

Example:
    >>> energy = ActivationMaximization("predictions", [2, 2, 2]) + 0.5 * Diversity("conv_2")
    >>> texture = Optimizer(model, Texture(model, ["conv_1", "conv_2"], photo)).minimize(max_iter=300)
"""

from __future__ import annotations

import tensorflow as tf

from visopt._checks import input_batch
from visopt.model.layers import LayerSpec, channel_axis, find_layer
from visopt.model.surgery import LayerRequest, build_feature_model
from visopt.optvis.energy import ImageSpec, Term, TermInputs
from visopt.optvis.neurons import _channels_last


def gram(output: tf.Tensor, axis: int = -1, centred: bool = False) -> tf.Tensor:
    """``(batch, channels, channels)``: the Gram matrix of each feature map, averaged over positions
    (with ``centred``, of the features minus their mean over positions: a covariance)."""
    features = _channels_last(output, axis)
    channels = features.shape[-1]
    flat = tf.reshape(features, (tf.shape(features)[0], -1, channels))
    if centred:
        flat = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    return tf.einsum("bpc,bpd->bcd", flat, flat) / tf.cast(tf.shape(flat)[1], flat.dtype)


class Diversity(Term):
    """For each image, the mean cosine similarity of its feature covariance (centred Gram matrix) with
    those of the other images. Centred, because after a ReLU every uncentred Gram matrix is
    dominated by the mean activations and all of them look alike (cosine near 1).

    Minimizing it pushes the images of a batch apart in style; it couples the images (each image's
    value depends on the others), so use it only where a batch is meant to show variety.

    Example:
        >>> energy = ActivationMaximization("conv_3", [5] * 4) + 1.0 * Diversity("conv_2")
    """

    name = "diversity"
    couples_images = True

    def __init__(self, layer: LayerSpec, *, name: str | None = None):
        super().__init__(name)
        self.layer = layer

    def requests(self):
        return (LayerRequest(self.layer, False),)

    def bind(self, layers, spec: ImageSpec):
        (layer,) = layers
        axis = channel_axis(layer, len(layer.output.shape))

        def fn(inputs: TermInputs) -> tf.Tensor:
            grams = gram(inputs.outputs[0], axis, centred=True)
            flat = tf.math.l2_normalize(tf.reshape(grams, (tf.shape(grams)[0], -1)), axis=1, epsilon=1e-12)
            similarity = flat @ tf.transpose(flat)  # (batch, batch), ones on the diagonal
            count = tf.cast(tf.shape(flat)[0], flat.dtype)
            others = tf.reduce_sum(similarity, axis=1) - 1.0
            return others / tf.maximum(count - 1.0, 1.0)

        return fn


class Texture(Term):
    """Match the Gram matrices of ``layers`` to those of a target ``image``: the mean squared difference
    per layer, relative to the target's mean squared Gram entry, summed over layers.

    Args:
        model: the model whose layers describe the texture.
        layers: layer names, indices or objects (lower layers: finer texture).
        image: the target, one input in the model's layout (a batch axis is added).

    Example:
        >>> result = Optimizer(model, Texture(model, ["conv_1", "conv_2"], x[0])).minimize(max_iter=300, seed=0)
    """

    name = "texture"
    # Gram matching wants free pixels: on the textures task a judge recognised 4 of 4 pixel syntheses
    # and 2 of 4 Fourier ones (docs/quality.md)
    parameterization = "pixels"

    def __init__(self, model, layers, image, *, name: str | None = None):
        super().__init__(name)
        self.layers = [layers] if isinstance(layers, (str, int)) else list(layers)
        if not self.layers:
            raise ValueError("Texture needs at least one layer")
        resolved = [find_layer(model, layer) for layer in self.layers]
        features = build_feature_model(model, [LayerRequest(layer) for layer in resolved])
        target = input_batch(image, tuple(features.inputs[0].shape[1:]), "the target image")
        if len(target) != 1:
            raise ValueError(f"Texture takes one target image, got {len(target)}")
        outputs = features(target, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        self.targets = [gram(out, channel_axis(layer, len(out.shape)))[0]
                        for out, layer in zip(outputs, resolved)]

    def requests(self):
        return tuple(LayerRequest(layer, False) for layer in self.layers)

    def bind(self, layers, spec: ImageSpec):
        axes = [channel_axis(layer, len(layer.output.shape)) for layer in layers]
        targets = [tf.constant(t) for t in self.targets]
        scales = [float(tf.reduce_mean(tf.square(t))) + 1e-12 for t in targets]

        def fn(inputs: TermInputs) -> tf.Tensor:
            total = 0.0
            for output, axis, target, scale in zip(inputs.outputs, axes, targets, scales):
                total += tf.reduce_mean(tf.square(gram(output, axis) - target), axis=[1, 2]) / scale
            return total

        return fn
