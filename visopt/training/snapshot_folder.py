"""Reading a snapshot folder back: its manifest, weights, snapshot records and value stacks.

The folder format is described in :mod:`visopt.training.snapshot_store`.

Example:
    >>> folder = SnapshotFolder("runs/weights")
    >>> len(folder), [w["name"] for w in folder.weights][:2]
    (16, ['layer_conv_1-weights_01', 'layer_conv_1-weights_02'])
    >>> folder.values("conv_1/kernel").shape
    (16, 3, 3, 3, 16)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from visopt.training.snapshot_store import DEFAULTS, FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME


class SnapshotFolder:
    """A snapshot folder opened for reading: its manifest, weights, snapshot records and value stacks.

    ``len(folder)`` is the number of snapshots present in the manifest and in every stack (a run
    that stopped early keeps what it wrote).

    Example:
        >>> folder = SnapshotFolder("runs/weights")
        >>> kernel = folder.values("conv_1/kernel")      # memory-mapped (snapshots, 3, 3, 3, 16)
        >>> folder.records[-1]
        {'epoch': 1, 'batch': 10, 'step': 30}
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        path = self.directory / MANIFEST_NAME
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory} is not a folder of weight snapshots")
        if not path.is_file():
            raise FileNotFoundError(f"no {MANIFEST_NAME} in {self.directory}: not a WeightSnapshot output folder")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a visopt weight snapshot manifest (version {FORMAT_VERSION})")
        self.manifest = manifest
        self.weights: list[dict] = manifest["weights"]
        self.settings = dict(DEFAULTS, **(manifest.get("render") or {}))
        self._values: dict[str, np.ndarray] = {}
        count = len(manifest["snapshots"])
        for weight in self.weights:
            count = min(count, len(self._load(weight)))
        self.records: list[dict] = manifest["snapshots"][:count]

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
        """The snapshots of one weight (by path or name): a read-only memory-mapped ``(len(self), *shape)`` array."""
        weight = self.weight(key)
        return self._load(weight)[:len(self)]

    def _load(self, weight: dict) -> np.ndarray:
        if weight["path"] not in self._values:
            path = self.directory / weight["file"]
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise ValueError(f"cannot read the snapshots of {weight['path']} from {path}: {err}") from err
            if array.size == 0:  # np.memmap cannot map an empty file region
                array = np.zeros((0,) + tuple(weight["shape"]), np.float32)
            self._values[weight["path"]] = array
        return self._values[weight["path"]]
