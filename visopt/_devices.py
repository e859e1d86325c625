"""Devices: how much memory one has free, and a ``tf.distribute`` strategy's replicas running calls side by side.

The Optimizer sizes its default ``batch_size`` from :func:`free_memory`; the Optimizer and the
attribution one-liners spread chunks of a request over the replicas of a strategy with
:func:`check_strategy`, :func:`per_replica` and :func:`map_replicas`. Only strategies whose replicas
are devices of this process are taken (``MirroredStrategy``, ``OneDeviceStrategy``, the default):
each replica runs its own chunk, nothing is reduced across replicas.

Example:
    >>> free_memory("/cpu:0") > 0
    True
    >>> strategy = check_strategy(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    >>> map_replicas(tf.function(lambda x: 2 * x), [(np.ones(2),), (np.zeros(2),), (np.ones(2),)], strategy)
    [array([2., 2.]), array([0., 0.]), array([2., 2.])]
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

#: Share of a GPU's memory that TensorFlow's allocator takes by default (the rest is left to CUDA).
GPU_SHARE = 0.9
#: What a GPU is assumed to hold when its size cannot be read (no NVIDIA management library).
GPU_FALLBACK_BYTES = 8 << 30
_STRATEGIES = ("MirroredStrategy", "OneDeviceStrategy")


def free_memory(device: str | None = None) -> int:
    """Bytes free for new tensors on ``device`` (``"/cpu:0"``, ``"/gpu:1"``; None: the first GPU, else the CPU).

    CPU: ``MemAvailable`` of ``/proc/meminfo``, lowered to what the cgroup still allows
    (``memory.max - memory.current``), else ``os.sysconf`` free pages. GPU: 90% of the card (what
    TensorFlow's allocator takes) minus what TensorFlow holds now
    (``tf.config.experimental.get_memory_info``); the card's size is read from the NVIDIA
    management library, or taken as 8 GiB when it cannot be read.

    Example:
        >>> free_memory("/cpu:0") // 2**20   # MiB
        19320
    """
    name = (device or ("/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0")).lower()
    match = re.search(r"(cpu|gpu):(\d+)", name)
    if match is None or match.group(1) == "cpu":
        return _cpu_free()
    index = int(match.group(2))
    total = _gpu_total(index) or GPU_FALLBACK_BYTES
    try:
        used = tf.config.experimental.get_memory_info(f"GPU:{index}")["current"]
    except (ValueError, RuntimeError):
        used = 0
    return max(0, int(GPU_SHARE * total) - int(used))


def _cpu_free() -> int:
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    if free is None:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, free)


def _gpu_total(index: int) -> int | None:
    """The size of GPU ``index`` (as TensorFlow counts it) from NVML, or None."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [v for v in visible.split(",") if v.strip()]
    if ids and index < len(ids) and ids[index].strip().isdigit():
        index = int(ids[index])
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")

        class Memory(ctypes.Structure):
            _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]

        handle, memory = ctypes.c_void_p(), Memory()
        if nvml.nvmlInit_v2() or nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)):
            return None
        if nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)):
            return None
        return int(memory.total)
    except (OSError, AttributeError):
        return None


def check_strategy(strategy):
    """``strategy`` if its replicas are devices of this process, else a TypeError/ValueError naming it.

    None and TensorFlow's default strategy are None (one device, no strategy).
    """
    if strategy is None or type(strategy).__name__ == "_DefaultDistributionStrategy":
        return None
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy (MirroredStrategy, OneDeviceStrategy) or None, "
                        f"got {strategy!r}")
    if type(strategy).__name__ not in _STRATEGIES:
        raise ValueError(f"strategy {type(strategy).__name__} is not supported: visopt spreads chunks over the "
                         "replicas of one process; valid: MirroredStrategy, OneDeviceStrategy or None")
    return strategy


def replica_devices(strategy) -> list[str | None]:
    """One device per replica: the strategy's worker devices, ``[None]`` (TensorFlow's choice) without one."""
    if strategy is None:
        return [None]
    return list(strategy.extended.worker_devices)


def replica_id() -> int:
    """The index of the replica whose function is being traced (0 outside ``strategy.run``)."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0
    value = tf.get_static_value(context.replica_id_in_sync_group)
    if value is None:
        raise ValueError("the replica id is not known when tracing: use MirroredStrategy or OneDeviceStrategy")
    return int(value)


def per_replica(strategy, values: list):
    """A distributed value holding ``values[k]`` (a nest of arrays) on replica ``k``'s device."""
    devices = replica_devices(strategy)

    def value_fn(context):
        k = context.replica_id_in_sync_group
        with tf.device(devices[k]):
            return tf.nest.map_structure(tf.convert_to_tensor, values[k])

    return strategy.experimental_distribute_values_from_function(value_fn)


def local_results(strategy, value) -> list:
    """What each replica returned, in replica order (a list with one nest per replica)."""
    return list(strategy.experimental_local_results(value))


def map_replicas(fn, calls: list[tuple], strategy=None, runners: dict | None = None) -> list:
    """``fn(*args)`` for each ``args`` of ``calls``, in order, as NumPy nests. With a strategy, the calls run
    ``replicas`` at a time, call ``k`` of each group on replica ``k`` (the last group padded with its last call).

    ``fn`` takes and returns tensors (a ``tf.function`` of the engine); each call's arrays go to its
    replica's device, so the results equal those of one device running the calls one after another.

    Example:
        >>> grads = map_replicas(engine.gradient, [(images[s], selection[s]) for s in parts], strategy)
    """
    to_numpy = lambda nest: tf.nest.map_structure(lambda t: t.numpy(), nest)  # noqa: E731
    if strategy is None:
        return [to_numpy(fn(*args)) for args in calls]
    runners = {} if runners is None else runners
    key = (fn, strategy)
    if key not in runners:
        # a plain function around fn: strategy.run would hand a tf.function the distributed values whole
        runners[key] = tf.function(lambda *args: strategy.run(lambda *parts: fn(*parts), args=args))
    runner = runners[key]
    replicas = strategy.num_replicas_in_sync
    results = []
    for start in range(0, len(calls), replicas):
        group = list(calls[start:start + replicas])
        used = len(group)
        group += [group[-1]] * (replicas - used)
        args = tuple(per_replica(strategy, [tuple(np.asarray(a) for a in call)[i] for call in group])
                     for i in range(len(group[0])))
        results.extend(to_numpy(out) for out in local_results(strategy, runner(*args))[:used])
    return results
