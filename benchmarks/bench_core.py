"""Core benchmark: one activation-maximization request, measured three ways in one process.

The request: 16 class images (the 4 demo classes x 4 each, ``filter_indices=[0, 1, 2, 3] * 4``) of
the demo CNN ``visopt.demo.train_demo_model("cnn", seed=0)``, 200 optimization steps.

Contenders (the first, the bare loop and the peer give the headline ratios):

* ``visopt`` -- ``visopt.visualize_activation`` with its defaults (a decorrelated Fourier image,
  the class's log-odds, default transforms + jitter 0.05, TotalVariation 2.0, Adam at 0.015 in
  spectrum units; LPNorm 0.5 only for pixel images since issue 9's second round). A repeated
  request reuses the Optimizer that visualize_activation caches per model, as a user's would.
* ``visopt set-up (1 step)`` -- the same call with ``max_iter=1`` and a new energy each round
  (``tv_weight`` varies by a hair), so that model surgery and tracing are paid every time.
* ``visopt (reused Optimizer)`` -- the same energy on one ``visopt.Optimizer`` whose compiled step
  is reused from the second ``minimize`` call on: the loop without per-request set-up.
* ``bare tf.function`` -- the same math written here as a plain ``tf.function`` step (no visopt
  code): the floor that visopt's overhead is measured against. It restates visopt's default
  math: the Fourier image and the log-odds score (``score="auto"`` on a softmax layer; before
  issue 9 the default was pixels and the log-probability, before commit 7f3f8b7 the logit). Each
  run checks that both give the same energies (transforms off, same start
  images), so a change of visopt's defaults cannot silently skew the comparison.
* ``tf-keras-vis 0.8.7`` -- with its defaults (skipped, with a message, when not installed).
* ``visopt pixels`` -- for information: the pixel parameterization (the default before issue 9).

Each contender is called once ("first call": includes tracing and model set-up, reported in its
own column), then timed in alternating rounds (A, B, C, A, B, C, ...) because the machine is
shared; the best round is the headline figure. Process CPU time (all threads) is reported next to
wall time: it is less sensitive to other processes on the machine. Also measured: peak RSS growth
of visopt for 100 vs 1000 steps (it should not grow with the number of steps) and the share of
images that an independently trained judge model classifies as the intended class.

Run from the repository root::

    python benchmarks/bench_core.py            # full run, 3 rounds (several minutes on 2 cores)
    python benchmarks/bench_core.py --quick    # smoke run: 20 steps, 1 round
    python benchmarks/bench_core.py --rounds 5
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import math
import os
import platform
import resource
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

try:
    import visopt
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import visopt
from visopt.demo import CLASS_NAMES, make_dataset, train_demo_model  # noqa: E402
from _machine import cpu_name, visopt_revision  # noqa: E402 - benchmarks/ is sys.path[0]

try:
    import psutil
except ImportError:  # the peak-RSS fallback uses resource.getrusage
    psutil = None

try:
    from tf_keras_vis.activation_maximization import ActivationMaximization as PeerActivationMaximization
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore
    PEER_IMPORT_ERROR = None
except ImportError as error:  # the benchmark still runs, without the peer
    PEER_IMPORT_ERROR = error

LAYER = "predictions"
CLASSES = [0, 1, 2, 3] * 4
INPUT_RANGE = (0.0, 255.0)

# visopt's defaults, restated for the bare loop.
LEARNING_RATE = 0.015         # Adam's step in spectrum units (the fourier parameterization)
JITTER = 0.05                 # a fraction of the image side
SCALES = (0.9, 1.1)
DEGREES = 5.0
LP_WEIGHT, LP_P = 0.0, 6.0  # visualize_activation's LPNorm weight for a Fourier image (0.5 for pixels)
TV_WEIGHT = 2.0
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
EPSILON = 1e-8
# Square root of the colour covariance of natural images (lucid's ImageNet figures), columns scaled
# so that the largest has norm 1: the colour decorrelation of the Fourier image.
COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOR_SQRT /= np.max(np.linalg.norm(COLOR_SQRT, axis=0))

VISOPT_TARGET = 1.10          # visopt / bare at most
PEER_TARGET = 3.0             # tf-keras-vis / visopt at least


# --------------------------------------------------------------------------------------------
# The bare loop: visopt's default math written directly with TensorFlow.
# --------------------------------------------------------------------------------------------

def logits_model(model: keras.Model) -> keras.Model:
    """A functional model from ``model``'s input to the logits of its last (softmax) Dense layer."""
    last = model.layers[-1]
    linear = keras.layers.Dense(last.units, activation=None, name="logits")
    logits = linear(model.layers[-2].output)
    linear.set_weights(last.get_weights())
    return keras.Model(model.inputs, logits, name="bare_logits")


class BareLoop:
    """Activation maximization of one batch as a hand-written ``tf.function`` step and a Python loop.

    The image is a colour-decorrelated Fourier spectrum scaled by 1/frequency through a sigmoid;
    the score is the class's log-odds (its logit minus the log-sum-exp of the other logits).
    ``transforms=False`` leaves the view untransformed (used only to check the math against visopt).
    """

    def __init__(self, model: keras.Model, classes: list[int], transforms: bool = True):
        self.transforms = transforms
        self.features = logits_model(model)
        self.shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        height, width, channels = self.shape
        batch = len(classes)
        units = int(self.features.outputs[0].shape[-1])
        self.target = tf.one_hot(classes, units)
        frequency = np.sqrt(np.fft.rfftfreq(width)[None, :] ** 2 + np.fft.fftfreq(height)[:, None] ** 2)
        self.scale = (np.sqrt(height * width) / np.maximum(frequency, 1.0 / max(height, width))).astype(np.float32)
        zeros = tf.zeros((batch, channels, height, width // 2 + 1))
        self.real, self.imag = tf.Variable(zeros), tf.Variable(zeros)
        self.moments = [(tf.Variable(zeros), tf.Variable(zeros)) for _ in range(2)]
        self.count = tf.Variable(0.0)
        self.step = tf.function(self._step)

    def image(self) -> tf.Tensor:
        low, high = INPUT_RANGE
        spectrum = tf.complex(self.real * self.scale, self.imag * self.scale)
        spatial = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=self.shape[:2]), (0, 2, 3, 1)) / 4.0
        return low + (high - low) * tf.sigmoid(spatial @ COLOR_SQRT.T)

    def set_image(self, images: np.ndarray) -> None:
        """The spectrum whose image is ``images`` (clipped to 0.1%..99.9% of the range)."""
        low, high = INPUT_RANGE
        unit = np.clip((images - low) / (high - low), 1e-3, 1 - 1e-3)
        logits = np.log(unit / (1 - unit)) @ np.linalg.inv(COLOR_SQRT.T)
        spectrum = np.fft.rfft2(np.transpose(logits * 4.0, (0, 3, 1, 2))) / self.scale
        self.real.assign(spectrum.real.astype(np.float32))
        self.imag.assign(spectrum.imag.astype(np.float32))

    def _view_matrix(self, seed: tf.Tensor) -> tf.Tensor:
        """One random jitter + scale + rotation, as the 8 projective coefficients (output -> input)."""
        height, width = self.shape[0], self.shape[1]
        u = tf.random.stateless_uniform((4,), seed, -1.0, 1.0)
        shift = tf.round(u[:2] * tf.constant([round(JITTER * width), round(JITTER * height)], tf.float32))
        scale = (SCALES[0] + SCALES[1]) / 2 + u[2] * (SCALES[1] - SCALES[0]) / 2
        angle = u[3] * DEGREES * math.pi / 180.0
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        tx = cx - (cos * cx + sin * cy) - shift[0]
        ty = cy - (-sin * cx + cos * cy) - shift[1]
        return tf.stack([cos, sin, tx, -sin, cos, ty, 0.0, 0.0])

    def _view(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if not self.transforms:
            return images
        transforms = tf.tile(self._view_matrix(seed)[None], (tf.shape(images)[0], 1))
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")

    def _energy(self, seed: tf.Tensor) -> tf.Tensor:
        low, high = INPUT_RANGE
        image = self.image()
        logits = self.features(self._view(image, seed), training=False)
        others = tf.reduce_logsumexp(tf.where(self.target > 0, -1e30, logits), axis=1)
        score = tf.reduce_sum(logits * self.target, axis=1) - others
        unit = (image - low) * (2.0 / (high - low)) - 1.0
        base = unit[:, :-1, :-1, :]
        dy = unit[:, 1:, :-1, :] - base
        dx = unit[:, :-1, 1:, :] - base
        total_variation = tf.reduce_mean(tf.square(dx) + tf.square(dy) + EPSILON, axis=[1, 2, 3])
        energy = -score + TV_WEIGHT * total_variation
        if LP_WEIGHT:  # a Python branch: the weight 0 costs the step nothing
            energy += LP_WEIGHT * tf.pow(tf.reduce_mean(tf.pow(tf.abs(unit), LP_P), axis=[1, 2, 3]) + EPSILON, 1.0 / LP_P)
        return energy

    def _step(self, seed: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            energy = self._energy(seed)
            objective = tf.reduce_sum(energy)
        grads = tape.gradient(objective, [self.real, self.imag])
        self.count.assign_add(1.0)
        t = self.count
        rate = LEARNING_RATE * tf.sqrt(1 - ADAM_BETA2 ** t) / (1 - ADAM_BETA1 ** t)
        for variable, grad, (mean, square) in zip((self.real, self.imag), grads, self.moments):
            mean.assign(ADAM_BETA1 * mean + (1 - ADAM_BETA1) * grad)
            square.assign(ADAM_BETA2 * square + (1 - ADAM_BETA2) * tf.square(grad))
            variable.assign_sub(rate * mean / (tf.sqrt(square) + ADAM_EPSILON))
        return energy

    def run(self, steps: int, seed: int, start: np.ndarray | None = None) -> np.ndarray:
        """Optimize from ``start`` (mid-grey noise when None) for ``steps`` steps; return uint8 images.

        The energy of every step is kept in ``self.losses`` ``(steps, batch)``.
        """
        low, high = INPUT_RANGE
        if start is None:
            start = noise_images((len(self.target),) + self.shape, seed)
        self.set_image(start.astype(np.float32))
        for mean, square in self.moments:
            mean.assign(tf.zeros_like(mean))
            square.assign(tf.zeros_like(square))
        self.count.assign(0.0)
        losses = []
        for t in range(steps):
            losses.append(self.step(tf.constant([seed, t], tf.int64)).numpy())  # read each step, as visopt
        self.losses = np.array(losses)
        return np.clip(np.rint(self.image().numpy()), low, high).astype(np.uint8)


def noise_images(shape, seed: int) -> np.ndarray:
    """Mid-grey images with +-10% uniform noise."""
    low, high = INPUT_RANGE
    rng = np.random.default_rng(seed)
    return ((low + high) / 2 + (high - low) * 0.1 * rng.uniform(-1, 1, shape)).astype(np.float32)


def check_same_math(model: keras.Model, steps: int = 3) -> float:
    """Largest relative difference between visopt's and the bare loop's per-image energies.

    Both run ``steps`` steps from the same start images with the random transforms turned off; the
    first steps agree to float round-off when the bare loop restates visopt's defaults faithfully
    (later steps drift apart slowly: Adam's normalised steps amplify round-off).
    """
    start = noise_images((len(CLASSES),) + model_shape(model), seed=11)
    result = visopt.Optimizer(model, visopt_energy(), transforms=[]).minimize(
        seed_input=start, max_iter=steps, jitter=0, seed=11, verbose=False)
    loop = BareLoop(model, CLASSES, transforms=False)
    loop.run(steps, seed=11, start=start)
    reference = result.history["loss"]
    return float(np.max(np.abs(loop.losses - reference) / np.maximum(np.abs(reference), 1e-3)))


# --------------------------------------------------------------------------------------------
# The contenders: each is a "request" callable returning (N, 32, 32, 3) images.
# --------------------------------------------------------------------------------------------
def visopt_energy():
    energy = visopt.ActivationMaximization(LAYER, CLASSES) + TV_WEIGHT * visopt.TotalVariation()
    return energy + LP_WEIGHT * visopt.LPNorm() if LP_WEIGHT else energy


@dataclass
class Contender:
    """A way to run the request; any one-time set-up happens inside its first (tracing) call."""

    name: str
    request: Callable[[int, int], np.ndarray]   # (steps, seed) -> images
    judged: bool = True                         # its images go to the judge
    first_s: float = float("nan")
    round_s: list = field(default_factory=list)
    round_cpu_s: list = field(default_factory=list)
    images: list = field(default_factory=list)

    @property
    def best_s(self) -> float:
        return min(self.round_s) if self.round_s else float("nan")

    @property
    def best_cpu_s(self) -> float:
        return min(self.round_cpu_s) if self.round_cpu_s else float("nan")


_fresh = itertools.count(1)


def make_contenders(model: keras.Model) -> list[Contender]:
    def run_visopt(steps, seed):
        return visopt.visualize_activation(model, LAYER, CLASSES, max_iter=steps, seed=seed, verbose=False)

    def run_visopt_one_step(steps, seed):
        # what a new request costs besides its steps: Optimizer, feature model, tracing, one step.
        # A tv_weight unique to this call defeats visualize_activation's cache.
        return visopt.visualize_activation(model, LAYER, CLASSES, max_iter=1, seed=seed, verbose=False,
                                           tv_weight=2.0 + 1e-6 * next(_fresh))

    reused = {}

    def run_visopt_reused(steps, seed):
        if "optimizer" not in reused:
            reused["optimizer"] = visopt.Optimizer(model, visopt_energy())
        return reused["optimizer"].minimize(max_iter=steps, seed=seed, verbose=False).images

    bare = {}

    def run_bare(steps, seed):
        if "loop" not in bare:
            bare["loop"] = BareLoop(model, CLASSES)
        return bare["loop"].run(steps, seed)

    def run_pixels(steps, seed):
        return visopt.visualize_activation(model, LAYER, CLASSES, max_iter=steps, seed=seed, verbose=False,
                                           parameterization="pixels")

    contenders = [Contender("visopt", run_visopt),
                  Contender("visopt set-up (1 step)", run_visopt_one_step, judged=False),
                  Contender("visopt (reused Optimizer)", run_visopt_reused),
                  Contender("bare tf.function", run_bare)]
    if PEER_IMPORT_ERROR is None:
        # tf-keras-vis' ReplaceToLinear reads ``model.output_names``, which Keras 3 Sequential models
        # lack: hand it the same layers as a functional model then (it clones the model anyway).
        functional = model
        if not hasattr(model, "output_names"):
            functional = keras.Model(model.inputs, model.outputs, name=f"{model.name}_functional")

        def run_peer(steps, seed):
            tf.random.set_seed(seed)
            np.random.seed(seed)  # its Jitter draws from numpy's global generator
            visualizer = PeerActivationMaximization(functional, model_modifier=ReplaceToLinear(), clone=True)
            with warnings.catch_warnings():
                # it calls the model on a list of inputs: Keras warns about the structure on every step
                warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
                images = visualizer(CategoricalScore(CLASSES),
                                    seed_input=tf.random.uniform((len(CLASSES),) + model_shape(model), 0, 255),
                                    input_range=(0, 255), steps=steps)
            return np.asarray(images)

        contenders.append(Contender("tf-keras-vis 0.8.7", run_peer))
    contenders.append(Contender("visopt pixels", run_pixels))
    return contenders


def model_shape(model: keras.Model) -> tuple[int, ...]:
    return tuple(int(d) for d in model.inputs[0].shape[1:])


# --------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------
def timed(fn, *args):
    """(wall seconds, process CPU seconds, result) of ``fn(*args)``."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def run_rounds(contenders: list[Contender], steps: int, rounds: int, log) -> None:
    """First call of each (with tracing), then ``rounds`` alternating timed calls of all of them."""
    for c in contenders:
        c.first_s, _, _ = timed(c.request, steps, 0)
        log(f"  first call   {c.name:<28} {c.first_s:7.2f} s")
    for r in range(1, rounds + 1):
        for c in contenders:
            seconds, cpu_seconds, images = timed(c.request, steps, r)
            c.round_s.append(seconds)
            c.round_cpu_s.append(cpu_seconds)
            c.images.append(images)
            log(f"  round {r}/{rounds}  {c.name:<28} {seconds:7.2f} s")


class PeakRss:
    """Peak resident memory above the level at entry, sampled by a thread (psutil) or from getrusage.

    Without psutil, ``ru_maxrss`` is the peak of the whole process so far: it only shows growth
    beyond every earlier peak (training included), so it can under-report.
    """

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.growth_mib = float("nan")
        self.method = "psutil RSS sampled every 2 ms" if psutil else "resource.getrusage ru_maxrss"

    def __enter__(self):
        gc.collect()
        if psutil:
            self._process = psutil.Process()
            self._base = self._peak = self._process.memory_info().rss
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self.interval_s)

    def __exit__(self, *exc):
        if psutil:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, self._process.memory_info().rss)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.growth_mib = (peak - self._base) / 2**20
        return False


def memory_by_steps(model: keras.Model, step_counts: tuple[int, int]) -> dict[int, float]:
    """Peak RSS growth (MiB) of ``minimize`` on a 4-image batch, for each number of steps.

    One Optimizer is warmed up first so that tracing is not counted: what remains is what the loop
    itself holds (history, images), which should not grow with the number of steps.
    """
    optimizer = visopt.Optimizer(model, visopt.ActivationMaximization(LAYER, [0, 1, 2, 3])
                                 + TV_WEIGHT * visopt.TotalVariation())
    optimizer.minimize(max_iter=10, seed=0, verbose=False)
    growth = {}
    for steps in step_counts:
        with PeakRss() as peak:
            optimizer.minimize(max_iter=steps, seed=1, verbose=False)
        growth[steps] = peak.growth_mib
    return growth


def judged_share(judge: keras.Model, batches: list[np.ndarray]) -> tuple[float, int]:
    """Share of images that ``judge`` classifies as their intended class, and how many were judged."""
    if not batches:
        return float("nan"), 0
    images = np.concatenate([np.asarray(b, np.float32) for b in batches])
    intended = np.tile(np.asarray(CLASSES), len(batches))
    predicted = np.argmax(judge.predict(images, verbose=0), axis=1)
    return float(np.mean(predicted == intended)), len(images)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 steps, 1 round, 20 vs 200 memory steps")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timed rounds (default 3; 1 with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="steps per request (default 200; 20 with --quick)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    args.steps = args.steps if args.steps is not None else (20 if args.quick else 200)
    args.memory_steps = (20, 200) if args.quick else (100, 1000)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")
    return args


def ratio_line(label: str, numerator: Contender, denominator: Contender, sense: str, target: float) -> str:
    wall = numerator.best_s / denominator.best_s
    cpu = numerator.best_cpu_s / denominator.best_cpu_s
    ok = wall <= target if sense == "<=" else wall >= target
    return f"  {label:<34} {wall:5.2f}x ({cpu:4.2f}x)   target {sense} {target:.2f}   {'PASS' if ok else 'MISS'}"


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    log("visopt core benchmark")
    log(f"  date {datetime.date.today()}  cpu {cpu_name()}  cores {os.cpu_count()}  python {platform.python_version()}")
    log(f"  tensorflow {tf.__version__}  keras {keras.__version__}  visopt {visopt.__version__} "
        f"({visopt_revision()})")
    log(f"  request: {len(CLASSES)} images of {len(set(CLASSES))} classes, {args.steps} steps, "
        f"best of {args.rounds} alternating round(s)")
    if PEER_IMPORT_ERROR is not None:
        log(f"  tf-keras-vis is not installed ({PEER_IMPORT_ERROR}); skipping the peer. "
            "Install it with: pip install -e .[benchmark]")

    log("training the demo model (cnn, seed 0) and the judge (wide, seed 7) ...")
    model = train_demo_model("cnn", seed=0)
    judge = train_demo_model("wide", seed=7)
    x_test, y_test = make_dataset(512, seed=4242)
    judge_accuracy = float(np.mean(np.argmax(judge.predict(x_test, verbose=0), axis=1) == y_test))
    log(f"  judge accuracy on held-out synthetic data: {judge_accuracy:.3f}")

    log("timing ...")
    contenders = make_contenders(model)
    run_rounds(contenders, args.steps, args.rounds, log)

    log("memory ...")
    memory = memory_by_steps(model, args.memory_steps)

    log("checking that the bare loop is visopt's math ...")
    mismatch = check_same_math(model)
    log(f"  transforms off, same start, 3 steps: max relative energy difference {mismatch:.1e} "
        f"({'same math' if mismatch < 1e-3 else 'WARNING: NOT the same math, the ratios are not comparable'})")

    log("quality ...")
    quality = {c.name: judged_share(judge, c.images) for c in contenders if c.judged}

    by_name = {c.name: c for c in contenders}
    log("")
    log(f"Results ({args.steps} steps, {len(CLASSES)} images, best of {args.rounds}; seconds):")
    log(f"  {'contender':<28} {'first call':>10} {'best wall':>10} {'best CPU':>9}   {'judged intended':>15}   "
        "wall time of each round")
    for c in contenders:
        rounds = " ".join(f"{s:.2f}" for s in c.round_s)
        judged = "{:8.0%} of {:<4}".format(*quality[c.name]) if c.name in quality else f"{'-':>8}{'':7}"
        log(f"  {c.name:<28} {c.first_s:10.2f} {c.best_s:10.2f} {c.best_cpu_s:9.2f}   {judged}   {rounds}")

    visopt_run, bare, reused = by_name["visopt"], by_name["bare tf.function"], by_name["visopt (reused Optimizer)"]
    log("")
    log("Ratios of best rounds: wall time (CPU time); the target applies to wall time:")
    log(ratio_line("visopt / bare", visopt_run, bare, "<=", VISOPT_TARGET))
    log(ratio_line("visopt (reused Optimizer) / bare", reused, bare, "<=", VISOPT_TARGET))
    setup = by_name["visopt set-up (1 step)"]
    log(f"  {'visopt per-request set-up':<34} {setup.best_s:5.2f} s  ({setup.best_cpu_s:.2f} s CPU) = "
        f"{setup.best_s / bare.best_s:.0%} of the bare loop, paid by a new request (a repeated one is cached)")
    peer = by_name.get("tf-keras-vis 0.8.7")
    if peer is not None:
        log(ratio_line("tf-keras-vis / visopt", peer, visopt_run, ">=", PEER_TARGET))
    else:
        log(f"  {'tf-keras-vis / visopt':<34} skipped (tf-keras-vis not installed)")
    log("")
    low, high = args.memory_steps
    log(f"Memory: peak RSS growth of Optimizer.minimize, 4 images ({PeakRss().method}):")
    log(f"  {low:>5} steps  {memory[low]:7.1f} MiB")
    log(f"  {high:>5} steps  {memory[high]:7.1f} MiB   (flat in the number of steps if close to the line above)")
    log(f"Classes: {', '.join(f'{i}={name}' for i, name in enumerate(CLASS_NAMES))}; "
        f"judge: demo 'wide' model, seed 7, accuracy {judge_accuracy:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
