"""Record a ``fit`` for replay: every model variable and the logs at chosen points, the model once, a probe sample.

What a replay folder holds (the snapshot store of :mod:`visopt.store`, plus two files)::

    manifest.json, journal.jsonl, snapshots/*.npy   every variable of the model at every point, and the logs
    model.keras                                     the model (architecture, compiled loss and metrics)
    probe.npz                                       the probe inputs and targets (x, y; x_val, y_val)

It is read back by :class:`visopt.replay.Replay`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import keras
import numpy as np

from visopt._atomic import atomic_write_bytes, publish, temporary_file
from visopt._checks import positive_int
from visopt.model.weights import all_entries, read
from visopt.store import SnapshotFolder, SnapshotStore, weight_record
from visopt.store.writer import DTYPES, REPLAY_MODEL_NAME as MODEL_NAME, REPLAY_PROBE_NAME as PROBE_NAME


class ReplayRecorder(keras.callbacks.Callback):
    """Record a training run for :class:`visopt.replay.Replay`.

    Point 0 is the model before training; point k is the end of epoch k by default. With
    ``batch_interval=N`` there are points after every N batches of an epoch too (their ``epoch``
    is the number of epochs completed, ``batch`` the batches trained in the current one). At each
    point *every* variable of the model is stored (trainable or not: BatchNorm statistics too),
    with the learning rate and, at epoch ends, the logs Keras passes there (loss, metrics,
    validation metrics; Keras has no logs at a batch's start, where batch points are taken so
    that ``fit`` keeps its asynchronous dispatch).
    Once, the model is saved (``model.keras``) with a bounded probe sample of ``x``/``y``: at most
    ``max_samples`` (a fixed random sample if there are more, and a warning says so), never a silent
    copy of a large set.

    A second ``fit`` with the same folder appends its points (no second point 0; epochs and steps
    go on counting); ``new_run=True`` starts the folder over. An appended fit whose model does not
    hold the last recorded weights (a re-run script with a fresh model), or that is given other
    probe data, gets a warning.

    Args:
        directory: the folder (created).
        x, y: probe inputs and targets: replay computes probabilities, losses and feature spaces on them.
        batch_interval: record every this many batches instead of at epoch ends.
        validation_data: ``(x_val, y_val)``, kept (bounded) beside the probe.
        max_samples: the bound on the probe sample (and on the validation sample).
        dtype: ``"float32"`` or ``"float16"`` storage (half the disk; the replay error it causes is
            measured in docs/replay.md).
        new_run: start over in a folder that holds an earlier recording (else its points go on).

    Example:
        >>> recorder = ReplayRecorder("runs/replay", x, y)
        >>> model.fit(x, y, epochs=150, callbacks=[recorder])
        >>> Replay("runs/replay").probabilities(60)
    """

    def __init__(self, directory, x, y, *, batch_interval: int | None = None, validation_data=None,
                 max_samples: int = 1000, dtype: str = "float32", new_run: bool = False):
        super().__init__()
        if dtype not in DTYPES:
            raise ValueError(f"ReplayRecorder dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.directory = Path(directory)
        self.batch_interval = None if batch_interval is None else positive_int(batch_interval, "batch_interval")
        self.max_samples = positive_int(max_samples, "max_samples")
        self.x, self.y = _bounded(x, y, self.max_samples, "x")
        self.validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("ReplayRecorder validation_data must be a pair (x_val, y_val)")
            self.validation = _bounded(*validation_data, self.max_samples, "validation_data")
        self.dtype = dtype
        self.new_run = bool(new_run)
        self.points = 0
        self._store: SnapshotStore | None = None
        self._entries = None
        self._epochs_before = 0  # epochs and batches recorded by earlier fits into this folder
        self._steps_before = 0
        self._epoch = 0
        self._batches = 0  # batches trained in this fit

    # -- Keras hooks ----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._store is not None:  # an earlier fit was interrupted (no on_train_end)
            self._store.close(complete=False)
        self._entries = all_entries(self.model)
        append = not self.new_run
        self.new_run = False  # a later fit with this recorder appends
        self._store = SnapshotStore(self.directory, [weight_record(e) for e in self._entries],
                                    model=self.model.name, dtype=self.dtype, append=append)
        self._batches = 0
        records = self._store.records
        if records:  # appending: go on counting from the last point
            self._epochs_before, self._steps_before = records[-1]["epoch"], records[-1]["step"]
            if not (self.directory / MODEL_NAME).is_file():
                raise FileNotFoundError(f"{self.directory} holds recorded points but no {MODEL_NAME}: "
                                        "use new_run=True to start over")
            self._check_continuation()
        else:
            self._epochs_before = self._steps_before = 0
            self._save_model_and_probe()
            self._record(0, 0, logs=None)
        self.points = len(records)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        # at batch begin, as WeightSnapshot: a batch-end hook makes Keras wait for every batch's logs
        if self.batch_interval is not None and batch > 0 and batch % self.batch_interval == 0:
            self._record(self._epochs_before + self._epoch, int(batch), logs=None)
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self._record(self._epochs_before + int(epoch) + 1, 0, logs)
        self._store.write_manifest()

    def on_train_end(self, logs=None):
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- internals ------------------------------------------------------------------------
    def _check_continuation(self) -> None:
        """Say so when an appended fit does not continue the recorded one: another model's weights
        (a fresh model in a re-run script), or other probe data (the first fit's probe is kept)."""
        folder = SnapshotFolder(self.directory)
        tolerance = 1e-3 if self.dtype == "float16" else 0.0
        moved = [entry.path for entry, weight in zip(self._entries, folder.weights)
                 if not np.allclose(read(entry.variable), folder.values(weight["path"])[-1], rtol=tolerance, atol=0)]
        if moved:
            warnings.warn(f"ReplayRecorder appends to {self.directory}, but the model's weights differ from its last "
                          f"recorded point ({len(moved)} of {len(self._entries)} variables, e.g. {moved[0]!r}): the "
                          "replay will jump there. Pass new_run=True to start a new recording", UserWarning,
                          stacklevel=3)
        with np.load(self.directory / PROBE_NAME, allow_pickle=False) as probe:
            same = probe["x"].shape == self.x.shape and np.array_equal(probe["x"], self.x) and np.array_equal(
                probe["y"], self.y)
        if not same:
            warnings.warn(f"ReplayRecorder appends to {self.directory}: its probe sample comes from the first fit; "
                          "the x and y given now are not kept", UserWarning, stacklevel=3)

    def _record(self, epoch: int, batch: int, logs) -> None:
        record = {"epoch": epoch, "batch": batch, "step": self._steps_before + self._batches,
                  "logs": _numbers(logs, self.model)}
        self._store.append(record, [read(entry.variable) for entry in self._entries])
        self.points = len(self._store.records)

    def _save_model_and_probe(self) -> None:
        tmp = temporary_file(self.directory / MODEL_NAME, suffix=".keras")
        try:
            self.model.save(tmp, overwrite=True)
            publish(tmp, self.directory / MODEL_NAME)
        finally:
            tmp.unlink(missing_ok=True)
        arrays = {"x": self.x, "y": self.y}
        if self.validation is not None:
            arrays.update(x_val=self.validation[0], y_val=self.validation[1])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.directory / PROBE_NAME, buffer.getvalue())


def _bounded(x, y, max_samples: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as arrays, cut to a fixed random sample of ``max_samples`` (said so)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == object or y.dtype == object:
        raise TypeError(f"ReplayRecorder {what}: inputs and targets must be numeric arrays (one input, one output)")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"ReplayRecorder {what}: x and y need the same number of samples (> 0), got {len(x)} and "
                         f"{len(y)}")
    if len(x) <= max_samples:
        return x.copy(), y.copy()
    keep = np.sort(np.random.default_rng(0).choice(len(x), max_samples, replace=False))
    warnings.warn(f"ReplayRecorder keeps a random sample of {max_samples} of the {len(x)} samples of {what} "
                  "(max_samples= sets the bound)", UserWarning, stacklevel=3)
    return x[keep], y[keep]


def _numbers(logs, model) -> dict[str, float]:
    """The logs' numbers, and the optimizer's learning rate at that moment."""
    values = {}
    for key, value in (logs or {}).items():
        try:
            values[key] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue  # a non-numeric log entry: not a curve
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        try:
            values["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except (TypeError, ValueError, AttributeError):
            pass
    return values
