"""Training-time recording: Keras callbacks used in ``fit``, and what they write.

What belongs here: callbacks that watch a model learn (``WeightSnapshot``: every weight tensor at
chosen batches; ``WeightHistory``: per-tensor statistics and single values; ``GateMonitor``: per-gate
statistics of recurrent layers; ``ReplayRecorder``: every variable and the logs, for
:mod:`visopt.replay`), and the weight videos rendered from what they wrote
(:mod:`~visopt.training.videos`; the folder format itself is :mod:`visopt.store`, below). Numbers are recorded on the training thread, written by a
background worker, and drawn after training, when each weight's colour scale is known.

Example:
    >>> from visopt.training import WeightSnapshot, render_snapshots
    >>> model.fit(x, y, callbacks=[WeightSnapshot("runs/w", batch_interval=10)])
    >>> render_snapshots("runs/w", format="gif", cmap="RdBu")
"""

from visopt._locks import FolderBusyError
from visopt.store import NpyStack, SnapshotFolder, SnapshotStore, SnapshotWriter
from visopt.training.gate_monitor import GateMonitor
from visopt.training.replay_recorder import ReplayRecorder
from visopt.training.videos import render_snapshots
from visopt.training.weight_history import WeightHistory
from visopt.training.weight_snapshot import WeightSnapshot

__all__ = ["FolderBusyError", "GateMonitor", "NpyStack", "ReplayRecorder", "SnapshotFolder", "SnapshotStore", "SnapshotWriter", "WeightHistory", "WeightSnapshot",
           "render_snapshots"]
