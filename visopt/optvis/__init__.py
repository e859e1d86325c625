"""Optimization of the input: feature visualization as energy minimization.

What belongs here: the energy and its terms (:mod:`~visopt.optvis.energy`; objectives that read
layers in :mod:`~visopt.optvis.objectives` and :mod:`~visopt.optvis.neurons`, Gram-matrix terms in
:mod:`~visopt.optvis.style`, penalties on the image in :mod:`~visopt.optvis.regularizers`), how the image is represented
(:mod:`~visopt.optvis.parameterizations`), random views of it (:mod:`~visopt.optvis.transforms`),
the compiled step (:mod:`~visopt.optvis.program`, with :mod:`~visopt.optvis.adam`) and the loop
around it (:mod:`~visopt.optvis.optimizer`), callbacks that watch a run (progress bar, progress
recorder), the one-liner ``visualize_activation``, and ``visualize_layers`` (a grid per layer written
to a folder, resumable). How a request of many images is cut into chunks and spread over devices:
:mod:`~visopt.optvis.plan`.

Example:
    >>> from visopt.optvis import ActivationMaximization, Optimizer, TotalVariation
    >>> result = Optimizer(model, ActivationMaximization("predictions", [0, 1]) + TotalVariation()).minimize()
"""

from visopt.optvis.energy import Energy, ImageSpec, Term, TermInputs
from visopt.optvis.layer_grids import visualize_layers
from visopt.optvis.neurons import ChannelInterpolation, Direction, Neuron
from visopt.optvis.objectives import ActivationMaximization, DeepDream
from visopt.optvis.optimizer import Optimizer
from visopt.optvis.optimizer_callback import OptimizerCallback
from visopt.optvis.progress_bar import ProgressBar
from visopt.optvis.progress_recorder import ProgressRecorder
from visopt.optvis.regularizers import LPNorm, TotalVariation
from visopt.optvis.result import OptimizationResult
from visopt.optvis.style import Diversity, Texture
from visopt.optvis.transforms import Jitter, Pad, RandomRotate, RandomScale, Transform
from visopt.optvis.visualization import visualize_activation

__all__ = ["ActivationMaximization", "ChannelInterpolation", "DeepDream", "Direction", "Diversity", "Energy", "ImageSpec", "Jitter", "LPNorm", "OptimizationResult",
           "Neuron", "Optimizer", "OptimizerCallback", "Pad", "ProgressBar", "ProgressRecorder", "RandomRotate", "RandomScale",
           "Term", "TermInputs", "Texture", "TotalVariation", "Transform", "visualize_activation",
           "visualize_layers"]
