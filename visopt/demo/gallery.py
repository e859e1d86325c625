"""The demo's gallery: what the report page cannot compute from a model file alone (a weight video
recorded in training, an LSTM's gates, a replayed training run), each written into a folder of
its own with an ``about.txt``, then the report page made by the ``visopt report`` command.

The demo runs the command as a user would (a child process), so the page is exactly what
``visopt report`` writes, and the demo needs nothing from :mod:`visopt.cli` but its command line.

Example:
    >>> model, snapshot = train_with_weight_video(Path("work/weights"), seed=0)
    >>> rnn_gate_pictures(Path("work/attach/rnn_gates"), seed=0)
    >>> run_report(Path("work/demo_cnn.keras"), Path("demo_output"), ["--images", "work/images"])
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from visopt import WeightSnapshot, inspect
from visopt._atomic import atomic_write_bytes
from visopt.demo.data import CLASS_NAMES, make_dataset, marker_task
from visopt.demo.models import build_model
from visopt.frames.image_file import save_image

#: Files an earlier version of the demo wrote: a folder holding only these may be replaced.
_OLD_DEMO_FILES = re.compile(r"(filters_conv_\d+|classes|classes_stretched)\.png")
#: What TensorFlow's C++ runtime prints when a process imports it (the demo printed them once already).
_TF_STARTUP = re.compile(r"([IWEF]\d{4} |WARNING: All log messages before absl|To enable the following instructions)")


def save_figure(figure, path: Path, dpi: int = 72) -> Path:
    """A matplotlib Figure as a PNG, published atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def write_about(folder: Path, text: str) -> None:
    """The text ``visopt report --attach`` shows under a folder's pictures."""
    atomic_write_bytes(folder / "about.txt", " ".join(text.split()).encode("utf-8"))


def train_with_weight_video(folder: Path, seed: int):
    """Train the demo CNN (as ``train_demo_model``) with a ``WeightSnapshot`` that renders GIFs of
    the first conv kernel and the output layer's kernel; returns the model and the callback."""
    model = build_model("cnn", seed=seed)
    x, y = make_dataset(2048, seed=seed + 1000)
    snapshot = WeightSnapshot(folder / "run", batch_interval=4, cmap="RdBu", render_videos=True,
                              video_format="gif", fps=8, max_frame_size=384,
                              weights=["conv_1/kernel", "predictions/kernel"])
    model.fit(x, y, batch_size=64, epochs=4, verbose=0, shuffle=True, callbacks=[snapshot])
    videos = folder / "weight_video"
    videos.mkdir(parents=True, exist_ok=True)
    for path in snapshot.video_paths:
        shutil.copyfile(path, videos / path.name)
    write_about(videos, f"""WeightSnapshot recorded the kernels of conv_1 (3x3 filters: one row per input colour,
        one column per filter) and of the output layer every 4 batches of the demo CNN's training,
        {snapshot.snapshots} snapshots, rendered with one colour scale over the whole run (RdBu: white is zero,
        red positive, blue negative).""")
    return model, snapshot


def write_test_images(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` held-out demo images as PNGs named after their class, for saliency and CAM."""
    x, y = make_dataset(count, seed=seed + 4242)
    return [save_image(folder / f"{i}-{CLASS_NAMES[label]}.png", np.clip(np.rint(image), 0, 255).astype(np.uint8))
            for i, (image, label) in enumerate(zip(x, y))]


def rnn_gate_pictures(folder: Path, seed: int) -> float:
    """Train a small LSTM on the marker task and draw its weights and gates (``visopt.inspect``);
    returns its training accuracy."""
    x, y = marker_task(768, 30, seed)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True), name="bilstm")(inputs)
    h = keras.layers.LSTM(8, name="lstm")(h)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(h))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    accuracy = float(model.evaluate(x, y, verbose=0)[1])
    forget = inspect.rnn_gates(model, "lstm", x[:4])["forward"]["forget"]  # (4 sequences, 30 steps, 8 units)
    figures = {"lstm_weights_by_gate": inspect.rnn_heatmap(model, "lstm"),
               "lstm_forget_gate_over_time": inspect.features_1d(forget)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        save_figure(figure, folder / f"{name}.png")
    write_about(folder, f"""A Bidirectional LSTM and an LSTM learn to carry the sign of one early marker to the end
        of a 30-step noise sequence (training accuracy {accuracy:.2f}). visopt.inspect draws the LSTM's weights
        gate by gate (rnn_heatmap) and its forget gate over time for four sequences, one line per unit
        (rnn_gates, stepped from the layer's own weights, drawn by features_1d).""")
    return accuracy


def parabolas(n: int, seed: int):
    """deepreplay's data: ``n`` points on y = x**2 (class 0) and ``n`` on y = x**2 - 0.5 (class 1), shuffled."""
    x0 = np.linspace(-1, 1, n)
    x = np.concatenate([np.stack([x0, x0 ** 2], 1), np.stack([x0, x0 ** 2 - 0.5], 1)]).astype("float32")
    y = np.repeat([0.0, 1.0], n).astype("float32")[:, None]
    order = np.random.default_rng(seed).permutation(2 * n)
    return x[order], y[order]


def replay_animation(folder: Path, work: Path, seed: int, epochs: int = 45) -> float:
    """Record a 2-2-1 network separating two parabolas (``ReplayRecorder``) and replay it: the feature
    space of its hidden layer and its loss, one frame every 3 epochs; returns the final accuracy."""
    from visopt import Replay, ReplayRecorder
    from visopt.replay import compose

    x, y = parabolas(200, seed + 13)
    keras.utils.set_random_seed(seed + 42)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="sigmoid", name="hidden"),
                              keras.layers.Dense(1, activation="sigmoid", name="output")])
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=0.5), metrics=["accuracy"])
    recorder = ReplayRecorder(work / "replay_run", x, y, max_samples=len(x), new_run=True)
    history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[recorder])
    replay = Replay(work / "replay_run")
    views = compose([replay.feature_space("hidden"), replay.loss_and_metric_view("accuracy")], cols=2)
    folder.mkdir(parents=True, exist_ok=True)
    views.animate(folder / "training_replay.gif", fps=5, points=range(0, epochs + 1, 3), dpi=72)
    accuracy = float(history.history["accuracy"][-1])
    write_about(folder, f"""ReplayRecorder kept every weight of a 2-2-1 sigmoid network at each of {epochs} epochs
        while it learned to separate two parabolas (deepreplay's example; final accuracy {accuracy:.2f}); Replay
        then redraws the run: left, the plane as the hidden layer bends it (the probe points, a grid and the
        decision regions), right, the loss and accuracy so far.""")
    return accuracy


def replaceable(out: Path) -> bool:
    """Whether ``out`` is a folder only an earlier demo wrote (so the report may replace it)."""
    return out.is_dir() and not (out / "report.json").exists() and any(out.iterdir()) and \
        all(p.is_file() and _OLD_DEMO_FILES.fullmatch(p.name) for p in out.iterdir())


def run_report(model_path: Path, out: Path, options: list[str]) -> list[str]:
    """Run ``python -m visopt report MODEL --out OUT OPTIONS`` (its messages go to the terminal);
    returns the command. A SystemExit with its status when it fails."""
    command = [sys.executable, "-m", "visopt", "report", str(model_path), "--out", str(out), *options]
    if replaceable(out):
        command.append("--overwrite")
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=dict(os.environ)) as child:
        for line in child.stderr:  # the command's messages as they come, without TensorFlow's start-up lines again
            if not _TF_STARTUP.match(line):
                sys.stderr.write(line)
    status = child.returncode
    if status:
        raise SystemExit(f"visopt report failed (exit status {status}): see its message above")
    return command


def judge_class_images(out: Path, judges: dict) -> dict[str, float]:
    """The share of the report's class images each of ``judges`` (name -> model) classifies as their class."""
    record = json.loads((out / "report.json").read_text(encoding="utf-8"))
    paths, labels = zip(*record["class_images"].items())
    import cv2

    images = np.stack([cv2.cvtColor(cv2.imread(str(out / p)), cv2.COLOR_BGR2RGB) for p in paths]).astype(np.float32)
    return {name: float(np.mean(model.predict(images, verbose=0).argmax(axis=1) == np.array(labels)))
            for name, model in judges.items()}
