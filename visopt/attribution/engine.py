"""The gradient engine of saliency maps and CAMs: a unit's score and its gradients, compiled and batched.

The score is the one :class:`~visopt.optvis.objectives.ActivationMaximization` climbs with
``score="activation"``: the mean of the chosen units/filters of a layer over its spatial axes
(:func:`visopt.model.units.channel_means`), read before a softmax/sigmoid (the logits), from the
same feature graph (:mod:`visopt.model.surgery`) the Optimizer uses. A saliency map is the gradient of that score with respect to the input, i.e.
minus the gradient of the energy the Optimizer minimizes.

Every function here is one ``tf.function`` traced once per engine (the batch axis is left
undefined). Work that multiplies the batch (SmoothGrad's noisy copies, Integrated Gradients' path
points, Score-CAM's masked inputs) is laid out along the batch axis and cut into chunks of at most
``batch_size`` rows, which bounds memory. :meth:`AttributionEngine.map` runs the chunks, one after
the other or, with a ``tf.distribute`` strategy, one per replica side by side (same chunks, same
numbers).
"""

from __future__ import annotations

from typing import Iterator

import keras
import numpy as np
import tensorflow as tf

from visopt._cache import cached, request_key
from visopt._checks import input_batch, is_int
from visopt._devices import check_strategy, map_replicas
from visopt.model.layers import (activation_name, as_graph, channel_axis, data_format_of, find_embedding, find_feature,
                                 find_layer, input_count, input_shape)
from visopt.model.surgery import LayerRequest, build_feature_model, flat_view, model_after
from visopt.model.units import channel_means, normalize_indices, selection_matrix


class AttributionEngine:
    """Scores of ``layer``'s units on a model's input, and their gradients.

    Args:
        model: a Sequential or Functional Keras model with one input (nested models are inlined).
        layer: the explained layer (a Layer, its name or index); softmax/sigmoid outputs are read as
            their logits.
        relu_gradient: ``"guided"`` or ``"deconvnet"`` to replace every ReLU's gradient.
        feature_layer: a layer whose output (or a ``LayerInput``: the tensor entering a layer) ``cam``
            returns, with the score's gradient with respect to it.
        probability: score a softmax layer by its probabilities instead of its logits (Score-CAM).
        embedding_layer: for a model with integer (token) inputs, the Embedding layer whose output
            vectors are attributed (the first Embedding of the model by default).

    Example:
        >>> engine = AttributionEngine.for_model(model, "predictions")
        >>> scores, grads = engine.gradient(images, engine.selection([2] * len(images), len(images)))
    """

    def __init__(self, model: keras.Model, layer, *, relu_gradient: str | None = None, feature_layer=None,
                 probability: bool = False, embedding_layer=None):
        model = as_graph(model)
        if not isinstance(model, keras.Model):
            raise TypeError(f"expected a keras Model or the path of a model file, got {type(model).__name__}")
        self.layer = find_layer(model, layer)
        self.feature_layer = None if feature_layer is None else find_feature(model, feature_layer)
        # several inputs: one flat vector of all their values (InputSegments says where each sits)
        self.segments = None
        if input_count(model) > 1:
            model, self.segments = flat_view(model)
        # integer (token) inputs: everything happens after the embedding, on its vectors
        self.embedding = find_embedding(model, embedding_layer)
        self._token_shape = input_shape(model)
        if self.embedding is not None:
            model = model_after(model, self.embedding)
        self.input_shape = input_shape(model)
        self.data_format = data_format_of(model)
        rank = len(self.layer.output.shape)
        self.axis = channel_axis(self.layer, rank)
        self.units = int(self.layer.output.shape[self.axis])
        self.probability = bool(probability) and activation_name(self.layer) == "softmax"
        requests = [LayerRequest(self.layer, pre_activation=True)]
        if self.feature_layer is not None:
            requests.append(LayerRequest(self.feature_layer))
        self._features = build_feature_model(model, requests, relu_gradient=relu_gradient)

        images = tf.TensorSpec((None,) + self.input_shape, tf.float32)
        selection = tf.TensorSpec((None, self.units), tf.float32)
        self.scores = tf.function(self._scores, input_signature=[images, selection])
        self.gradient = tf.function(self._gradient, input_signature=[images, selection])
        self.noisy_gradients = tf.function(self._noisy_gradients, input_signature=[
            images, selection, images, tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.int32)])
        self.path_gradients = tf.function(self._path_gradients, input_signature=[
            images, images, selection, tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None,), tf.float32)])
        if self.feature_layer is not None:
            self.cam = tf.function(self._cam, input_signature=[images, selection])
            self.features = tf.function(lambda x: self._outputs(x)[1], input_signature=[images])
        self._runners: dict = {}  # the compiled strategy.run of each function, per strategy

    @classmethod
    def for_model(cls, model, layer, **options) -> "AttributionEngine":
        """The engine of this request, reused while ``model`` lives (surgery and tracing happen once)."""
        return cached(model, request_key("attribution", layer, options), lambda: cls(model, layer, **options))

    def map(self, fn, calls: list[tuple], strategy=None) -> list:
        """``fn(*args)`` (one of this engine's functions) for each chunk's ``args``, in order, as NumPy:
        one after the other, or spread over the replicas of ``strategy`` (``MirroredStrategy``).

        Example:
            >>> parts = engine.map(engine.gradient, [(images[:64], rows[:64]), (images[64:], rows[64:])], strategy)
        """
        return map_replicas(fn, calls, check_strategy(strategy), self._runners)

    # -- inputs -------------------------------------------------------------------------------
    def noise_scale(self, images: np.ndarray, noise: float) -> np.ndarray:
        """The noise's standard deviation for every value: ``noise`` times the value range (max - min)
        of its image, or of its input in its sample for a model with several inputs."""
        parts = self.segments.split(images) if self.segments is not None else [images]
        scales = []
        for part in parts:
            axes = tuple(range(1, part.ndim))
            spread = (part.max(axis=axes) - part.min(axis=axes)).reshape((-1,) + (1,) * (part.ndim - 1))
            scales.append(np.broadcast_to(noise * spread, part.shape))
        scale = self.segments.flatten(scales) if self.segments is not None else scales[0]
        return np.ascontiguousarray(scale, dtype=np.float32)

    def check_images(self, seed_input) -> np.ndarray:
        """``seed_input`` as a float32 batch of the model's input shape (one image gets a batch axis).

        For a token model, the tokens' embedding vectors ``(N, T, D)``: what is attributed. For a
        model with several inputs, a list with one array (or batch) per input, side by side in one
        flat vector per sample.
        """
        if self.segments is not None:
            return self._check_several(seed_input)
        if self.embedding is None:
            return input_batch(seed_input, self.input_shape)
        tokens = np.asarray(seed_input)
        if np.issubdtype(tokens.dtype, np.floating) and tokens.shape[-len(self.input_shape):] == self.input_shape:
            return input_batch(tokens, self.input_shape)  # embedding vectors already (given, or passed on)
        if tokens.shape == self._token_shape:
            tokens = tokens[None]
        if not np.issubdtype(tokens.dtype, np.integer) or tokens.shape[1:] != self._token_shape:
            raise ValueError(f"seed_input must be integer tokens of shape (N,) + {self._token_shape}, got "
                             f"{tokens.dtype} {tokens.shape}")
        vocabulary = int(self.embedding.input_dim)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= vocabulary):
            raise ValueError(f"seed_input holds tokens in [{tokens.min()}, {tokens.max()}]; the embedding "
                             f"{self.embedding.name!r} knows [0, {vocabulary - 1}]")
        return keras.ops.convert_to_numpy(keras.ops.cast(self.embedding(tokens), "float32"))

    def _check_several(self, seed_input) -> np.ndarray:
        shapes = self.segments.shapes
        if isinstance(seed_input, np.ndarray) and seed_input.ndim == 2 and seed_input.shape[1:] == self.input_shape:
            return input_batch(seed_input, self.input_shape)  # flat already (passed on by a method)
        if not isinstance(seed_input, (list, tuple)) or len(seed_input) != len(shapes):
            raise ValueError(f"this model has {len(shapes)} inputs of shapes {list(shapes)}: give seed_input as a "
                             f"list of {len(shapes)} arrays, one (or one batch) per input")
        arrays = [input_batch(x, shape, f"seed_input[{k}]") for k, (x, shape) in enumerate(zip(seed_input, shapes))]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"the inputs of seed_input hold different numbers of samples: {[len(a) for a in arrays]}")
        return self.segments.flatten(arrays)

    def inputs(self, seed_input, filter_indices) -> tuple[np.ndarray, np.ndarray]:
        """The checked images and their one-hot unit selection: what every method starts from.

        ``filter_indices=None`` explains each image's top unit (its predicted class).
        """
        images = self.check_images(seed_input)
        if filter_indices is None:
            filter_indices = self.top_units(images)
        return images, self.selection(filter_indices, len(images))

    def top_units(self, images: np.ndarray, batch_size: int = 256) -> list[int]:
        """The unit with the highest score (the class the model predicts) for each image."""
        means = [channel_means(self._outputs(images[part])[0], self.axis).numpy()
                 for part in chunks(len(images), batch_size)]
        return [int(unit) for unit in np.concatenate(means).argmax(axis=1)]

    def selection(self, filter_indices, batch: int) -> np.ndarray:
        """One-hot rows ``(batch, units)``: an int for every image, or a list with one entry per image.

        An entry may itself be a list of units, explained together (their scores summed).
        """
        rows = normalize_indices(filter_indices)
        if rows is None:
            raise TypeError("filter_indices must be an int or a list with one entry per image, got None (None is "
                            "each image's top unit: pass it to visualize_saliency, visualize_cam or inputs())")
        if is_int(filter_indices):
            rows = rows * batch  # one int: the same unit for every image
        elif len(rows) != batch:
            raise ValueError(f"filter_indices has {len(rows)} entries for a batch of {batch} images: give "
                             "one int for every image or a list with one entry per image")
        return selection_matrix(rows, self.layer, self.units)

    @property
    def input_channel_axis(self) -> int | None:
        """The channel axis of the input (None for a flat ``(features,)`` input)."""
        if len(self.input_shape) < 2:
            return None
        return 1 if self.data_format == "channels_first" else -1

    # -- compiled functions ---------------------------------------------------------------------
    def _outputs(self, images):
        outputs = self._features(images, training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def _score(self, output, selection):
        means = channel_means(output, self.axis)
        if self.probability:
            means = tf.nn.softmax(means, axis=1)
        return tf.reduce_sum(means * selection, axis=1)

    def _scores(self, images, selection):
        return self._score(self._outputs(images)[0], selection)

    def _gradient(self, images, selection):
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores = self._score(self._outputs(images)[0], selection)
            total = tf.reduce_sum(scores)  # a sum keeps each image's gradient its own
        return scores, tape.gradient(total, images)

    def _noisy_gradients(self, images, selection, sigma, image_ids, samples, first, count, seed):
        """Sums of g and g^2 over noisy copies ``first..first+count`` of the ``samples`` of each image;
        ``sigma`` is the noise's standard deviation for every value (see :meth:`noise_scale`).

        Image ``i``'s noise is drawn for all its samples from the seed ``(seed, image_ids[i])`` and
        sliced, so the result does not depend on how a request is cut into calls (``batch_size``).
        """
        shape = tf.shape(images)[1:]

        def noise(image_id):
            draws = tf.random.stateless_normal(tf.concat([[samples], shape], 0), tf.stack([seed, image_id]))
            return draws[first:first + count]

        noises = tf.map_fn(noise, image_ids, fn_output_signature=tf.float32)  # (n, count, *shape)
        noisy = tf.expand_dims(images, 1) + noises * tf.expand_dims(sigma, 1)
        flat = tf.reshape(noisy, tf.concat([[-1], shape], 0))  # image 0's copies first, then image 1's...
        _, grads = self._gradient(flat, tf.repeat(selection, count, axis=0))
        grads = tf.reshape(grads, tf.shape(noisy))
        return tf.reduce_sum(grads, axis=1), tf.reduce_sum(tf.square(grads), axis=1)

    def _path_gradients(self, images, baselines, selection, alphas, weights):
        """``sum_k weights[k] * grad(baseline + alphas[k] * (image - baseline))`` for each image."""
        n, k = tf.shape(images)[0], tf.shape(alphas)[0]
        shape = (-1,) + (1,) * len(self.input_shape)
        a = tf.reshape(tf.tile(alphas, [n]), shape)
        start = tf.repeat(baselines, k, axis=0)
        points = start + a * (tf.repeat(images, k, axis=0) - start)
        _, grads = self._gradient(points, tf.repeat(selection, k, axis=0))
        grads = grads * tf.reshape(tf.tile(weights, [n]), shape)
        return tf.reduce_sum(tf.reshape(grads, tf.concat([[n, k], tf.shape(images)[1:]], 0)), axis=1)

    def _cam(self, images, selection):
        with tf.GradientTape() as tape:
            output, features = self._outputs(images)
            scores = self._score(output, selection)
            total = tf.reduce_sum(scores)
        return scores, features, tape.gradient(total, features)


def chunks(total: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` items covering ``range(total)``."""
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))
