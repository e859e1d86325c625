"""Session-scoped models trained in seconds on generated data, and small helper builders."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Cap every optimization in the suite; tests ask for at most this many steps.
os.environ.setdefault("VISOPT_MAX_ITER", "150")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from visopt.demo import make_dataset, train_demo_model  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real-architecture tests (keras.applications); run in CI, "
                            "skip locally with -m 'not slow'")


@pytest.fixture(scope="session")
def demo_model():
    """The demo CNN (32x32x3 in [0, 255], softmax 'predictions'), trained on synthetic data."""
    return train_demo_model("cnn", seed=0, samples=1536, epochs=4)


@pytest.fixture(scope="session")
def judge_model():
    """An independently trained classifier (other seed and architecture)."""
    return train_demo_model("wide", seed=7, samples=1536, epochs=4)


@pytest.fixture(scope="session")
def test_images():
    return make_dataset(64, seed=4242)


def small_conv_model(input_shape=(16, 16, 3), filters=4, seed=0, name="small"):
    """An untrained two-conv functional model; enough for gradient-flow tests."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(filters, 3, padding="same", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs, name=name)


def logits_of(model, images, layer_name="predictions"):
    """Pre-softmax outputs of ``layer_name`` computed by hand (kernel and bias of the Dense layer)."""
    layer = model.get_layer(layer_name)
    hidden = keras.Model(model.inputs[0], layer.input)(np.asarray(images, np.float32))
    kernel, bias = layer.get_weights()
    return np.asarray(hidden) @ kernel + bias


@pytest.fixture(scope="session")
def object_model():
    """A CNN trained to name the shape of one small object placed at random (see visopt.demo.objects)."""
    from visopt.demo.objects import train_object_model

    return train_object_model(seed=0)


@pytest.fixture(scope="session")
def object_data():
    """Held-out object images with their boxes and masks."""
    from visopt.demo.objects import make_object_dataset

    return make_object_dataset(48, seed=11)


class FullDisk:
    """A file handle on a full disk: every write fails, and so does close (it flushes)."""

    def __init__(self, handle, after_bytes=0):
        self.handle, self.room = handle, after_bytes

    def write(self, data):
        if len(data) > self.room:
            raise OSError(28, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def close(self):
        self.handle.close()
        raise OSError(28, "No space left on device")


# -- training replay: the tasks of tests/replay and tests/training/test_replay_recorder.py --------------
class WeightCheckpoints(keras.callbacks.Callback):
    """deepreplay's test idea: a plain callback keeps ``get_weights()`` at the points the recorder records."""

    def on_train_begin(self, logs=None):
        self.weights = [self.model.get_weights()]

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def replay_data(kind, n=96):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, 2 if kind in ("binary", "batchnorm") else 4)).astype("float32")
    if kind in ("binary", "batchnorm"):
        return x, (x[:, 1] > x[:, 0] ** 2).astype("float32")[:, None]
    if kind == "softmax":
        return x, np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5]).astype("int32")
    return x, (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32"))[:, None] + 0.1


def replay_model(kind):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((2 if kind in ("binary", "batchnorm") else 4,))
    h = keras.layers.Dense(3, activation="tanh", name="hidden",
                           kernel_regularizer=keras.regularizers.l2(1e-3) if kind == "regression" else None)(inputs)
    if kind == "batchnorm":
        h = keras.layers.BatchNormalization(name="bn")(h)
    head = {"binary": (1, "sigmoid", "binary_crossentropy", "accuracy"),
            "batchnorm": (1, "sigmoid", "binary_crossentropy", "accuracy"),
            "softmax": (3, "softmax", "sparse_categorical_crossentropy", "accuracy"),
            "regression": (1, None, "mse", "mae")}[kind]
    model = keras.Model(inputs, keras.layers.Dense(head[0], activation=head[1], name="out")(h))
    model.compile(optimizer=keras.optimizers.SGD(0.3), loss=head[2], metrics=[head[3]])
    return model, head[2], head[3]


# -- tf.distribute in a subprocess: two logical CPUs must be set before TensorFlow starts --------
#: The start of a test script (dedented by the caller): two logical CPUs, a seeded two-conv model up to ``x``.
TWO_CPUS_TWO_CONVS = """
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np, visopt
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x)
"""
