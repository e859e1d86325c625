"""The built-in demo: synthetic oriented-pattern images and small CNNs trained on them in seconds.

What belongs here: data and models to try visopt on without a download (the data is generated, so
the demo, the tests and the benchmarks run on a machine without network access), and the demo
command (``python -m visopt.demo``). Nothing in the library imports it.

Example:
    >>> from visopt.demo import make_dataset, train_demo_model
    >>> model = train_demo_model(seed=0)
    >>> x, y = make_dataset(256, seed=1)
"""

from visopt.demo.data import CLASS_NAMES, make_dataset, marker_task
from visopt.demo.models import build_model, train_demo_model
from visopt.demo.objects import (OBJECT_CLASS_NAMES, ObjectDataset, build_object_model, make_empty_images,
                                 make_object_dataset, train_object_model)

__all__ = ["CLASS_NAMES", "build_model", "make_dataset", "marker_task", "train_demo_model",
           "OBJECT_CLASS_NAMES", "ObjectDataset", "build_object_model", "make_empty_images", "make_object_dataset",
           "train_object_model"]
