"""Reading a snapshot folder back: its manifest, weights, snapshot records and value stacks.

The folder format is described in :mod:`visopt.store.writer`. Snapshot folders are
shared and downloaded, so the manifest is read as untrusted input: every field is checked before
anything is opened (weight names are plain file names, files resolve inside the folder, shapes and
counts match the stacks), and anything else is a one-line ``ValueError`` naming the field. A run
that was killed or ran out of disk keeps every snapshot its journal lists.

Example:
    >>> folder = SnapshotFolder("runs/weights")
    >>> len(folder), [w["name"] for w in folder.weights][:2]
    (16, ['layer_conv_1-weights_01', 'layer_conv_1-weights_02'])
    >>> folder.values("conv_1/kernel").shape
    (16, 3, 3, 3, 16)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from visopt.render.weight_layouts import LAYOUTS
from visopt.store.writer import (DEFAULTS, DTYPES, FORMAT_NAME, FORMAT_VERSION, JOURNAL_NAME, MANIFEST_NAME,
                                 RENDER_FORMATS, SNAPSHOT_FOLDER)

# Names become file names (of stacks and of animations): the characters the writer uses
# (visopt.model.weights sanitizes layer names to them), one path component, no hidden files.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.+\-]{1,128}")
_RECORD_KEYS = ("epoch", "batch", "step")


class SnapshotFolder:
    """A snapshot folder opened for reading: its manifest, weights, snapshot records and value stacks.

    ``len(folder)`` is the number of snapshots whose arrays are in every stack: those the manifest
    lists, or, after a crash, those the journal lists. A weight recorded less often (its manifest
    ``every`` > 1: per-weight intervals, a thinning in progress) has a row for every ``every``-th
    snapshot: :meth:`values` returns those rows and :meth:`indices` their snapshot indices. A
    weight recorded with ``max_rows`` holds only the rows its ``rows`` names (of ``full_shape``).

    Attributes:
        nonfinite: ``{weight path: index of the first snapshot holding NaN/Inf}``, as recorded.
        recovered: whether the records came from the journal (the manifest was behind: a run that
            was killed or whose disk filled up).

    Example:
        >>> folder = SnapshotFolder("runs/weights")
        >>> kernel = folder.values("conv_1/kernel")      # memory-mapped (snapshots, 3, 3, 3, 16)
        >>> folder.records[-1]
        {'epoch': 1, 'batch': 10, 'step': 30}
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        manifest = _read_manifest(self.directory)
        where = self.directory / MANIFEST_NAME
        self.manifest = manifest
        self.weights: list[dict] = _checked_weights(manifest.get("weights"), self.directory, where)
        self.settings = _checked_settings(manifest.get("render"), where)
        self.dtype = manifest.get("dtype", "float32")
        if self.dtype not in DTYPES:
            raise ValueError(f"{where}: dtype must be one of {list(DTYPES)}, got {_short(self.dtype)}")
        records = _checked_records(manifest.get("snapshots"), f"{where}: snapshots")
        journal = _read_journal(self.directory / JOURNAL_NAME)
        self.recovered = len(journal) > len(records)
        records = journal if self.recovered else records
        self.nonfinite = _checked_nonfinite(manifest.get("nonfinite"), self.weights, where)
        self._values: dict[str, np.ndarray] = {}
        count = len(records)
        for weight in self.weights:  # a weight with k rows, one every e snapshots, covers snapshots < k * e
            count = min(count, len(self._load(weight)) * weight["every"])
        self.records: list[dict] = records[:count]

    def __len__(self) -> int:
        return len(self.records)

    def weight(self, key: str) -> dict:
        """The manifest entry of a weight, by ``path`` or file ``name``."""
        for weight in self.weights:
            if key in (weight["path"], weight["name"]):
                return weight
        raise KeyError(f"no weight {key!r} in {self.directory}; recorded: "
                       f"{[weight['path'] for weight in self.weights]}")

    def values(self, key: str) -> np.ndarray:
        """The snapshots of one weight (by path or name): a read-only memory-mapped ``(rows, *shape)``
        array, ``rows == len(self)`` unless the weight was recorded less often (:meth:`indices`)."""
        weight = self.weight(key)
        return self._load(weight)[:len(self.indices(key))]

    def indices(self, key: str) -> np.ndarray:
        """The snapshot index (into :attr:`records`) of each row of :meth:`values`: ``0, every, 2 * every, ...``.

        Example:
            >>> folder.indices("embedding/embeddings")      # recorded at every 10th snapshot
            array([ 0, 10, 20])
        """
        return np.arange(0, len(self), self.weight(key)["every"])

    def _load(self, weight: dict) -> np.ndarray:
        if weight["path"] not in self._values:
            path = self.directory / weight["file"]
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise ValueError(f"cannot read the snapshots of {weight['path']} from {path}: {err}") from err
            if array.dtype != np.dtype(self.dtype) or list(array.shape[1:]) != weight["shape"]:
                raise ValueError(f"{path} holds {array.dtype} snapshots of shape {list(array.shape[1:])}; the "
                                 f"manifest says {self.dtype} of shape {weight['shape']}")
            if array.size == 0:  # np.memmap cannot map an empty file region
                array = np.zeros((0,) + tuple(weight["shape"]), self.dtype)
            self._values[weight["path"]] = array
        return self._values[weight["path"]]


# -- checking the manifest ------------------------------------------------------------------
def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder of weight snapshots")
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {directory}: not a WeightSnapshot output folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a visopt weight snapshot manifest")
    version = manifest.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer visopt (format version {version}; this one reads "
                         f"version {FORMAT_VERSION}): upgrade visopt to read it")
    if not (_is_count(version) and 1 <= version <= FORMAT_VERSION):
        raise ValueError(f"{path}: version {version!r} is not a snapshot format version (this visopt reads "
                         f"1 to {FORMAT_VERSION})")
    return manifest


def _checked_weights(weights, directory: Path, where: Path) -> list[dict]:
    if not isinstance(weights, list) or not weights:
        raise ValueError(f"{where}: weights must be a non-empty list, got {_short(weights)}")
    checked, seen = [], set()
    for i, weight in enumerate(weights):
        field = f"{where}: weights[{i}]"
        if not isinstance(weight, dict):
            raise ValueError(f"{field} must be an object, got {_short(weight)}")
        for key in ("path", "layer", "name"):
            if not isinstance(weight.get(key), str) or not weight[key]:
                raise ValueError(f"{field}.{key} must be a non-empty string, got {_short(weight.get(key))}")
        name = weight["name"]
        if not _PLAIN_NAME.fullmatch(name) or name.startswith("."):
            raise ValueError(f"{field}.name {name!r} is not a plain file name (letters, digits, _ . + -; no leading "
                         "dot; at most 128)")
        if name in seen:
            raise ValueError(f"{field}.name {name!r} appears twice")
        seen.add(name)
        shape = weight.get("shape")
        if not isinstance(shape, list) or not all(_is_count(side) for side in shape):
            raise ValueError(f"{field}.shape must be a list of non-negative ints, got {_short(shape)}")
        if weight.get("kind") not in LAYOUTS:
            raise ValueError(f"{field}.kind must be one of {list(LAYOUTS)}, got {_short(weight.get('kind'))}")
        gates = weight.get("gates", 1)
        if not _is_count(gates) or gates < 1:
            raise ValueError(f"{field}.gates must be a positive int, got {_short(gates)}")
        every = weight.get("every", 1)
        if not _is_count(every) or every < 1:
            raise ValueError(f"{field}.every must be a positive int, got {_short(every)}")
        checked.append(dict(weight, gates=gates, every=every, **_checked_rows(weight, shape, field),
                            file=_checked_file(weight.get("file"), directory, field)))
    return checked


def _checked_rows(weight: dict, shape: list, field: str) -> dict:
    """``rows`` and ``full_shape`` of a weight recorded with ``max_rows`` (none otherwise), checked
    against ``shape``."""
    if "rows" not in weight and "full_shape" not in weight:
        return {}
    rows, full = weight.get("rows"), weight.get("full_shape")
    if not isinstance(full, list) or not full or not all(_is_count(side) for side in full) or full[1:] != shape[1:]:
        raise ValueError(f"{field}.full_shape must be a list of non-negative ints ending like shape {shape}, got "
                         f"{_short(full)}")
    if (not isinstance(rows, list) or not shape or len(rows) != shape[0] or not all(_is_count(r) for r in rows)
            or any(b <= a for a, b in zip(rows, rows[1:])) or (rows and rows[-1] >= full[0])):
        raise ValueError(f"{field}.rows must be {shape[0] if shape else 0} increasing row indices below "
                         f"{full[0]}, got {_short(rows)}")
    return {"rows": rows, "full_shape": full}


def _checked_file(file, directory: Path, field: str) -> str:
    """``file`` if it names a ``.npy`` inside the folder's ``snapshots/`` (after resolving links)."""
    if not isinstance(file, str) or "\x00" in file:
        raise ValueError(f"{field}.file must be a string, got {_short(file)}")
    relative = Path(file)
    # the snapshots folder itself must not be a link: it would make "inside" anywhere
    inside = directory.resolve() / SNAPSHOT_FOLDER
    target = directory / relative
    if (relative.is_absolute() or ".." in relative.parts or relative.suffix != ".npy"
            or (directory / SNAPSHOT_FOLDER).is_symlink() or not target.resolve().is_relative_to(inside)):
        raise ValueError(f"{field}.file {file!r} is not a .npy file inside {directory / SNAPSHOT_FOLDER}")
    if target.exists() and not target.is_file():  # a FIFO or a device would block or stream forever
        raise ValueError(f"{field}.file {file!r} is not a regular file")
    return file


def _checked_settings(render, where: Path) -> dict:
    if render is None:
        return dict(DEFAULTS)
    if not isinstance(render, dict):
        raise ValueError(f"{where}: render must be an object, got {_short(render)}")
    settings = dict(DEFAULTS, **{key: value for key, value in render.items() if key in DEFAULTS})
    checks = {"cmap": isinstance(settings["cmap"], str),
              "fps": _is_number(settings["fps"]) and 0 < settings["fps"] <= 1000,
              "video_format": settings["video_format"] in RENDER_FORMATS,
              "max_frame_size": _is_count(settings["max_frame_size"]) and settings["max_frame_size"] >= 8,
              "per_epoch": isinstance(settings["per_epoch"], bool)}
    for key, ok in checks.items():
        if not ok:
            raise ValueError(f"{where}: render.{key} has a bad value {_short(settings[key])}")
    return settings


def _checked_records(records, field: str) -> list[dict]:
    if not isinstance(records, list):
        raise ValueError(f"{field} must be a list, got {_short(records)}")
    checked = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not all(_is_count(record.get(key)) for key in _RECORD_KEYS):
            raise ValueError(f"{field}[{i}] must have non-negative int epoch, batch and step, got {_short(record)}")
        clean = {key: record[key] for key in _RECORD_KEYS}
        logs = record.get("logs")
        if logs is not None:
            if not isinstance(logs, dict) or not all(isinstance(k, str) and (v is None or _is_number(v))
                                                     for k, v in logs.items()):
                raise ValueError(f"{field}[{i}].logs must map names to numbers, got {_short(logs)}")
            clean["logs"] = dict(logs)
        checked.append(clean)
    return checked


def _checked_nonfinite(nonfinite, weights: list[dict], where: Path) -> dict[str, int]:
    if nonfinite is None:
        return {}
    paths = {weight["path"] for weight in weights}
    if not isinstance(nonfinite, dict) or not all(k in paths and _is_count(v) for k, v in nonfinite.items()):
        raise ValueError(f"{where}: nonfinite must map recorded weight paths to snapshot indices, got "
                         f"{_short(nonfinite)}")
    return dict(nonfinite)


def _read_journal(path: Path) -> list[dict]:
    """The journal's records, up to the first line that is not a complete record (a write cut short)."""
    if path.is_symlink() or not path.is_file():
        return []
    records = []
    for line in path.read_bytes().split(b"\n")[:-1]:  # the last piece has no newline: cut short, or empty
        try:
            records += _checked_records([json.loads(line)], "journal")
        except (ValueError, UnicodeDecodeError, RecursionError):
            break
    return records


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
