"""Training-time recording: Keras callbacks used in ``fit``, and what they write.

What belongs here: callbacks that watch a model learn (``WeightSnapshot``: every weight tensor at
chosen batches; ``WeightHistory``: per-tensor statistics and single values; ``GateMonitor``: per-gate
statistics of recurrent layers), the snapshot store
they write and its reader (:mod:`~visopt.training.snapshot_store`,
:mod:`~visopt.training.snapshot_folder`), and the weight videos rendered from it
(:mod:`~visopt.training.videos`). Numbers are recorded on the training thread, written by a
background worker, and drawn after training, when each weight's colour scale is known.

Example:
    >>> from visopt.training import WeightSnapshot, render_snapshots
    >>> model.fit(x, y, callbacks=[WeightSnapshot("runs/w", batch_interval=10)])
    >>> render_snapshots("runs/w", format="gif", cmap="RdBu")
"""

from visopt._locks import FolderBusyError
from visopt.training.gate_monitor import GateMonitor
from visopt.training.snapshot_folder import SnapshotFolder
from visopt.training.snapshot_store import NpyStack, SnapshotStore, SnapshotWriter
from visopt.training.videos import render_snapshots
from visopt.training.weight_history import WeightHistory
from visopt.training.weight_snapshot import WeightSnapshot

__all__ = ["FolderBusyError", "GateMonitor", "NpyStack", "SnapshotFolder", "SnapshotStore", "SnapshotWriter", "WeightHistory", "WeightSnapshot",
           "render_snapshots"]
