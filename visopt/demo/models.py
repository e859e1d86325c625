"""Two small CNN architectures for the demo, trained on the synthetic data in a few seconds."""

from __future__ import annotations

import keras

from visopt.demo.data import CLASS_NAMES, make_dataset

ARCHITECTURES = ("cnn", "wide")


def build_model(architecture: str = "cnn", size: int = 32, channels: int = 3, seed: int = 0) -> keras.Model:
    """A compiled classifier of ``(size, size, channels)`` images in [0, 255] into the demo classes.

    ``"cnn"`` (three 3x3 conv layers, global pooling) is the demo model; ``"wide"`` (5x5 kernels,
    average pooling, a dense hidden layer) is the independent judge used by tests and benchmarks.
    The output layer is named ``"predictions"`` and ends in softmax.

    Example:
        >>> model = build_model("cnn", seed=0)
        >>> [layer.name for layer in model.layers][:3]
        ['image', 'rescaling', 'conv_1']
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; valid: {list(ARCHITECTURES)}")
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    classes = len(CLASS_NAMES)
    if architecture == "cnn":
        body = [
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_1"),
            layers.MaxPooling2D(name="pool_1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_2"),
            layers.MaxPooling2D(name="pool_2"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_3"),
            layers.GlobalAveragePooling2D(name="pool_3"),
        ]
    else:
        body = [
            layers.Conv2D(24, 5, padding="same", activation="relu", name="conv_a"),
            layers.AveragePooling2D(2, name="pool_a"),
            layers.Conv2D(24, 5, padding="same", activation="relu", name="conv_b"),
            layers.AveragePooling2D(4, name="pool_b"),
            layers.Flatten(name="flatten"),
            layers.Dense(32, activation="relu", name="hidden"),
        ]
    # Functional rather than Sequential, so that keras-vis style code can use ``model.input``.
    inputs = keras.Input((size, size, channels), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescaling")(inputs)
    for layer in body:
        x = layer(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"demo_{architecture}")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def train_demo_model(architecture: str = "cnn", seed: int = 0, samples: int = 2048, epochs: int = 4,
                     size: int = 32, channels: int = 3, verbose: int = 0) -> keras.Model:
    """Build and train a demo model on synthetic data (a few seconds on two CPU cores).

    Example:
        >>> model = train_demo_model(seed=0)
        >>> x, y = make_dataset(256, seed=99)
        >>> float(model.evaluate(x, y, verbose=0)[1]) > 0.9
        True
    """
    model = build_model(architecture, size=size, channels=channels, seed=seed)
    x, y = make_dataset(samples, size=size, channels=channels, seed=seed + 1000)
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=verbose, shuffle=True)
    return model
