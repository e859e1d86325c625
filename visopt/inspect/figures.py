"""Figures of what :mod:`visopt.inspect` computes: sequences of features, and recurrent weights by gate.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot: nothing is shown,
nothing global changes, and a notebook displays it as the cell's value (``fig.savefig(path)``
writes it). The views follow see-rnn's (``features_0D/1D/2D``, ``rnn_histogram``,
``rnn_heatmap``), on Keras 3.

Example:
    >>> fig = features_2d(inspect.layer_outputs(model, "lstm", x)["lstm"][:4], norm="auto")
    >>> fig = rnn_heatmap(model, "lstm")             # kernels with gate separators
    >>> fig.savefig("lstm.png")
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from visopt.inspect.rnn import recurrent_layer, rnn_weight_gradients, rnn_weights
from visopt.render.figures import NotebookFigure

MODES = ("weights", "grads")
_NONFINITE_COLOUR = "red"


def _grid(panels: int, n_rows: int | None, width: float = 3.2, height: float = 2.4) -> tuple[Figure, list]:
    rows = n_rows or max(1, int(math.floor(math.sqrt(panels))))
    cols = int(math.ceil(panels / rows))
    fig = NotebookFigure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for extra in axes[panels:]:
        extra.set_visible(False)
    return fig, axes[:panels]


def _samples(data, max_timesteps: int | None) -> np.ndarray:
    """``data`` as ``(samples, timesteps, channels)``: a ``(T, C)`` array is one sample."""
    array = np.asarray(data, np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"expected (timesteps, channels) or (samples, timesteps, channels), got shape {array.shape}")
    return array[:, :max_timesteps] if max_timesteps else array


def features_0d(data, *, marker: str = "o", cmap: str = "bwr", title: str | None = None) -> Figure:
    """One value per sample and channel ``(samples, channels)``: each channel's values over the
    samples, aligned, coloured by sign (a layer's last-step output, or a dense layer).

    Example:
        >>> features_0d(inspect.layer_outputs(model, "lstm", x)["lstm"])   # return_sequences=False
    """
    array = np.asarray(data, np.float32)
    if array.ndim != 2:
        raise ValueError(f"features_0d takes (samples, channels), got shape {array.shape}")
    fig = NotebookFigure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    limit = float(np.nanmax(np.abs(array))) or 1.0
    for channel in range(array.shape[1]):
        ax.scatter(np.full(len(array), channel), array[:, channel], c=array[:, channel], cmap=cmap,
                   vmin=-limit, vmax=limit, marker=marker, s=12)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("channel")
    ax.set_ylabel("value")
    ax.set_title(title or f"{array.shape[0]} samples x {array.shape[1]} channels")
    return fig


def features_1d(data, *, n_rows: int | None = None, share_y: bool = True, max_timesteps: int | None = None,
                annotations: bool = True) -> Figure:
    """Sequences ``(samples, timesteps, channels)``: one panel per sample, one curve per channel.

    Example:
        >>> features_1d(inspect.rnn_gates(model, "lstm", x[:4])["forward"]["forget"])
    """
    array = _samples(data, max_timesteps)
    fig, axes = _grid(len(array), n_rows)
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    for i, ax in enumerate(axes):
        ax.plot(array[i])
        if share_y:
            ax.set_ylim(low - 0.05 * (high - low or 1), high + 0.05 * (high - low or 1))
        if annotations:
            ax.set_title(f"sample {i}", fontsize=9)
        ax.set_xlabel("timestep", fontsize=8)
    return fig


def features_2d(data, *, n_rows: int | None = None, norm=None, cmap: str = "bwr", reflect_half: bool = False,
                timesteps_xaxis: bool = False, max_timesteps: int | None = None) -> Figure:
    """Sequences ``(samples, timesteps, channels)`` as heatmaps, one panel per sample.

    Args:
        norm: None (each panel its own scale), ``"auto"`` (one symmetric scale ``+-max|v|`` for
            all panels) or ``(vmin, vmax)``.
        reflect_half: reverse the second half of the channels along time: a Bidirectional layer's
            backward half then reads in the order it was computed.
        timesteps_xaxis: time along x (default: along y, channels along x).
    """
    array = _samples(data, max_timesteps)
    if reflect_half:
        half = array.shape[2] // 2
        array = np.concatenate([array[:, :, :half], array[:, ::-1, half:]], axis=2)
    if norm == "auto":
        limit = float(np.nanmax(np.abs(array))) or 1.0
        vmin, vmax = -limit, limit
    elif norm is None:
        vmin = vmax = None
    else:
        vmin, vmax = norm
    fig, axes = _grid(len(array), n_rows)
    for i, ax in enumerate(axes):
        panel = array[i].T if timesteps_xaxis else array[i]
        image = ax.imshow(panel, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(f"sample {i}", fontsize=9)
        ax.set_xlabel("timestep" if timesteps_xaxis else "channel", fontsize=8)
        ax.set_ylabel("channel" if timesteps_xaxis else "timestep", fontsize=8)
        if norm is None:
            fig.colorbar(image, ax=ax, shrink=0.8)
    if norm is not None:
        fig.colorbar(image, ax=axes, shrink=0.8)
    return fig


def _arrays(model, layer, mode: str, x, y):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if mode == "grads":
        if x is None or y is None:
            raise ValueError("mode='grads' needs the data: x and y (the loss is the model's compiled loss)")
        return rnn_weight_gradients(model, layer, x, y)
    return rnn_weights(model, layer)


def rnn_histogram(model, layer, *, mode: str = "weights", x=None, y=None, bins: int = 100) -> Figure:
    """Histograms of a recurrent layer's weights (or loss gradients) in a grid: one row per direction
    and kind (kernel, recurrent kernel, bias), one column per gate. NaN/Inf are left out of the
    histogram and counted in red on their panel.

    Example:
        >>> rnn_histogram(model, "bidirectional", mode="grads", x=x, y=y)
    """
    found, layout = recurrent_layer(model, layer)
    arrays = _arrays(model, found, mode, x, y)
    rows = [(direction, kind) for direction, kinds in arrays.items() for kind in kinds]
    fig = NotebookFigure(figsize=(2.6 * layout.count, 1.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), layout.count, squeeze=False)
    for r, (direction, kind) in enumerate(rows):
        for c, gate in enumerate(layout.gates):
            ax, values = axes[r][c], np.asarray(arrays[direction][kind][gate]).ravel()
            finite = np.isfinite(values)
            ax.hist(values[finite], bins=bins, color="steelblue")
            ax.set_title(f"{direction} {kind}: {gate}", fontsize=8)
            if not finite.all():
                ax.text(0.5, 0.5, f"{int(np.isnan(values).sum())} NaN, {int(np.isinf(values).sum())} Inf",
                        color=_NONFINITE_COLOUR, ha="center", transform=ax.transAxes)
    fig.suptitle(f"{found.name} {mode}")
    return fig


def rnn_heatmap(model, layer, *, mode: str = "weights", x=None, y=None, cmap: str = "bwr",
                absolute_value: bool = False, show_bias: bool = True) -> Figure:
    """A recurrent layer's kernel and recurrent kernel (and bias) as heatmaps, gates side by side
    with separators; one colour scale for all matrix panels (symmetric ``+-max|w|``, or
    ``[0, max]`` with ``absolute_value``). Weights, or loss gradients with ``mode="grads"``.

    Example:
        >>> rnn_heatmap(model, "gru", mode="grads", x=x, y=y, absolute_value=True)
    """
    found, layout = recurrent_layer(model, layer)
    arrays = _arrays(model, found, mode, x, y)
    panels = []
    for direction, kinds in arrays.items():
        for kind, gates in kinds.items():
            if "bias" in kind and not show_bias:
                continue
            matrix = np.concatenate([np.atleast_2d(gates[g]) for g in layout.gates], axis=-1)
            panels.append((f"{direction} {kind}", np.abs(matrix) if absolute_value else matrix))
    limit = max(float(np.nanmax(np.abs(m))) for _, m in panels) or 1.0
    vmin, vmax = (0.0, limit) if absolute_value else (-limit, limit)
    fig = NotebookFigure(figsize=(7, 2.2 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False).ravel()
    for ax, (title, matrix) in zip(axes, panels):
        flat = matrix.reshape(-1, matrix.shape[-1])
        image = ax.imshow(flat, cmap="viridis" if absolute_value else cmap, vmin=vmin, vmax=vmax,
                          aspect="auto", interpolation="nearest")
        for g in range(1, layout.count):  # gate separators
            ax.axvline(g * layout.units - 0.5, color="black", linewidth=1.5)
        ax.set_xticks([(g + 0.5) * layout.units - 0.5 for g in range(layout.count)], layout.gates, fontsize=8)
        ax.set_title(title, fontsize=9)
        bad = ~np.isfinite(flat)
        if bad.any():
            ax.text(0.01, 0.9, f"{int(bad.sum())} NaN/Inf", color=_NONFINITE_COLOUR, transform=ax.transAxes)
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    fig.suptitle(f"{found.name} {mode}{' (absolute)' if absolute_value else ''}")
    return fig
