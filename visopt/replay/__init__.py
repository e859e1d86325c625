"""Training replay: a recorded ``fit`` replayed at any point, and the views drawn from it.

What belongs here: reading what :class:`visopt.ReplayRecorder` (a callback, in ``training``)
wrote (:class:`Replay`: the model at a point, outputs, per-sample losses, loss and metric
curves), and the views of a replay (feature space, decision boundary, probability and loss
histograms, loss and metric, layer violins), each with ``data(k)``, ``plot(k)`` and
``animate(path)``. The folder format is :mod:`visopt.store`'s, below.

Example:
    >>> from visopt.replay import Replay
    >>> replay = Replay("runs/replay")
    >>> replay.feature_space("hidden").plot(60)
"""

from visopt.replay.replay import Replay, metric_value, model_outputs, per_sample_loss
from visopt.replay.views import (DecisionBoundary, FeatureSpace, LayerViolins, LossAndMetric, LossHistogram,
                                 ProbabilityHistogram, compose)

__all__ = ["DecisionBoundary", "FeatureSpace", "LayerViolins", "LossAndMetric", "LossHistogram",
           "ProbabilityHistogram", "Replay", "compose", "metric_value", "model_outputs", "per_sample_loss"]
