"""Saliency maps and CAMs over many images spread over the replicas of a MirroredStrategy (two logical CPUs,
configured before TensorFlow starts: in a subprocess) equal the maps of one device."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import TWO_CPUS_TWO_CONVS
import tensorflow as tf

import visopt
from visopt._devices import map_replicas

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = TWO_CPUS_TWO_CONVS + """
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="out")(x))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    images = np.random.default_rng(1).uniform(0, 255, (10, 20, 20, 3)).astype(np.float32)
    out = {}
    for method, kwargs in [("vanilla", {}), ("smoothgrad", {"samples": 6}), ("integrated_gradients", {"steps": 8})]:
        maps = [visopt.visualize_saliency(model, "out", None, images, method=method, batch_size=3, strategy=s,
                                          **kwargs) for s in (None, strategy)]
        out[method] = [float(np.abs(maps[0] - maps[1]).max()), float(maps[0].max())]
    for method in ("gradcam", "gradcam++", "scorecam"):
        maps = [visopt.visualize_cam(model, "out", [0, 1] * 5, images, method=method, batch_size=3, strategy=s,
                                     penultimate_layer="c2") for s in (None, strategy)]
        out[method] = [float(np.abs(maps[0] - maps[1]).max()), float(maps[0].max())]
    print(json.dumps(out))
"""


def test_maps_over_two_replicas_equal_one_device():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], capture_output=True, text=True,
                          timeout=240, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for method, (difference, peak) in out.items():
        assert peak == pytest.approx(1.0), (method, out)  # real maps, scaled to [0, 1]
        # the same chunks on each replica: float32 rounding at most (the replica's function is traced
        # inside strategy.run, where the graph optimizer may fuse differently); 0 for most methods
        assert difference <= 1e-6, (method, out)


def test_map_replicas_without_a_strategy_calls_in_order_and_refuses_other_strategies():
    double = tf.function(lambda x: 2 * x)
    out = map_replicas(double, [(np.ones(2, np.float32),), (np.arange(2, dtype=np.float32),)])
    np.testing.assert_array_equal(np.stack(out), [[2, 2], [0, 2]])
    with pytest.raises(TypeError, match=r"strategy must be a tf.distribute.Strategy .* got 2"):
        visopt.visualize_saliency(_tiny(), "out", 0, np.zeros((1, 4, 4, 1), np.float32), strategy=2)


def _tiny():
    import keras

    inputs = keras.Input((4, 4, 1))
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(keras.layers.Flatten()(inputs)))
