"""Attribution: which inputs (or feature-map positions) move a unit's score, and whether to trust the map.

What belongs here: the gradient engine (:mod:`~visopt.attribution.engine`: the Optimizer's score,
differentiated instead of optimized, compiled and batched), one class per saliency method
(:mod:`~visopt.attribution.saliency`) and per CAM (:mod:`~visopt.attribution.cam`), the maps'
post-processing (:mod:`~visopt.attribution.maps`), and the metrics that judge any map
(:mod:`~visopt.attribution.metrics`: pointing game, deletion/insertion AUC, model randomization).

Example:
    >>> from visopt.attribution import visualize_saliency, visualize_cam, metrics
    >>> maps = visualize_saliency(model, "predictions", labels, images, method="smoothgrad")
    >>> metrics.pointing_game(maps, masks=masks)
"""

from visopt.attribution import metrics
from visopt.attribution.cam import CAM_METHODS, GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, visualize_cam
from visopt.attribution.engine import AttributionEngine
from visopt.attribution.maps import normalize_maps, reduce_channels
from visopt.attribution.saliency import (METHODS, Deconvnet, Gradient, GradientXInput, GuidedBackprop,
                                         IntegratedGradients, SmoothGrad, visualize_saliency)

__all__ = ["AttributionEngine", "CAM_METHODS", "Deconvnet", "GradCAM", "GradCAMPlusPlus", "Gradient", "GradientXInput",
           "GuidedBackprop", "IntegratedGradients", "LayerCAM", "METHODS", "ScoreCAM", "SmoothGrad", "metrics",
           "normalize_maps", "reduce_channels", "visualize_cam", "visualize_saliency"]
