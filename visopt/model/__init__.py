"""Facts about a Keras graph, and new graphs over it.

What belongs here: anything that reads a model's structure and nothing else. One layer walk that
enters nested models (:mod:`~visopt.model.layers`: finding layers, activations, layouts, the
feature map before a layer); surgery (:mod:`~visopt.model.surgery`: feature models that expose any
layer, pre-activation logits, ReLUs with modified gradients, always a new functional graph over the
same layer objects); weights keyed by ``Variable.path`` (:mod:`~visopt.model.weights`); units of a
layer and ``filter_indices`` parsing (:mod:`~visopt.model.units`); recurrent gate layouts
(:mod:`~visopt.model.gates`). Nothing here optimizes, draws or writes files.

Example:
    >>> from visopt.model import find_layer, build_feature_model, LayerRequest
    >>> features = build_feature_model(model, [LayerRequest("conv_2"), LayerRequest("predictions", True)])
"""

from visopt.model.gates import GateLayout, gate_layout, split_gates
from visopt.model.layers import LayerInput, find_layer, find_penultimate_layer, iter_layers, walk
from visopt.model.surgery import LayerRequest, build_feature_model
from visopt.model.weights import WeightEntry, trainable_entries

__all__ = ["GateLayout", "LayerInput", "LayerRequest", "WeightEntry", "build_feature_model", "find_layer", "find_penultimate_layer",
           "gate_layout", "iter_layers", "split_gates", "trainable_entries", "walk"]
