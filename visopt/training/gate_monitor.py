"""Watch the gates of recurrent layers while a model trains: one table row per layer, direction and gate."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import keras
import numpy as np

from visopt._checks import positive_int
from visopt.frames.writer import FrameWriter
from visopt.inspect.rnn import recurrent_layer, rnn_gates, rnn_weight_gradients, rnn_weights
from visopt.model.gates import gate_layout
from visopt.model.layers import walk
from visopt.render.colormaps import check_colormap, colormap_lut

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
COLUMNS = ("epoch", "batch", "step", "layer", "direction", "gate", "mean", "saturated", "dead", "weight_norm",
           "gradient_norm")
#: Gates squashed to (0, 1) by the recurrent activation; the others (cell, new, hidden) lie in (-1, 1).
_SIGMOID_GATES = {"input", "forget", "output", "update", "reset"}


def gate_statistics(gates: dict[str, np.ndarray], saturation: float = 0.99,
                    unit_axis: int = -1) -> dict[str, dict[str, float]]:
    """Per gate: the mean activation, the share of saturated values (within 1% of the ends of the
    gate's range), and the share of dead units (the same value for every sample, timestep and
    position). ``unit_axis``: where the units (a ConvLSTM's filters) are; masked steps (NaN) are left out.

    Example:
        >>> gate_statistics(rnn_gates(model, "lstm", x)["forward"])["forget"]["saturated"]
        0.12
    """
    stats = {}
    for name, values in gates.items():
        if name == "cell_state":
            continue
        units = np.moveaxis(values, unit_axis, -1)
        units = units.reshape(-1, units.shape[-1])
        units = units[np.isfinite(units).all(axis=1)]
        if name in _SIGMOID_GATES:
            saturated = (units < 1 - saturation) | (units > saturation)
        else:
            saturated = np.abs(units) > saturation
        dead = units.std(axis=0) < 1e-4 if len(units) > 1 else np.zeros(units.shape[-1], bool)
        stats[name] = {"mean": float(units.mean()), "saturated": float(saturated.mean()), "dead": float(dead.mean())}
    return stats


class GateMonitor(keras.callbacks.Callback):
    """Per-gate statistics of recurrent layers every ``batch_interval`` batches, into a table file.

    Rows are taken at the start of batches 0, ``batch_interval``, ... of every epoch: they describe
    the weights before that batch's update (``step`` counts the batches trained before it).

    For each monitored layer, direction and gate (and the hidden state) a row holds: the mean
    activation, the saturated share, the dead-unit share (on the probe inputs ``x``), the L2 norm of
    the gate's weights (kernel, recurrent kernel and bias blocks), and with ``y`` the norm of their
    loss gradient. Rows are appended as they come (CSV with a header, or JSON Lines), so a table
    of a run that stopped is readable up to its last complete row.

    Args:
        path: ``.csv`` or ``.jsonl`` file (created; an existing one is replaced when training starts).
        x: probe inputs: the first ``max_samples`` are kept (a bounded copy, said so).
        y: their targets, for gradient norms (None: no gradient column).
        layers: the recurrent layers (names or Layers); every LSTM, GRU, SimpleRNN, ConvLSTM and
            Bidirectional of the model by default.
        batch_interval: a row set every this many batches (and at batch 0).
        max_samples: how many probe samples are kept.
        animation: a ``.gif`` or ``.mp4`` path (None: no animation): one frame per row set, the
            gates as heatmaps (see :func:`gate_picture`), written through the frame writer (off the
            training thread; published when training ends, never a partial file).
        cmap: the animation's colormap.

    Example:
        >>> monitor = GateMonitor("runs/gates.csv", x_val[:64], y_val[:64], batch_interval=10)
        >>> model.fit(x, y, epochs=3, callbacks=[monitor])
    """

    def __init__(self, path, x, y=None, *, layers=None, batch_interval: int = 10, max_samples: int = 16,
                 animation=None, cmap: str = "viridis"):
        super().__init__()
        self.path = Path(path)
        if self.path.suffix.lower() not in FORMATS:
            raise ValueError(f"GateMonitor writes {sorted(FORMATS)} tables; got {str(path)!r}")
        self.format = FORMATS[self.path.suffix.lower()]
        self.batch_interval = positive_int(batch_interval, "batch_interval")
        max_samples = positive_int(max_samples, "max_samples")
        self.x = np.asarray(x)[:max_samples]
        self.y = None if y is None else np.asarray(y)[:max_samples]
        self.layer_specs = layers
        self.animation, self.cmap = animation, check_colormap(cmap)
        if animation is not None and Path(animation).suffix.lower() not in (".gif", ".mp4"):
            raise ValueError(f"GateMonitor animations are .gif or .mp4 files; got {str(animation)!r}")
        self._writer: FrameWriter | None = None
        self.rows_written = 0
        self._layers: list = []
        self._epoch = 0
        self._calls = 0

    def on_train_begin(self, logs=None):
        self._layers = self._monitored()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8", newline="") as handle:
            if self.format == "csv":
                csv.writer(handle).writerow(COLUMNS)
        self.rows_written = 0
        self._calls = 0
        if self.animation is not None:
            self._writer = FrameWriter(self.animation, fps=4, annotate=True)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        # at batch begin, as WeightSnapshot: a batch-end hook would make Keras wait for every batch's
        # logs (it turns off the asynchronous dispatch of fit), which costs more than the rows
        step = self._calls
        self._calls += 1
        if batch % self.batch_interval == 0:
            self._append(self.rows(int(batch), step))

    def rows(self, batch: int, step: int) -> list[dict]:
        """The rows of the monitored layers now (what ``on_train_batch_begin`` appends)."""
        rows, pictures = [], {}
        for layer in self._layers:
            gates = rnn_gates(self.model, layer, self.x)
            weights = rnn_weights(self.model, layer)
            grads = None if self.y is None else rnn_weight_gradients(self.model, layer, self.x, self.y)
            unit_axis = 2 if getattr(_cell_of(layer), "data_format", None) == "channels_first" else -1
            for direction, values in gates.items():
                pictures[f"{layer.name}/{direction}"] = _time_by_unit(values, unit_axis)
                for gate, stats in gate_statistics(values, unit_axis=unit_axis).items():
                    rows.append({"epoch": self._epoch, "batch": batch, "step": step, "layer": layer.name,
                                 "direction": direction, "gate": gate, **stats,
                                 "weight_norm": _gate_norm(weights[direction], gate),
                                 "gradient_norm": None if grads is None else _gate_norm(grads[direction], gate)})
        if self._writer is not None:
            self._writer.write(gate_picture(pictures, self.cmap), text=f"epoch {self._epoch} batch {batch}  "
                               + " | ".join(pictures))
        return rows

    def _monitored(self) -> list:
        if self.layer_specs is None:
            found = [v.layer for v in walk(self.model) if not v.is_model and gate_layout(v.layer) is not None]
            if not found:
                raise ValueError(f"GateMonitor: model {self.model.name!r} has no LSTM, GRU, SimpleRNN or ConvLSTM layer")
            return found
        specs = self.layer_specs if isinstance(self.layer_specs, (list, tuple)) else [self.layer_specs]
        return [recurrent_layer(self.model, spec)[0] for spec in specs]

    def _append(self, rows: list[dict]) -> None:
        buffer = io.StringIO()
        if self.format == "csv":
            writer = csv.DictWriter(buffer, COLUMNS)
            writer.writerows(rows)
        else:
            buffer.writelines(json.dumps(row) + "\n" for row in rows)
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())  # one write: a stopped run leaves complete rows
        self.rows_written += len(rows)


def _time_by_unit(gates: dict[str, np.ndarray], unit_axis: int) -> dict[str, np.ndarray]:
    """Each gate's mean over the probe samples (and a ConvLSTM's positions): ``(T, units)``."""
    result = {}
    for name, values in gates.items():
        if name == "cell_state":  # unbounded: it would set the colour scale of nothing else
            continue
        values = np.moveaxis(values, unit_axis, -1)
        axes = (0,) + tuple(range(2, values.ndim - 1))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a step every sample masks: NaN, drawn grey
            result[name] = np.nanmean(values, axis=axes)
    return result


def gate_picture(columns: dict[str, dict[str, np.ndarray]], cmap: str = "viridis") -> np.ndarray:
    """One RGB picture of gate activations: a column per layer and direction, in it one block per
    gate (storage order, then ``hidden``), each block units (rows) x timesteps (columns).

    Sigmoid gates are drawn on [0, 1], the others (candidate, new, hidden) on [-1, 1], so that a
    colour means the same in every frame of an animation; NaN (masked steps) is grey.

    Example:
        >>> gate_picture({"lstm/forward": {"forget": np.full((100, 32), 0.5)}}).shape
        (32, 100, 3)
    """
    lut = colormap_lut(cmap)
    blocks = []
    for gates in columns.values():
        parts = []
        for name, values in gates.items():
            low = 0.0 if name in _SIGMOID_GATES else -1.0
            scaled = np.clip((values.T - low) / (1.0 - low), 0, 1)
            rgb = lut[np.nan_to_num(scaled * 255, nan=0).astype(np.uint8)]
            rgb[~np.isfinite(values.T)] = 128
            parts += [rgb, np.full((1,) + rgb.shape[1:], 255, np.uint8)]
        blocks.append(np.concatenate(parts[:-1], axis=0))
    height = max(block.shape[0] for block in blocks)
    padded = [np.pad(b, ((0, height - b.shape[0]), (0, 0), (0, 0)), constant_values=255) for b in blocks]
    separators = [np.full((height, 2, 3), 255, np.uint8)] * len(padded)
    return np.concatenate([part for pair in zip(padded, separators) for part in pair][:-1], axis=1)


def _cell_of(layer):
    inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    return getattr(inner, "cell", None) or inner


def _gate_norm(kinds: dict[str, dict[str, np.ndarray]], gate: str) -> float | None:
    """The L2 norm of one gate's blocks over every kind (None for the hidden state, which has none)."""
    blocks = [np.asarray(gates[gate]).ravel() for gates in kinds.values() if gate in gates]
    return float(np.sqrt(sum((b.astype(np.float64) ** 2).sum() for b in blocks))) if blocks else None
