"""The background worker: order, bounded queue, the first error kept, a failed worker never blocks."""

import gc
import threading
import time

from visopt._worker import BackgroundWorker


def test_items_are_handled_in_order_and_close_waits_for_them():
    seen = []
    worker = BackgroundWorker(lambda item: (time.sleep(0.002), seen.append(item)), name="t-order", queue_size=2)
    assert all(worker.submit(i) for i in range(20))
    assert worker.close() is None
    assert seen == list(range(20))
    assert not worker.submit(99)  # closed


def test_the_first_error_is_kept_later_items_drain_and_submit_never_blocks():
    handled = []

    def handle(item):
        if item == 3:
            raise OSError("disk full")
        if item == 5:
            raise ValueError("second failure")
        handled.append(item)

    worker = BackgroundWorker(handle, name="t-error", queue_size=1)
    accepted = [worker.submit(i) for i in range(50)]
    error = worker.close()
    assert isinstance(error, OSError) and str(error) == "disk full"  # the first failure, not a later one
    assert handled == [0, 1, 2]
    assert accepted[:4] == [True] * 4 and not accepted[-1]  # once failed, items are refused at once


class _Owner:
    def __init__(self):
        self.worker = BackgroundWorker(self.handle, name="t-owner", queue_size=4)

    def handle(self, item):
        pass


def test_an_owner_nobody_closes_is_collected_and_its_thread_ends():
    owner = _Owner()
    owner.worker.submit(1)
    del owner
    gc.collect()
    deadline = time.monotonic() + 5
    while any(t.name == "t-owner" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "t-owner" for t in threading.enumerate())


def test_a_failed_owner_nobody_closes_is_still_collected():
    class Failing:
        def __init__(self):
            self.worker = BackgroundWorker(self.handle, name="t-failing", queue_size=2)

        def handle(self, item):
            raise OSError("disk full")

    owner = Failing()
    owner.worker.submit(1)
    deadline = time.monotonic() + 5
    while owner.worker.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    ref = __import__("weakref").ref(owner)
    del owner
    gc.collect()
    assert ref() is None  # the kept error does not keep its owner alive
    deadline = time.monotonic() + 5
    while any(t.name == "t-failing" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "t-failing" for t in threading.enumerate())


def test_plain_and_builtin_functions_are_handles():
    seen = []
    worker = BackgroundWorker(seen.append, name="t-builtin", queue_size=1)  # a builtin method
    worker.submit(7)
    assert worker.close() is None and seen == [7]


def test_an_idle_worker_ends_its_thread_and_the_next_item_starts_another():
    seen = []
    worker = BackgroundWorker(seen.append, name="t-idle", queue_size=2, idle_timeout=0.2)
    worker.submit(1)
    deadline = time.monotonic() + 5
    while worker.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.alive and seen == [1]  # nobody closed it, yet nothing keeps running
    assert all(worker.submit(i) for i in range(2, 40))  # items after the idle exit are all handled
    assert worker.close() is None
    assert seen == list(range(1, 40))
