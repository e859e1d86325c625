"""Helper for tests/test_weight_snapshot.py, run in its own process: the logical CPU devices must be set
before TensorFlow initialises any device.

    python tests/training/weight_snapshot_mirrored.py PLAIN_DIR MIRRORED_DIR

Trains the same tiny seeded model twice with WeightSnapshot (render_videos=True): once without a
strategy, once under a two-replica MirroredStrategy; prints a JSON line with what it saw.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from visopt import WeightSnapshot  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_weight_snapshot import tiny_cnn as build  # noqa: E402 - the same model as the tests, after the device set-up


def train(model, out):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
    y = rng.normal(size=(64, 2)).astype("float32")
    callback = WeightSnapshot(out, batch_interval=4, render_videos=True, fps=4)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    return {"snapshots": callback.snapshots, "videos": [str(p) for p in callback.video_paths],
            "failed": callback.failed}


def main(plain_dir, mirrored_dir):
    report = {"plain": train(build(), plain_dir)}
    strategy = tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])
    with strategy.scope():
        model = build()
    report["replicas"] = strategy.num_replicas_in_sync
    report["variable_type"] = type(model.trainable_weights[0].value).__name__
    report["mirrored"] = train(model, mirrored_dir)
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:3])
