"""Saliency and CAM benchmark: SmoothGrad, Grad-CAM and Score-CAM, each request measured three ways in one process.

The requests explain 64 images of 48x48x3 (``make_dataset(64, size=48, seed=4242)``) for their true
classes (one ``filter_indices`` entry per image) on the demo CNN trained at that size,
``train_demo_model("cnn", seed=0, size=48)`` (softmax output ``"predictions"``, last conv layer
``"conv_3"``, a 12x12x32 feature map):

* **SmoothGrad** -- 50 noisy copies per image, noise 0.2 of each image's value range.
* **Grad-CAM** -- on ``conv_3``.
* **Score-CAM** -- all 32 channels of ``conv_3``; and, for information, the 10-channel
  "Faster Score-CAM" variant (``max_channels=10`` / tf-keras-vis ``max_N=10``).

Contenders of each request:

* ``visopt`` -- ``visualize_saliency(model, "predictions", labels, images, method="smoothgrad",
  samples=50, noise=0.2, seed=s)`` and ``visualize_cam(model, "predictions", labels, images,
  method="gradcam" | "scorecam", penultimate_layer="conv_3")``, default ``batch_size=256``.
  A repeated request reuses the engine visopt caches per model (tracing happens in the first call).
* ``bare tf.function`` -- the same math written here (no visopt code) as one ``tf.function`` per
  request, called on chunks of about 256 rows (noisy copies or masked inputs): the floor visopt's
  overhead is measured against. Each run checks that it computes visopt's maps (same noise for
  SmoothGrad, same masks for Score-CAM), so a change of visopt's math cannot silently skew the ratio.
* ``tf-keras-vis 0.8.7`` -- ``Saliency(model, model_modifier=ReplaceToLinear(), clone=True)(
  CategoricalScore(labels), images, smooth_samples=50, smooth_noise=0.2)``, ``Gradcam(model,
  model_modifier=ReplaceToLinear())(score, images, penultimate_layer="conv_3")`` and ``Scorecam(model)(
  score, images, penultimate_layer="conv_3")`` (no ReplaceToLinear, as its documentation recommends
  for Score-CAM), its defaults otherwise. Each visualizer object is built once, in the untimed first
  call, and reused (its model clone is not timed). Skipped, with a message, when not installed.

Each contender is called once ("first call": tracing, model surgery, reported in its own column),
then timed in alternating rounds (A, B, C, A, B, C, ...) because the machine is shared; the best
round is the headline figure, process CPU time (all threads) is printed next to it. Quality: the
Spearman rank correlation of visopt's and tf-keras-vis's map of each image (median and minimum over
the images); reported, not asserted.

Run from the repository root::

    python benchmarks/bench_saliency.py              # full run, 5 rounds (2-3 minutes on 2 busy cores)
    python benchmarks/bench_saliency.py --quick      # smoke run: 8 images, 5 samples, 1 round
    python benchmarks/bench_saliency.py --skip smoothgrad,faster   # parts: smoothgrad, gradcam, scorecam, faster
    python benchmarks/bench_saliency.py --profile    # also cProfile one visopt call of each request
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import os
import platform
import pstats
import sys
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
from visopt import visualize_cam  # noqa: E402
from visopt.demo import make_dataset, train_demo_model  # noqa: E402
from visopt import visualize_saliency  # noqa: E402
from _machine import cpu_name, load_average, visopt_revision  # noqa: E402 - benchmarks/ is sys.path[0]

try:
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore
    PEER_IMPORT_ERROR = None
except ImportError as error:  # the benchmark still runs, without the peer
    PEER_IMPORT_ERROR = error

LAYER = "predictions"
PENULTIMATE = "conv_3"
SIZE = 48
BATCH_SIZE = 256              # visopt's default; the bare loops use chunks of about as many rows
NOISE = 0.2
FASTER_CHANNELS = 10          # Faster Score-CAM: visopt max_channels, tf-keras-vis max_N

PARTS = ("smoothgrad", "gradcam", "scorecam", "faster")
PEER_TARGET = 1.0             # tf-keras-vis / visopt at least ("not slower anywhere")
BARE_TARGET = 1.3             # visopt / bare at most


# --------------------------------------------------------------------------------------------
# The bare loops: visopt's math written directly with TensorFlow, one tf.function per request.
# --------------------------------------------------------------------------------------------
def logits_model(model: keras.Model, feature_layer: str | None = None) -> keras.Model:
    """``model``'s input to the logits of its last (softmax) Dense layer (and ``feature_layer``'s output)."""
    last = model.layers[-1]
    linear = keras.layers.Dense(last.units, activation=None, name="logits")
    logits = linear(model.layers[-2].output)
    linear.set_weights(last.get_weights())
    outputs = logits if feature_layer is None else [logits, model.get_layer(feature_layer).output]
    return keras.Model(model.inputs, outputs, name="bare_logits")


def normalize_by_peak(maps: tf.Tensor) -> tf.Tensor:
    """Each (N, H, W) map divided by its maximum (all-zero maps stay zero)."""
    peak = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return maps / tf.where(peak > 0, peak, tf.ones_like(peak))


class BareSmoothGrad:
    """Mean gradient of the class logit over ``samples`` noisy copies, max |.| over channels, / max.

    Image ``i``'s noise is ``stateless_normal((samples, *shape), [seed, i])``: the same noise as visopt's.
    """

    def __init__(self, model: keras.Model, samples: int, noise: float, rows: int = BATCH_SIZE):
        self.logits = logits_model(model)
        self.samples, self.noise = samples, noise
        self.per_call = max(1, rows // samples)  # images per call
        self.units = int(self.logits.outputs[0].shape[-1])
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.step = tf.function(self._maps, input_signature=[
            tf.TensorSpec((None,) + shape, tf.float32), tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32), tf.TensorSpec((), tf.int32)])

    def _maps(self, images, labels, ids, seed):
        n, s = tf.shape(images)[0], self.samples
        sigma = self.noise * (tf.reduce_max(images, axis=[1, 2, 3]) - tf.reduce_min(images, axis=[1, 2, 3]))
        noise = tf.map_fn(lambda i: tf.random.stateless_normal(tf.concat([[s], tf.shape(images)[1:]], 0),
                                                               tf.stack([seed, i])), ids, fn_output_signature=tf.float32)
        noisy = tf.reshape(images[:, None] + noise * tf.reshape(sigma, (-1, 1, 1, 1, 1)),
                           tf.concat([[-1], tf.shape(images)[1:]], 0))
        target = tf.one_hot(tf.repeat(labels, s), self.units)
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            total = tf.reduce_sum(self.logits(noisy, training=False) * target)
        grads = tape.gradient(total, noisy)
        mean = tf.reduce_mean(tf.reshape(grads, tf.concat([[n, s], tf.shape(images)[1:]], 0)), axis=1)
        return normalize_by_peak(tf.reduce_max(tf.abs(mean), axis=-1))

    def run(self, images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        ids = np.arange(len(images), dtype=np.int32)
        return np.concatenate([
            self.step(images[i:i + self.per_call], labels[i:i + self.per_call], ids[i:i + self.per_call],
                      tf.constant(seed, tf.int32)).numpy()
            for i in range(0, len(images), self.per_call)])


class BareGradCAM:
    """relu(sum_k mean(dlogit/dA_k) A_k) on ``conv_3``, bilinear upsampling, / max; all images in one call."""

    def __init__(self, model: keras.Model):
        self.features = logits_model(model, PENULTIMATE)
        self.units = int(self.features.outputs[0].shape[-1])
        self.size = tuple(int(d) for d in model.inputs[0].shape[1:3])
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.step = tf.function(self._maps, input_signature=[
            tf.TensorSpec((None,) + shape, tf.float32), tf.TensorSpec((None,), tf.int32)])

    def _maps(self, images, labels):
        with tf.GradientTape() as tape:
            logits, features = self.features(images, training=False)
            total = tf.reduce_sum(logits * tf.one_hot(labels, self.units))
        grads = tape.gradient(total, features)
        weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
        cam = tf.image.resize(cam[..., None], self.size, method="bilinear")[..., 0]
        return normalize_by_peak(cam)

    def run(self, images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        return self.step(images, labels).numpy()


class BareScoreCAM:
    """Score-CAM as visopt computes it: each ``conv_3`` channel, upsampled and min-max scaled to [0, 1],
    masks the input; the class probability of the masked input weights the channel's upsampled
    activation (as the Score-CAM authors' code); relu, / max.

    ``channels`` keeps the channels of highest variance (Faster Score-CAM). Chunks of images whose
    masked inputs make about ``rows`` rows.
    """

    def __init__(self, model: keras.Model, channels: int | None = None, rows: int = BATCH_SIZE):
        self.features = logits_model(model, PENULTIMATE)
        self.units = int(self.features.outputs[0].shape[-1])
        total = int(self.features.outputs[1].shape[-1])
        self.channels = total if channels is None else min(channels, total)
        self.per_call = max(1, rows // self.channels)
        self.size = tuple(int(d) for d in model.inputs[0].shape[1:3])
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self.step = tf.function(self._maps, input_signature=[
            tf.TensorSpec((None,) + shape, tf.float32), tf.TensorSpec((None,), tf.int32)])

    def _maps(self, images, labels):
        n, k = tf.shape(images)[0], self.channels
        _, features = self.features(images, training=False)                       # (n, h, w, K)
        if k < features.shape[-1]:
            variance = tf.math.reduce_variance(features, axis=[1, 2])              # (n, K)
            _, keep = tf.math.top_k(variance, k)
            features = tf.gather(features, keep, axis=3, batch_dims=1)             # (n, h, w, k)
        upsampled = tf.image.resize(features, self.size, method="bilinear")       # (n, H, W, k)
        low = tf.reduce_min(upsampled, axis=[1, 2], keepdims=True)
        high = tf.reduce_max(upsampled, axis=[1, 2], keepdims=True)
        masks = tf.where(high > low, (upsampled - low) / tf.where(high > low, high - low, 1.0), 0.0)
        masks = tf.transpose(masks, [0, 3, 1, 2])                                  # (n, k, H, W)
        activations = tf.transpose(upsampled, [0, 3, 1, 2])
        varies = tf.cast(tf.reduce_max(masks, axis=[2, 3]) > 0, tf.float32)         # (n, k)
        masked = tf.reshape(images[:, None] * masks[..., None], tf.concat([[n * k], tf.shape(images)[1:]], 0))
        logits, _ = self.features(masked, training=False)
        probability = tf.nn.softmax(logits, axis=-1)
        weights = tf.reduce_sum(tf.reshape(probability, (n, k, self.units))
                                * tf.one_hot(labels, self.units)[:, None], axis=-1)  # (n, k)
        cam = tf.nn.relu(tf.einsum("nk,nkhw->nhw", weights * varies, activations))
        return normalize_by_peak(cam)

    def run(self, images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        return np.concatenate([self.step(images[i:i + self.per_call], labels[i:i + self.per_call]).numpy()
                               for i in range(0, len(images), self.per_call)])


# --------------------------------------------------------------------------------------------
# Contenders: each is a callable (seed) -> (N, H, W) maps; one-time set-up happens in its first call.
# --------------------------------------------------------------------------------------------
@dataclass
class Contender:
    name: str
    run: Callable[[int], np.ndarray]
    first_s: float = float("nan")
    wall: list = field(default_factory=list)
    cpu: list = field(default_factory=list)
    maps: np.ndarray | None = None

    @property
    def best(self) -> float:
        return min(self.wall) if self.wall else float("nan")

    @property
    def best_cpu(self) -> float:
        return min(self.cpu) if self.cpu else float("nan")


@dataclass
class Request:
    part: str
    title: str
    contenders: list
    visopt_call: Callable[[], np.ndarray]   # one visopt call, for --profile
    notes: list = field(default_factory=list)

    def by_name(self, prefix: str):
        return next((c for c in self.contenders if c.name.startswith(prefix)), None)


def lazy(build: Callable[[], Callable]) -> Callable:
    """A run function whose object is built by its first call (so that the first call times it)."""
    holder = {}

    def run(seed):
        if "fn" not in holder:
            holder["fn"] = build()
        return holder["fn"](seed)
    return run


def peer_model(model: keras.Model) -> keras.Model:
    # tf-keras-vis' ReplaceToLinear reads ``model.output_names``, which Keras 3 Sequential models lack.
    return model if hasattr(model, "output_names") else keras.Model(model.inputs, model.outputs)


def quiet_peer(fn):
    """tf-keras-vis calls the model on a list of inputs: Keras warns about the structure on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return fn()


def smoothgrad_request(model, images, labels, samples) -> Request:
    label_list = [int(v) for v in labels]

    def run_visopt(seed):
        return visualize_saliency(model, LAYER, label_list, images, method="smoothgrad", samples=samples,
                                  noise=NOISE, seed=seed)

    def build_bare():
        loop = BareSmoothGrad(model, samples, NOISE)
        return lambda seed: loop.run(images, labels.astype(np.int32), seed)

    contenders = [Contender("visopt", run_visopt), Contender("bare tf.function", lazy(build_bare))]
    if PEER_IMPORT_ERROR is None:
        def build_peer():
            saliency = Saliency(peer_model(model), model_modifier=ReplaceToLinear(), clone=True)
            score = CategoricalScore(label_list)

            def run(seed):
                np.random.seed(seed)  # its noise comes from numpy's global generator
                return quiet_peer(lambda: np.asarray(saliency(score, images, smooth_samples=samples,
                                                               smooth_noise=NOISE)))
            return run
        contenders.append(Contender("tf-keras-vis 0.8.7", lazy(build_peer)))
    return Request("smoothgrad", f"SmoothGrad, {samples} samples, noise {NOISE}", contenders,
                   lambda: run_visopt(0))


def gradcam_request(model, images, labels) -> Request:
    label_list = [int(v) for v in labels]

    def run_visopt(seed):
        return visualize_cam(model, LAYER, label_list, images, method="gradcam", penultimate_layer=PENULTIMATE)

    def build_bare():
        loop = BareGradCAM(model)
        return lambda seed: loop.run(images, labels.astype(np.int32), seed)

    contenders = [Contender("visopt", run_visopt), Contender("bare tf.function", lazy(build_bare))]
    if PEER_IMPORT_ERROR is None:
        def build_peer():
            gradcam = Gradcam(peer_model(model), model_modifier=ReplaceToLinear(), clone=True)
            score = CategoricalScore(label_list)
            return lambda seed: quiet_peer(lambda: np.asarray(gradcam(score, images, penultimate_layer=PENULTIMATE)))
        contenders.append(Contender("tf-keras-vis 0.8.7", lazy(build_peer)))
    return Request("gradcam", f"Grad-CAM on {PENULTIMATE}", contenders, lambda: run_visopt(0))


def scorecam_request(model, images, labels, channels: int | None) -> Request:
    label_list = [int(v) for v in labels]
    options = {} if channels is None else {"max_channels": channels}

    def run_visopt(seed):
        return visualize_cam(model, LAYER, label_list, images, method="scorecam", penultimate_layer=PENULTIMATE,
                             **options)

    def build_bare():
        loop = BareScoreCAM(model, channels)
        return lambda seed: loop.run(images, labels.astype(np.int32), seed)

    contenders = [Contender("visopt", run_visopt), Contender("bare tf.function", lazy(build_bare))]
    if PEER_IMPORT_ERROR is None:
        peer_options = {} if channels is None else {"max_N": channels}

        def build_peer():
            scorecam = Scorecam(peer_model(model))
            score = CategoricalScore(label_list)
            return lambda seed: quiet_peer(lambda: np.asarray(scorecam(score, images, penultimate_layer=PENULTIMATE,
                                                                       **peer_options)))
        contenders.append(Contender("tf-keras-vis 0.8.7", lazy(build_peer)))
    if channels is None:
        return Request("scorecam", f"Score-CAM, all channels of {PENULTIMATE}", contenders, lambda: run_visopt(0))
    return Request("faster", f"Faster Score-CAM, {channels} channels (visopt max_channels, tf-keras-vis max_N)",
                   contenders, lambda: run_visopt(0))


# --------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------
def timed(fn, *args):
    """(wall seconds, process CPU seconds, result) of ``fn(*args)``."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def alternate(request: Request, rounds: int, log) -> None:
    """One untimed first call of each, then ``rounds`` alternating timed calls (A, B, C, A, B, C, ...)."""
    for c in request.contenders:
        c.first_s, _, c.maps = timed(c.run, 0)
        log(f"  [{request.part}] first call   {c.name:<20} {c.first_s:7.2f} s")
    for r in range(1, rounds + 1):
        for c in request.contenders:
            wall, cpu, c.maps = timed(c.run, r)
            c.wall.append(wall)
            c.cpu.append(cpu)
            log(f"  [{request.part}] round {r}/{rounds}  {c.name:<20} {wall:7.2f} s  ({cpu:.2f} s CPU)")


def spearman_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (ties get their mean rank)."""
    from scipy.stats import rankdata
    out = []
    for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
        rx, ry = rankdata(x), rankdata(y)
        rx, ry = rx - rx.mean(), ry - ry.mean()
        denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
        out.append(float((rx * ry).sum() / denominator) if denominator > 0 else float("nan"))
    return np.array(out)


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    rho = spearman_per_image(a, b)
    return f"Spearman per image: median {np.nanmedian(rho):.3f}, min {np.nanmin(rho):.3f}"


def profile_call(fn, top: int = 8) -> str:
    """Where one call spends its time (cProfile): inside the compiled TensorFlow functions (the
    ``TFE_Py_Execute`` calls that run them) against Python and numpy, and the functions with the
    most time of their own besides those."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    fn()
    profiler.disable()
    wall = time.perf_counter() - start
    entries = pstats.Stats(profiler).stats  # (file, line, name) -> (primitive calls, calls, own s, cumulative s, callers)
    compiled = [(key, value) for key, value in entries.items() if "TFE_Py_Execute" in key[2]]
    compiled_s = sum(value[2] for _, value in compiled)
    compiled_calls = sum(value[1] for _, value in compiled)
    lines = [f"    {wall:.3f} s under the profiler: {compiled_s:.3f} s ({compiled_s / wall:.0%}) in {compiled_calls} "
             f"compiled-function executions, {wall - compiled_s:.3f} s in Python, numpy and OpenCV"]
    others = sorted(((value[2], value[1], key) for key, value in entries.items() if "TFE_Py_Execute" not in key[2]),
                    reverse=True)[:top]
    for own, calls, (filename, line, name) in others:
        where = name if filename == "~" else f"{os.path.basename(filename)}:{line}({name})"
        lines.append(f"      {own:7.3f} s own  {calls:6d} calls  {where}")
    return "\n".join(lines)


def version(module: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 images, 5 samples, 1 round")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timed rounds (default 5; 1 with --quick)")
    parser.add_argument("--images", type=int, default=None, help="images per request (default 64; 8 with --quick)")
    parser.add_argument("--samples", type=int, default=None, help="SmoothGrad samples (default 50; 5 with --quick)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    parser.add_argument("--profile", action="store_true", help="cProfile one visopt call of each request")
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    args.images = args.images if args.images is not None else (8 if args.quick else 64)
    args.samples = args.samples if args.samples is not None else (5 if args.quick else 50)
    args.skip = {p.strip() for p in args.skip.split(",") if p.strip()}
    unknown = args.skip - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) in --skip: {sorted(unknown)}; valid: {','.join(PARTS)}")
    if args.rounds < 1 or args.images < 1 or args.samples < 1:
        parser.error("--rounds, --images and --samples must be >= 1")
    return args


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message: str = "") -> None:
        print(message, flush=True)

    keras.utils.disable_interactive_logging()  # tf-keras-vis' Scorecam calls model.predict with a progress bar
    load_start = load_average()
    log("visopt saliency and CAM benchmark")
    log(f"  date {datetime.date.today()}  cpu {cpu_name()}  cores {os.cpu_count()}  python {platform.python_version()}")
    log(f"  tensorflow {tf.__version__}  keras {keras.__version__}  visopt {visopt.__version__} "
        f"({visopt_revision()})  tf-keras-vis {version('tf-keras-vis')}  scipy {version('scipy')}")
    log(f"  load average at start (1, 5, 15 min): {load_start}")
    log(f"  requests: {args.images} images of {SIZE}x{SIZE}x3, one true label each; SmoothGrad {args.samples} "
        f"samples; visopt batch_size {BATCH_SIZE} (default); best of {args.rounds} alternating round(s)")
    if PEER_IMPORT_ERROR is not None:
        log(f"  tf-keras-vis is not installed ({PEER_IMPORT_ERROR}); skipping the peer. "
            "Install it with: pip install -e .[benchmark]")

    log(f"training the demo model (cnn, seed 0, size {SIZE}) ...")
    model = train_demo_model("cnn", seed=0, size=SIZE)
    images, labels = make_dataset(args.images, size=SIZE, seed=4242)
    accuracy = float(np.mean(np.argmax(model.predict(images, verbose=0), axis=1) == labels))
    log(f"  accuracy on the {args.images} benchmark images: {accuracy:.3f}")

    requests = []
    if "smoothgrad" not in args.skip:
        requests.append(smoothgrad_request(model, images, labels, args.samples))
    if "gradcam" not in args.skip:
        requests.append(gradcam_request(model, images, labels))
    if "scorecam" not in args.skip:
        requests.append(scorecam_request(model, images, labels, None))
    if "faster" not in args.skip:
        requests.append(scorecam_request(model, images, labels, FASTER_CHANNELS))

    for request in requests:
        log(f"{request.title} ...")
        alternate(request, args.rounds, log)

    # Same math: visopt's maps against the bare loop's (same seed), and agreement with the peer.
    log("checking the maps ...")
    for request in requests:
        visopt_c, bare, peer = (request.by_name("visopt"), request.by_name("bare"), request.by_name("tf-keras-vis"))
        seed = args.rounds  # the last round's maps
        difference = float(np.max(np.abs(visopt_c.maps - bare.maps)))
        verdict = "same maps" if difference < 1e-3 else "WARNING: NOT the same maps, the ratio to bare is not comparable"
        request.notes.append(f"visopt vs bare (seed {seed}): max |difference| {difference:.1e} ({verdict})")
        if peer is not None:
            request.notes.append(f"visopt vs tf-keras-vis: {agreement(visopt_c.maps, peer.maps)}")
        if request.part == "smoothgrad" and peer is not None:
            # tf-keras-vis averages |gradient| (its gradient_modifier runs on every sample); visopt averages
            # the signed gradient (as Smilkov et al.). Two more pairs separate that from the noise draw.
            other_seed = visopt_c.run(seed + 1000)
            request.notes.append(f"visopt vs visopt with another noise seed: {agreement(visopt_c.maps, other_seed)}")
            np.random.seed(seed)
            signed = quiet_peer(lambda: np.asarray(Saliency(peer_model(model), model_modifier=ReplaceToLinear())(
                CategoricalScore([int(v) for v in labels]), images, smooth_samples=args.samples, smooth_noise=NOISE,
                gradient_modifier=None, keepdims=True, normalize_map=False)))
            request.notes.append(f"tf-keras-vis with gradient_modifier=None, then max |.| over channels (visopt's "
                                 f"math, its own noise) vs visopt: {agreement(visopt_c.maps, np.abs(signed).max(-1))}")
        if request.part == "scorecam" and peer is not None:
            linear = quiet_peer(lambda: np.asarray(Scorecam(peer_model(model), model_modifier=ReplaceToLinear())(
                CategoricalScore([int(v) for v in labels]), images, penultimate_layer=PENULTIMATE)))
            request.notes.append(f"tf-keras-vis Scorecam with ReplaceToLinear (softmax of the logits instead of "
                                 f"softmax of the probabilities) vs visopt: {agreement(visopt_c.maps, linear)}")
        for note in request.notes:
            log(f"  [{request.part}] {note}")

    if args.profile:
        log("")
        log("profiles (one visopt call each, cProfile):")
        for request in requests:
            log(f"  {request.title}:")
            log(profile_call(request.visopt_call))

    load_end = load_average()
    log("")
    log(f"Results ({args.images} images of {SIZE}x{SIZE}, best of {args.rounds} alternating rounds; seconds):")
    log(f"  {'request':<22} {'contender':<20} {'first call':>10} {'best wall':>10} {'best CPU':>9}   "
        "wall time of each round")
    for request in requests:
        for c in request.contenders:
            rounds = " ".join(f"{s:.2f}" for s in c.wall)
            log(f"  {request.part:<22} {c.name:<20} {c.first_s:10.2f} {c.best:10.3f} {c.best_cpu:9.3f}   {rounds}")
    log("")
    log("Ratios of best rounds, wall (CPU); targets apply to wall time:")
    log(f"  {'request':<22} {'tf-keras-vis / visopt':>24}   {'visopt / bare':>20}")
    for request in requests:
        visopt_c, bare, peer = (request.by_name("visopt"), request.by_name("bare"), request.by_name("tf-keras-vis"))
        vb, vb_cpu = ratio(visopt_c.best, bare.best), ratio(visopt_c.best_cpu, bare.best_cpu)
        vb_text = f"{vb:6.2f}x ({vb_cpu:5.2f}x) {'PASS' if vb <= BARE_TARGET else 'MISS'}"
        if peer is not None:
            pv, pv_cpu = ratio(peer.best, visopt_c.best), ratio(peer.best_cpu, visopt_c.best_cpu)
            pv_text = f"{pv:7.2f}x ({pv_cpu:6.2f}x) {'PASS' if pv >= PEER_TARGET else 'MISS'}"
        else:
            pv_text = f"{'skipped':>24}"
        log(f"  {request.part:<22} {pv_text:>24}   {vb_text:>20}")
    log(f"  targets: tf-keras-vis / visopt >= {PEER_TARGET:.1f} (not slower anywhere); "
        f"visopt / bare <= {BARE_TARGET:.1f}")
    log(f"  load average (1, 5, 15 min): start {load_start}, end {load_end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
