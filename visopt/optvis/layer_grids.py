"""``visualize_layers``: the filters of every layer of a model, one grid per layer, and an index; resumable.

The folder holds one PNG grid per layer (``LAYER.png``: every filter, or a sample, row by row in
filter order), ``index.html`` (the grids with their filter indices) and ``manifest.json`` (the
same as data: for each finished layer its file, filters, settings key and time). Each grid is
published atomically and the manifest is rewritten after it, so an interrupted run (Ctrl-C, a
killed process) leaves only finished layers behind, and the next call with the same settings
skips them and continues where it stopped. ``batch_size`` and ``strategy`` are not settings:
they change no image, so a run may resume with others.

Example:
    >>> grids = visopt.visualize_layers(model, out="runs/vgg16", filters=64, max_iter=200, batch_size=32)
    >>> grids["block5_conv3"]
    PosixPath('runs/vgg16/block5_conv3.png')
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sys
import time
from pathlib import Path

import keras
import numpy as np

from visopt._atomic import atomic_write_bytes
from visopt._checks import is_int, positive_int
from visopt._locks import FolderLock
from visopt.frames.image_file import save_image
from visopt.model.layers import as_graph, channel_axis, find_layer, input_shape, weight_layers
from visopt.optvis.visualization import visualize_activation
from visopt.render.images import deprocess_image, stitch_images

MANIFEST = "manifest.json"
INDEX = "index.html"
#: Arguments that change no image: a run may resume with other values.
_NOT_SETTINGS = ("batch_size", "strategy", "verbose", "callbacks")


def visualize_layers(model, layers=None, filters=None, out="layers", *, max_iter: int = 200, seed: int = 0,
                     input_range=(0, 255), batch_size: int | None = None, strategy=None, cols: int | None = None,
                     verbose: bool = True, **options) -> dict[str, Path]:
    """Write a grid of each layer's filters (activation maximization) and an index into ``out``.

    Args:
        model: a Keras model with 2-D image input (1 or 3 channels), or the path of a ``.keras`` file.
        layers: names, indices or Layer objects; None: every layer with a kernel (convolutions, dense).
        filters: None for every filter; an int N for a sample of N filters per layer (drawn with
            ``seed``, in filter order); a list of indices for the same filters in every layer.
        out: the folder (created); a folder of an interrupted run is resumed.
        max_iter, seed, input_range: as in ``visualize_activation``.
        batch_size, strategy: images per device at once, and a ``tf.distribute`` strategy
            (see ``Optimizer.minimize``); by default the memory rule picks the batch.
        cols: tiles per row of each grid (about square by default).
        verbose: a line per layer and a progress bar.
        **options: passed to ``visualize_activation`` (``tv_weight``, ``parameterization``, ``jitter``...).

    Returns:
        ``{layer name: grid path}`` in layer order; the index is ``out/index.html``.

    Example:
        >>> visopt.visualize_layers(keras.applications.VGG16(weights=None, include_top=False),
        ...                         layers=["block3_conv3", "block4_conv3", "block5_conv3"], out="runs/vgg")
    """
    model = as_graph(model)
    chosen = _layers(model, layers)
    _check_image_input(model)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(folder, "layer grids")
    try:
        done = _read_manifest(folder)
        settings = _settings_key(model, max_iter, seed, input_range, cols, options)
        grids = {}
        for number, layer in enumerate(chosen, 1):
            indices = _filters(layer, filters, seed)
            entry = _layer_grid(model, layer, indices, folder, done, settings, number, len(chosen), verbose,
                                dict(options, max_iter=max_iter, seed=seed, input_range=input_range,
                                     batch_size=batch_size, strategy=strategy, cols=cols))
            done[layer.name] = entry
            _write_index(folder, done, [l.name for l in chosen])
            grids[layer.name] = folder / entry["file"]
        return grids
    finally:
        lock.release()


def _layer_grid(model, layer, indices, folder: Path, done: dict, settings: str, number: int, count: int,
                verbose: bool, options: dict) -> dict:
    """The manifest entry of ``layer``: the finished one when it matches, else a new grid written now."""
    key = hashlib.sha256(f"{settings}|{indices}".encode()).hexdigest()[:16]
    entry = done.get(layer.name)
    if entry and entry.get("key") == key and (folder / entry["file"]).is_file():
        if verbose:
            print(f"visopt: layer {number}/{count} {layer.name}: done before, kept", file=sys.stderr)
        return entry
    if verbose:
        print(f"visopt: layer {number}/{count} {layer.name}: {len(indices)} filters", file=sys.stderr)
    cols, input_range = options.pop("cols"), options["input_range"]
    start = time.perf_counter()
    images = visualize_activation(model, layer, indices, verbose=verbose, **options)
    grid = stitch_images(deprocess_image(images, input_range=input_range), cols=cols)
    name = entry["file"] if entry else _file_name(layer.name, done)
    save_image(folder / name, grid)
    return {"file": name, "filters": [int(i) for i in indices], "units": _units(layer), "key": key,
            "seconds": round(time.perf_counter() - start, 2)}


def _layers(model, layers) -> list:
    """The chosen layers (Layer objects): every layer with a kernel by default."""
    if layers is None:
        found = [layer for layer in weight_layers(model) if hasattr(layer, "kernel") and _units(layer)]
        if not found:
            raise ValueError(f"model {model.name!r} has no layer with a kernel (convolution or dense): name the "
                             "layers to visualize with layers=[...]")
        return found
    if isinstance(layers, (str, int, keras.layers.Layer)):
        layers = [layers]
    return [find_layer(model, layer) for layer in layers]


def _units(layer) -> int:
    shape = tuple(layer.output.shape)
    return int(shape[channel_axis(layer, len(shape))]) if len(shape) >= 2 else 0


def _filters(layer, filters, seed: int) -> list[int]:
    """The filter indices of ``layer``: all, a seeded sample of ``filters`` of them, or the given list."""
    units = _units(layer)
    if filters is None:
        return list(range(units))
    if is_int(filters):
        count = positive_int(filters, "filters")
        if count >= units:
            return list(range(units))
        return sorted(int(i) for i in np.random.default_rng([seed, units]).choice(units, count, replace=False))
    if isinstance(filters, (list, tuple, np.ndarray)) and len(filters) and all(is_int(i) for i in filters):
        return [int(i) for i in filters]
    raise ValueError(f"filters must be None (every filter), an int (a sample of that many) or a list of filter "
                     f"indices, got {filters!r}")


def _check_image_input(model) -> None:
    shape = input_shape(model)
    if len(shape) != 3 or min(shape[0], shape[-1]) not in (1, 3):
        raise ValueError(f"visualize_layers draws image grids: the model's input must be an image with 1 or 3 "
                         f"channels, got shape {shape}; use visualize_activation for other inputs")


def _settings_key(model, max_iter, seed, input_range, cols, options) -> str:
    kept = {k: v for k, v in sorted(options.items()) if k not in _NOT_SETTINGS}
    return repr((model.name, input_shape(model), max_iter, seed, tuple(input_range), cols, kept))


def _file_name(layer_name: str, done: dict) -> str:
    """A file name from the layer's name (letters, digits, ``._-``), unique in the folder."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", layer_name) or "layer"
    taken = {entry["file"] for entry in done.values()}
    name, n = f"{base}.png", 2
    while name in taken or name in (MANIFEST, INDEX):
        name, n = f"{base}_{n}.png", n + 1
    return name


def _read_manifest(folder: Path) -> dict:
    """The finished layers of an earlier run in ``folder`` (a damaged manifest counts as none)."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        layers = data["layers"]
        return {str(k): v for k, v in layers.items() if isinstance(v, dict) and isinstance(v.get("file"), str)
                and "/" not in v["file"] and isinstance(v.get("key"), str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_index(folder: Path, done: dict, order: list[str]) -> None:
    """``manifest.json`` (every finished layer) and ``index.html`` (the grids of this run's layers), atomically."""
    atomic_write_bytes(folder / MANIFEST, json.dumps({"version": 1, "layers": done}, indent=1).encode())
    sections = []
    for name in order:
        if name in done:
            entry = done[name]
            filters = entry["filters"]
            which = "every filter" if filters == list(range(entry["units"])) else f"filters {filters}"
            sections.append(f"<h2>{html.escape(name)}</h2><p>{len(filters)} of {entry['units']} filters "
                            f"({html.escape(which)}), {entry['seconds']} s</p>"
                            f'<img src="{html.escape(entry["file"])}" alt="{html.escape(name)}">')
    page = ('<!doctype html><html><head><meta charset="utf-8"><title>visopt: layers</title></head><body>'
            f"<h1>Filters by layer</h1>{''.join(sections)}</body></html>")
    atomic_write_bytes(folder / INDEX, page.encode())
