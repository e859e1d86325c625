"""Class activation maps: where in a feature map the evidence for a unit lies, upsampled to the input.

One class per method on the gradient engine (:mod:`visopt.attribution.engine`), each weighting the
feature maps ``A_k`` of a *penultimate* layer (by default the last layer before the explained one
whose output still has spatial size > 1, nested base models included):

- ``GradCAM`` (Selvaraju et al. 2017): ``relu(sum_k mean(dS/dA_k) A_k)``.
- ``GradCAMPlusPlus`` (Chattopadhyay et al. 2018): positive gradients weighted by the closed-form
  second-order coefficients.
- ``ScoreCAM`` (Wang et al. 2020): each channel, upsampled and scaled to [0, 1], masks the input;
  the score of the masked input (the class probability for a softmax layer) weights the channel.
  ``max_channels=N`` keeps the N channels of highest variance (Faster Score-CAM).
- ``LayerCAM`` (Jiang et al. 2021): ``relu(sum_k relu(dS/dA_k) * A_k)`` position by position.

Example:
    >>> maps = visualize_cam(model, "predictions", [3, 1], images[:2], method="gradcam++")
"""

from __future__ import annotations

import numpy as np

from visopt._checks import positive_int
from visopt.attribution.engine import AttributionEngine, chunks
from visopt.attribution.maps import GRADIENT_VANISHED, NORMALIZATIONS, normalize_maps, unit_range, upsample
from visopt.model.layers import (LayerInput, as_graph, feature_shape, find_feature, find_layer, find_penultimate_layer,
                                 input_count)

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "layercam")


class GradCAM:
    """Grad-CAM: channels weighted by the spatial mean of the score's gradient.

    Args:
        model: a Sequential or Functional Keras model (nested models work).
        layer: the explained layer (its logits when it is softmax/sigmoid).
        penultimate_layer: the feature maps: a layer (Layer, name or index), or the tensor entering a
            layer (``LayerInput("avg_pool")`` or ``"avg_pool:input"``, for a residual ``x + y`` that
            no layer outputs); when None, the last spatial map before the global pooling.

    Example:
        >>> cams = GradCAM(model, "predictions").attribute(images, [3, 1, 0])   # (N, H, W), >= 0
    """

    probability = False

    def __init__(self, model, layer, penultimate_layer=None):
        model = as_graph(model)
        target = find_layer(model, layer)
        feature = (find_penultimate_layer(model, target) if penultimate_layer is None
                   else find_feature(model, penultimate_layer))
        shape = feature_shape(feature)
        if len(shape) < 3:
            raise ValueError(f"penultimate layer {feature.name!r} gives shape {shape}, not a feature map with "
                             "spatial axes")
        self.penultimate_layer = feature
        if input_count(model) > 1:
            raise ValueError(f"a CAM is drawn over one input image; model {model.name!r} has "
                             f"{len(model.inputs)} inputs: use visualize_saliency, which gives one map per input")
        self.engine = AttributionEngine.for_model(model, target, feature_layer=feature, probability=self.probability)
        owner = feature.layer if isinstance(feature, LayerInput) else feature
        layout = getattr(owner, "data_format", None) or self.engine.data_format
        self._channels_first = layout == "channels_first"

    def attribute(self, seed_input, filter_indices, *, batch_size: int = 256, strategy=None) -> np.ndarray:
        """Non-negative maps ``(N, *spatial)`` at the input's resolution (bilinear upsampling); chunks of
        ``batch_size`` images, spread over the replicas of ``strategy`` when one is given."""
        images, selection = self.engine.inputs(seed_input, filter_indices)
        batch_size = positive_int(batch_size, "batch_size")
        calls = [(images[part], selection[part]) for part in chunks(len(images), batch_size)]
        maps = [self.combine(self._channels_last(features), self._channels_last(grads))
                for _, features, grads in self.engine.map(self.engine.cam, calls, strategy)]
        return self.upsample(np.concatenate(maps))

    def combine(self, features: np.ndarray, grads: np.ndarray) -> np.ndarray:
        """The low-resolution map from feature maps and gradients ``(N, *spatial, K)``."""
        weights = grads.mean(axis=tuple(range(1, grads.ndim - 1)), keepdims=True)
        return np.maximum((weights * features).sum(axis=-1), 0.0)

    def _channels_last(self, array: np.ndarray) -> np.ndarray:
        return np.moveaxis(array, 1, -1) if self._channels_first else array

    def upsample(self, maps: np.ndarray) -> np.ndarray:
        """Bilinear resize of ``(N, *spatial)`` maps to the input's spatial size (1-D and 2-D)."""
        return upsample(maps, _input_spatial(self.engine))


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: positive gradients weighted per position by ``g^2 / (2 g^2 + sum(A) g^3)``."""

    def combine(self, features, grads):
        spatial = tuple(range(1, grads.ndim - 1))
        squared, cubed = grads ** 2, grads ** 3
        denominator = 2 * squared + features.sum(axis=spatial, keepdims=True) * cubed
        alpha = squared / np.where(denominator != 0, denominator, 1.0)
        weights = (alpha * np.maximum(grads, 0.0)).sum(axis=spatial, keepdims=True)
        return np.maximum((weights * features).sum(axis=-1), 0.0)


class LayerCAM(GradCAM):
    """Layer-CAM: each position of each channel weighted by its own positive gradient."""

    def combine(self, features, grads):
        return np.maximum((np.maximum(grads, 0.0) * features).sum(axis=-1), 0.0)


class ScoreCAM(GradCAM):
    """Score-CAM: each upsampled channel, scaled to [0, 1], masks the input; the masked input's score
    weights the channel's upsampled activation.

    For a softmax layer the score is the class probability (as in the authors' code). The masked
    inputs of all images and channels go through the model together, in chunks of ``batch_size``.
    """

    probability = True
    #: Score-CAM takes no gradient: an empty map means no channel's mask raised the score
    why_empty = "no channel's masked input scored above zero (Score-CAM uses no gradient; the unit may be dead there)"

    def attribute(self, seed_input, filter_indices, *, max_channels: int | None = None,
                  batch_size: int = 256, strategy=None) -> np.ndarray:
        """Non-negative maps ``(N, *spatial)``; ``max_channels`` keeps each image's channels of highest variance."""
        images, selection = self.engine.inputs(seed_input, filter_indices)
        batch_size = positive_int(batch_size, "batch_size")
        if max_channels is not None:
            max_channels = positive_int(max_channels, "max_channels")
        features = np.concatenate([self._channels_last(part) for part in self.engine.map(
            self.engine.features, [(images[s],) for s in chunks(len(images), batch_size)], strategy)])
        channels = np.moveaxis(features, -1, 1)  # (N, K, *spatial)
        if max_channels is not None and max_channels < channels.shape[1]:
            variance = channels.reshape(channels.shape[:2] + (-1,)).var(axis=2)
            keep = np.argsort(-variance, axis=1, kind="stable")[:, :max_channels]
            channels = np.take_along_axis(channels, keep.reshape(keep.shape + (1,) * (channels.ndim - 2)), axis=1)
        n, k = channels.shape[:2]
        activations = self.upsample(channels.reshape((n * k,) + channels.shape[2:])).reshape((n, k) + (-1,))
        masks = unit_range(activations.reshape(n * k, -1)).reshape(n, k, -1)
        # one row per (image, channel): the image times the channel's mask
        image_of_row = np.repeat(np.arange(n), k)
        flat_images = images.reshape(n, *self._mask_layout(images.shape[1:]))
        calls = []
        for rows in chunks(n * k, batch_size):
            mask = masks.reshape(n * k, -1)[rows].reshape((-1,) + self._mask_layout(images.shape[1:], mask=True))
            masked = (flat_images[image_of_row[rows]] * mask).reshape((-1,) + images.shape[1:])
            calls.append((masked, selection[image_of_row[rows]]))
        scores = np.concatenate(self.engine.map(self.engine.scores, calls, strategy)).astype(np.float32)
        scores = scores.reshape(n, k) * (masks.max(axis=2) > 0)  # a constant channel masks nothing: no weight
        cams = np.maximum(np.einsum("nk,nkp->np", scores, activations), 0.0)
        return cams.reshape((n,) + _input_spatial(self.engine)).astype(np.float32)

    def _mask_layout(self, input_shape, mask: bool = False) -> tuple[int, ...]:
        """Shapes that let a flat mask multiply the image: (pixels, channels), or (channels, pixels) first."""
        pixels = int(np.prod(_input_spatial(self.engine)))
        channels = int(np.prod(input_shape)) // pixels
        if self.engine.data_format == "channels_first":
            return (1, pixels) if mask else (channels, pixels)
        return (pixels, 1) if mask else (pixels, channels)


_CAM_CLASSES = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM, "layercam": LayerCAM}


def visualize_cam(model, layer, filter_indices, seed_input, *, penultimate_layer=None, method: str = "gradcam",
                  normalize: str | None = "per_sample", batch_size: int = 256, strategy=None,
                  **options) -> np.ndarray:
    """Class activation maps of ``layer``'s units for each image of ``seed_input``, float32 in [0, 1].

    Args:
        model: a Sequential or Functional Keras model (nested models work).
        layer: the explained layer; softmax/sigmoid outputs are explained on their logits
            (Score-CAM uses the probability).
        filter_indices: an int for every image, or a list with one entry per image; None explains
            each image's top unit (the class the model predicts).
        seed_input: one input of the model's shape or a batch.
        penultimate_layer: the feature maps to weight (Layer, name or index, or ``"NAME:input"``:
            the tensor entering layer NAME); by default the last spatial map before the global
            pooling (see :func:`visopt.model.layers.find_penultimate_layer`).
        method: ``"gradcam"``, ``"gradcam++"``, ``"scorecam"`` (``max_channels=`` for the faster
            top-N variant) or ``"layercam"``.
        normalize: ``"per_sample"``, ``"shared"`` or None (see :func:`visopt.attribution.maps.normalize_maps`).
        batch_size: rows per pass through the model (Score-CAM's masked inputs included), on each device.
        strategy: a ``tf.distribute.MirroredStrategy`` (or ``OneDeviceStrategy``): the chunks run on
            its replicas side by side; the maps equal a one-device run.

    Returns:
        ``(N, H, W)`` maps (``(N, T)`` for sequences) at the input's resolution.

    Example:
        >>> cams = visualize_cam(model, "predictions", 3, images, method="scorecam", max_channels=16)
        >>> overlay(images[0], cams[0])
    """
    if method not in _CAM_CLASSES:
        raise ValueError(f"unknown CAM method {method!r}; valid: {list(CAM_METHODS)}")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalize {normalize!r}; valid: {list(NORMALIZATIONS)}")
    explainer = _CAM_CLASSES[method](model, layer, penultimate_layer)
    maps = explainer.attribute(seed_input, filter_indices, batch_size=batch_size, strategy=strategy, **options)
    return normalize_maps(maps, normalize, getattr(explainer, "why_empty", GRADIENT_VANISHED))


def _input_spatial(engine: AttributionEngine) -> tuple[int, ...]:
    shape = engine.input_shape
    if len(shape) < 2:
        raise ValueError(f"CAMs need an input with spatial axes; this model's input has shape {shape}")
    return tuple(shape[1:]) if engine.data_format == "channels_first" else tuple(shape[:-1])
