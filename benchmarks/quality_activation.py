"""Quality of class images: do independently trained models recognise what visopt draws?

Seven synthetic tasks of different nature (``visopt.demo.tasks``: gratings, shapes, textures,
colours, glyphs, icons, dice), four classes each. Per task:

* the model to visualize: the demo CNN architecture, seed 0;
* three judges trained independently: the same architecture with seed 1, the "wide" architecture
  (5x5 kernels, dense head) with seed 2, and a small ResNet with BatchNorm with seed 2.

Each method draws 16 class images (the 4 classes x 4) for each of ``--seeds`` seeds, 200 steps,
and is scored by:

* **own**: the share the visualized model classifies as the intended class;
* **transfer**: the share the judges classify as the intended class (mean over the three judges;
  each judge's share is printed too);
* **flat**: images whose pixel standard deviation is under 2% of the range (a grey picture);
* **diversity**: mean RMS difference (in [0, 1]) between two images of the same class;
* **plausibility**: ``visopt.metrics.plausibility`` in the ResNet judge's features, against 512
  real images (cosine similarity with the class's mean real features);
* **ms/step**: wall time per optimization step of the 16-image batch (after a warm-up call).

Defaults were chosen on the tuning tasks (``TUNING``) only; ``HELD_OUT`` tasks were run once,
with the chosen defaults, and are reported as they came. Colours and glyphs were the held-out
tasks of the first round; they have been looked at since, so they joined the tuning tasks, and
two new tasks (icons, dice), written before their first run, are held out now.

``--agreement`` adds a reference: every model of a task (the visualized one and the three judges)
draws its own class images with the defaults, and the others judge them. It shows how much the
transfer depends on which model is visualized, and where models of different architectures
disagree about each other's pictures, no picture of one model convinces them all.

Run from the repository root::

    pip install -e ".[benchmark]"                 # tf-keras-vis==0.8.7 for the peer row
    python benchmarks/quality_activation.py       # all tasks, 2 seeds (about 15 minutes on 2 cores)
    python benchmarks/quality_activation.py --methods "visopt default" --agreement
    python benchmarks/quality_activation.py --tasks gratings colours --seeds 1 --gallery docs/images/quality
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

try:
    import visopt
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import visopt
from visopt import (ActivationMaximization, Jitter, LPNorm, Optimizer, RandomRotate, RandomScale,  # noqa: E402
                    TotalVariation)
from visopt.demo.tasks import TASKS, make_task_data, train_task_model  # noqa: E402

try:
    from tf_keras_vis.activation_maximization import ActivationMaximization as PeerActivationMaximization
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore
    PEER_ERROR = None
except ImportError as error:  # the benchmark still runs, without the peer
    PEER_ERROR = error

TUNING = ("gratings", "shapes", "textures", "colours", "glyphs")
HELD_OUT = ("icons", "dice")
JUDGES = (("cnn", 1), ("wide", 2), ("resnet", 2))
CLASSES = [c for c in range(4) for _ in range(4)]
STEPS = 200
FLAT_STD = 0.02 * 255


# -- methods: (model, classes, seed) -> uint8-ranged images ------------------------------------------
def _optimizer(model, classes, seed, *, score, parameterization, learning_rate, transforms, regularize=True,
               jitter=0.05):
    """The alternatives of the first round, with its regularizers (LPNorm 0.5, TotalVariation 2)."""
    energy = ActivationMaximization("predictions", classes, score=score)
    if regularize:
        energy = energy + 0.5 * LPNorm() + 2.0 * TotalVariation()
    optimizer = Optimizer(model, energy, parameterization=parameterization, learning_rate=learning_rate,
                          transforms=transforms)
    return optimizer.minimize(max_iter=STEPS, seed=seed, verbose=False, jitter=jitter).images


def visopt_default(model, classes, seed):
    return visopt.visualize_activation(model, "predictions", classes, max_iter=STEPS, seed=seed)


def round_1_default(model, classes, seed):
    """The defaults of the first round: the same, with LPNorm 0.5 on the Fourier image too."""
    return visopt.visualize_activation(model, "predictions", classes, max_iter=STEPS, seed=seed, lp_norm_weight=0.5)


def before_issue_9(model, classes, seed):
    """visopt's defaults before this benchmark: pixels, log-probability, small scale/rotation."""
    return _optimizer(model, classes, seed, score="log_probability", parameterization="pixels", learning_rate=0.02,
                      transforms=[RandomScale((0.95, 1.05)), RandomRotate(5.0)])


def prototype(model, classes, seed):
    """The bare prototype of the issue: Fourier, raw logit, Adam 0.05, 2-px jitter, no regularizers."""
    return _optimizer(model, classes, seed, score="activation", parameterization="fourier", learning_rate=0.05,
                      transforms=[Jitter(2), RandomScale((0.9, 1.1)), RandomRotate(5.0)], regularize=False,
                      jitter=0)


def variant(score, parameterization, learning_rate):
    def run(model, classes, seed):
        return _optimizer(model, classes, seed, score=score, parameterization=parameterization,
                          learning_rate=learning_rate, transforms=None)
    return run


def tf_keras_vis(model, classes, seed):
    tf.random.set_seed(seed)
    np.random.seed(seed)  # its Jitter draws from numpy's global generator
    visualizer = PeerActivationMaximization(model, model_modifier=ReplaceToLinear(), clone=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        images = visualizer(CategoricalScore(classes), seed_input=tf.random.uniform((len(classes), 32, 32, 3), 0, 255),
                            input_range=(0, 255), steps=STEPS)
    return np.asarray(images)


def methods() -> dict:
    table = {
        "visopt default": visopt_default,
        "round 1 default (+ LPNorm 0.5)": round_1_default,
        "before (pixels, log-prob)": before_issue_9,
        "prototype (fourier, logit, lr 0.05)": prototype,
        "fourier, log-odds, lr 0.05": variant("log_odds", "fourier", 0.05),
        "fourier, log-prob, lr 0.015": variant("log_probability", "fourier", 0.015),
        "fourier, margin, lr 0.015": variant("margin", "fourier", 0.015),
        "pixels, log-odds, lr 0.02": variant("log_odds", "pixels", 0.02),
    }
    if PEER_ERROR is None:
        table["tf-keras-vis 0.8.7"] = tf_keras_vis
    return table


# -- scoring ----------------------------------------------------------------------------------------
def score(images: np.ndarray, labels: np.ndarray, model, judges, real) -> dict:
    images = np.asarray(images, np.float32)
    own = float(np.mean(model.predict(images, verbose=0).argmax(1) == labels))
    per_judge = [float(np.mean(judge.predict(images, verbose=0).argmax(1) == labels)) for judge in judges]
    flat = int(np.sum(images.reshape(len(images), -1).std(axis=1) < FLAT_STD))
    distances = []
    for c in np.unique(labels):
        group = images[labels == c].reshape(int(np.sum(labels == c)), -1) / 255
        distances += [np.sqrt(np.mean((group[i] - group[j]) ** 2))
                      for i in range(len(group)) for j in range(i + 1, len(group))]
    plausible = visopt.metrics.plausibility(images, list(labels), judges[-1], *real)
    return {"own": own, "judges": per_judge, "transfer": float(np.mean(per_judge)), "flat": flat,
            "diversity": float(np.mean(distances)), "plausibility": plausible}


def models_of(task: str, log):
    x, y = make_task_data(task, 512, seed=99)  # fresh images: accuracy, and the real examples of plausibility
    trained = []
    for architecture, seed in (("cnn", 0),) + JUDGES:
        model = train_task_model(task, architecture, seed=seed)
        accuracy = float(model.evaluate(x, y, verbose=0)[1])
        log(f"  {task}: {architecture} seed {seed} trained, accuracy {accuracy:.3f} on 512 fresh images")
        trained.append(model)
    return trained[0], trained[1:], (x, y)


def agreement(task: str, model, judges, seeds, log) -> np.ndarray:
    """``matrix[i, j]``: the share of model i's own default class images that model j reads as intended."""
    everyone = [model] + list(judges)
    labels = np.array(CLASSES * len(seeds))
    matrix = np.zeros((len(everyone), len(everyone)))
    for i, painter in enumerate(everyone):
        images = np.concatenate([np.asarray(visopt_default(painter, CLASSES, seed), np.float32) for seed in seeds])
        for j, reader in enumerate(everyone):
            matrix[i, j] = np.mean(reader.predict(images, verbose=0).argmax(1) == labels)
    names = ["cnn0"] + [f"{a}{s}" for a, s in JUDGES]
    log(f"  {task:9s} agreement (rows draw, columns read): " + "; ".join(
        f"{names[i]} -> " + " ".join(f"{v:.2f}" for v in row) for i, row in enumerate(matrix)))
    return matrix


def run_task(task: str, table: dict, seeds, log, gallery, with_agreement=False) -> dict:
    model, judges, real = models_of(task, log)
    if with_agreement:
        matrix = agreement(task, model, judges, seeds, log)
        off = matrix[~np.eye(len(matrix), dtype=bool)]
        log(f"  {task:9s} agreement: mean over pairs {off.mean():.2f}, the judges reading each other "
            f"{matrix[1:, 1:][~np.eye(len(matrix) - 1, dtype=bool)].mean():.2f}")
    labels = np.array(CLASSES * len(seeds))
    results = {}
    for name, method in table.items():
        method(model, CLASSES, 0)  # warm-up: tracing and set-up are not timed
        start = time.perf_counter()
        images = np.concatenate([np.asarray(method(model, CLASSES, seed), np.float32) for seed in seeds])
        per_step = 1000 * (time.perf_counter() - start) / (len(seeds) * STEPS)
        results[name] = dict(score(images, labels, model, judges, real), ms=per_step)
        r = results[name]
        log(f"  {task:9s} {name:38s} own {r['own']:.2f}  transfer {r['transfer']:.2f} "
            f"({' '.join(f'{v:.2f}' for v in r['judges'])})  flat {r['flat']}  diversity {r['diversity']:.2f}  "
            f"plausibility {r['plausibility']:.2f}  "
            f"{per_step:.1f} ms/step")
        if gallery and name == "visopt default":
            grid = visopt.stitch_images(np.clip(images[:16], 0, 255).astype(np.uint8), cols=4)
            visopt.save_image(os.path.join(gallery, f"{task}.png"), np.kron(grid, np.ones((3, 3, 1), np.uint8)))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TUNING + HELD_OUT), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, default=2, help="image seeds per method (16 images each)")
    parser.add_argument("--gallery", default=None, help="folder for a 4x4 grid of the default's images per task")
    parser.add_argument("--methods", nargs="+", default=None, help="rows to run (default: all)")
    parser.add_argument("--agreement", action="store_true",
                        help="also let every model of a task judge the others' own class images")
    args = parser.parse_args(argv)
    log = lambda line: print(line, flush=True)  # noqa: E731
    log(f"visopt {visopt.__version__}, tensorflow {tf.__version__}; {STEPS} steps, seeds {list(range(1, args.seeds + 1))}")
    if PEER_ERROR is not None:
        log(f"  tf-keras-vis is not installed ({PEER_ERROR}): no peer row")
    table = methods()
    if args.methods:
        unknown = [name for name in args.methods if name not in table]
        if unknown:
            parser.error(f"unknown methods {unknown}; valid: {list(table)}")
        table = {name: table[name] for name in args.methods}
    seeds = list(range(1, args.seeds + 1))
    all_results = {task: run_task(task, table, seeds, log, args.gallery, args.agreement) for task in args.tasks}
    log("")
    log("| method | " + " | ".join(f"{t}{' (held out)' if t in HELD_OUT else ''}" for t in args.tasks)
        + " | ms/step |")
    log("|---|" + "---:|" * (len(args.tasks) + 1))
    for name in table:
        cells = []
        for task in args.tasks:
            r = all_results[task][name]
            cells.append(f"{r['transfer']:.2f} / {r['own']:.2f} / {r['flat']} / {r['diversity']:.2f} / "
                         f"{r['plausibility']:.2f}")
        ms = np.mean([all_results[t][name]["ms"] for t in args.tasks])
        log(f"| {name} | " + " | ".join(cells) + f" | {ms:.1f} |")
    log("cells: transfer (mean of 3 judges) / own model / flat images / diversity / plausibility")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
