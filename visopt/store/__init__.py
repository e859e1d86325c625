"""The snapshot store: model variables over training time on disk, written by callbacks, read back by anything.

What belongs here: the folder format (one growing ``.npy`` stack per tensor, a journal, a
manifest; :mod:`~visopt.store.writer`, with the disk budget that thins a folder crash-safely) and
its reader (:mod:`~visopt.store.folder`), which treats a folder as untrusted input. Both the
weight videos (``training``) and the training replay (``replay``) stand on it, so it sits below
them both.

Example:
    >>> from visopt.store import SnapshotFolder
    >>> folder = SnapshotFolder("runs/weights")
    >>> len(folder), folder.values("dense/kernel").shape
    (16, (16, 8, 4))
"""

from visopt.store.folder import SnapshotFolder
from visopt.store.writer import NpyStack, SnapshotStore, SnapshotWriter, thin_folder, weight_record

__all__ = ["NpyStack", "SnapshotFolder", "SnapshotStore", "SnapshotWriter", "thin_folder", "weight_record"]
