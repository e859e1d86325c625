"""Callbacks: hooks into an optimization run (``OptimizerCallback``) and into Keras training (``WeightSnapshot``,
``WeightHistory``)."""

from visopt.callbacks.optimizer_callback import OptimizerCallback
from visopt.callbacks.progress_bar import ProgressBar
from visopt.callbacks.progress_recorder import ProgressRecorder
from visopt.callbacks.weight_history import WeightHistory
from visopt.callbacks.weight_snapshot import WeightSnapshot

__all__ = ["OptimizerCallback", "ProgressBar", "ProgressRecorder", "WeightHistory", "WeightSnapshot"]
