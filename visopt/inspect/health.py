"""Weight health: norms per tensor and unit, and an exact report of NaN/Inf per tensor, gate and direction.

Example:
    >>> print(nonfinite_report(model))
    name                         nan       inf
    lstm/forward/kernel/forget   0.0100%   0%
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from visopt.model.gates import gate_layout
from visopt.model.layers import walk
from visopt.model.weights import trainable_entries


def weight_norms(model, *, ord: int = 2, per_unit: bool = False) -> dict[str, float | np.ndarray]:
    """The L1 (``ord=1``) or L2 norm of every trainable tensor, ``{Variable.path: norm}``; with
    ``per_unit``, one norm per unit (the last axis). ``l1_penalty``/``l2_penalty`` of a layer's
    regularizer are ``factor * norm`` (L2: squared).

    Example:
        >>> weight_norms(model)["dense/kernel"]
        3.41
    """
    if ord not in (1, 2):
        raise ValueError(f"ord must be 1 or 2, got {ord!r}")
    norms = {}
    for entry in trainable_entries(model):
        value = np.asarray(entry.variable.numpy(), np.float64)
        flat = value.reshape(-1, value.shape[-1]) if per_unit and value.ndim else value.reshape(-1)
        norm = np.abs(flat).sum(axis=0) if ord == 1 else np.sqrt((flat ** 2).sum(axis=0))
        norms[entry.path] = norm.astype(np.float32) if per_unit else float(norm)
    return norms


@dataclass(frozen=True)
class NonfiniteRecord:
    """One tensor (or gate of it) that holds NaN or Inf: the shares are exact (``count / size``)."""

    name: str
    nan: float
    inf: float
    size: int


class NonfiniteReport(list):
    """A list of :class:`NonfiniteRecord`; ``str()`` is a table."""

    def __str__(self) -> str:
        if not self:
            return "no NaN or Inf values"
        width = max(len(r.name) for r in self)
        rows = [f"{'name':<{width}}  {'nan':>10}  {'inf':>10}"]
        rows += [f"{r.name:<{width}}  {_share(r.nan):>10}  {_share(r.inf):>10}" for r in self]
        return "\n".join(rows)


def _share(value: float) -> str:
    """A percentage with 4 significant digits: a non-zero share never rounds to 0 (1 in 10,001 is 0.009999%)."""
    return "0%" if value == 0 else f"{100 * value:.4g}%"


def nonfinite_report(model_or_arrays) -> NonfiniteReport:
    """Every tensor (per gate and direction for recurrent layers) that holds NaN or Inf, with exact shares.

    ``model_or_arrays``: a model (its weights; names ``layer/direction/kind/gate`` for recurrent
    layers, ``Variable.path`` otherwise) or a mapping ``{name: array}``.

    Example:
        >>> report = nonfinite_report(model)
        >>> report[0].name, report[0].nan
        ('lstm/forward/kernel/forget', 0.0001)
    """
    if isinstance(model_or_arrays, keras.Model):
        arrays = _named_weights(model_or_arrays)
    else:
        arrays = {str(k): np.asarray(v) for k, v in dict(model_or_arrays).items()}
    report = NonfiniteReport()
    for name, array in arrays.items():
        array = np.asarray(array)
        if not np.issubdtype(array.dtype, np.floating) or array.size == 0:
            continue
        nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        if nan or inf:
            report.append(NonfiniteRecord(name, nan / array.size, inf / array.size, int(array.size)))
    return report


def _named_weights(model) -> dict[str, np.ndarray]:
    """Weights by name: recurrent layers split per direction, kind and gate; others by Variable.path."""
    from visopt.inspect.rnn import rnn_weights

    named, covered = {}, set()
    for visit in walk(model):
        layout = gate_layout(visit.layer)
        if layout is None or visit.is_model:
            continue
        for direction, kinds in rnn_weights(model, visit.layer).items():
            for kind, gates in kinds.items():
                for gate, value in gates.items():
                    named[f"{visit.layer.name}/{direction}/{kind}/{gate}"] = value
        covered.update(id(v) for v in visit.layer.weights)
    for entry in trainable_entries(model):
        if id(entry.variable) not in covered:
            named[entry.path] = entry.variable.numpy()
    return named
