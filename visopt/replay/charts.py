"""Chart views of a replay: probability and loss histograms, loss and metric curves, violins per layer.

Each is a :class:`~visopt.replay.canvas.View` (``data(k)``, ``plot(k, ax=None)``, ``animate(path)``)
with scales fixed across points: bins, axis limits and value grids are taken from every point
once, so that an animation does not jump. They are also importable from :mod:`visopt.replay.views`.

Example:
    >>> histogram = ProbabilityHistogram(replay, bins=20)
    >>> histogram.data(60)["right"].sum() + histogram.data(60)["wrong"].sum() == len(replay.x)
    True
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection

from visopt._checks import check_int
from visopt.inspect.outputs import layer_gradients
from visopt.model.layers import weight_layers
from visopt.model.weights import read, trainable_entries
from visopt.replay.canvas import RIGHT_COLOUR, WRONG_COLOUR, Drawing, View, bar_verts, inset_panels
from visopt.replay.outputs import Targets, forward, probe_outputs
from visopt.replay.replay import metric_value, per_sample_loss

#: What LayerViolins shows per layer.
KINDS = ("weights", "activations", "gradients")
_KEEP_VALUES = 20_000_000  # numbers kept in memory between the range pass and the drawing pass of violins


class ProbabilityHistogram(View):
    """Per true class, a histogram of the probability the model gives that class; right predictions
    below, wrong ones stacked on top.

    Works for softmax classifiers (any number of classes) and a sigmoid unit (two classes: class 0
    is ``1 - p``). A sample is right when its predicted class (the argmax; ``p > 0.5`` for a sigmoid,
    as Keras' accuracy) is its label. Bins span [0, 1]; the count axis is fixed at the largest bar
    over all points.

    Args:
        replay: a :class:`~visopt.replay.Replay` of a classifier (else ValueError).
        bins: bins over [0, 1].

    ``data(k)``: ``edges`` (bins + 1,), ``right`` and ``wrong`` (classes, bins) counts, ``probability``
    (N,) each probe sample's probability of its true class, ``labels`` and ``predicted`` (N,).

    Example:
        >>> data = replay.probability_histogram(bins=10).data(60)
        >>> data["right"].sum() / len(replay.x)      # the accuracy on the probe
        0.95
    """

    def __init__(self, replay, bins: int = 10):
        self.bins = check_int(bins, "bins", 1, 1000)
        super().__init__(replay)
        self.targets = Targets(replay)
        if self.targets.classes is None:
            raise ValueError("a probability histogram needs a classifier (softmax outputs, or one sigmoid unit with "
                             "0/1 targets); this replay's targets are continuous")
        self.edges = np.linspace(0.0, 1.0, self.bins + 1)
        self._top = None

    def _compute(self, k: int) -> dict:
        probabilities = self.targets.probabilities(probe_outputs(self.replay, k))
        labels = self.targets.labels
        true = probabilities[np.arange(len(labels)), labels]
        predicted = probabilities.argmax(axis=1)
        where = np.clip(np.searchsorted(self.edges, true, side="right") - 1, 0, self.bins - 1)  # p = 1: last bin
        counts = {}
        for name, chosen in (("right", predicted == labels), ("wrong", predicted != labels)):
            counts[name] = np.zeros((self.targets.classes, self.bins), np.int64)
            np.add.at(counts[name], (labels[chosen], where[chosen]), 1)
        return {"edges": self.edges, "right": counts["right"], "wrong": counts["wrong"], "probability": true,
                "labels": labels, "predicted": predicted}

    def draw(self, ax) -> Drawing:
        """A panel per class inside ``ax``, two bar collections each (right, wrong on top)."""
        if self._top is None:
            self._top = max(int((d["right"] + d["wrong"]).max()) for d in self.all_data()) * 1.05 or 1.0
        panels = inset_panels(ax, self.targets.classes, gap=0.08)
        bars = []
        for c, panel in enumerate(panels):
            right = PolyCollection(np.zeros((0, 4, 2)), facecolors=RIGHT_COLOUR, edgecolors="white", linewidths=0.4)
            wrong = PolyCollection(np.zeros((0, 4, 2)), facecolors=WRONG_COLOUR, edgecolors="white", linewidths=0.4)
            panel.add_collection(right)
            panel.add_collection(wrong)
            panel.set_xlim(0, 1)
            panel.set_xticks([0, 0.5, 1])
            panel.set_ylim(0, self._top)
            panel.set_xlabel(f"P(class {c})", fontsize=8)
            panel.tick_params(labelsize=7, labelleft=c == 0)
            bars.append((right, wrong))
        panels[0].set_ylabel("probe samples (green right, red wrong)", fontsize=8)
        title = ax.set_title("probability of the true class")

        def update(k: int) -> None:
            data = self.data(k)
            for c, (right, wrong) in enumerate(bars):
                right.set_verts(bar_verts(self.edges, 0.0, data["right"][c]))
                wrong.set_verts(bar_verts(self.edges, data["right"][c], data["right"][c] + data["wrong"][c]))
            title.set_text(self._title("probability of the true class", k))

        return Drawing(update, [artist for pair in bars for artist in pair] + [title])


class LossHistogram(View):
    """A histogram of the per-sample losses on the probe (the model's compiled loss, unreduced).

    The bin edges are fixed across points: ``bins`` equal bins from 0 (or the smallest loss, if
    negative) to the largest loss of any sample at any point; the count axis is fixed too.

    ``data(k)``: ``losses`` (N,) as :meth:`Replay.losses`, ``edges`` (bins + 1,), ``counts`` (bins,).

    Example:
        >>> view = replay.loss_histogram(bins=30)
        >>> (view.data(0)["edges"] == view.data(-1)["edges"]).all()
        True
    """

    def __init__(self, replay, bins: int = 30):
        self.bins = check_int(bins, "bins", 1, 1000)
        super().__init__(replay)
        self._losses: dict[int, np.ndarray] = {}
        self._edges = None
        self._top = None

    def losses(self, k: int) -> np.ndarray:
        """The per-sample losses at point ``k`` (cached)."""
        k = self.replay.index(k)
        if k not in self._losses:
            outputs = probe_outputs(self.replay, k)
            with self.replay._lock:
                self._losses[k] = per_sample_loss(self.replay.model_at(k), self.replay.y, outputs)
        return self._losses[k]

    @property
    def edges(self) -> np.ndarray:
        """The bin edges shared by every point (the losses of every point are computed on first use)."""
        if self._edges is None:
            every = [self.losses(k) for k in range(len(self.replay))]
            low = min(0.0, min(float(np.nanmin(v)) for v in every))
            high = max(float(np.nanmax(v)) for v in every)
            self._edges = np.linspace(low, high if high > low else low + 1.0, self.bins + 1)
        return self._edges

    def _compute(self, k: int) -> dict:
        losses = self.losses(k)
        counts, _ = np.histogram(np.clip(losses, self.edges[0], self.edges[-1]), self.edges)
        return {"losses": losses, "edges": self.edges, "counts": counts}

    def draw(self, ax) -> Drawing:
        if self._top is None:
            self._top = max(int(d["counts"].max()) for d in self.all_data()) * 1.05 or 1.0
        bars = PolyCollection(np.zeros((0, 4, 2)), facecolors="#1f77b4", edgecolors="white", linewidths=0.4)
        ax.add_collection(bars)
        mean = ax.axvline(0.0, color="black", linewidth=1, linestyle="--")
        ax.set_xlim(self.edges[0], self.edges[-1])
        ax.set_ylim(0, self._top)
        ax.set_xlabel("per-sample loss (dashed: the mean)")
        ax.set_ylabel("probe samples")
        title = ax.set_title("losses")

        def update(k: int) -> None:
            data = self.data(k)
            bars.set_verts(bar_verts(self.edges, 0.0, data["counts"]))
            mean.set_xdata([data["losses"].mean()] * 2)
            title.set_text(self._title("losses", k))

        return Drawing(update, [bars, mean, title])


class LossAndMetric(View):
    """The loss (and ``metric``) recomputed on the probe at every point, the logged values beside, a marker at point k.

    The numbers are :meth:`Replay.loss_and_metric`'s. The logged values are what Keras reported at
    each epoch's end (a mean over the epoch's batches, so they trail the recomputed ones); the x axis
    is the epoch when every point ends an epoch, else the training step.

    ``data(k)``: the curves of :meth:`Replay.loss_and_metric` (``point``, ``epoch``, ``step``,
    ``loss``, ``logged_loss`` and the metric's two) and ``current`` (k).

    Example:
        >>> view = replay.loss_and_metric_view("accuracy")
        >>> view.plot(60).savefig("loss.png")
    """

    def __init__(self, replay, metric: str | None = None):
        super().__init__(replay)
        self.metric = metric
        if metric is not None:  # a bad metric name raises now (naming valid ones), not after the curves
            metric_value(metric, replay.y, probe_outputs(replay, 0))
        self._curves = None

    @property
    def curves(self) -> dict:
        if self._curves is None:
            self._curves = self.replay.loss_and_metric(self.metric)
        return self._curves

    def _compute(self, k: int) -> dict:
        return dict(self.curves, current=np.asarray(k))

    def _x(self) -> tuple[np.ndarray, str]:
        every_epoch_end = all(not point.get("batch") for point in self.replay.points)
        return (self.curves["epoch"], "epoch") if every_epoch_end else (self.curves["step"], "step")

    def draw(self, ax) -> Drawing:
        """One panel per quantity: the whole curve faint, the part up to k solid, the logged values dashed."""
        names = ["loss"] + ([self.metric] if self.metric else [])
        panels = inset_panels(ax, len(names), gap=0.18) if len(names) > 1 else [ax]
        x, x_name = self._x()
        parts = [self._panel(panel, name, x, x_name) for name, panel in zip(names, panels)]
        title = ax.set_title("loss" + (f" and {self.metric}" if self.metric else ""))

        def update(k: int) -> None:
            k = self.replay.index(k)
            for (solid, marker, line, *_), name in zip(parts, names):
                solid.set_data(x[:k + 1], self.curves[name][:k + 1])
                marker.set_data([x[k]], [self.curves[name][k]])
                line.set_xdata([x[k], x[k]])
            title.set_text(self._title("loss" + (f" and {self.metric}" if self.metric else ""), k))

        return Drawing(update, [artist for part in parts for artist in part] + [title])

    def _panel(self, panel, name: str, x, x_name: str) -> list:
        values, logged = self.curves[name], self.curves["logged_" + name]
        panel.plot(x, values, color="#1f77b4", alpha=0.25, linewidth=1)
        panel.plot(x, logged, color="#ff7f0e", linestyle="--", marker=".", markersize=3, linewidth=1,
                   label="logged")
        (solid,) = panel.plot([], [], color="#1f77b4", linewidth=2, label="recomputed on the probe")
        (marker,) = panel.plot([], [], "o", color="#1f77b4", markersize=6)
        line = panel.axvline(x[0], color="0.5", linewidth=0.8)
        both = np.concatenate([values, logged]).astype(np.float64)
        low, high = np.nanmin(both), np.nanmax(both)
        pad = (high - low) * 0.08 or 0.05
        span = max(float(x[-1] - x[0]), 1.0)
        panel.set_xlim(x[0] - 0.02 * span, x[-1] + 0.02 * span)  # room for the marker at either end
        panel.set_ylim(low - pad, high + pad)
        panel.set_xlabel(x_name)
        panel.set_ylabel(name)
        if name != "loss":
            return [solid, marker, line]
        # one legend, where a falling loss leaves room; redrawn over the curves in every frame
        return [solid, marker, line, panel.legend(fontsize=7, loc="upper right")]


class LayerViolins(View):
    """Violins per layer: the distribution of each layer's weights, activations or loss gradients at a point.

    ``kind="weights"``: the trainable weights of each layer (kernel and bias together);
    ``"activations"``: each weight layer's outputs on the probe inputs; ``"gradients"``: the
    gradients of the compiled loss on the probe set with respect to each layer's trainable weights
    (:func:`visopt.inspect.layer_gradients`). The value axis is fixed: it spans the smallest to the
    largest value of any layer at any point. A violin is a Gaussian kernel density on that axis
    (Silverman's bandwidth), scaled to the same width for every layer and cut at the layer's
    smallest and largest value; a bar marks the quartiles, a dot the median.

    ``data(k)``: ``layers`` (L,) names, ``grid`` (G,) the value axis, ``density`` (L, G), and
    ``minimum``, ``q1``, ``median``, ``q3``, ``maximum`` (L,).

    Example:
        >>> violins = replay.layer_violins("gradients")
        >>> violins.data(0)["median"]
    """

    def __init__(self, replay, kind: str = "weights", resolution: int = 100):
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; valid: {list(KINDS)}")
        self.resolution = check_int(resolution, "resolution", 8, 2000)
        super().__init__(replay)
        self.kind = kind
        with replay._lock:
            model = replay.model_at(0)
            if kind == "activations":
                self._layers = weight_layers(model)
                self.layers = [layer.name for layer in self._layers]
            else:  # weights and gradients: the trainable variables, grouped by their layer
                self._groups: dict[str, list] = {}
                for entry in trainable_entries(model):
                    self._groups.setdefault(entry.layer, []).append(entry)
                self.layers = list(self._groups)
        if not self.layers:
            raise ValueError(f"the replay's model has no layer with weights to show {kind} of")
        self._kept: dict[int, list] = {}
        self._grid = None

    def values(self, k: int) -> list[np.ndarray]:
        """The flattened values of each layer at point ``k``, in ``layers`` order."""
        k = self.replay.index(k)
        if k in self._kept:
            return self._kept[k]
        if self.kind == "activations":
            return [np.ravel(v) for v in forward(self.replay, k, self._layers, self.replay.x)]
        with self.replay._lock:
            model = self.replay.model_at(k)
            if self.kind == "weights":
                found = {e.path: read(e.variable) for group in self._groups.values() for e in group}
            else:
                found = layer_gradients(model, "*", self.replay.x, self.replay.y, wrt="weights")
        return [np.concatenate([np.ravel(found[e.path]) for e in self._groups[name]]) for name in self.layers]

    @property
    def grid(self) -> np.ndarray:
        """The value axis shared by every point (a pass over every point on first use)."""
        if self._grid is None:
            low, high, kept = np.inf, -np.inf, 0
            for k in range(len(self.replay)):
                values = self.values(k)
                low = min(low, *(float(np.nanmin(v)) for v in values if v.size))
                high = max(high, *(float(np.nanmax(v)) for v in values if v.size))
                kept += sum(v.size for v in values)
                if kept <= _KEEP_VALUES:  # small enough: the drawing pass need not compute them again
                    self._kept[k] = values
            self._grid = np.linspace(low, high if high > low else low + 1.0, self.resolution)
        return self._grid

    def _compute(self, k: int) -> dict:
        grid, values = self.grid, self.values(k)
        density = np.stack([_density(grid, v) for v in values])
        quantiles = np.array([np.percentile(v, (0, 25, 50, 75, 100)) if v.size else [np.nan] * 5 for v in values])
        return {"layers": np.array(self.layers), "grid": grid, "density": density, "minimum": quantiles[:, 0],
                "q1": quantiles[:, 1], "median": quantiles[:, 2], "q3": quantiles[:, 3], "maximum": quantiles[:, 4]}

    def draw(self, ax) -> Drawing:
        grid, count = self.grid, len(self.layers)
        bodies = PolyCollection(np.zeros((0, 4, 2)), facecolors="#1f77b4", edgecolors="#1f77b4", alpha=0.6,
                                linewidths=0.5)
        quartiles = LineCollection([], colors="black", linewidths=4)
        ax.add_collection(bodies)
        ax.add_collection(quartiles)
        medians = ax.scatter(np.arange(count), np.zeros(count), s=14, c="white", edgecolors="black", zorder=3)
        pad = (grid[-1] - grid[0]) * 0.04
        ax.set_xlim(-0.6, count - 0.4)
        ax.set_ylim(grid[0] - pad, grid[-1] + pad)
        ax.set_xticks(np.arange(count), self.layers, rotation=30 if count > 4 else 0, fontsize=8)
        ax.set_ylabel(self.kind)
        title = ax.set_title(f"{self.kind} per layer")

        def update(k: int) -> None:
            data = self.data(k)
            bodies.set_verts(_violins(grid, data))
            quartiles.set_segments([[(i, q1), (i, q3)] for i, (q1, q3) in enumerate(zip(data["q1"], data["q3"]))])
            medians.set_offsets(np.stack([np.arange(count), data["median"]], axis=1))
            title.set_text(self._title(f"{self.kind} per layer", k))

        return Drawing(update, [bodies, quartiles, medians, title])


def _density(grid, values) -> np.ndarray:
    """A Gaussian kernel density of ``values`` on ``grid``, scaled to a peak of 1.

    The values are binned on the grid first (so a layer of millions costs one histogram), then
    smoothed with Silverman's bandwidth, at least one grid step.
    """
    values = values[np.isfinite(values)]
    if not values.size:
        return np.zeros(len(grid))
    step = grid[1] - grid[0]
    counts, _ = np.histogram(values, np.concatenate([grid - step / 2, [grid[-1] + step / 2]]))
    width = max(1.06 * float(values.std()) * values.size ** -0.2, step)
    density = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / width) ** 2) @ counts
    return density / density.max() if density.max() > 0 else density


def _violins(grid, data) -> np.ndarray:
    """``(layers, 2 * G, 2)`` outlines: up the left side, down the right, clipped to each layer's range."""
    outlines = []
    for i, density in enumerate(data["density"]):
        y = np.clip(grid, data["minimum"][i], data["maximum"][i])
        half = 0.42 * density
        outlines.append(np.concatenate([np.stack([i - half, y], -1), np.stack([i + half, y], -1)[::-1]]))
    return np.array(outlines)
