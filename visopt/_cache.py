"""A small per-model cache of compiled objects (Optimizers, attribution engines).

Building them costs model surgery and tracing (docs/benchmarks.md gives the figure); a repeated
request reuses them. Keyed weakly by the model, so deleting a model frees its entries; the cached objects
must not hold a strong reference to the model themselves. Objects with state (an Optimizer's
variables) guard it themselves: the cache hands the same object to every thread.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable, TypeVar

import keras
import numpy as np

T = TypeVar("T")

_CACHE: "weakref.WeakKeyDictionary[keras.Model, OrderedDict]" = weakref.WeakKeyDictionary()
_PER_MODEL = 8
_LOCK = threading.Lock()


def request_key(*parts):
    """A hashable key for what shapes a compiled object, or None when a part is not hashable.

    Objects (a Layer, Transform objects) count by identity: the cached object holds them, so their
    ids cannot be reused by other objects while the entry exists.
    """
    def freeze(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return tuple(freeze(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((k, freeze(v)) for k, v in value.items()))
        if isinstance(value, (str, int, float, bool, type(None), np.integer, np.floating)):
            return value
        return ("object", id(value))

    try:
        key = tuple(freeze(v) for v in parts)
        hash(key)
    except TypeError:
        return None
    return key


def cached(model, key, build: Callable[[], T]) -> T:
    """``build()``'s result for ``(model, key)``, built once and kept while the model lives (8 per model).

    Thread-safe: two threads asking for the same entry get the same object (built outside the lock,
    so that one slow build does not hold up requests for other models; the first one stored wins).
    """
    if key is None or not isinstance(model, keras.Model) or not hasattr(model, "inputs"):
        return build()  # a subclassed model is a layer of what is built: caching would keep it alive
    with _LOCK:
        entries = _CACHE.setdefault(model, OrderedDict())
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
    value = build()
    with _LOCK:
        value = entries.setdefault(key, value)
        entries.move_to_end(key)
        while len(entries) > _PER_MODEL:
            entries.popitem(last=False)
    return value
