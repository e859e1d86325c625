"""The numbers behind the replay views: model outputs at a point (fast), what the targets mean, fixed 2-D maps.

Example:
    >>> hidden, outputs = forward(replay, 12, ["hidden", None], grid)
    >>> plane = Projection.fit([replay.x])          # the identity for 2-D inputs, else their 2-D PCA
    >>> Targets(replay).classes
    2
"""

from __future__ import annotations

import weakref

import numpy as np

from visopt.model.surgery import LayerRequest, build_feature_model
from visopt.replay.canvas import CLASS_COLOURS

_CHUNK = 4096  # rows per forward pass: bounded memory for large grids or models

_FEATURES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def forward(replay, k: int, layers, x) -> list[np.ndarray]:
    """The outputs of ``layers`` (names, indices or Layers; ``None`` is the model's output) at point ``k`` on ``x``.

    One feature model per replay and request, calling the replay's model directly: ``predict``'s
    per-call overhead (tens of ms) would be most of the time of a small model.

    Example:
        >>> hidden, outputs = forward(replay, 12, ["hidden", None], replay.x)
    """
    x = np.asarray(x)
    with replay._lock:  # the replay's model holds one point's weights at a time
        model = replay.model_at(k)
        cache = _FEATURES.setdefault(replay, {})
        key = (id(model), tuple(id(l) if not isinstance(l, (str, int)) else l for l in layers))
        if key not in cache:
            requests = [LayerRequest(model if layer is None else layer) for layer in layers]
            cache[key] = build_feature_model(model, requests)
        features = cache[key]
        parts = [features(x[start:start + _CHUNK], training=False) for start in range(0, max(len(x), 1), _CHUNK)]
    parts = [part if isinstance(part, (list, tuple)) else [part] for part in parts]
    return [np.concatenate([np.asarray(part[i]) for part in parts]) for i in range(len(layers))]


def probe_outputs(replay, k: int) -> np.ndarray:
    """The model's outputs on the probe inputs at point ``k``, as ``(N, width)``, shared by the views of one replay.

    Example:
        >>> probe_outputs(replay, -1).shape
        (1000, 1)
    """
    cache = _FEATURES.setdefault(replay, {})
    outputs = cache.setdefault("probe", {})
    k = replay.index(k)
    if k not in outputs:
        out = forward(replay, k, [None], replay.x)[0]
        outputs[k] = out.reshape(len(out), -1).astype(np.float32)
    return outputs[k]


# -- what the outputs mean, and fixed 2-D maps ------------------------------------------------
class Targets:
    """What the probe targets are, read once: class labels of a classifier, or the values of a regression.

    A classifier has several output units (softmax; ``y`` integer labels or one-hot), or one unit
    with 0/1 targets (sigmoid: two classes). Outputs are probabilities unless the compiled loss
    says ``from_logits=True`` (then sigmoid or softmax is applied here). Anything else is a regression.

    Example:
        >>> Targets(replay).classes, Targets(replay).labels[:4]
        (2, array([0, 1, 1, 0]))
    """

    def __init__(self, replay):
        width = probe_outputs(replay, 0).shape[1]
        flat = np.asarray(replay.y).reshape(len(replay.y), -1)
        with replay._lock:
            self.from_logits = _from_logits(replay.model_at(0))
        if width > 1:
            self.classes = width
            self.labels = flat.argmax(axis=1) if flat.shape[1] == width else flat[:, 0].astype(int)
        elif flat.shape[1] == 1 and np.isin(flat, (0, 1)).all():
            self.classes, self.labels = 2, flat[:, 0].astype(int)
        else:  # a regression: points and regions are coloured by value, on the targets' fixed range
            self.classes, self.labels = None, flat[:, 0].astype(np.float64)
            low, high = float(self.labels.min()), float(self.labels.max())
            self.value_range = (low, high if high > low else low + 1.0)

    def probabilities(self, outputs) -> np.ndarray:
        """``(n, classes)`` class probabilities from model outputs (one sigmoid unit becomes two classes)."""
        outputs = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
        if outputs.shape[1] == 1:
            p = 1 / (1 + np.exp(-outputs[:, 0])) if self.from_logits else outputs[:, 0]
            return np.stack([1 - p, p], axis=1)
        if self.from_logits:
            shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        return outputs

    def predicted(self, outputs) -> np.ndarray:
        """The predicted class of each output row (a sigmoid unit: class 1 where p > 0.5, as Keras' accuracy)."""
        return self.probabilities(outputs).argmax(axis=1)

    def colours(self, outputs) -> np.ndarray:
        """``(n, 3)`` RGB per output row: its class colour, paler the less sure; a regression's value on viridis."""
        if self.classes is None:
            from matplotlib import colormaps

            low, high = self.value_range
            values = np.asarray(outputs, np.float64).reshape(len(outputs), -1)[:, 0]
            return colormaps["viridis"](np.clip((values - low) / (high - low), 0, 1))[:, :3]
        probabilities = self.probabilities(outputs)
        confidence = (probabilities.max(axis=1) - 1 / self.classes) / (1 - 1 / self.classes)
        strength = (0.15 + 0.55 * np.clip(confidence, 0, 1))[:, None]
        return 1 - strength * (1 - CLASS_COLOURS[probabilities.argmax(axis=1) % len(CLASS_COLOURS)])

    def label_colours(self) -> np.ndarray:
        """``(N, 3)`` RGB of the probe points by their true class (or target value)."""
        if self.classes is None:
            return self.colours(self.labels[:, None])
        return CLASS_COLOURS[self.labels % len(CLASS_COLOURS)]


def _from_logits(model) -> bool:
    loss = getattr(model, "loss", None)
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    return bool(config.get("from_logits", False))


class Projection:
    """A fixed linear map of flattened arrays onto a plane: ``project(a) = (a - mean) @ components.T``;
    ``lift(p) = p @ components + mean`` maps plane points back. For 2-D data it is the identity.

    Example:
        >>> plane = Projection.fit([x])            # the 2-D PCA of x (identity if x is (N, 2))
        >>> plane.lift(plane.project(x)).shape == x.shape
        True
    """

    def __init__(self, mean, components, kind: str):
        self.mean = np.asarray(mean, np.float64)
        self.components = np.asarray(components, np.float64)  # (2, dims), orthonormal rows
        self.kind = kind

    def __repr__(self) -> str:
        return f"Projection({self.kind}, {self.components.shape[1]} -> 2)"

    @classmethod
    def identity(cls) -> "Projection":
        return cls(np.zeros(2), np.eye(2), "identity")

    @classmethod
    def fit(cls, arrays, pca: bool | None = None) -> "Projection":
        """The identity for 2-wide data (unless ``pca``), else the 2-D PCA of all ``arrays`` together
        (streamed: the covariance is summed array by array, so the arrays need not fit in memory at once)."""
        arrays = iter(arrays)
        first = np.asarray(next(arrays), np.float64)
        first = first.reshape(len(first), -1)
        if first.shape[1] == 2 and not pca:
            return cls.identity()
        count, total, outer = 0, 0.0, 0.0
        for array in _chain(first, arrays):
            array = np.asarray(array, np.float64).reshape(len(array), -1)
            count, total, outer = count + len(array), total + array.sum(axis=0), outer + array.T @ array
        mean = total / count
        values, vectors = np.linalg.eigh(outer / count - np.outer(mean, mean))
        components = vectors[:, ::-1][:, :2].T
        # a fixed sign per component: the same data gives the same picture, not a mirrored one
        signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
        return cls(mean, components * signs[:, None], "pca")

    def project(self, array) -> np.ndarray:
        array = np.asarray(array, np.float64)
        return (array.reshape(len(array), -1) - self.mean) @ self.components.T

    def lift(self, points, shape) -> np.ndarray:
        """Plane points ``(n, 2)`` back in the data space, as ``(n, *shape)`` float32."""
        return (np.asarray(points, np.float64) @ self.components + self.mean).reshape((-1,) + tuple(shape)).astype(
            np.float32)


def _chain(first, rest):
    yield first
    yield from rest
