"""Model files and image folders for the command-line tests: small untrained models saved to disk.

Imported by the test modules (``from cli_files import ...``): fixtures, and helpers.
"""

import cv2
import keras
import numpy as np
import pytest

from conftest import small_conv_model


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A saved two-conv model: 16x16x3 input, conv_a and conv_b (4 filters), softmax 'out' (3 classes)."""
    path = tmp_path_factory.mktemp("models") / "small.keras"
    small_conv_model((16, 16, 3), seed=3).save(path)
    return path


@pytest.fixture(scope="session")
def lambda_model_file(tmp_path_factory):
    """The same with a Lambda layer in front: safe mode refuses it."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path_factory.mktemp("models") / "with_lambda.keras"
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(x)).save(path)
    return path


@pytest.fixture()
def image_folder(tmp_path):
    """Three 16x16 PNGs and one 40x30 PNG (resized for the model)."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"im{i}.png"), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "wide.png"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    return folder


def read_rgb(path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert pixels is not None, f"{path} does not decode"
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
