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
import time
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
        idle_timeout: end the thread after this many seconds without items; the next ``submit``
            starts a new one. For owners whose ``close`` may never come (a ``fit`` stopped by
            Ctrl-C does not call ``on_train_end``): nothing keeps running for them.
    """

    def __init__(self, handle: Callable[[Any], None], *, name: str, queue_size: int, low_priority: bool = False,
                 idle_timeout: float | None = None):
        self.error: BaseException | None = None
        self._handle = weakref.WeakMethod(handle) if isinstance(handle, types.MethodType) else (lambda: handle)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._low_priority = low_priority
        self._idle_timeout = idle_timeout
        self._name = name
        self._closed = False
        # Items are put, and an idle thread decides to end, under this lock: an item is never left
        # in the queue of a thread that has just ended.
        self._lock = threading.Lock()
        self._thread = self._start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._running = True
        thread.start()
        return thread

    def submit(self, item) -> bool:
        """Queue ``item``; False (and nothing queued) once closed, failed or dead."""
        while not self._closed and self.error is None:
            with self._lock:
                if self._closed:  # closed while this call waited for the lock: never restart after close
                    return False
                if not self._running:
                    self._thread = self._start()
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
            with self._lock:  # a submit in progress finishes first; later ones see the flag
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
        idle_since = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=1.0 if self._idle_timeout is None else min(1.0, self._idle_timeout))
            except queue.Empty:
                if self._handle() is None:  # the owner was collected without closing
                    return
                if self._idle_timeout is not None and time.monotonic() - idle_since >= self._idle_timeout:
                    with self._lock:
                        if self._queue.empty():
                            self._running = False
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
            idle_since = time.monotonic()


def _lower_priority() -> None:
    """+10 niceness for the calling thread on Linux; elsewhere (or when a sandbox forbids it) nothing."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
        except OSError:
            pass
