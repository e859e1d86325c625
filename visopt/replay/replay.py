"""A recorded training run, replayed: the model at any point, its outputs, losses and metrics on the probe set.

Example:
    >>> replay = Replay("runs/replay")
    >>> len(replay), replay.points[3]
    (151, {'epoch': 3, 'batch': 0, 'step': 12, 'logs': {'loss': 0.66, ...}})
    >>> replay.probabilities(60)[:2]
    array([[0.12], [0.93]], dtype=float32)
"""

from __future__ import annotations

import threading
from pathlib import Path

import keras
import numpy as np

from visopt.inspect.outputs import layer_outputs
from visopt.model.weights import all_entries
from visopt.store import SnapshotFolder
from visopt.store.writer import REPLAY_MODEL_NAME as MODEL_NAME, REPLAY_PROBE_NAME as PROBE_NAME
_PROBE_KEYS = ("x", "y", "x_val", "y_val")


class Replay:
    """A folder written by :class:`visopt.ReplayRecorder`, opened for replay.

    The folder is untrusted input: the manifest is checked (:class:`visopt.store.SnapshotFolder`),
    the model is loaded with ``safe_mode`` on (no code from the file runs), the probe arrays without
    pickles, and the two files must lie inside the folder.

    Attributes:
        points: one dict per recorded point: ``epoch``, ``batch``, ``step`` and ``logs``.
        x, y: the probe inputs and targets; ``validation``: ``(x_val, y_val)`` or None.

    Example:
        >>> replay = Replay("runs/replay")
        >>> model = replay.model_at(-1)       # the model as training left it
        >>> replay.losses(0).mean() > replay.losses(-1).mean()
        True
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.store = SnapshotFolder(self.directory)
        self.points = [dict(record, logs=dict(record.get("logs") or {})) for record in self.store.records]
        probe = np.load(_inside(self.directory, PROBE_NAME), allow_pickle=False)
        arrays = {key: probe[key] for key in _PROBE_KEYS if key in probe.files}
        if "x" not in arrays or "y" not in arrays or len(arrays["x"]) != len(arrays["y"]):
            raise ValueError(f"{self.directory / PROBE_NAME} must hold probe arrays x and y of equal length")
        self.x, self.y = arrays["x"], arrays["y"]
        self.validation = (arrays["x_val"], arrays["y_val"]) if "x_val" in arrays else None
        self._model = None
        self._variables: list | None = None
        self._current: int | None = None
        self._lock = threading.RLock()  # one model object, its weights set per point: one caller at a time

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self) -> str:
        last = self.points[-1] if self.points else {}
        return (f"Replay({str(self.directory)!r}: {len(self)} points, epochs 0-{last.get('epoch', 0)}, "
                f"{len(self.x)} probe samples)")

    # -- the model at a point ------------------------------------------------------------
    def index(self, k: int) -> int:
        """Point ``k`` as an index into ``points`` (negative counts from the end); a bad one is an error."""
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"a replay point is an int, got {k!r}")
        if not -len(self) <= k < len(self):
            raise IndexError(f"point {k} is out of range: {self.directory} holds points 0-{len(self) - 1}")
        return int(k) % len(self)

    def model_at(self, k: int) -> keras.Model:
        """The saved model holding point ``k``'s variables (every one: BatchNorm statistics too).

        One model object serves every point: the next call changes its weights. Clone it
        (``keras.models.clone_model`` + ``set_weights``) to keep two points at once.
        """
        k = self.index(k)
        with self._lock:
            if self._model is None:
                self._load_model()
            if self._current != k:
                for variable, values in zip(self._variables, self._values()):
                    variable.assign(np.asarray(values[k], dtype=np.float32).astype(variable.dtype))
                self._current = k
            return self._model

    def predict(self, k: int, x=None) -> np.ndarray:
        """The model's outputs at point ``k`` on ``x`` (the probe inputs by default)."""
        with self._lock:
            model = self.model_at(k)
            return model_outputs(model, self.x if x is None else x)

    def probabilities(self, k: int) -> np.ndarray:
        """The model's outputs on the probe inputs at point ``k`` (probabilities for a sigmoid or softmax head)."""
        return self.predict(k)

    def losses(self, k: int, x=None, y=None) -> np.ndarray:
        """Per-sample losses at point ``k`` with the model's compiled loss (the probe set by default).

        Example:
            >>> replay.losses(60).shape
            (1000,)
        """
        x, y = (self.x, self.y) if x is None else (x, y)
        with self._lock:
            model = self.model_at(k)
            return per_sample_loss(model, y, model_outputs(model, x))

    def layer_output(self, k: int, layer, x=None) -> np.ndarray:
        """The output of ``layer`` (a name, index or Layer of the saved model) at point ``k``."""
        with self._lock:
            model = self.model_at(k)
            return next(iter(layer_outputs(model, layer, self.x if x is None else x).values()))

    def loss_and_metric(self, metric: str | None = None, points=None) -> dict[str, np.ndarray]:
        """The loss (and ``metric``) at every point, recomputed on the probe set, the logged values beside.

        Returns ``{"point", "epoch", "step", "loss", "logged_loss"}`` (+ ``metric`` and
        ``"logged_" + metric``), one value per point; logged values are NaN where Keras logged
        none (point 0, batch points). The recomputed loss is what ``fit`` minimizes: the mean
        per-sample loss plus the regularization losses.

        Example:
            >>> curves = replay.loss_and_metric("accuracy")
            >>> curves["accuracy"][-1], curves["logged_accuracy"][-1]
            (0.97, 0.96)
        """
        points = range(len(self)) if points is None else [self.index(k) for k in points]
        rows = []
        for k in points:
            with self._lock:
                model = self.model_at(k)
                outputs = model_outputs(model, self.x)
                loss = float(per_sample_loss(model, self.y, outputs).mean()) + _regularization(model)
                row = {"point": k, "epoch": self.points[k]["epoch"], "step": self.points[k]["step"], "loss": loss,
                       "logged_loss": self.points[k]["logs"].get("loss", np.nan)}
                if metric is not None:
                    row[metric] = metric_value(metric, self.y, outputs, model)
                    row["logged_" + metric] = self.points[k]["logs"].get(metric, np.nan)
            rows.append(row)
        return {key: np.array([row[key] if row[key] is not None else np.nan for row in rows]) for key in rows[0]}

    # -- views (visopt.replay.views): each has data(k), plot(k, ax=None), animate(path) -------
    def feature_space(self, layer, **options):
        """The probe inputs, a grid and the decision regions mapped through a hidden ``layer``
        (:class:`~visopt.replay.views.FeatureSpace`)."""
        from visopt.replay.views import FeatureSpace

        return FeatureSpace(self, layer, **options)

    def decision_boundary(self, **options):
        """The input space with the model's regions (:class:`~visopt.replay.views.DecisionBoundary`)."""
        from visopt.replay.views import DecisionBoundary

        return DecisionBoundary(self, **options)

    def probability_histogram(self, **options):
        """Class probabilities per class, right and wrong marked (:class:`~visopt.replay.views.ProbabilityHistogram`)."""
        from visopt.replay.views import ProbabilityHistogram

        return ProbabilityHistogram(self, **options)

    def loss_histogram(self, **options):
        """Per-sample losses (:class:`~visopt.replay.views.LossHistogram`)."""
        from visopt.replay.views import LossHistogram

        return LossHistogram(self, **options)

    def loss_and_metric_view(self, metric: str | None = None, **options):
        """The loss and ``metric`` curves up to a point (:class:`~visopt.replay.views.LossAndMetric`);
        the numbers themselves are :meth:`loss_and_metric`."""
        from visopt.replay.views import LossAndMetric

        return LossAndMetric(self, metric, **options)

    def layer_violins(self, kind: str = "weights", **options):
        """Violins per layer of its weights, activations or gradients (:class:`~visopt.replay.views.LayerViolins`)."""
        from visopt.replay.views import LayerViolins

        return LayerViolins(self, kind, **options)

    # -- internals -------------------------------------------------------------------------
    def _load_model(self) -> None:
        path = _inside(self.directory, MODEL_NAME)
        model = keras.saving.load_model(path, safe_mode=True)
        entries = all_entries(model)
        # matched by position and shape: a model loaded beside one of the same name gets other paths
        # (Keras uniquifies the names of layers it creates in one process)
        recorded = [list(weight["shape"]) for weight in self.store.weights]
        if [list(entry.shape) for entry in entries] != recorded:
            raise ValueError(f"{path} does not hold the variables recorded in {self.directory} (the model has "
                             f"{len(entries)} of shapes {[list(e.shape) for e in entries][:4]}..., the recording "
                             f"{len(recorded)} of {recorded[:4]}...): the folder was mixed up")
        self._model, self._variables = model, [entry.variable for entry in entries]

    def _values(self):
        return [self.store.values(weight["path"]) for weight in self.store.weights]


def _inside(directory: Path, name: str) -> Path:
    """``directory / name`` if it is a regular file inside ``directory`` (links may not lead out)."""
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"no {name} in {directory}: not a ReplayRecorder folder")
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ValueError(f"{path} leads outside {directory}; a replay folder's files stay inside it")
    return path


def model_outputs(model, x, batch_size: int = 1024) -> np.ndarray:
    """``model``'s inference outputs on ``x`` as a float32 array, in batches.

    ``predict_on_batch`` rather than ``predict``: a replay asks at many points, and ``predict``'s
    per-call set-up (a data adapter, callbacks) cost more than the forward pass of a small model.
    The compiled function is reused across points (the weights are variables, not constants).
    """
    x = np.asarray(x)
    parts = [np.asarray(model.predict_on_batch(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0,), np.float32)


def per_sample_loss(model, y, outputs) -> np.ndarray:
    """The compiled loss of ``model`` for each sample (unreduced), as a float64 ``(N,)`` array.

    Example:
        >>> per_sample_loss(model, y, model.predict(x)).shape
        (1000,)
    """
    loss = getattr(model, "loss", None)
    if loss is None:
        raise ValueError(f"model {model.name!r} was saved without a compiled loss: compile it before fit")
    if isinstance(loss, (list, tuple, dict)):
        raise ValueError(f"model {model.name!r} has one loss per output; replay handles one-output models")
    fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    y_true = keras.ops.convert_to_tensor(np.asarray(y))
    y_pred = keras.ops.convert_to_tensor(np.asarray(outputs, dtype=np.float32))
    # a Loss object's call() is its per-sample form (its __call__ reduces over the batch)
    values = fn.call(y_true, y_pred) if isinstance(fn, keras.losses.Loss) else fn(y_true, y_pred)
    values = np.asarray(keras.ops.convert_to_numpy(values), dtype=np.float64)
    return values.reshape(len(values), -1).mean(axis=1)


def _regularization(model) -> float:
    return float(sum(float(keras.ops.convert_to_numpy(value)) for value in model.losses)) if model.losses else 0.0


def metric_value(metric: str, y, outputs, model=None) -> float:
    """``metric`` (a Keras metric name) of ``outputs`` against ``y`` over the probe set.

    ``"accuracy"`` is read the way ``compile`` reads it: binary for one output unit, categorical
    for one-hot targets, sparse categorical for integer labels.

    Example:
        >>> metric_value("accuracy", y, replay.probabilities(60))
        0.95
    """
    outputs = np.asarray(outputs, dtype=np.float32)
    y = np.asarray(y)
    name = metric
    if metric in ("accuracy", "acc"):
        if outputs.shape[-1] == 1:
            name = "binary_accuracy"
        elif y.shape == outputs.shape:
            name = "categorical_accuracy"
        else:
            name = "sparse_categorical_accuracy"
    try:
        found = keras.metrics.get(name)
    except ValueError as err:
        raise ValueError(f"unknown metric {metric!r}: use a Keras metric name such as 'accuracy', 'mae', "
                         "'binary_accuracy', 'auc'") from err
    if isinstance(found, keras.metrics.Metric):
        found.reset_state()
        found.update_state(y, outputs)
        return float(keras.ops.convert_to_numpy(found.result()))
    return float(np.mean(keras.ops.convert_to_numpy(found(y, outputs))))
