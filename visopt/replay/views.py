"""The views of a replay: each has ``data(k)`` (a dict of arrays), ``plot(k, ax=None)`` and ``animate(path)``.

Spaces (here): :class:`FeatureSpace` (the probe, a grid of lines and the decision regions mapped
through a hidden layer) and :class:`DecisionBoundary` (the model's regions over the input space).
Charts (:mod:`visopt.replay.charts`, imported here too): :class:`ProbabilityHistogram`,
:class:`LossHistogram`, :class:`LossAndMetric`, :class:`LayerViolins`. :func:`compose` draws
several in one figure. Scales (limits, bins, colours) are fixed across points so that animations
do not jump: the first ``plot`` or ``animate`` computes every point once (cached), ``data(k)``
alone computes what point k needs.

Example:
    >>> space = FeatureSpace(replay, "hidden")
    >>> space.data(60)["inputs"].shape
    (1000, 2)
    >>> space.animate("runs/feature_space.mp4", fps=15)
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection

from visopt._checks import check_int
from visopt.replay.canvas import Composition, Drawing, View, compose, fixed_limits
from visopt.replay.charts import LayerViolins, LossAndMetric, LossHistogram, ProbabilityHistogram
from visopt.replay.outputs import Projection, Targets, forward

__all__ = ["FeatureSpace", "DecisionBoundary", "ProbabilityHistogram", "LossHistogram", "LossAndMetric",
           "LayerViolins", "Composition", "compose", "PROJECTIONS"]

#: How FeatureSpace maps a layer's outputs to 2-D: by the layer's width, as is, or by a fixed PCA.
PROJECTIONS = ("auto", "identity", "pca")
_LINE_SAMPLES = 64  # points along each grid line: enough for a bent line to look smooth


class _InputPlane:
    """The plane of the input space the grids lie on: the inputs themselves when 2-D, else the 2-D
    PCA of the probe inputs (grid points mapped back with the inverse projection plus the probe mean).
    ``bounds`` is the probe's box on the plane, ``pad`` added each side."""

    def __init__(self, replay, pad: float = 0.0):
        self.shape = replay.x.shape[1:]
        self.projection = Projection.fit([replay.x])
        probe = self.projection.project(replay.x)
        low, high = probe.min(axis=0), probe.max(axis=0)
        margin = np.maximum(high - low, 1e-6) * pad
        self.low, self.high = low - margin, high + margin

    def mesh(self, count: int, centres: bool = False) -> np.ndarray:
        """``(count, count, 2)`` plane points: ``[i, j]`` is column ``j`` on axis 0, row ``i`` on axis 1;
        with ``centres``, the centres of ``count`` x ``count`` equal cells instead of their corners."""
        axes = []
        for low, high in zip(self.low, self.high):
            edges = np.linspace(low, high, count + 1 if centres else count)
            axes.append((edges[:-1] + edges[1:]) / 2 if centres else edges)
        return np.stack(np.meshgrid(axes[0], axes[1]), axis=-1)

    def lines(self, count: int) -> np.ndarray:
        """``(2 * count, samples, 2)`` plane points of ``count`` lines along each axis."""
        along = [np.linspace(low, high, _LINE_SAMPLES) for low, high in zip(self.low, self.high)]
        across = [np.linspace(low, high, count) for low, high in zip(self.low, self.high)]
        vertical = [np.stack([np.full(_LINE_SAMPLES, v), along[1]], -1) for v in across[0]]
        horizontal = [np.stack([along[0], np.full(_LINE_SAMPLES, v)], -1) for v in across[1]]
        return np.stack(vertical + horizontal)

    def lift(self, points) -> np.ndarray:
        return self.projection.lift(np.asarray(points).reshape(-1, 2), self.shape)

    def axis_names(self) -> tuple[str, str]:
        return ("x0", "x1") if self.projection.kind == "identity" else ("input PC 1", "input PC 2")


class FeatureSpace(View):
    """The probe inputs, a grid of lines over the input space and the decision regions, mapped through ``layer``.

    What deepreplay's feature space shows, for any width: a 2-unit layer is drawn as is; a wider one
    (or any, with ``projection="pca"``) through a 2-D PCA **fitted once** on the layer's outputs for
    the probe inputs at *every* point together, so that one projection serves all points and an
    animation does not jump (:attr:`feature_projection`). The grid covers the probe's box in the
    input space; inputs wider than 2 are gridded on the plane of their 2-D PCA (through the probe
    mean) and mapped back. The regions are cells of a finer grid, mapped through the layer and
    coloured by the model's prediction at the cell's centre (paler where less sure).

    Args:
        replay: a :class:`~visopt.replay.Replay`.
        layer: a name, index or Layer of the replay's model (a bad one raises, naming the valid ones).
        grid: lines per input axis. resolution: region cells per input axis.
        projection: ``"auto"`` (as is for 2 units, else PCA), ``"identity"`` (2 units only) or ``"pca"``.

    ``data(k)``: ``inputs`` (N, 2) mapped probe, ``labels`` (N,) classes (or target values),
    ``lines`` (2 * grid, 64, 2), ``cells`` (resolution + 1, resolution + 1, 2) mapped cell corners,
    ``outputs`` (resolution, resolution, width) model outputs at the cell centres, ``classes``
    (resolution, resolution) their predicted class (classifiers).

    Example:
        >>> space = replay.feature_space("hidden", grid=11)
        >>> space.plot(60).savefig("feature_space.png")
        >>> space.animate("feature_space.gif", fps=10)
    """

    def __init__(self, replay, layer, grid: int = 11, projection: str = "auto", resolution: int = 40):
        if not isinstance(projection, str) or projection not in PROJECTIONS:
            raise ValueError(f"unknown projection {projection!r}; valid: {list(PROJECTIONS)}")
        self.grid = check_int(grid, "grid", 2, 200)
        self.resolution = check_int(resolution, "resolution", 2, 400)
        super().__init__(replay)
        self.layer = layer
        self.units = int(np.prod(forward(replay, 0, [layer], replay.x[:1])[0].shape[1:]))  # a bad layer raises here
        if self.units < 2 or (projection == "identity" and self.units != 2):
            raise ValueError(f"layer {layer!r} has {self.units} units: projection {projection!r} needs "
                             f"{'exactly 2' if projection == 'identity' else 'at least 2'}")
        self.projection = "identity" if projection == "auto" and self.units == 2 else projection
        self.projection = "pca" if self.projection == "auto" else self.projection
        self.targets = Targets(replay)
        self._plane = _InputPlane(replay)
        self._samples = self._input_samples()
        self._projection: Projection | None = None
        self._limits = None

    def _input_samples(self) -> dict:
        """The inputs pushed through the model at every point, one batch: probe, lines, corners, centres."""
        plane, count = self._plane, self.resolution
        parts = {"inputs": self.replay.x, "lines": plane.lift(plane.lines(self.grid)),
                 "cells": plane.lift(plane.mesh(count + 1)), "centres": plane.lift(plane.mesh(count, centres=True))}
        bounds, start = {}, 0
        for name, part in parts.items():
            bounds[name] = slice(start, start + len(part))
            start += len(part)
        return {"x": np.concatenate([np.asarray(p, np.float32) for p in parts.values()]), "slices": bounds}

    @property
    def feature_projection(self) -> Projection:
        """The one map from the layer's outputs to 2-D used at every point (the PCA is fitted on first use)."""
        if self._projection is None:
            if self.projection == "identity":
                self._projection = Projection.identity()
            else:  # streamed over the points: one point's outputs in memory at a time
                outputs = (forward(self.replay, k, [self.layer], self.replay.x)[0] for k in range(len(self.replay)))
                self._projection = Projection.fit(outputs, pca=True)
        return self._projection

    def _compute(self, k: int) -> dict:
        hidden, outputs = forward(self.replay, k, [self.layer, None], self._samples["x"])
        mapped = self.feature_projection.project(hidden)
        at = self._samples["slices"]
        count = self.resolution
        data = {"inputs": mapped[at["inputs"]], "labels": self.targets.labels,
                "lines": mapped[at["lines"]].reshape(2 * self.grid, _LINE_SAMPLES, 2),
                "cells": mapped[at["cells"]].reshape(count + 1, count + 1, 2),
                "outputs": outputs[at["centres"]].reshape(count, count, -1)}
        if self.targets.classes is not None:
            data["classes"] = self.targets.predicted(data["outputs"].reshape(count * count, -1)).reshape(count, count)
        return data

    def draw(self, ax) -> Drawing:
        """Make the artists at the limits of every point (computing every point once)."""
        if self._limits is None:
            self._limits = fixed_limits([d[key] for d in self.all_data() for key in ("inputs", "lines", "cells")])
        cells = PolyCollection(np.zeros((0, 4, 2)), linewidths=0, antialiased=False, zorder=1)
        lines = LineCollection([], colors="0.3", linewidths=0.6, alpha=0.8, zorder=2)
        ax.add_collection(cells)
        ax.add_collection(lines)
        first = self.data(0)["inputs"]
        points = ax.scatter(first[:, 0], first[:, 1], s=10, c=self.targets.label_colours(), edgecolors="white",
                            linewidths=0.3, zorder=3)
        ax.set_xlim(*self._limits[0])
        ax.set_ylim(*self._limits[1])
        names = ("unit 0", "unit 1") if self.projection == "identity" else ("PC 1", "PC 2")
        ax.set_xlabel(f"{self.layer} {names[0]}" if isinstance(self.layer, str) else names[0])
        ax.set_ylabel(f"{self.layer} {names[1]}" if isinstance(self.layer, str) else names[1])
        name = f"feature space of {self.layer!r}" + (" (PCA)" if self.projection == "pca" else "")
        title = ax.set_title(name)

        def update(k: int) -> None:
            data = self.data(k)
            corners, count = data["cells"], self.resolution
            cells.set_verts(_quads(corners))
            cells.set_facecolor(self.targets.colours(data["outputs"].reshape(count * count, -1)))
            lines.set_segments(data["lines"])
            points.set_offsets(data["inputs"])
            title.set_text(self._title(name, k))

        return Drawing(update, [cells, lines, points, title])


def _quads(corners) -> np.ndarray:
    """``(rows * cols, 4, 2)`` quadrilaterals from a ``(rows + 1, cols + 1, 2)`` mesh of corners, row by row."""
    quads = np.stack([corners[:-1, :-1], corners[:-1, 1:], corners[1:, 1:], corners[1:, :-1]], axis=2)
    return quads.reshape(-1, 4, 2)


class DecisionBoundary(View):
    """The model's regions over the input space, the probe points on top.

    2-D inputs are drawn as they are; wider ones on the plane of the probe inputs' 2-D PCA, fixed
    for the replay: a grid on that plane is mapped back (inverse projection plus the probe mean) and
    classified, and the probe points are shown by their projection. The grid covers the probe's
    box with 5 % to spare. Regions are coloured by the predicted class, paler where the model is less sure
    (a regression: by its output value).

    Args:
        replay: a :class:`~visopt.replay.Replay`.
        grid: cells per axis of the regions.

    ``data(k)``: ``grid`` (grid, grid, *input shape) the inputs classified, ``x_axis`` / ``y_axis``
    (grid,) their plane coordinates, ``outputs`` (grid, grid, width), ``classes`` (grid, grid)
    (classifiers), ``inputs`` (N, 2) the probe on the plane, ``labels`` (N,).

    Example:
        >>> view = replay.decision_boundary(grid=100)
        >>> view.data(-1)["classes"].shape
        (100, 100)
    """

    def __init__(self, replay, grid: int = 100):
        self.grid = check_int(grid, "grid", 2, 1000)
        super().__init__(replay)
        self.targets = Targets(replay)
        self._plane = _InputPlane(replay, pad=0.05)
        centres = self._plane.mesh(self.grid, centres=True)
        self._x_axis, self._y_axis = centres[0, :, 0], centres[:, 0, 1]
        self._inputs = self._plane.lift(centres)
        self._probe = self._plane.projection.project(replay.x)

    def _compute(self, k: int) -> dict:
        outputs = forward(self.replay, k, [None], self._inputs)[0]
        count = self.grid
        data = {"grid": self._inputs.reshape((count, count) + self._plane.shape), "x_axis": self._x_axis,
                "y_axis": self._y_axis, "outputs": outputs.reshape(count, count, -1), "inputs": self._probe,
                "labels": self.targets.labels}
        if self.targets.classes is not None:
            data["classes"] = self.targets.predicted(outputs).reshape(count, count)
        return data

    def draw(self, ax) -> Drawing:
        """An image of the regions (its pixels replaced per point) under the probe points."""
        plane = self._plane
        extent = (plane.low[0], plane.high[0], plane.low[1], plane.high[1])
        image = ax.imshow(np.ones((self.grid, self.grid, 3)), extent=extent, origin="lower", aspect="auto",
                          interpolation="nearest", zorder=0)
        points = ax.scatter(self._probe[:, 0], self._probe[:, 1], s=10, c=self.targets.label_colours(),
                            edgecolors="white", linewidths=0.3, zorder=2)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel(plane.axis_names()[0])
        ax.set_ylabel(plane.axis_names()[1])
        title = ax.set_title("decision boundary")

        def update(k: int) -> None:
            outputs = self.data(k)["outputs"]
            image.set_data(self.targets.colours(outputs.reshape(self.grid ** 2, -1)).reshape(self.grid, self.grid, 3))
            title.set_text(self._title("decision boundary", k))

        # the probe points do not move, but must be redrawn above the regions in every frame
        return Drawing(update, [image, points, title])
