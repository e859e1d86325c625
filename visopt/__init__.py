"""visopt: see what a Keras 3 network has learned by optimizing its input.

Example:
    >>> import visopt
    >>> images = visopt.visualize_activation(model, "predictions", [0, 1, 2, 3], seed=0)
    >>> energy = visopt.ActivationMaximization("conv2d", [3]) + 0.5 * visopt.LPNorm() + 2 * visopt.TotalVariation()
    >>> result = visopt.Optimizer(model, energy).minimize(max_iter=200)
    >>> maps = visopt.visualize_saliency(model, "predictions", labels, images, method="smoothgrad")
    >>> cams = visopt.visualize_cam(model, "predictions", labels, images, method="gradcam++")
    >>> model.fit(x, y, callbacks=[visopt.WeightSnapshot("runs/weights", batch_interval=10, render_videos=True)])
"""

from visopt.callbacks import OptimizerCallback, ProgressBar, ProgressRecorder, WeightHistory, WeightSnapshot
from visopt.frame_writer import FrameWriter, FrameWriterError
from visopt.energy import Energy, ImageSpec, Term, TermInputs
from visopt.cam import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, visualize_cam
from visopt.images import deprocess_image, overlay, stitch_images
from visopt.losses import ActivationMaximization, DeepDream
from visopt.optimizer import OptimizationResult, Optimizer
from visopt.regularizers import LPNorm, TotalVariation
from visopt.saliency import (Deconvnet, Gradient, GradientXInput, GuidedBackprop, IntegratedGradients, SmoothGrad,
                             normalize_maps, visualize_saliency)
from visopt.transforms import Jitter, Pad, RandomRotate, RandomScale, Transform
from visopt.visualization import visualize_activation

__version__ = "0.1.0"

__all__ = [
    "ActivationMaximization", "DeepDream", "Deconvnet", "Energy", "FrameWriter", "FrameWriterError", "GradCAM",
    "GradCAMPlusPlus", "Gradient", "GradientXInput", "GuidedBackprop", "ImageSpec", "IntegratedGradients", "Jitter",
    "LPNorm", "LayerCAM", "OptimizationResult", "Optimizer", "OptimizerCallback", "Pad", "ProgressBar",
    "ProgressRecorder", "RandomRotate", "RandomScale", "ScoreCAM", "SmoothGrad", "Term", "TermInputs",
    "TotalVariation", "Transform", "WeightHistory", "WeightSnapshot", "deprocess_image", "normalize_maps", "overlay",
    "stitch_images", "visualize_activation", "visualize_cam", "visualize_saliency",
]
