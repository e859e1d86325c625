"""The user's model file, loaded for a command, and what the commands read from it.

A model file may come from anyone, so it is loaded in Keras' safe mode: a ``Lambda`` layer (Python
code stored in the file) is refused with one line that says so, and ``--unsafe`` loads it. Every
check here runs before any work starts, and each error names the bad value and the valid ones.

Example:
    >>> model = load("runs/classifier.keras")
    >>> image_input(model, "filters")
    ImageInput(height=32, width=32, channels=3, channels_first=False)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from visopt.model.layers import channel_axis, data_format_of, find_layer, load_model_file, output_layer

#: What ``keras.models.load_model`` reads in Keras 3.
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load(path, unsafe: bool = False) -> keras.Model:
    """The model in ``path``, in safe mode unless ``unsafe``; one-line errors for a missing file, a
    file that is not a model, and a Lambda layer refused by safe mode.

    Example:
        >>> load("lambda_model.keras")
        ValueError: model file 'lambda_model.keras' has Lambda layer(s) ['double'] ... pass --unsafe ...
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at '{path}'")
    _check_format(path)
    try:
        return load_model_file(path, safe_mode=not unsafe)
    except ValueError as err:
        if not unsafe and "safe_mode" in str(err):
            raise ValueError(_safe_mode_refusal(path)) from err
        raise


def _check_format(path: Path) -> None:
    """A readable error for what Keras would misreport (a .keras file that is not a zip reads 'File not found')."""
    if path.is_dir():
        raise ValueError(f"'{path}' is a folder; give a model file ({', '.join(MODEL_SUFFIXES)}): Keras 3 cannot "
                         "load SavedModel folders")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ValueError(f"'{path}' is not a Keras model file: expected a name ending in "
                         f"{', '.join(MODEL_SUFFIXES)}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"'{path}' is not a Keras model: a .keras file is a zip archive, this one is not")
    if suffix != ".keras" and head != _HDF5_SIGNATURE:
        raise ValueError(f"'{path}' is not a Keras model: a {suffix} file is HDF5, this one is not")


def _safe_mode_refusal(path: Path) -> str:
    names = lambda_layers(path)
    which = f"Lambda layer(s) {names}" if names else "a Lambda layer"
    return (f"model file '{path}' has {which}: safe mode does not run the Python code stored in a model file "
            "(it could do anything); if you trust the file, pass --unsafe")


def lambda_layers(path: Path) -> list[str]:
    """Names of the Lambda layers in a model file's config (best effort: [] when it cannot be read)."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        else:
            import h5py  # installed with Keras

            with h5py.File(path, "r") as handle:
                raw = handle.attrs.get("model_config")
                config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
        return []
    return sorted(set(_lambda_names(config)))


def _lambda_names(node):
    if isinstance(node, dict):
        if node.get("class_name") == "Lambda":
            yield str((node.get("config") or {}).get("name", "?"))
        for value in node.values():
            yield from _lambda_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _lambda_names(value)


@dataclass(frozen=True)
class ImageInput:
    """The image a model takes: size, channel count and layout."""

    height: int
    width: int
    channels: int
    channels_first: bool

    @property
    def shape(self) -> tuple[int, int, int]:
        """The input shape in the model's layout (no batch axis)."""
        if self.channels_first:
            return self.channels, self.height, self.width
        return self.height, self.width, self.channels

    def describe(self) -> str:
        return f"{self.height}x{self.width} with {self.channels} channel(s)"


def image_input(model: keras.Model, command: str) -> ImageInput:
    """The model's single image input; a ValueError naming the input shapes when it has none.

    Example:
        >>> image_input(model, "saliency").shape
        (32, 32, 3)
    """
    shapes = [tuple(tensor.shape[1:]) for tensor in (getattr(model, "inputs", None) or [])]
    if len(shapes) != 1 or len(shapes[0]) != 3 or any(dim is None for dim in shapes[0]):
        raise ValueError(f"visopt {command} works on models with one image input (height, width, channels); "
                         f"model {model.name!r} takes {shapes or 'no defined input'}")
    first = data_format_of(model) == "channels_first"
    c, h, w = shapes[0] if first else (shapes[0][2], shapes[0][0], shapes[0][1])
    return ImageInput(int(h), int(w), int(c), first)


def unit_count(layer) -> int:
    """How many filters (channels) or units ``layer`` outputs."""
    shape = tuple(layer.output.shape)
    return int(shape[channel_axis(layer, len(shape))])


def class_scores(model: keras.Model, layer, inputs):
    """The model's outputs ``(N, units)`` for ``inputs`` when ``layer`` makes its only output, else None
    (another layer's units are not the model's prediction).

    Example:
        >>> class_scores(model, model.layers[-1], batch).argmax(axis=1)
        array([3, 0, 0])
    """
    if len(model.outputs) != 1 or layer is not output_layer(model):
        return None
    scores = np.asarray(model.predict(inputs, verbose=0))
    return scores.reshape(len(scores), -1)


def class_layer(model: keras.Model, name: str | None):
    """The layer whose units are the classes: ``name``, or the model's output layer."""
    return output_layer(model) if name is None else find_layer(model, name)
