"""Saliency maps: which input values move a unit's score, one class per method on the gradient engine.

Each method class holds an :class:`~visopt.attribution.engine.AttributionEngine` (built once per model,
layer and method) and returns raw attributions from ``attribute`` (signed, the model's input shape);
hyper-parameters are given at call time. :func:`visualize_saliency` is the one-liner: it reduces
the channel axis and scales the maps into [0, 1].

Example:
    >>> maps = visualize_saliency(model, "predictions", 3, images, method="smoothgrad", samples=50)
    >>> raw = IntegratedGradients(model, "predictions").attribute(images, 3, steps=64)
"""

from __future__ import annotations

import numbers

import numpy as np

from visopt._checks import positive_int
from visopt.attribution.engine import AttributionEngine, chunks
from visopt.attribution.maps import NORMALIZATIONS, normalize_maps, reduce_channels

#: ``visualize_saliency(method=...)`` values.
METHODS = ("vanilla", "gradient_x_input", "guided", "rectified", "smoothgrad", "vargrad", "squaregrad",
           "integrated_gradients")
#: What ``SmoothGrad`` aggregates over the noisy copies: the mean gradient, its variance, or its square.
NOISE_KINDS = ("smoothgrad", "vargrad", "squaregrad")


class Gradient:
    """The gradient of the score (vanilla saliency, Simonyan et al. 2014).

    Args:
        model: a Sequential or Functional Keras model (nested models work).
        layer: the explained layer (Layer, name or index); softmax/sigmoid outputs are explained
            on their logits.

    Example:
        >>> grads = Gradient(model, "predictions").attribute(images, [3, 1, 0])
    """

    relu_gradient: str | None = None
    #: how ``visualize_saliency`` reduces the channel axis: the largest |value| ("max") or |sum| ("sum")
    channel_reduction = "max"

    def __init__(self, model, layer, *, embedding_layer=None):
        self.engine = AttributionEngine.for_model(model, layer, relu_gradient=self.relu_gradient,
                                                  embedding_layer=embedding_layer)

    def attribute(self, seed_input, filter_indices, *, batch_size: int = 256, strategy=None) -> np.ndarray:
        """Attributions in the shape of ``seed_input`` (a batch), float32; chunks of ``batch_size`` images,
        spread over the replicas of ``strategy`` when one is given."""
        images, selection = self.engine.inputs(seed_input, filter_indices)
        batch_size = positive_int(batch_size, "batch_size")
        calls = [(images[s], selection[s]) for s in chunks(len(images), batch_size)]
        return np.concatenate([grads for _, grads in self.engine.map(self.engine.gradient, calls, strategy)])


class GuidedBackprop(Gradient):
    """Guided backpropagation (Springenberg et al. 2015): gradients pass a ReLU only where both its
    input and the gradient are positive. Known to fail the model-randomization check: its maps
    change little when the weights are randomized (see ``visopt.metrics.model_randomization``)."""

    relu_gradient = "guided"


class Deconvnet(Gradient):
    """The deconvnet rule (Zeiler & Fergus 2014; ``method="rectified"``): gradients pass a ReLU where
    the gradient is positive, whatever its input."""

    relu_gradient = "deconvnet"


class GradientXInput(Gradient):
    """Gradient times input: each input value's first-order contribution to the score."""

    channel_reduction = "sum"

    def attribute(self, seed_input, filter_indices, *, batch_size: int = 256, strategy=None) -> np.ndarray:
        images = self.engine.check_images(seed_input)
        return super().attribute(images, filter_indices, batch_size=batch_size, strategy=strategy) * images


class SmoothGrad:
    """Average a gradient method over noisy copies of the input (Smilkov et al. 2017).

    Wraps :class:`Gradient`, :class:`GuidedBackprop` or :class:`Deconvnet` (given as the class or
    an instance). ``kind="smoothgrad"`` averages the gradients, ``"squaregrad"`` their squares,
    ``"vargrad"`` takes their variance (Adebayo et al. 2018).

    Example:
        >>> maps = SmoothGrad(model, "predictions").attribute(images, 3, samples=50, noise=0.2)
    """

    def __init__(self, model, layer, method=Gradient, *, embedding_layer=None):
        method_class = method if isinstance(method, type) else type(method)
        if method_class not in (Gradient, GuidedBackprop, Deconvnet):
            raise TypeError(f"SmoothGrad wraps Gradient, GuidedBackprop or Deconvnet, got {method!r}")
        self.method = method_class
        self.channel_reduction = method_class.channel_reduction
        self.engine = AttributionEngine.for_model(model, layer, relu_gradient=method_class.relu_gradient,
                                                  embedding_layer=embedding_layer)

    def attribute(self, seed_input, filter_indices, *, samples: int = 50, noise: float = 0.2,
                  kind: str = "smoothgrad", seed: int = 0, batch_size: int = 256, strategy=None) -> np.ndarray:
        """Aggregated gradients of ``samples`` copies with Gaussian noise of std ``noise`` times each
        image's value range (max - min). The noise depends on ``seed`` and the image's position in
        the batch only, not on ``batch_size``."""
        images, selection = self.engine.inputs(seed_input, filter_indices)
        samples = positive_int(samples, "samples")
        if not (isinstance(noise, numbers.Real) and noise >= 0):
            raise ValueError(f"noise must be a number >= 0 (a fraction of each image's value range), got {noise!r}")
        if kind not in NOISE_KINDS:
            raise ValueError(f"unknown kind {kind!r}; valid: {list(NOISE_KINDS)}")
        batch_size = positive_int(batch_size, "batch_size")
        sigma = self.engine.noise_scale(images, noise)
        per_call = min(samples, batch_size)
        ids = np.arange(len(images), dtype=np.int32)
        parts = [(part, group) for part in chunks(len(images), max(1, batch_size // per_call))
                 for group in chunks(samples, per_call)]
        calls = [(images[part], selection[part], sigma[part], ids[part], np.int32(samples), np.int32(group.start),
                  np.int32(group.stop - group.start), np.int32(seed)) for part, group in parts]
        total = np.zeros_like(images)
        squares = np.zeros_like(images)
        for (part, _), (sums, square_sums) in zip(parts, self.engine.map(self.engine.noisy_gradients, calls, strategy)):
            total[part] += sums
            squares[part] += square_sums
        mean = total / samples
        if kind == "smoothgrad":
            return mean
        if kind == "squaregrad":
            return squares / samples
        return np.maximum(squares / samples - mean ** 2, 0.0)


class IntegratedGradients(Gradient):
    """Integrated Gradients (Sundararajan et al. 2017): ``(x - baseline)`` times the gradient averaged
    along the straight path from the baseline to ``x`` (trapezoid rule over ``steps`` intervals).

    The attributions of an image sum to ``score(x) - score(baseline)`` up to the quadrature error
    (completeness); more steps shrink it.

    Example:
        >>> attributions = IntegratedGradients(model, "predictions").attribute(images, 3, steps=64)
    """

    channel_reduction = "sum"

    def attribute(self, seed_input, filter_indices, *, steps: int = 50, baseline=None,
                  batch_size: int = 256, strategy=None) -> np.ndarray:
        """Attributions in the shape of ``seed_input``. ``baseline``: None (zeros), a number, an input
        of the model's shape or a batch of them."""
        images, selection = self.engine.inputs(seed_input, filter_indices)
        steps = positive_int(steps, "steps")
        batch_size = positive_int(batch_size, "batch_size")
        baselines = self.baselines(baseline, images)
        alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
        weights = np.full(steps + 1, 1.0 / steps, np.float32)
        weights[[0, -1]] /= 2  # the trapezoid rule
        per_call = min(len(alphas), batch_size)
        parts = [(part, group) for part in chunks(len(images), max(1, batch_size // per_call))
                 for group in chunks(len(alphas), per_call)]
        calls = [(images[part], baselines[part], selection[part], alphas[group], weights[group])
                 for part, group in parts]
        path = np.zeros_like(images)
        for (part, _), grads in zip(parts, self.engine.map(self.engine.path_gradients, calls, strategy)):
            path[part] += grads
        return (images - baselines) * path

    def baselines(self, baseline, images: np.ndarray) -> np.ndarray:
        """The baseline of every image, ``images``' shape (what ``attribute`` integrates from)."""
        if baseline is None:
            return np.zeros_like(images)
        segments = self.engine.segments
        if segments is not None and isinstance(baseline, (list, tuple)):  # one baseline per input
            if len(baseline) != len(segments.shapes):
                raise ValueError(f"baseline has {len(baseline)} entries for a model with {len(segments.shapes)} inputs")
            baseline = segments.flatten([np.broadcast_to(np.asarray(b, np.float32), (len(images),) + shape)
                                         for b, shape in zip(baseline, segments.shapes)])
        array = np.asarray(baseline, np.float32)
        try:
            array = np.broadcast_to(array, images.shape).copy()
        except ValueError:
            raise ValueError(f"baseline has shape {array.shape}; give a number, an input of shape "
                             f"{images.shape[1:]} or a batch of shape {images.shape}") from None
        if not np.all(np.isfinite(array)):
            raise ValueError("baseline contains NaN or Inf")
        return array


_METHOD_CLASSES = {"vanilla": Gradient, "gradient_x_input": GradientXInput, "guided": GuidedBackprop,
                   "rectified": Deconvnet, "integrated_gradients": IntegratedGradients}


def saliency_method(model, layer, method: str = "vanilla", *, embedding_layer=None):
    """The method object behind ``visualize_saliency(method=...)``."""
    if method in NOISE_KINDS:
        return SmoothGrad(model, layer, embedding_layer=embedding_layer)
    if method not in _METHOD_CLASSES:
        raise ValueError(f"unknown saliency method {method!r}; valid: {list(METHODS)}")
    return _METHOD_CLASSES[method](model, layer, embedding_layer=embedding_layer)


def visualize_saliency(model, layer, filter_indices, seed_input, *, method: str = "vanilla",
                       keepdims: bool = False, normalize: str | None = "per_sample", batch_size: int = 256,
                       embedding_layer=None, strategy=None, **hyperparameters) -> np.ndarray:
    """Saliency maps of ``layer``'s units for each image of ``seed_input``, float32 in [0, 1].

    Args:
        model: a Sequential or Functional Keras model (nested models work).
        layer: the explained layer (Layer, name or index): the output layer for a class (its
            logits when it is softmax/sigmoid), a regression output, or an intermediate layer.
        filter_indices: an int for every image, or a list with one entry per image (an entry may
            be a list of units explained together); None explains each image's top unit (the class
            the model predicts).
        seed_input: one input of the model's shape or a batch of them; for a model with several
            inputs, a list with one array (or batch) per input.
        method: one of ``METHODS``: ``vanilla`` (|gradient|), ``gradient_x_input``, ``guided``
            (guided backprop), ``rectified`` (deconvnet), ``smoothgrad`` / ``vargrad`` /
            ``squaregrad`` (``samples=50``, ``noise=0.2`` of each image's value range, ``seed``),
            ``integrated_gradients`` (``steps=50``, ``baseline=None`` meaning zeros).
        keepdims: keep the channel axis (|value| per channel, channels last) instead of reducing it.
        normalize: ``"per_sample"`` scales each map by its maximum, ``"shared"`` all maps by the
            largest, None returns the unscaled magnitudes.
        batch_size: rows per pass through the model (noisy copies and path points included), on each
            device.
        strategy: a ``tf.distribute.MirroredStrategy`` (or ``OneDeviceStrategy``): the chunks of
            ``batch_size`` rows run on its replicas side by side; the maps equal a one-device run.
        embedding_layer: for a model with integer (token) inputs, the Embedding layer in whose
            output space the maps are computed (noise, paths and baselines included); the first
            Embedding by default. Each token gets one value (its vector's channels reduced).

    Returns:
        ``(N, *spatial)`` maps: ``(N, H, W)`` for images, ``(N, T)`` for sequences and token
        inputs, ``(N, F)`` for flat inputs; for a model with several inputs, a list with the maps
        of each input (each normalized on its own). Channels are reduced by the largest |value| (gradient methods) or by |sum|
        (``gradient_x_input``, ``integrated_gradients``, whose values add up).

    Example:
        >>> maps = visualize_saliency(model, "predictions", [3, 1], images[:2], method="integrated_gradients")
        >>> overlay(images[0], maps[0])
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalize {normalize!r}; valid: {list(NORMALIZATIONS)}")
    method = _keras_vis_modifier(method, hyperparameters.pop("backprop_modifier", None))
    explainer = saliency_method(model, layer, method, embedding_layer=embedding_layer)
    if method in NOISE_KINDS:
        hyperparameters["kind"] = method
    attributions = explainer.attribute(seed_input, filter_indices, batch_size=batch_size, strategy=strategy,
                                       **hyperparameters)
    engine = explainer.engine
    if engine.segments is None:
        maps = reduce_channels(attributions, engine.input_channel_axis, explainer.channel_reduction, keepdims)
        return normalize_maps(maps, normalize)
    # several inputs: one map per input, each reduced over its own channels and normalized on its own
    channels_first = engine.data_format == "channels_first"
    return [normalize_maps(reduce_channels(part, None if len(part.shape) < 3 else (1 if channels_first else -1),
                                           explainer.channel_reduction, keepdims), normalize)
            for part in engine.segments.split(attributions)]


#: keras-vis' ``backprop_modifier`` values and the methods they are here.
_KERAS_VIS_MODIFIERS = {"guided": "guided", "relu": "rectified", "deconvnet": "rectified"}


def _keras_vis_modifier(method: str, modifier) -> str:
    """``method``, or the one keras-vis' ``backprop_modifier`` names (only with the default method)."""
    if modifier is None:
        return method
    if modifier not in _KERAS_VIS_MODIFIERS:
        raise ValueError(f"unknown backprop_modifier {modifier!r}; valid: {sorted(_KERAS_VIS_MODIFIERS)} "
                         f"(or method= one of {list(METHODS)})")
    if method != "vanilla":
        raise TypeError(f"give method={method!r} or keras-vis' backprop_modifier={modifier!r}, not both")
    return _KERAS_VIS_MODIFIERS[modifier]
