"""Record chosen weight values and per-tensor statistics at every batch of ``fit``, and plot them."""

from __future__ import annotations

import keras
import numpy as np

from visopt._atomic import atomic_write_bytes
from visopt._checks import positive_int
from visopt.model.weights import read, select, trainable_entries
from visopt.render.figures import NotebookFigure

#: Statistic name -> function of a float32 array (computed in float64).
STATS = {
    "norm": lambda a: float(np.sqrt(np.sum(np.square(a, dtype=np.float64)))),
    "mean": lambda a: float(np.mean(a, dtype=np.float64)),
    "std": lambda a: float(np.std(a, dtype=np.float64)),
    "min": lambda a: float(np.min(a)),
    "max": lambda a: float(np.max(a)),
    "absmean": lambda a: float(np.mean(np.abs(a), dtype=np.float64)),
}


class WeightHistory(keras.callbacks.Callback):
    """Record, after every ``every``-th training batch, single weight values and per-tensor statistics.

    Args:
        weights: what to record, keyed by ``Variable.path`` (names are not unique):
            None: statistics of every trainable weight tensor;
            a list of paths (or layer names): statistics of those tensors;
            a dict ``{path: index}`` with an index tuple (or int, or a list of them): those single
            values, and the statistics of those tensors. An index of None records statistics only.
        stats: statistics per tensor, from ``norm`` (L2/Frobenius), ``mean``, ``std``, ``min``,
            ``max``, ``absmean``; ``()`` for none.
        every: record after every this many batches (counted across epochs).

    Values are read after the batch's update, on the training thread (each record waits for the
    step to finish). Reset at each ``fit``.

    Attributes:
        history: a dict of 1-D NumPy arrays of equal length: ``"step"`` (batches trained, 1 after
            the first), ``"epoch"``, ``"batch"``, ``"PATH:STAT"`` per tensor and statistic, and
            ``"PATH[i, j]"`` per recorded value.

    Example:
        >>> recorder = WeightHistory({"dense/kernel": [(0, 3), (1, 0)]}, stats=("norm", "std"))
        >>> model.fit(x, y, epochs=2, callbacks=[recorder])
        >>> recorder.history["dense/kernel[0, 3]"][:3], recorder.history["dense/kernel:norm"][-1]
        >>> figure = recorder.plot("runs/weights.png")    # one subplot per statistic, plus the values
    """

    def __init__(self, weights=None, stats=("norm", "mean", "std"), every: int = 1):
        super().__init__()
        every = positive_int(every, "every")
        stats = (stats,) if isinstance(stats, str) else tuple(stats)
        unknown = [name for name in stats if name not in STATS]
        if unknown:
            raise ValueError(f"unknown statistic(s) {unknown}; valid: {list(STATS)}")
        if weights is not None and not isinstance(weights, (dict, list, tuple, str)):
            raise TypeError(f"weights must be None, a list of paths or a dict {{path: index}}, got {weights!r}")
        self.weights = weights
        self.stats = stats
        self.every = every
        self._records: dict[str, list] = {}
        self._tensors = []   # (key, entry) whose statistics are recorded
        self._scalars = []   # (key, entry, index)
        self._step = 0
        self._epoch = 0

    @property
    def history(self) -> dict[str, np.ndarray]:
        """The recorded series as NumPy arrays (see the class docstring for the keys)."""
        return {key: np.asarray(values, dtype=np.int64 if key in ("step", "epoch", "batch") else np.float64)
                for key, values in self._records.items()}

    def on_train_begin(self, logs=None):
        self._step = 0
        self._tensors, self._scalars = [], []
        self._records = {"step": [], "epoch": [], "batch": []}
        self._resolve()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every:
            return
        if not self._tensors and not self._scalars and not self._resolve():
            return  # the model is built by its first batch: start at the next record
        values = {}
        for key, entry in self._tensors:
            values[key] = read(entry.variable)
        records = self._records
        records["step"].append(self._step)
        records["epoch"].append(self._epoch)
        records["batch"].append(int(batch))
        for key, entry in self._tensors:
            for name in self.stats:
                records[f"{key}:{name}"].append(STATS[name](values[key]))
        for key, entry, index in self._scalars:
            array = values[entry.path] if entry.path in values else read(entry.variable)
            records[key].append(float(array[index]))

    def _resolve(self) -> bool:
        if not self.model.trainable_weights:
            return False
        entries = trainable_entries(self.model)
        what = "WeightHistory(weights=...)"
        if self.weights is None:
            chosen, indices = entries, {}
        elif isinstance(self.weights, dict):
            indices = {}
            chosen = []
            for key, index in self.weights.items():
                found = select(entries, [key], what)
                chosen += [entry for entry in found if entry.path not in {c.path for c in chosen}]
                if index is not None:
                    if len(found) != 1:
                        raise ValueError(f"{what}: {key!r} names {len(found)} tensors; give a variable path "
                                         f"to pick single values: {[entry.path for entry in found]}")
                    indices[found[0].path] = index
        else:
            chosen, indices = select(entries, self.weights, what), {}
        self._tensors = [(entry.path, entry) for entry in chosen] if self.stats else []
        self._scalars = []
        by_path = {entry.path: entry for entry in chosen}
        for path, index in indices.items():
            entry = by_path[path]
            index_list = index if isinstance(index, list) else [index]
            for one in index_list:
                one = (one,) if isinstance(one, (int, np.integer)) else tuple(int(i) for i in one)
                shape = entry.shape
                if len(one) != len(shape) or not all(-side <= i < side for i, side in zip(one, shape)):
                    raise ValueError(f"{what}: index {one} is out of range for {path!r} of shape {shape}")
                key = f"{path}[{', '.join(str(i) for i in one)}]"
                self._scalars.append((key, entry, one))
        for key, _ in self._tensors:
            for name in self.stats:
                self._records[f"{key}:{name}"] = []
        for key, _, _ in self._scalars:
            self._records[key] = []
        return True

    def plot(self, path=None, title: str | None = None):
        """A matplotlib Figure: one subplot per statistic (a line per tensor), one for the recorded values.

        The x axis is the training step. With ``path``, the figure is also saved as a PNG
        (atomically). Needs no display: the figure is drawn with the Agg backend, and it shows itself
        as the last expression of a notebook cell whether or not pyplot was used
        (:class:`~visopt.render.figures.NotebookFigure`).

        Example:
            >>> figure = recorder.plot("runs/weight_history.png")
            >>> len(figure.axes)
            3
        """
        history = self.history
        panels = [(name, [(key, f"{key}:{name}") for key, _ in self._tensors]) for name in self.stats
                  if self._tensors]
        if self._scalars:
            panels.append(("value", [(key, key) for key, _, _ in self._scalars]))
        if not panels:
            raise ValueError("nothing to plot: WeightHistory recorded no statistic and no value")
        figure = NotebookFigure(figsize=(8, 2.6 * len(panels)), layout="constrained")
        axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        steps = history.get("step", np.zeros(0))
        for ax, (name, series) in zip(axes, panels):
            for label, key in series:
                ax.plot(steps, history.get(key, np.zeros(0)), label=label, linewidth=1.2)
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
            if len(series) <= 12:
                ax.legend(fontsize="small", loc="best")
        axes[-1].set_xlabel("step")
        if title:
            figure.suptitle(title)
        if path is not None:
            atomic_write_bytes(path, figure.png(dpi=100))
        return figure
