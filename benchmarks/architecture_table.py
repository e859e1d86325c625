"""Architecture table: which visopt entry points work on which keras.applications base, measured.

Each base (VGG16, ResNet50V2, MobileNetV2, EfficientNetB0, DenseNet121, InceptionV3, Xception,
ConvNeXtTiny, MobileNetV3Small; ``weights=None, include_top=False``, random weights seeded with
``keras.utils.set_random_seed(0)``) is wrapped in the Keras transfer-learning layout::

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)

and every entry point is called on 2 random images (uniform 0..255 float32, seed 0), for classes
``[0, 1]``:

* ``class images`` -- ``visualize_activation(model, "predictions", [0, 1], max_iter=3, seed=0)``;
* ``inner filter`` -- the same on the base's last layer with a 4-D output (walking ``base.layers``
  in reverse), filters ``[0, 1]``;
* ``vanilla``, ``guided``, ``integrated_gradients`` (``steps=8``), ``smoothgrad`` (``samples=4,
  seed=0``) -- ``visualize_saliency(model, "predictions", [0, 1], x, method=m)``;
* ``gradcam``, ``gradcam++``, ``layercam``, ``scorecam`` (``max_channels=16``) --
  ``visualize_cam(model, "predictions", [0, 1], x, method=m)``.

A cell is ``ok`` (finite result; ``ok (constant)`` when some image or map is constant), or the
exception's type and the first 80 characters of its message. Each cell is guarded: one failure
never stops the run. A base that cannot be built gets one row saying so.

Grad-CAM check: the feature map visopt picks (``visopt.model.find_penultimate_layer``) and a hand
Grad-CAM on the base's output (the tensor entering the GlobalAveragePooling2D), written here with
``tf.GradientTape`` on the Dense layer's logits (visopt explains a softmax layer on its logits),
ReLU'd and resized bilinearly to the input size (``tf.image.resize``). Compared with
``visualize_cam(..., normalize=None)``: the Pearson correlation of the two maps (the lower of the
two images) and the largest |difference| relative to the hand map's maximum.

One extra row: MobileNetV2 under ``keras.mixed_precision.set_global_policy("mixed_bfloat16")``
(the Dense head in float32); the policy is restored afterwards.

The results go to stdout (progress per architecture) and, as markdown tables with the machine, the
date and the versions, to ``--out`` (default ``/tmp/arch_table.md``).

Run from the repository root::

    python benchmarks/architecture_table.py                          # full run (10-25 min on 2 busy cores)
    python benchmarks/architecture_table.py --size 96
    python benchmarks/architecture_table.py --only VGG16,MobileNetV2  # some rows (names as below)
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import subprocess
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

try:
    import visopt
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import visopt
import visopt.model  # noqa: E402
from visopt.model.layers import feature_shape  # noqa: E402
from _machine import cpu_name, load_average, visopt_revision  # noqa: E402 - benchmarks/ is sys.path[0]

ARCHITECTURES = {
    "VGG16": keras.applications.VGG16,
    "ResNet50V2": keras.applications.ResNet50V2,
    "MobileNetV2": keras.applications.MobileNetV2,
    "EfficientNetB0": keras.applications.EfficientNetB0,
    "DenseNet121": keras.applications.DenseNet121,
    "InceptionV3": keras.applications.InceptionV3,
    "Xception": keras.applications.Xception,
    "ConvNeXtTiny": keras.applications.ConvNeXtTiny,
    "MobileNetV3Small": keras.applications.MobileNetV3Small,
}
MIXED = "MobileNetV2 (mixed_bfloat16)"
ROWS = tuple(ARCHITECTURES) + (MIXED,)
CLASSES = [0, 1]
SALIENCY = {"vanilla": {}, "guided": {}, "integrated_gradients": {"steps": 8}, "smoothgrad": {"samples": 4, "seed": 0}}
CAMS = {"gradcam": {}, "gradcam++": {}, "layercam": {}, "scorecam": {"max_channels": 16}}
COLUMNS = ("class images", "inner filter") + tuple(SALIENCY) + tuple(CAMS)


# --------------------------------------------------------------------------------------------
# One architecture
# --------------------------------------------------------------------------------------------
def build(name: str, size: int, mixed: bool):
    """The transfer-learning model and its parts (base, rescaling, pooling, head)."""
    keras.utils.set_random_seed(0)
    base = ARCHITECTURES[name](weights=None, include_top=False, input_shape=(size, size, 3))
    inputs = keras.Input((size, size, 3))
    rescaling = keras.layers.Rescaling(1 / 255.0)
    pooling = keras.layers.GlobalAveragePooling2D()
    head = keras.layers.Dense(4, activation="softmax", name="predictions", **({"dtype": "float32"} if mixed else {}))
    x = rescaling(inputs)
    x = base(x, training=False)
    x = pooling(x)
    outputs = head(x)
    return keras.Model(inputs, outputs), base, rescaling, pooling, head


def inner_layer(base) -> str:
    """The base's last layer with a 4-D output (walking base.layers in reverse)."""
    for layer in reversed(base.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return layer.name
    raise ValueError(f"no layer with a 4-D output in {base.name!r}")


def describe(error: BaseException) -> str:
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message[:80]}"


def verdict(result) -> str:
    """'ok', 'ok (constant)' or 'NOT FINITE' for images (N, H, W, C) or maps (N, H, W)."""
    array = np.asarray(result, np.float64)
    if not np.all(np.isfinite(array)):
        return "NOT FINITE"
    flat = array.reshape(len(array), -1)
    constant = int(np.sum(flat.max(axis=1) == flat.min(axis=1)))
    return f"ok (constant: {constant} of {len(flat)})" if constant else "ok"


def hand_gradcam(images, base, rescaling, pooling, head, size: int) -> np.ndarray:
    """Grad-CAM on the base's output, on the Dense layer's logits, ReLU'd, bilinear to the input size."""
    kernel, bias = (tf.cast(v, tf.float32) for v in (head.kernel, head.bias))
    with tf.GradientTape() as tape:
        features = base(rescaling(tf.constant(images)), training=False)
        tape.watch(features)
        logits = tf.matmul(tf.cast(pooling(features), tf.float32), kernel) + bias
        score = tf.gather(logits, CLASSES, axis=1, batch_dims=1)  # image i's logit of class CLASSES[i]
    grads = tf.cast(tape.gradient(score, features), tf.float32)
    features = tf.cast(features, tf.float32)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    return tf.image.resize(cams[..., None], (size, size), method="bilinear")[..., 0].numpy()


def compare(cams: np.ndarray, hand: np.ndarray) -> dict:
    """The lowest per-image Pearson correlation over the images whose hand map is not constant (a
    constant map has none), max |difference| / max(hand) over all images, and the constant maps."""
    correlations, constant_hand, constant_ours = [], 0, 0
    for a, b in zip(cams, hand):
        a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        constant_hand += int(b.std() == 0)
        constant_ours += int(a.std() == 0)
        if b.std() > 0:
            correlations.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 else 0.0)
    peak = float(np.max(hand))
    relative = float(np.max(np.abs(cams - hand))) / peak if peak > 0 else float("nan")
    return {"correlation": min(correlations) if correlations else float("nan"), "relative": relative,
            "compared": len(correlations), "constant_hand": constant_hand, "constant_ours": constant_ours}


def run_architecture(row: str, size: int, images: np.ndarray, log) -> dict:
    """Build one row's model, run every entry point on it, and check its Grad-CAM map."""
    mixed = row == MIXED
    name = "MobileNetV2" if mixed else row
    record = {"cells": {}, "cam": {}, "seconds": 0.0}
    start = time.perf_counter()
    previous = keras.mixed_precision.global_policy().name
    try:
        if mixed:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            model, base, rescaling, pooling, head = build(name, size, mixed)
        except Exception as error:  # noqa: BLE001 - record and move on
            record["build_error"] = describe(error)
            log(f"  build FAILED: {record['build_error']}")
            return record
        log(f"  built in {time.perf_counter() - start:.1f} s: {model.count_params():,} parameters, "
            f"base output {tuple(base.output.shape)}")
        run_cells(model, base, images, record, log)
        record["cam"] = check_cam_map(model, base, rescaling, pooling, head, images, size, log)
        return record
    finally:
        keras.mixed_precision.set_global_policy(previous)
        record["seconds"] = time.perf_counter() - start
        keras.backend.clear_session()
        gc.collect()


def run_cells(model, base, images: np.ndarray, record: dict, log) -> None:
    """Every entry point once; each cell guarded so that one failure never stops the run."""
    try:
        inner = inner_layer(base)
    except Exception as error:  # noqa: BLE001
        inner = None
        record["cells"]["inner filter"] = describe(error)
    record["inner"] = inner
    calls = {"class images": lambda: visopt.visualize_activation(model, "predictions", CLASSES, max_iter=3, seed=0)}
    if inner is not None:
        calls["inner filter"] = lambda: visopt.visualize_activation(model, inner, CLASSES, max_iter=3, seed=0)
    for method, options in SALIENCY.items():
        calls[method] = (lambda m=method, o=options:
                         visopt.visualize_saliency(model, "predictions", CLASSES, images, method=m, **o))
    for method, options in CAMS.items():
        calls[method] = (lambda m=method, o=options:
                         visopt.visualize_cam(model, "predictions", CLASSES, images, method=m, **o))
    for column, call in calls.items():
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                record["cells"][column] = verdict(call())
        except Exception as error:  # noqa: BLE001 - one failure never stops the run
            record["cells"][column] = describe(error)
        log(f"  {column:<22} {time.perf_counter() - t0:6.1f} s  {record['cells'][column]}")


def check_cam_map(model, base, rescaling, pooling, head, images: np.ndarray, size: int, log) -> dict:
    """Which map Grad-CAM picks, and how it compares with the hand Grad-CAM on the base's output."""
    cam = {}
    try:
        feature = visopt.model.find_penultimate_layer(model, "predictions")
        cam["map"] = feature.name
        cam["map_shape"] = tuple(feature_shape(feature))[1:]
    except Exception as error:  # noqa: BLE001
        cam["map"] = describe(error)
    try:
        cam["base_shape"] = tuple(base.output.shape)[1:]
        hand = hand_gradcam(images, base, rescaling, pooling, head, size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # visopt warns about an all-zero map
            ours = visopt.visualize_cam(model, "predictions", CLASSES, images, normalize=None)
        cam.update(compare(ours, hand))
    except Exception as error:  # noqa: BLE001
        cam["error"] = describe(error)
    log(f"  Grad-CAM map {cam.get('map')!r} {cam.get('map_shape')}: " + (cam["error"] if "error" in cam else
        f"vs the hand Grad-CAM on the base output {cam['base_shape']}: Pearson r {cam['correlation']:.4f} "
        f"({cam['compared']} image(s) compared), max |difference| / max(hand) {cam['relative']:.2e}; "
        f"constant maps: hand {cam['constant_hand']}, visopt {cam['constant_ours']}"))
    return cam


def command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def markdown(results: dict, size: int, total: float, load_start: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"### visopt entry points on keras.applications bases ({size}x{size}, random weights)", "",
             "| architecture | " + " | ".join(COLUMNS) + " | seconds |",
             "|---|" + "---|" * len(COLUMNS) + "---|"]
    for row, record in results.items():
        if "build_error" in record:
            lines.append(f"| {row} | " + " | ".join([cell("build failed: " + record["build_error"])] +
                                                  [""] * (len(COLUMNS) - 1)) + f" | {record['seconds']:.0f} |")
            continue
        cells = [record["cells"].get(column, "not run") for column in COLUMNS]
        cells = [c if c.startswith("ok") or c == "not run" else c.split(":", 1)[0] for c in cells]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {record['seconds']:.0f} |")
    lines += ["", "Inner filter layer (the base's last layer with a 4-D output): " +
              ", ".join(f"{row}: `{record.get('inner')}`" for row, record in results.items()
                        if "build_error" not in record), ""]
    failures = [(row, column, text) for row, record in results.items()
                for column, text in record["cells"].items() if not text.startswith("ok")]
    if failures:
        lines += ["Failures (type: first 80 characters of the message):", ""]
        lines += [f"- {row} / {column}: `{text}`" for row, column, text in failures]
        lines.append("")

    lines += ["### Grad-CAM feature map (automatic) vs a hand Grad-CAM on the base's output", "",
              "| architecture | chosen map (shape) | base output | Pearson r (lowest) | max \\|diff\\| / max(hand) "
              "| constant maps (hand / visopt) |",
              "|---|---|---|---|---|---|"]
    for row, record in results.items():
        cam = record.get("cam", {})
        if "build_error" in record:
            lines.append(f"| {row} | build failed | | | | |")
        elif "error" in cam:
            lines.append(f"| {row} | `{cam.get('map')}` | | {cell(cam['error'])} | | |")
        else:
            shape = "x".join(str(d) for d in cam["map_shape"])
            base_shape = "x".join(str(d) for d in cam["base_shape"])
            r = f"{cam['correlation']:.4f}" if cam["compared"] else "n/a"
            lines.append(f"| {row} | `{cam['map']}` ({shape}) | {base_shape} | {r} | {cam['relative']:.2e} "
                         f"| {cam['constant_hand']} / {cam['constant_ours']} |")
    lines += ["", "Hand Grad-CAM: `tf.GradientTape` on the Dense layer's logits (`pooled @ kernel + bias`), "
              "gradients w.r.t. the base's output, `relu(sum_k mean(grad_k) A_k)`, `tf.image.resize` bilinear to "
              f"{size}x{size}; visopt: `visualize_cam(model, \"predictions\", [0, 1], x, normalize=None)`. Pearson r is "
              "the lowest over the 2 images whose hand map is not constant (n/a: none); a constant map is an "
              "all-zero one after the ReLU (random weights), or one from a 1x1 base output.", ""]

    lines += ["### Machine", "",
              f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
              f"- cpu: {cpu_name()} (platform.processor() {platform.processor()!r}, os.cpu_count() {os.cpu_count()})",
              f"- load average at start: {load_start}; at end: `{command_output(['uptime'])}`",
              f"- python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
              f"visopt {visopt.__version__} ({visopt_revision()})",
              f"- total runtime: {total / 60:.1f} min", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96, help="input height and width (default 96; >= 75)")
    parser.add_argument("--only", default="", help=f"comma-separated rows: {','.join(ROWS)}")
    parser.add_argument("--out", default="/tmp/arch_table.md", help="markdown output (default /tmp/arch_table.md)")
    args = parser.parse_args(argv)
    args.only = [r.strip() for r in args.only.split(",") if r.strip()] or list(ROWS)
    unknown = set(args.only) - set(ROWS)
    if unknown:
        parser.error(f"unknown row(s) in --only: {sorted(unknown)}; valid: {','.join(ROWS)}")
    if args.size < 75:
        parser.error("--size must be >= 75 (InceptionV3 and Xception)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message: str = "") -> None:
        print(message, flush=True)

    keras.utils.disable_interactive_logging()
    tf.get_logger().setLevel("ERROR")  # tf.function retracing notices: each cell traces anew
    load_start = load_average()
    log("visopt architecture table")
    log(f"  date {datetime.date.today()}  cpu {cpu_name()}  cores {os.cpu_count()}  python {platform.python_version()}")
    log(f"  tensorflow {tf.__version__}  keras {keras.__version__}  visopt {visopt.__version__} ({visopt_revision()})")
    log(f"  load average at start (1, 5, 15 min): {load_start}")
    images = np.random.default_rng(0).uniform(0, 255, (len(CLASSES), args.size, args.size, 3)).astype(np.float32)

    results = {}
    start = time.perf_counter()
    for row in args.only:
        log(f"{row} ...")
        results[row] = run_architecture(row, args.size, images, log)
        log(f"  {row}: {results[row]['seconds']:.1f} s")
    total = time.perf_counter() - start
    log(f"total {total / 60:.1f} min")

    report = markdown(results, args.size, total, load_start)
    with open(args.out, "w") as f:
        f.write(report)
    log("")
    log(report)
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
