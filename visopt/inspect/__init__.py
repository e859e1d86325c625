"""Looking inside a model on data: layer outputs, loss gradients, recurrent gates, weight health.

What belongs here: numbers computed from a model and inputs, read-only (nothing is trained or
drawn into files): :mod:`~visopt.inspect.outputs` (``layer_outputs``, ``layer_gradients`` of the
compiled loss), :mod:`~visopt.inspect.rnn` (``rnn_weights`` per direction, kind and gate;
``rnn_gates``, the per-timestep gate activations of LSTM, GRU and SimpleRNN layers, stepped from
their own weights), :mod:`~visopt.inspect.timesteps` (how far back the loss gradient reaches) and
:mod:`~visopt.inspect.health` (weight norms, an exact NaN/Inf report), and their figures
(:mod:`~visopt.inspect.figures`: matplotlib Figures, never shown as a side effect). It stands on ``model/``
(the layer walk, surgery, gate layouts); training-time callbacks that use it live in ``training/``.

Example:
    >>> from visopt import inspect
    >>> gates = inspect.rnn_gates(model, "lstm", x)
    >>> gates["forward"]["forget"].mean()
"""

from visopt.inspect.figures import features_0d, features_1d, features_2d, rnn_heatmap, rnn_histogram
from visopt.inspect.health import NonfiniteRecord, NonfiniteReport, nonfinite_report, weight_norms
from visopt.inspect.outputs import layer_gradients, layer_outputs
from visopt.inspect.rnn import rnn_gates, rnn_weight_gradients, rnn_weights
from visopt.inspect.timesteps import TimestepGradients, timestep_gradients

__all__ = ["NonfiniteRecord", "features_0d", "features_1d", "features_2d", "rnn_heatmap", "rnn_histogram", "NonfiniteReport", "TimestepGradients", "layer_gradients", "layer_outputs",
           "nonfinite_report", "rnn_gates", "rnn_weight_gradients", "rnn_weights", "timestep_gradients", "weight_norms"]
