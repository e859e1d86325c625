"""visopt: see what a Keras 3 network has learned by optimizing its input.

Example:
    >>> import visopt
    >>> images = visopt.visualize_activation(model, "predictions", [0, 1, 2, 3], seed=0)
    >>> energy = visopt.ActivationMaximization("conv2d", [3]) + 0.5 * visopt.LPNorm() + 2 * visopt.TotalVariation()
    >>> result = visopt.Optimizer(model, energy).minimize(max_iter=200)
    >>> model.fit(x, y, callbacks=[visopt.WeightSnapshot("runs/weights", batch_interval=10, render_videos=True)])
"""

from visopt.callbacks import OptimizerCallback, ProgressBar, ProgressRecorder, WeightHistory, WeightSnapshot
from visopt.frame_writer import FrameWriter, FrameWriterError
from visopt.energy import Energy, ImageSpec, Term, TermInputs
from visopt.images import deprocess_image, stitch_images
from visopt.losses import ActivationMaximization, DeepDream
from visopt.optimizer import OptimizationResult, Optimizer
from visopt.regularizers import LPNorm, TotalVariation
from visopt.transforms import Jitter, Pad, RandomRotate, RandomScale, Transform
from visopt.visualization import visualize_activation

__version__ = "0.1.0"

__all__ = [
    "ActivationMaximization", "DeepDream", "Energy", "ImageSpec", "Jitter", "LPNorm", "OptimizationResult",
    "Optimizer", "OptimizerCallback", "Pad", "ProgressBar", "ProgressRecorder", "FrameWriter", "FrameWriterError", "RandomRotate", "RandomScale", "Term", "TermInputs",
    "TotalVariation", "Transform", "WeightHistory", "WeightSnapshot", "deprocess_image", "stitch_images",
    "visualize_activation",
]
