"""Seven synthetic classification tasks of different nature, to judge feature visualizations on.

Each task draws 32x32 RGB images in [0, 255] of four classes from a seed; nothing is downloaded.
What decides the class differs from task to task, so that a visualization method tuned on some of
them can be judged on the others:

- ``gratings``: stripe orientation (horizontal, vertical, diagonal) or rings (the demo's data);
- ``shapes``: the shape of one filled object (triangle, disc, square, star) at a random place,
  size and colour on coloured clutter;
- ``colours``: the hue of a few blobs (red, green, blue, yellow) on a grey, textured background;
- ``textures``: the texture that fills the image (dots, checkerboard, blotches, zigzag);
- ``glyphs``: a letter (A, H, O, X) drawn with a random font size, thickness, place and colour;
- ``icons``: a pictogram made of parts (house, tree, car, fish) at a random place, size, tilt and
  colour on clutter;
- ``dice``: a die face showing one to four pips, a tile turned by a random angle on clutter.

Example:
    >>> x, y = make_task_data("shapes", 256, seed=1)
    >>> x.shape, TASKS["shapes"]
    ((256, 32, 32, 3), ('triangle', 'disc', 'square', 'star'))
    >>> model = train_task_model("shapes", "cnn", seed=0)
"""

from __future__ import annotations

import math

import cv2
import keras
import numpy as np

from visopt._checks import positive_int
from visopt.demo.data import CLASS_NAMES, make_dataset

#: Task name -> class names, index = label.
TASKS = {
    "gratings": CLASS_NAMES,
    "shapes": ("triangle", "disc", "square", "star"),
    "colours": ("red", "green", "blue", "yellow"),
    "textures": ("dots", "checkerboard", "blotches", "zigzag"),
    "glyphs": ("A", "H", "O", "X"),
    "icons": ("house", "tree", "car", "fish"),
    "dice": ("one", "two", "three", "four"),
}
#: Architectures ``train_task_model`` builds: the demo CNN, the wide judge, a small ResNet with BatchNorm.
TASK_ARCHITECTURES = ("cnn", "wide", "resnet")
SIZE = 32
#: Training epochs per task (4096 images each).
TASK_EPOCHS = {"gratings": 4, "shapes": 16, "colours": 4, "textures": 10, "glyphs": 6, "icons": 10, "dice": 12}


def make_task_data(task: str, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images ``(count, 32, 32, 3)`` float32 in [0, 255] of ``task`` and their labels, balanced."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {list(TASKS)}")
    count = positive_int(count, "count")
    if task == "gratings":
        return make_dataset(count, size=SIZE, seed=seed)
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 4
    rng.shuffle(labels)
    draw = _DRAW[task]
    images = np.stack([draw(rng, int(label)) for label in labels]).astype(np.float32)
    return np.clip(images, 0, 255), labels.astype(np.int64)


# -- drawing ----------------------------------------------------------------------------------------
def _clutter(rng, low: float = 20, high: float = 200) -> np.ndarray:
    """A smooth coloured background with a few random lines: what every object sits on."""
    coarse = rng.uniform(low, high, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(1, 4)):
        p, q = rng.integers(0, SIZE, 2), rng.integers(0, SIZE, 2)
        cv2.line(image, tuple(int(v) for v in p), tuple(int(v) for v in q), rng.uniform(low, high, 3).tolist(), 1)
    return image + rng.normal(0, 6, image.shape)


def _bright(rng) -> list[float]:
    colour = rng.uniform(0, 1, 3)
    return (colour / colour.max() * rng.uniform(200, 255)).tolist()


def _draw_shape(rng, label: int) -> np.ndarray:
    image = _clutter(rng, 10, 150)
    radius = rng.uniform(7, 12)
    cy, cx = rng.uniform(radius + 1, SIZE - radius - 1, 2)
    # upright shapes, a little tilted: triangle point up, square sides level, star point up
    angle = {0: -math.pi / 2, 2: math.pi / 4, 3: -math.pi / 2}.get(label, 0.0) + rng.uniform(-0.2, 0.2)
    if label == 1:
        cv2.circle(image, (int(round(cx)), int(round(cy))), int(round(radius)), _bright(rng), -1, cv2.LINE_AA)
        return image
    corners = {0: 3, 2: 4, 3: 10}[label]
    points = []
    for k in range(corners):
        r = radius * (0.45 if label == 3 and k % 2 else 1.0)
        a = angle + 2 * math.pi * k / corners
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    cv2.fillPoly(image, [np.round(np.array(points) * 16).astype(np.int32)], _bright(rng), cv2.LINE_AA, shift=4)
    return image


_HUES = {0: (255, 40, 40), 1: (40, 220, 40), 2: (50, 70, 255), 3: (240, 220, 30)}


def _draw_colour(rng, label: int) -> np.ndarray:
    grey = rng.uniform(70, 170)
    image = np.full((SIZE, SIZE, 3), grey, np.float32) + rng.normal(0, 15, (SIZE, SIZE, 1))
    for _ in range(rng.integers(2, 5)):
        colour = np.array(_HUES[label], np.float32) * rng.uniform(0.6, 1.0) + rng.normal(0, 12, 3)
        centre = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        if rng.random() < 0.5:
            cv2.circle(image, centre, int(rng.integers(3, 8)), colour.tolist(), -1)
        else:
            size = rng.integers(4, 12, 2)
            cv2.rectangle(image, centre, (int(centre[0] + size[0]), int(centre[1] + size[1])), colour.tolist(), -1)
    return image


def _draw_texture(rng, label: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    period = rng.uniform(5, 9)
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle) + rng.uniform(0, period)
    v = -xx * math.sin(angle) + yy * math.cos(angle) + rng.uniform(0, period)
    if label == 0:  # dots on a lattice
        pattern = ((np.mod(u, period) - period / 2) ** 2 + (np.mod(v, period) - period / 2) ** 2) < (period / 4) ** 2
    elif label == 1:  # checkerboard
        pattern = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    elif label == 2:  # blotches: thresholded low-frequency noise
        noise = cv2.resize(rng.normal(0, 1, (5, 5)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        pattern = noise > 0
    else:  # zigzag: a triangle wave along u, as stripes across v
        pattern = np.mod(v + np.abs(np.mod(u, period) - period / 2), period) < period / 2
    low, high = np.array(_bright(rng)) * rng.uniform(0.0, 0.4), np.array(_bright(rng))
    image = np.where(pattern[..., None], high, low).astype(np.float32)
    return image + rng.normal(0, 10, image.shape)


def _draw_glyph(rng, label: int) -> np.ndarray:
    image = _clutter(rng, 0, 120)
    scale = rng.uniform(0.7, 1.0)
    thickness = int(rng.integers(2, 4))
    text = TASKS["glyphs"][label]
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(rng.integers(0, max(1, SIZE - width)))
    y = int(rng.integers(height, SIZE))
    mask = np.zeros((SIZE, SIZE), np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(mask, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    alpha = mask[..., None].astype(np.float32) / 255
    return image * (1 - alpha) + np.array(_bright(rng), np.float32) * alpha


def _tilted(points, centre, angle: float) -> np.ndarray:
    """``points`` (x, y offsets from ``centre``) rotated by ``angle``, as OpenCV's 1/16-pixel polygon."""
    cos, sin = math.cos(angle), math.sin(angle)
    xy = [(centre[0] + x * cos - y * sin, centre[1] + x * sin + y * cos) for x, y in points]
    return np.round(np.array(xy) * 16).astype(np.int32)


def _draw_icon(rng, label: int) -> np.ndarray:
    """A pictogram made of parts: house (walls and roof), tree (crown on a trunk), car (body on wheels), fish."""
    image = _clutter(rng, 10, 150)
    size = rng.uniform(9, 13)  # half the icon's width
    centre = rng.uniform(size + 1, SIZE - size - 1, 2)
    angle = rng.uniform(-0.2, 0.2)
    main, dark = _bright(rng), (np.array(_bright(rng)) * rng.uniform(0.2, 0.45)).tolist()
    s = size
    if label == 0:  # house: a square of walls under a wider triangular roof
        cv2.fillPoly(image, [_tilted([(-0.7 * s, 0), (0.7 * s, 0), (0.7 * s, s), (-0.7 * s, s)], centre, angle)],
                     main, cv2.LINE_AA, shift=4)
        cv2.fillPoly(image, [_tilted([(-s, 0), (s, 0), (0, -s)], centre, angle)], dark, cv2.LINE_AA, shift=4)
    elif label == 1:  # tree: a round crown on a narrow trunk
        cv2.fillPoly(image, [_tilted([(-0.18 * s, 0), (0.18 * s, 0), (0.18 * s, s), (-0.18 * s, s)], centre, angle)],
                     dark, cv2.LINE_AA, shift=4)
        crown = _tilted([(0, -0.35 * s)], centre, angle)[0] / 16
        cv2.circle(image, tuple(int(v) for v in np.round(crown)), int(round(0.65 * s)), main, -1, cv2.LINE_AA)
    elif label == 2:  # car: a low body with a cabin, on two dark wheels
        cv2.fillPoly(image, [_tilted([(-s, -0.1 * s), (s, -0.1 * s), (s, 0.4 * s), (-s, 0.4 * s)], centre, angle)],
                     main, cv2.LINE_AA, shift=4)
        cv2.fillPoly(image, [_tilted([(-0.5 * s, -0.1 * s), (0.45 * s, -0.1 * s), (0.25 * s, -0.55 * s),
                                      (-0.35 * s, -0.55 * s)], centre, angle)], main, cv2.LINE_AA, shift=4)
        for x in (-0.55 * s, 0.55 * s):
            wheel = _tilted([(x, 0.45 * s)], centre, angle)[0] / 16
            cv2.circle(image, tuple(int(v) for v in np.round(wheel)), max(2, int(round(0.28 * s))), dark, -1,
                       cv2.LINE_AA)
    else:  # fish: an oval body and a triangular tail, facing left or right
        side = 1.0 if rng.random() < 0.5 else -1.0
        body = [(side * (0.8 * s * math.cos(t) + 0.2 * s), 0.45 * s * math.sin(t))
                for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)]
        cv2.fillPoly(image, [_tilted(body, centre, angle)], main, cv2.LINE_AA, shift=4)
        tail = [(-side * 0.5 * s, 0), (-side * 1.1 * s, -0.45 * s), (-side * 1.1 * s, 0.45 * s)]
        cv2.fillPoly(image, [_tilted(tail, centre, angle)], main, cv2.LINE_AA, shift=4)
    return image


#: Where a die face puts its pips, in units of the half-side (one to four pips).
_PIPS = {0: [(0, 0)], 1: [(-0.5, -0.5), (0.5, 0.5)], 2: [(-0.5, -0.5), (0, 0), (0.5, 0.5)],
         3: [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)]}


def _draw_die(rng, label: int) -> np.ndarray:
    """A die face showing one to four pips, a bright tile turned by a random angle, dark pips."""
    image = _clutter(rng, 10, 150)
    half = rng.uniform(6.5, 10)
    centre = rng.uniform(half * 1.42 + 0.5, SIZE - half * 1.42 - 0.5, 2)
    angle = rng.uniform(0, math.pi / 2)
    tile = _bright(rng)
    cv2.fillPoly(image, [_tilted([(-half, -half), (half, -half), (half, half), (-half, half)], centre, angle)],
                 tile, cv2.LINE_AA, shift=4)
    pip = (np.array(tile) * rng.uniform(0.0, 0.3)).tolist()
    for offset in _PIPS[label]:
        x, y = _tilted([(offset[0] * half * 1.1, offset[1] * half * 1.1)], centre, angle)[0] / 16
        cv2.circle(image, (int(round(x)), int(round(y))), max(1, int(round(half * 0.25))), pip, -1, cv2.LINE_AA)
    return image


_DRAW = {"shapes": _draw_shape, "colours": _draw_colour, "textures": _draw_texture, "glyphs": _draw_glyph,
         "icons": _draw_icon, "dice": _draw_die}


# -- models -----------------------------------------------------------------------------------------
def _body(architecture: str):
    layers = keras.layers
    if architecture == "cnn":
        return [layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_1"),
                layers.MaxPooling2D(name="pool_1"),
                layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_2"),
                layers.MaxPooling2D(name="pool_2"),
                layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_3"),
                layers.GlobalAveragePooling2D(name="pool_3")]
    return [layers.Conv2D(24, 5, padding="same", activation="relu", name="conv_a"),
            layers.AveragePooling2D(2, name="pool_a"),
            layers.Conv2D(24, 5, padding="same", activation="relu", name="conv_b"),
            layers.AveragePooling2D(4, name="pool_b"),
            layers.Flatten(name="flatten"),
            layers.Dense(32, activation="relu", name="hidden")]


def _residual_body(x):
    layers = keras.layers
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for block, filters in enumerate((16, 32), start=1):
        shortcut = x if block == 1 else layers.Conv2D(filters, 1, strides=2, name=f"block{block}_proj")(x)
        y = layers.Conv2D(filters, 3, strides=1 if block == 1 else 2, padding="same", use_bias=False,
                          name=f"block{block}_conv1")(x)
        y = layers.BatchNormalization(name=f"block{block}_bn1")(y)
        y = layers.ReLU(name=f"block{block}_relu1")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv2")(y)
        y = layers.BatchNormalization(name=f"block{block}_bn2")(y)
        x = layers.ReLU(name=f"block{block}_out")(layers.Add(name=f"block{block}_add")([shortcut, y]))
    return layers.GlobalAveragePooling2D(name="pool")(x)


def build_task_model(architecture: str = "cnn", seed: int = 0) -> keras.Model:
    """A compiled 4-class classifier of 32x32x3 images in [0, 255], its output ``"predictions"`` (softmax).

    Example:
        >>> build_task_model("resnet").get_layer("block2_add").output.shape
        (None, 16, 16, 32)
    """
    if architecture not in TASK_ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; valid: {list(TASK_ARCHITECTURES)}")
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescaling")(inputs)
    if architecture == "resnet":
        x = _residual_body(x)
    else:
        for layer in _body(architecture):
            x = layer(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"task_{architecture}")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def train_task_model(task: str, architecture: str = "cnn", seed: int = 0, samples: int = 4096,
                     epochs: int | None = None, verbose: int = 0) -> keras.Model:
    """Build and train a classifier of ``task`` (seconds on two CPU cores); its data seed follows ``seed``.

    ``epochs`` defaults to the task's :data:`TASK_EPOCHS`: enough for every architecture to pass 95%
    accuracy on fresh images.

    Example:
        >>> judge = train_task_model("glyphs", "wide", seed=2)
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {list(TASKS)}")
    epochs = TASK_EPOCHS[task] if epochs is None else epochs
    model = build_task_model(architecture, seed=seed)
    x, y = make_task_data(task, samples, seed=seed + 1000)
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=verbose, shuffle=True)
    return model
