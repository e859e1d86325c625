"""visopt: see what a Keras 3 network has learned by optimizing its input.

This module is the public face: every name a user needs, gathered from the sub-packages (the tree,
bottom first: ``model`` and ``render``; ``frames``; ``optvis``, ``attribution``; ``training``;
``cli``, ``demo``; see docs/architecture.md).

Example:
    >>> import visopt
    >>> images = visopt.visualize_activation(model, "predictions", [0, 1, 2, 3], seed=0)
    >>> visopt.visualize_layers(model, out="runs/filters", batch_size=32)    # every filter, resumable
    >>> energy = visopt.ActivationMaximization("conv2d", [3]) + 0.5 * visopt.LPNorm() + 2 * visopt.TotalVariation()
    >>> result = visopt.Optimizer(model, energy).minimize(max_iter=200)
    >>> maps = visopt.visualize_saliency(model, "predictions", labels, images, method="smoothgrad")
    >>> cams = visopt.visualize_cam(model, "predictions", labels, images, method="gradcam++")
    >>> model.fit(x, y, callbacks=[visopt.WeightSnapshot("runs/weights", batch_interval=10, render_videos=True)])
    >>> visopt.show(images, titles=class_names)             # in a notebook: the grid, enlarged
    >>> visopt.plot_maps({"smoothgrad": maps, "grad-cam++": cams}, images)
"""

import sys as _sys

from visopt.attribution import metrics
from visopt.attribution.cam import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, visualize_cam
from visopt.attribution.maps import normalize_maps
from visopt.attribution.saliency import (Deconvnet, Gradient, GradientXInput, GuidedBackprop, IntegratedGradients,
                                         SmoothGrad, visualize_saliency)
from visopt.frames import FrameWriter, FrameWriterError, save_image, show
from visopt import inspect
from visopt.optvis import (ActivationMaximization, ChannelInterpolation, DeepDream, Direction, Diversity, Energy,
                           ImageSpec, Jitter, LPNorm, Neuron, OptimizationResult, Optimizer, OptimizerCallback, Pad,
                           ProgressBar, ProgressRecorder, RandomRotate, RandomScale, Term, TermInputs, Texture,
                           TotalVariation, Transform, visualize_activation, visualize_layers)
from visopt.render import deprocess_image, overlay, plot_maps, stitch_images, weight_image
from visopt import replay
from visopt.replay import Replay
from visopt.training import (FolderBusyError, GateMonitor, ReplayRecorder, SnapshotFolder, WeightHistory, WeightSnapshot,
                             render_snapshots)

__version__ = "0.1.0"

# ``from visopt.metrics import pointing_game`` keeps working: the metrics live in visopt.attribution
_sys.modules.setdefault(__name__ + ".metrics", metrics)

__all__ = [
    "ActivationMaximization", "ChannelInterpolation", "DeepDream", "Deconvnet", "Direction", "Diversity", "Energy", "FolderBusyError", "FrameWriter", "FrameWriterError", "GateMonitor", "GradCAM", "inspect",
    "GradCAMPlusPlus", "Gradient", "GradientXInput", "GuidedBackprop", "ImageSpec", "IntegratedGradients", "Jitter",
    "LPNorm", "LayerCAM", "Neuron", "OptimizationResult", "Optimizer", "OptimizerCallback", "Pad", "ProgressBar",
    "ProgressRecorder", "RandomRotate", "RandomScale", "Replay", "ReplayRecorder", "ScoreCAM", "SmoothGrad", "SnapshotFolder", "Term",
    "TermInputs", "Texture", "TotalVariation", "Transform", "WeightHistory", "WeightSnapshot", "deprocess_image", "metrics",
    "normalize_maps", "overlay", "plot_maps", "render_snapshots", "replay", "save_image", "show", "stitch_images",
    "visualize_activation", "visualize_layers",
    "visualize_cam", "visualize_saliency", "weight_image",
]
