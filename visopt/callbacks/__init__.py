"""Callbacks: hooks into an optimization run (``OptimizerCallback``) and, later, into Keras training."""

from visopt.callbacks.optimizer_callback import OptimizerCallback
from visopt.callbacks.progress_bar import ProgressBar
from visopt.callbacks.progress_recorder import ProgressRecorder

__all__ = ["OptimizerCallback", "ProgressBar", "ProgressRecorder"]
