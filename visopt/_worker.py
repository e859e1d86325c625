"""One bounded background worker: a thread that handles queued items off the caller's thread.

Used by the frame writer (encoding) and the snapshot writer (appending weights to disk). The rules
are the same for both:

- ``submit`` blocks only while ``queue_size`` items wait, and never on a dead or failed worker;
- the first error raised by ``handle`` is kept in ``error``; later items are drained unhandled, so
  the caller never blocks and can report the failure once, when it suits it;
- ``close`` waits for the queued items and ends the thread.

A bound method given as ``handle`` is held *weakly*: an owner that nobody closes can still be
garbage-collected, and the thread then ends by itself within a second.

Example:
    >>> worker = BackgroundWorker(store.append_item, name="visopt-snapshots", queue_size=4)
    >>> worker.submit(item)
    True
    >>> worker.close()      # None, or the first error
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
import types
import weakref
from typing import Any, Callable

_STOP = object()


class BackgroundWorker:
    """Run ``handle(item)`` for each submitted item on one daemon thread, in order.

    Args:
        handle: the function called with each item (a bound method is held weakly).
        name: the thread's name.
        queue_size: items waiting before ``submit`` blocks.
        low_priority: lower the thread's CPU priority (Linux: +10 niceness, inherited by any
            process it starts), so that background work fills the gaps of a busy machine instead
            of taking time from the caller's computation.
    """

    def __init__(self, handle: Callable[[Any], None], *, name: str, queue_size: int, low_priority: bool = False):
        self.error: BaseException | None = None
        self._handle = weakref.WeakMethod(handle) if isinstance(handle, types.MethodType) else (lambda: handle)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._low_priority = low_priority
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, item) -> bool:
        """Queue ``item``; False (and nothing queued) once closed, failed or dead."""
        if self._closed:
            return False
        while self.error is None:
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                if not self._thread.is_alive():
                    return False
        return False

    def close(self) -> BaseException | None:
        """Wait for the queued items, end the thread; returns the first error (None when all went well)."""
        if not self._closed:
            self._closed = True
            while self._thread.is_alive():
                try:
                    self._queue.put(_STOP, timeout=0.5)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        return self.error

    def _run(self) -> None:
        if self._low_priority:
            _lower_priority()
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                if self._handle() is None:  # the owner was collected without closing
                    return
                continue
            if item is _STOP:
                return
            handle = self._handle()
            if handle is None:
                return
            if self.error is None:  # after a failure, drain
                try:
                    handle(item)
                except BaseException as err:  # noqa: BLE001 - handed to the caller
                    # the traceback's frames hold the owner: cleared, so that it can still be collected
                    traceback.clear_frames(err.__traceback__)
                    self.error = err
            del handle  # hold the owner only while handling


def _lower_priority() -> None:
    """+10 niceness for the calling thread on Linux; elsewhere (or when a sandbox forbids it) nothing."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
        except OSError:
            pass
