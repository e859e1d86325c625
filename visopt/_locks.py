"""One writer per folder: an exclusive lock file that other processes respect and a killed process drops.

The lock is an OS advisory lock (``flock``) on ``FOLDER/.visopt.lock``, so the kernel releases it
when the process holding it dies, SIGKILL included: there is never a stale lock to delete by
hand. A second process asking for the folder is refused at once with the holder's pid.

Inside one process the newest writer wins: a notebook whose ``fit`` was stopped with Ctrl-C never
called its callbacks' ``on_train_end``, so the old writer still holds the folder; the new one
asks it to stop (its ``on_takeover``), with a warning, and takes the lock. On systems without
``flock`` (Windows) only the in-process rule applies.

Example:
    >>> lock = FolderLock(Path("runs/weights"), "weight snapshots")
    >>> lock.release()
"""

from __future__ import annotations

import os
import threading
import types
import warnings
import weakref
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".visopt.lock"

_HELD: dict[str, weakref.ref] = {}
_REGISTRY = threading.Lock()


class FolderBusyError(RuntimeError):
    """Another process is writing to the folder."""


class FolderLock:
    """Hold ``directory`` for one writer until ``release`` (or until the process ends).

    Args:
        directory: the folder (it must exist).
        what: what is written there, for messages ("weight snapshots").
        on_takeover: called (held weakly when a bound method) when a newer writer in this process
            takes the folder; it should stop writing there.
    """

    def __init__(self, directory: Path, what: str, on_takeover: Callable[[], None] | None = None):
        self.directory = Path(directory)
        self.what = what
        self._on_takeover = _weak(on_takeover)
        self._key = str(self.directory.resolve())
        with _REGISTRY:
            holder = _HELD.get(self._key)
            holder = holder() if holder is not None else None
        if holder is not None:
            holder._taken_over()
        path = self.directory / LOCK_NAME
        if path.is_symlink():  # a planted link would have us truncate its target
            path.unlink()
        self._handle = open(path, "a+", encoding="utf-8")
        try:
            self._lock_or_refuse()
        except BaseException:
            self._handle.close()
            raise
        # an owner collected without releasing (its fit was interrupted, then dropped) lets go quietly
        weakref.finalize(self, self._handle.close)
        with _REGISTRY:
            _HELD[self._key] = weakref.ref(self)

    def _lock_or_refuse(self) -> None:
        if fcntl is not None:
            try:
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._handle.seek(0)
                holder = self._handle.read().strip() or "unknown"
                who = "another thread of this process" if holder == str(os.getpid()) else "another process"
                raise FolderBusyError(f"{self.directory} is being written by {who} (pid {holder}); "
                                      f"two writers would mix their {self.what}: wait for it to finish or "
                                      "choose another folder") from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"{os.getpid()}\n")
        self._handle.flush()

    def _taken_over(self) -> None:
        warnings.warn(f"a newer writer of {self.what} in this process takes over {self.directory}; the earlier "
                      "one (an interrupted fit?) stops writing there", RuntimeWarning, stacklevel=4)
        callback = self._on_takeover()
        if callback is not None:
            callback()
        self.release()

    @property
    def held(self) -> bool:
        return not self._handle.closed

    def release(self) -> None:
        """Let another writer have the folder (idempotent)."""
        with _REGISTRY:
            if _HELD.get(self._key) is not None and _HELD[self._key]() is self:
                del _HELD[self._key]
        if not self._handle.closed:
            self._handle.close()  # closing drops the flock


def _weak(callback):
    if callback is None:
        return lambda: None
    if isinstance(callback, types.MethodType):
        return weakref.WeakMethod(callback)
    return lambda: callback
