"""Gate layouts of Keras recurrent layers: which slice of a weight or an activation belongs to which gate.

Keras stores the gates of a recurrent cell side by side along the last axis of its kernel,
recurrent kernel and bias, in a fixed order:

- ``LSTM`` / ``LSTMCell`` / ``ConvLSTM1D-3D``: input, forget, cell, output (4 blocks of ``units``);
- ``GRU`` / ``GRUCell``: update, reset, new (3 blocks; see-rnn's names); with ``reset_after=True`` (the Keras
  default) the bias is ``(2, 3 * units)``: an input bias row and a recurrent bias row;
- ``SimpleRNN`` / ``SimpleRNNCell``: one block.

A ``Bidirectional`` wrapper holds a forward and a backward layer of the same layout; a generic
``keras.layers.RNN`` holds its cell. This module is the one place that knows these layouts.

Example:
    >>> layout = gate_layout(model.get_layer("lstm"))
    >>> layout.cell, layout.gates, layout.units
    ('lstm', ('input', 'forget', 'cell', 'output'), 32)
    >>> split_gates(kernel, layout)["forget"].shape
    (8, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

#: Gate names, in the order Keras stores them along the last axis.
GATE_NAMES = {
    "lstm": ("input", "forget", "cell", "output"),
    "conv_lstm": ("input", "forget", "cell", "output"),
    "gru": ("update", "reset", "new"),
    "simple_rnn": ("hidden",),
}


@dataclass(frozen=True)
class GateLayout:
    """How one recurrent layer lays out its gates.

    Attributes:
        cell: ``"lstm"``, ``"gru"``, ``"simple_rnn"`` or ``"conv_lstm"``.
        gates: gate names in storage order.
        units: units (filters for ConvLSTM) per gate.
        directions: ``("forward",)``, or ``("forward", "backward")`` for a Bidirectional layer.
        reset_after: GRU only: the bias has an input row and a recurrent row.
    """

    cell: str
    gates: tuple[str, ...]
    units: int
    directions: tuple[str, ...] = ("forward",)
    reset_after: bool = False

    @property
    def count(self) -> int:
        return len(self.gates)

    @property
    def convolutional(self) -> bool:
        return self.cell == "conv_lstm"


def _cell_layout(layer) -> GateLayout | None:
    layers = keras.layers
    if isinstance(layer, (layers.ConvLSTM1D, layers.ConvLSTM2D, layers.ConvLSTM3D)):
        return GateLayout("conv_lstm", GATE_NAMES["conv_lstm"], int(layer.filters))
    cell = getattr(layer, "cell", None) or layer
    if isinstance(cell, layers.LSTMCell):
        return GateLayout("lstm", GATE_NAMES["lstm"], int(cell.units))
    if isinstance(cell, layers.GRUCell):
        return GateLayout("gru", GATE_NAMES["gru"], int(cell.units), reset_after=bool(cell.reset_after))
    if isinstance(cell, layers.SimpleRNNCell):
        return GateLayout("simple_rnn", GATE_NAMES["simple_rnn"], int(cell.units))
    return None


def gate_layout(layer) -> GateLayout | None:
    """The gate layout of a recurrent layer, its cell, or a Bidirectional wrapper; None for any other layer."""
    if isinstance(layer, keras.layers.Bidirectional):
        inner = _cell_layout(layer.forward_layer)
        if inner is None:
            return None
        return GateLayout(inner.cell, inner.gates, inner.units, ("forward", "backward"), inner.reset_after)
    return _cell_layout(layer)


def split_gates(array, layout: GateLayout) -> dict[str, np.ndarray]:
    """Split ``array`` along its last axis into one block per gate (kernel, recurrent kernel, bias,
    or the gate pre-activations of a step).

    Example:
        >>> split_gates(np.arange(8.0), gate_layout(keras.layers.LSTM(2)))["cell"]
        array([4., 5.])
    """
    array = np.asarray(array)
    if array.shape[-1] != layout.count * layout.units:
        raise ValueError(f"an array of shape {array.shape} does not hold {layout.count} {layout.cell} gates of "
                         f"{layout.units} units along its last axis")
    blocks = np.split(array, layout.count, axis=-1)
    return dict(zip(layout.gates, blocks))


def recurrent_gates(layer) -> int | None:
    """Gate blocks in the weights of a recurrent layer drawn as gate blocks (LSTM 4, GRU 3, SimpleRNN 1;
    their cells and Bidirectional wrappers too); None for any other layer. ConvLSTM kernels have
    gates too but are convolution kernels first, so they answer None here."""
    layout = gate_layout(layer)
    if layout is None or layout.convolutional:
        return None
    return layout.count
