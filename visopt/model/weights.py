"""A model's trainable weight tensors, with the layer each belongs to, at any depth of nesting.

Weights are keyed by ``Variable.path`` (layer and variable names
are not unique across nested models); the owning layer and the tensor's 1-based position in
``layer.weights`` give the keras_weight_animator names ``layer_NAME-weights_YY``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from visopt.model.gates import recurrent_gates
from visopt.model.layers import walk

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(eq=False)
class WeightEntry:
    """One trainable weight tensor of a model."""

    variable: object  # keras.Variable
    path: str         # Variable.path, made unique
    layer: str        # the owning layer's name (qualified by its nested models when names clash)
    index: int        # 1-based position in layer.weights
    gates: int | None  # gate blocks along the last axis of a recurrent weight, else None

    @property
    def name(self) -> str:
        """The file stem: ``layer_NAME-weights_YY``."""
        return f"layer_{_UNSAFE.sub('_', self.layer)}-weights_{self.index:02d}"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(side) for side in self.variable.shape)


def trainable_entries(model) -> list[WeightEntry]:
    """Every trainable weight of ``model`` (in ``model.trainable_weights`` order) with its layer, index and gates."""
    return _entries(model, list(model.trainable_weights))


def all_entries(model) -> list[WeightEntry]:
    """Every weight of ``model``, trainable or not (BatchNorm statistics too), in ``model.weights`` order.

    Example:
        >>> [e.path for e in all_entries(model)][-2:]
        ['sequential/batch_normalization/moving_mean', 'sequential/batch_normalization/moving_variance']
    """
    return _entries(model, list(model.weights))


def _entries(model, trainable: list) -> list[WeightEntry]:
    owners: dict[int, tuple[tuple[str, ...], object, int]] = {}
    for visit in walk(model, include_root=True):
        # a nested model's own weights (and the root's) are those no layer inside it claimed first
        qualified = visit.path if visit.parents or visit.layer is not model else (model.name,)
        for i, weight in enumerate(visit.layer.weights):
            owners.setdefault(id(weight), (qualified, visit.layer, i + 1))
    # a layer keeps its plain name unless another layer object shares it; then the nested path qualifies it
    layers_by_name: dict[str, set[int]] = {}
    for weight in trainable:
        qualified, layer, _ = owners.get(id(weight), ((model.name,), model, 0))
        layers_by_name.setdefault(qualified[-1], set()).add(id(layer))
    entries, paths, names = [], set(), set()
    for position, weight in enumerate(trainable):
        qualified, layer, index = owners.get(id(weight), ((model.name,), model, position + 1))
        display = qualified[-1] if len(layers_by_name[qualified[-1]]) == 1 else ".".join(qualified)
        path = str(getattr(weight, "path", None) or weight.name)
        unique, n = path, 1
        while unique in paths:
            n += 1
            unique = f"{path}#{n}"
        paths.add(unique)
        gates = recurrent_gates(layer)
        shape = tuple(int(side) for side in weight.shape)
        if not (gates is not None and 1 <= len(shape) <= 2 and shape[-1] % gates == 0):
            gates = None
        entry = WeightEntry(weight, unique, display, index, gates)
        copy = 1
        while entry.name in names:  # the same qualified name twice: number the later ones
            copy += 1
            entry.layer = f"{display}_{copy}"
        names.add(entry.name)
        entries.append(entry)
    return entries


def select(entries: list[WeightEntry], keys, what: str) -> list[WeightEntry]:
    """The entries named by ``keys`` (variable paths or layer names), in model order; unknown keys raise."""
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    chosen = set()
    for key in keys:
        matches = [i for i, entry in enumerate(entries) if key in (entry.path, entry.layer)]
        if not matches:
            valid = [entry.path for entry in entries]
            shown = ", ".join(valid[:8]) + (", ..." if len(valid) > 8 else "")
            raise ValueError(f"{what}: no trainable weight or layer {key!r} in the model; valid weight paths: "
                             f"{shown}")
        chosen.update(matches)
    return [entry for i, entry in enumerate(entries) if i in chosen]


def read(variable) -> np.ndarray:
    """The current value of a variable as a float32 NumPy array (a MirroredVariable reads its primary replica)."""
    return np.asarray(variable.numpy(), dtype=np.float32)
