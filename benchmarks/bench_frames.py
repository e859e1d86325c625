"""Frames benchmark: what recording animations costs, measured in one process (plus memory probes).

Six measurements, each a ratio taken within this one run:

a. **Memory of a frame writer against the number of frames.** A ``visopt.FrameWriter`` writes 100
   and then 1500 frames of a 4x4 tiled batch of 32x32 RGB images (GIF, and MP4), against
   tf-keras-vis 0.8.7's ``GifGenerator2D`` driven with the same batches (it keeps every frame in
   memory and writes the GIF at the end; it records the first image of the batch only, so it is
   also fed the tiled grid as its image, for the same pixels per frame). Each case runs in a fresh
   Python process (``--memory-child``), so that memory freed by an earlier case cannot hide the
   growth of a later one; peak RSS is sampled by a thread (psutil), for the process alone and with
   its child processes (the MP4 encoder is an ``ffmpeg`` child process).
b. **Recording on vs off in ``minimize``.** The request of bench_core.py (the demo CNN
   ``train_demo_model("cnn", seed=0)``, ``ActivationMaximization("predictions", [0,1,2,3]*4) +
   0.5*LPNorm() + 2*TotalVariation()``, 200 steps, one reused ``visopt.Optimizer``) with
   ``progress_gif_path`` off, ``.gif`` every step, ``.mp4`` every step, ``.gif`` with
   ``frame_every=5``, and a ``ProgressRecorder(image_index=0)`` GIF (the first image only, as
   tf-keras-vis records). Alternating rounds; best of N; ratios against off.
c. **GIF size and recording overhead against tf-keras-vis.** tf-keras-vis's ``ActivationMaximization``
   on the same 16-image request for 200 steps, with and without ``GifGenerator2D``, in alternating
   rounds; its file size, frames and recording overhead next to visopt's from (b).
d. **Fit time with and without ``WeightSnapshot``** (snapshots every 10 batches,
   ``render_videos=True``) on ``build_model("cnn", size=64, seed=0)``, 4096 samples, batch 64, 3
   epochs; also with ``render_videos=False``, to split recording from rendering. Alternating
   rounds, best of N (at least 3).

e. **Fit overhead with videos at two scales**: the fit of (d) (the "5-second fit") and a
   MobileNetV2 (alpha 0.35, 64x64 input, ``weights=None``, 158 trainable tensors, 1024 random
   samples, batch 32, 2 epochs); plain, with ``WeightSnapshot(batch_interval=10)`` rendering its
   videos at train end, in the background (``render_videos="background"``: timed until
   ``wait()`` returns, and the fit's own return), and recording only. Alternating rounds, best of
   N; load average printed. Where the visopt measured has no background rendering (before issue
   15) that contender is left out, so the same script measures a checkout before and after:
   ``PYTHONPATH=/path/to/old/checkout python benchmarks/bench_frames.py --skip a,b,c,d``. With
   ``--before CHECKOUT``, ``render_snapshots`` of the same folders is also timed by that visopt and
   by this one, alternating, one child process per call (after a warm-up call in it).
f. **Disk per snapshot**: the folder a fit leaves (stacks, journal, manifest) divided by its
   snapshots, for the models of (e) in float32 and float16, and an ``Embedding(20000, 64)``
   recorded every batch for 150 batches, without and with ``max_bytes=64 MiB`` (float16).

Run from the repository root::

    python benchmarks/bench_frames.py              # full run, 5 rounds (15-20 minutes on 2 busy cores)
    python benchmarks/bench_frames.py --quick      # smoke run: few frames and steps, 1 round
    python benchmarks/bench_frames.py --rounds 8   # what docs/benchmarks.md reports
    python benchmarks/bench_frames.py --skip a,b,c,e,f # one part only (a: memory, b: minimize, c: tf-keras-vis,
                                                   # d: fit, e: fit with videos at scale, f: disk per snapshot)
    python benchmarks/bench_frames.py --skip a,c,d --size 64   # part b with a longer step (64x64 images)
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

try:
    import visopt
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import visopt
from visopt import FrameWriter  # noqa: E402
from _machine import cpu_name, load_average, visopt_revision  # noqa: E402 - benchmarks/ is sys.path[0]
from visopt import stitch_images  # noqa: E402

try:
    import psutil
except ImportError:
    psutil = None

try:
    from tf_keras_vis.activation_maximization.callbacks import GifGenerator2D
    PEER_IMPORT_ERROR = None
except ImportError as error:  # the benchmark still runs, without the peer
    GifGenerator2D = None
    PEER_IMPORT_ERROR = error

LAYER = "predictions"
CLASSES = [0, 1, 2, 3] * 4
LP_WEIGHT, TV_WEIGHT = 0.5, 2.0
GRID = 16                      # images per frame in (a): a 4x4 tiled batch of 32x32 RGB images
SNAPSHOT_TARGET = 1.10         # fit with / without WeightSnapshot, at most
SNAPSHOT_MODEL = dict(architecture="cnn", size=64, seed=0)
SNAPSHOT_BATCH = 64
SNAPSHOT_EVERY = 10            # batch_interval


# --------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------
class PeakRss:
    """Peak RSS above the level at entry, sampled by a thread: the process alone and with its children."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.growth_mib = self.growth_with_children_mib = float("nan")

    def _rss(self) -> tuple[int, int]:
        own = self._process.memory_info().rss
        children = 0
        for child in self._process.children(recursive=True):
            try:
                # A child that is still this program is a fork that has not exec'd ffmpeg yet: its RSS
                # is this process's pages, shared, and would be counted twice (seen: +200 MiB).
                if child.name() == self._name:
                    continue
                children += child.memory_info().rss
            except psutil.Error:  # exited between the listing and the reading
                pass
        return own, own + children

    def __enter__(self):
        if psutil is None:
            raise RuntimeError("the memory measurement needs psutil: pip install psutil")
        gc.collect()
        self._process = psutil.Process()
        self._name = self._process.name()
        self._base, self._base_all = self._rss()
        self._peak, self._peak_all = self._base, self._base_all
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        tick = 0
        while not self._stop.is_set():
            if tick % 5 == 0:  # listing children costs more: every 5th sample (10 ms)
                own, everything = self._rss()
                self._peak_all = max(self._peak_all, everything)
            else:
                own = self._process.memory_info().rss
            self._peak = max(self._peak, own)
            tick += 1
            time.sleep(self.interval_s)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        own, everything = self._rss()
        self.growth_mib = (max(self._peak, own) - self._base) / 2**20
        self.growth_with_children_mib = (max(self._peak_all, everything) - self._base_all) / 2**20
        return False



def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its waited-for children (the ffmpeg encoder)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn, *args):
    """(wall seconds, CPU seconds incl. children, result) of ``fn(*args)``."""
    gc.collect()
    start, start_cpu = time.perf_counter(), cpu_seconds()
    result = fn(*args)
    return time.perf_counter() - start, cpu_seconds() - start_cpu, result


@dataclass
class Contender:
    name: str
    run: Callable[[int], object]          # (seed) -> anything
    first_s: float = float("nan")
    wall: list = field(default_factory=list)
    cpu: list = field(default_factory=list)
    last: object = None
    last_all: list = field(default_factory=list)   # what each timed round returned

    @property
    def best(self) -> float:
        return min(self.wall)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)


def alternate(contenders: list[Contender], rounds: int, log, label: str) -> None:
    """One untimed first call of each, then ``rounds`` alternating timed calls (A, B, C, A, B, C, ...)."""
    for c in contenders:
        c.first_s, _, c.last = timed(c.run, 0)
        log(f"  {label} first call  {c.name:<34} {c.first_s:7.2f} s")
    for r in range(1, rounds + 1):
        for c in contenders:
            wall, cpu, c.last = timed(c.run, r)
            c.last_all.append(c.last)
            c.wall.append(wall)
            c.cpu.append(cpu)
            log(f"  {label} round {r}/{rounds}  {c.name:<34} {wall:7.2f} s  ({cpu:.2f} s CPU)")


def paired_overhead(on: Contender, off: Contender) -> float:
    """Median over rounds of (on - off) wall seconds, each pair taken back to back."""
    return statistics.median(a - b for a, b in zip(on.wall, off.wall))


def paired_ratio(on: Contender, off: Contender, cpu: bool = False) -> float:
    """Median over rounds of on / off (wall or CPU), each pair taken back to back."""
    pairs = zip(on.cpu, off.cpu) if cpu else zip(on.wall, off.wall)
    return statistics.median(a / b for a, b in pairs)


def version(module: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def gif_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """(frames, (width, height)) of a GIF."""
    from PIL import Image
    with Image.open(path) as image:
        return image.n_frames, image.size


def mp4_frames(path: Path) -> tuple[int, tuple[int, int]]:
    import imageio_ffmpeg
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    reader.close()
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return frames, tuple(meta["size"])


def describe(path: Path) -> tuple[int, tuple[int, int], int]:
    """(frames, (width, height), bytes) of a GIF or MP4."""
    frames, size = mp4_frames(path) if path.suffix == ".mp4" else gif_frames(path)
    return frames, size, path.stat().st_size


# --------------------------------------------------------------------------------------------
# (a) memory against the number of frames, one fresh process per case
# --------------------------------------------------------------------------------------------
MEMORY_CASES = {
    "visopt FrameWriter .gif": "Frames tiled 4x4 (131x131 px + caption), written as they come",
    "visopt FrameWriter .mp4": "the same frames, H.264 through an ffmpeg child process",
    "tf-keras-vis GifGenerator2D": "its own use: the first 32x32 image of each batch, kept in memory",
    "tf-keras-vis GifGenerator2D, grid": "fed the 4x4 grid as its image: the same pixels per frame as visopt",
}


def frame_pool(count: int = 8) -> np.ndarray:
    """``count`` different batches (16, 32, 32, 3) uint8 of the demo's patterns, cycled as frames."""
    from visopt.demo import make_dataset
    images, _ = make_dataset(count * GRID, seed=5)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(count, GRID, 32, 32, 3)


def write_frames(case: str, frames: int, path: Path, pool: np.ndarray) -> None:
    if case.startswith("visopt"):
        with FrameWriter(path, fps=20) as writer:
            for i in range(frames):
                writer.write(pool[i % len(pool)], text=f"step {i}")
        return
    grid = case.endswith("grid")
    callback = GifGenerator2D(str(path))
    callback.on_begin(steps=frames)
    for i in range(frames):
        batch = pool[i % len(pool)]
        if grid:
            batch = stitch_images(batch, margin=1, fill=255)[None]
        callback(i, [batch])  # tf-keras-vis passes a list (one entry per model input) of batches
    callback.on_end()


def memory_child(case: str, frames: int, folder: str) -> None:
    """Runs in a fresh process: warm up (imports, encoder start), then measure ``frames`` frames."""
    pool = frame_pool()
    suffix = ".mp4" if case.endswith(".mp4") else ".gif"
    folder = Path(folder)
    write_frames(case, 10, folder / f"warmup{suffix}", pool)
    path = folder / f"frames{suffix}"
    with PeakRss() as peak:
        start = time.perf_counter()
        write_frames(case, frames, path, pool)
        seconds = time.perf_counter() - start
    written, size, nbytes = describe(path)
    print(json.dumps({"growth_mib": peak.growth_mib, "growth_all_mib": peak.growth_with_children_mib,
                      "seconds": seconds, "frames": written, "size": size, "bytes": nbytes}))


def memory_by_frames(counts: tuple[int, int], log) -> dict:
    cases = [c for c in MEMORY_CASES if c.startswith("visopt") or GifGenerator2D is not None]
    results = {}
    for case in cases:
        for frames in counts:
            with tempfile.TemporaryDirectory(prefix="bench_frames_") as folder:
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", case,
                                      str(frames), folder], capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"memory probe {case!r} {frames} failed:\n{out.stderr[-3000:]}")
            results[case, frames] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[case, frames]
            log(f"  memory  {case:<34} {frames:5d} frames  +{r['growth_mib']:6.1f} MiB "
                f"(+{r['growth_all_mib']:6.1f} MiB with children)  {r['seconds']:6.2f} s")
    return results


# --------------------------------------------------------------------------------------------
# (b) recording on vs off in minimize, (c) tf-keras-vis with and without GifGenerator2D
# --------------------------------------------------------------------------------------------
def recording_contenders(model, steps: int, folder: Path) -> list[Contender]:
    from visopt import ProgressRecorder

    energy = (visopt.ActivationMaximization(LAYER, CLASSES) + LP_WEIGHT * visopt.LPNorm()
              + TV_WEIGHT * visopt.TotalVariation())
    optimizer = visopt.Optimizer(model, energy)

    def minimize(path=None, frame_every=1, callbacks=None):
        def run(seed):
            if path is not None:
                Path(path).unlink(missing_ok=True)
            optimizer.minimize(max_iter=steps, seed=seed, verbose=False, progress_gif_path=path,
                               frame_every=frame_every, callbacks=callbacks)
            return None if path is None else Path(path)
        return run

    def first_image(seed):
        path = folder / "first_image.gif"
        path.unlink(missing_ok=True)
        optimizer.minimize(max_iter=steps, seed=seed, verbose=False,
                           callbacks=[ProgressRecorder(path, image_index=0)])
        return path

    return [Contender("off", minimize()),
            Contender(".gif every step", minimize(folder / "every.gif")),
            Contender(".mp4 every step", minimize(folder / "every.mp4")),
            Contender(".gif frame_every=5", minimize(folder / "every5.gif", frame_every=5)),
            Contender(".gif first image only", first_image)]


def peer_contenders(model, steps: int, folder: Path) -> list[Contender]:
    import keras
    import tensorflow as tf
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    functional = model if hasattr(model, "output_names") else keras.Model(model.inputs, model.outputs)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])

    def peer(gif: bool):
        def run(seed):
            tf.random.set_seed(seed)
            np.random.seed(seed)  # its Jitter draws from numpy's global generator
            path = folder / "peer.gif"
            path.unlink(missing_ok=True)
            callbacks = [GifGenerator2D(str(path))] if gif else None
            visualizer = ActivationMaximization(functional, model_modifier=ReplaceToLinear(), clone=True)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
                visualizer(CategoricalScore(CLASSES), seed_input=tf.random.uniform((len(CLASSES),) + shape, 0, 255),
                           input_range=(0, 255), steps=steps, callbacks=callbacks)
            return path if gif else None
        return run

    return [Contender("tf-keras-vis off", peer(False)), Contender("tf-keras-vis GifGenerator2D", peer(True))]


# --------------------------------------------------------------------------------------------
# (d) fit with and without WeightSnapshot
# --------------------------------------------------------------------------------------------
def snapshot_contenders(samples: int, epochs: int, folder: Path):
    """One model per contender (the same start weights), so that its compiled train step is traced in
    the untimed first call and reused by the timed rounds, as in a long training."""
    from visopt import WeightSnapshot
    from visopt.demo import build_model, make_dataset

    x, y = make_dataset(samples, size=SNAPSHOT_MODEL["size"], seed=1)
    runs = itertools.count()

    def fit(snapshot: bool, render: bool = True):
        model = build_model(**SNAPSHOT_MODEL)

        def run(seed):
            callbacks, out = [], None
            if snapshot:
                out = folder / f"snapshots_{next(runs)}"
                callbacks.append(WeightSnapshot(out, epoch_interval=1, batch_interval=SNAPSHOT_EVERY,
                                                render_videos=render))
            model.fit(x, y, batch_size=SNAPSHOT_BATCH, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
            if out is None:
                return None
            files = sorted(p for p in out.rglob("*") if p.is_file())
            summary = (len(files), sum(p.stat().st_size for p in files), sorted({p.suffix for p in files}))
            shutil.rmtree(out, ignore_errors=True)
            return summary
        return run

    return [Contender("fit without WeightSnapshot", fit(False)),
            Contender("fit with WeightSnapshot", fit(True)),
            Contender("  (the same, render_videos=False)", fit(True, render=False))]


# --------------------------------------------------------------------------------------------
# (e) fit overhead with videos at two scales, (f) disk per snapshot
# --------------------------------------------------------------------------------------------
SCALE_EVERY = 10               # batch_interval of (e)
EMBEDDING = (20000, 64)        # the Embedding of (f), recorded every batch
EMBEDDING_BATCHES = 150
EMBEDDING_BUDGET = 64 * 2**20  # max_bytes of (f), where the visopt being measured has it


def has_background() -> bool:
    """Whether the visopt being measured renders videos off the training thread (issue 15)."""
    return hasattr(visopt.WeightSnapshot, "wait")


def scale_models(quick: bool) -> dict:
    """(build, x, y, batch, epochs) of the 5-second fit (the demo CNN of (d)) and of MobileNetV2."""
    import keras
    from visopt.demo import build_model, make_dataset

    def mobilenet():
        keras.utils.set_random_seed(0)
        model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=10)
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    x, y = make_dataset(640 if quick else 4096, size=64, seed=1)
    rng = np.random.default_rng(0)
    count = 256 if quick else 1024
    mx, my = rng.random((count, 64, 64, 3), np.float32), rng.integers(0, 10, count)
    return {"cnn (the 5-second fit)": (lambda: build_model(**SNAPSHOT_MODEL), x, y, SNAPSHOT_BATCH, 1 if quick else 3),
            "MobileNetV2 a=0.35 64px": (mobilenet, mx, my, 32, 1 if quick else 2)}


def folder_summary(out: Path) -> tuple[int, int]:
    files = [p for p in out.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def scale_contenders(build, x, y, batch: int, epochs: int, folder: Path) -> list[Contender]:
    """Plain fit, and fit with WeightSnapshot every SCALE_EVERY batches: videos at train end, in the
    background (timed until ``wait()`` returns; the fit's own return is in the summary), none."""
    from visopt import WeightSnapshot

    runs = itertools.count()

    def fit(render):
        model = build()

        def run(seed):
            out = folder / f"scale_{next(runs)}"
            callbacks = [] if render is None else [WeightSnapshot(out, batch_interval=SCALE_EVERY,
                                                                  render_videos=render)]
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
            returned = time.perf_counter() - start
            if render == "background":
                callbacks[0].wait()
            summary = {"fit_return_s": returned, "snapshots": callbacks[0].snapshots if callbacks else 0,
                       "files": folder_summary(out) if out.exists() else (0, 0)}
            shutil.rmtree(out, ignore_errors=True)
            return summary
        return run

    contenders = [Contender("plain fit", fit(None)), Contender("videos at train end", fit(True))]
    if has_background():
        contenders.append(Contender("videos, render_videos='background'", fit("background")))
    contenders.append(Contender("snapshots only (no videos)", fit(False)))
    return contenders


def scale_report(name: str, contenders: list[Contender], rounds: int, load: str) -> list[str]:
    plain = contenders[0]
    lines = ["", f"(e) {name}: fit with WeightSnapshot(batch_interval={SCALE_EVERY}); seconds, best of {rounds} "
                 f"alternating rounds; paired: median of the rounds' ratios; CPU: the process and its waited-for "
                 f"children (ffmpeg); load average {load}",
             f"  {'':<38} {'best wall':>9} {'/ plain':>8} {'paired':>7} {'best CPU':>8} {'/ plain':>8} "
             f"{'fit returns':>11} {'/ plain':>8}   rounds"]
    for c in contenders:
        returned = min(s["fit_return_s"] for s in c.last_all) if c.last_all else float("nan")
        back = f"{returned:11.2f} {returned / plain.best:7.3f}x" if c.name.endswith("'background'") else " " * 20
        lines.append(f"  {c.name:<38} {c.best:9.2f} {c.best / plain.best:7.3f}x {paired_ratio(c, plain):6.3f}x "
                     f"{c.best_cpu:8.2f} {c.best_cpu / plain.best_cpu:7.3f}x "
                     f"{back}   {' '.join(f'{s:.2f}' for s in c.wall)}")
    last = contenders[1].last
    lines.append(f"  {last['snapshots']} snapshots; the output of the last round with videos: {last['files'][0]} files, "
                 f"{last['files'][1] / 2**20:.2f} MiB")
    return lines


RENDER_CHILD = """
import json, os, shutil, sys, time
from visopt import render_snapshots
folder, out = sys.argv[1], sys.argv[2]
render_snapshots(folder, out=out)  # imports, caches and the first encoder start out of the timing
shutil.rmtree(out)
start, cpu = time.perf_counter(), os.times()
render_snapshots(folder, out=out)
end = os.times()
print(json.dumps({"wall": time.perf_counter() - start,
                  "cpu": end.user + end.system + end.children_user + end.children_system
                         - cpu.user - cpu.system - cpu.children_user - cpu.children_system}))
"""


def render_before_after(models: dict, before: str, rounds: int, folder: Path, log) -> list[str]:
    """``render_snapshots`` of the same snapshot folders by the visopt at ``before`` and by this one,
    each in a child process (timed after a warm-up call), alternating."""
    from visopt import WeightSnapshot

    lines = ["", f"(e) render_snapshots alone (the videos of (e) at train end), this visopt vs the one at {before}: "
                 f"seconds, best of {rounds} alternating rounds (a child process each); load average {load_average()}",
             f"  {'snapshots of':<28} {'before wall':>11} {'CPU':>6} {'after wall':>10} {'CPU':>6} {'wall ratio':>10} "
             f"{'CPU ratio':>9}"]
    for name, (build, x, y, batch, epochs) in models.items():
        snapshots = folder / f"render_{len(lines)}"
        build().fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False,
                    callbacks=[WeightSnapshot(snapshots, batch_interval=SCALE_EVERY)])
        times = {"before": [], "after": []}
        for r in range(rounds):
            for label, path in (("before", before), ("after", os.path.dirname(os.path.dirname(visopt.__file__)))):
                env = dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3")
                out = subprocess.run([sys.executable, "-c", RENDER_CHILD, str(snapshots), str(folder / "videos")],
                                     env=env, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(f"render child ({label}) failed:\n{out.stderr[-3000:]}")
                times[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
                shutil.rmtree(folder / "videos", ignore_errors=True)
                log(f"  (e) render round {r + 1}/{rounds}  {name:<28} {label:<6} {times[label][-1]['wall']:6.2f} s "
                    f"({times[label][-1]['cpu']:.2f} s CPU)")
        best = {k: (min(t["wall"] for t in v), min(t["cpu"] for t in v)) for k, v in times.items()}
        lines.append(f"  {name:<28} {best['before'][0]:11.2f} {best['before'][1]:6.2f} {best['after'][0]:10.2f} "
                     f"{best['after'][1]:6.2f} {best['after'][0] / best['before'][0]:9.2f}x "
                     f"{best['after'][1] / best['before'][1]:8.2f}x")
        shutil.rmtree(snapshots, ignore_errors=True)
    return lines


def embedding_model(seed: int = 0):
    import keras
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((20,), dtype="int32")
    hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(*EMBEDDING, name="embedding")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def disk_per_snapshot(models: dict, folder: Path, quick: bool, log) -> list[str]:
    """Bytes a snapshot takes on disk: the models of (e), float32 and float16; the Embedding every batch,
    without and with a budget."""
    import inspect
    from visopt import WeightSnapshot

    options = inspect.signature(WeightSnapshot).parameters
    lines = ["", "(f) disk per snapshot (the snapshot folder: stacks, journal, manifest; no videos)",
             f"  {'model':<34} {'storage':<34} {'snapshots':>9} {'folder':>11} {'per snapshot':>13} {'fit s':>6}"]
    cases = [(name, spec, {}) for name, spec in models.items()]
    cases += [(name, spec, {"dtype": "float16"}) for name, spec in models.items() if "dtype" in options]
    rng = np.random.default_rng(1)
    batches = 20 if quick else EMBEDDING_BATCHES
    tokens, labels = rng.integers(0, EMBEDDING[0], (batches * 32, 20)), rng.integers(0, 2, batches * 32)
    embedding = (embedding_model, tokens, labels, 32, 1)
    cases.append((f"Embedding{EMBEDDING} every batch", embedding, {"batch_interval": 1}))
    if "max_bytes" in options:
        cases.append((f"Embedding{EMBEDDING} every batch", embedding,
                      {"batch_interval": 1, "max_bytes": EMBEDDING_BUDGET, "dtype": "float16"}))
    for name, (build, x, y, batch, epochs), extra in cases:
        out = folder / "disk"
        options_used = dict({"batch_interval": SCALE_EVERY}, **extra)
        callback = WeightSnapshot(out, **options_used)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the budget's one warning
            build().fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=[callback])
        seconds = time.perf_counter() - start
        count = len(visopt.SnapshotFolder(out))
        _, nbytes = folder_summary(out)
        shutil.rmtree(out, ignore_errors=True)
        label = ", ".join(f"{k}={v}" for k, v in extra.items() if k != "batch_interval") or "float32"
        lines.append(f"  {name:<34} {label:<34} {count:9d} {nbytes / 2**20:7.2f} MiB {nbytes / max(count, 1) / 2**10:9.1f} KiB "
                     f"{seconds:6.2f}")
        log(lines[-1])
    return lines


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 vs 200 frames, 20 steps, 1 round, a short fit")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timed rounds (default 5; 1 with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="optimization steps (default 200; 20 with --quick)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c,d,e,f")
    parser.add_argument("--size", type=int, default=32,
                        help="image size of the demo model of parts b and c (default 32; 64 makes a longer step)")
    parser.add_argument("--models", default="cnn,mobilenet",
                        help="(e, f) which fits: cnn (the 5-second fit), mobilenet, or both (default)")
    parser.add_argument("--before", default=None, metavar="CHECKOUT",
                        help="(e) also times render_snapshots of this visopt checkout (a folder holding visopt/, "
                             "e.g. made by `git worktree add /tmp/before HEAD`) against this one, alternating")
    parser.add_argument("--memory-child", nargs=3, metavar=("CASE", "FRAMES", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    args.steps = args.steps if args.steps is not None else (20 if args.quick else 200)
    args.frame_counts = (20, 200) if args.quick else (100, 1500)
    args.fit_samples, args.fit_epochs = (640, 1) if args.quick else (4096, 3)
    args.skip = {p.strip() for p in args.skip.split(",") if p.strip()}
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        case, frames, folder = args.memory_child
        memory_child(case, int(frames), folder)
        return 0

    import keras
    import tensorflow as tf

    def log(message: str = "") -> None:
        print(message, flush=True)

    log("visopt frames benchmark")
    log(f"  date {datetime.date.today()}  cpu {cpu_name()}  cores {os.cpu_count()}  python {platform.python_version()}")
    log(f"  tensorflow {tf.__version__}  keras {keras.__version__}  visopt {visopt.__version__} ({visopt_revision()})")
    log(f"  tf-keras-vis {version('tf-keras-vis')}  pillow {version('pillow')}  imageio {version('imageio')}  "
        f"imageio-ffmpeg {version('imageio-ffmpeg')}  opencv {version('opencv-python-headless')}  "
        f"psutil {version('psutil')}")
    log(f"  best of {args.rounds} alternating round(s); optimization: {len(CLASSES)} images, {args.steps} steps")
    log(f"  load average at start: {load_average()} (the machine is shared: other jobs run beside this one)")
    if PEER_IMPORT_ERROR is not None:
        log(f"  tf-keras-vis is not installed ({PEER_IMPORT_ERROR}); skipping the peer. "
            "Install it with: pip install -e .[benchmark]")
    folder = Path(tempfile.mkdtemp(prefix="bench_frames_"))
    report: list[str] = []
    try:
        if "a" not in args.skip:
            log("(a) memory against the number of frames (one fresh process per case) ...")
            memory = memory_by_frames(args.frame_counts, log)
            low, high = args.frame_counts
            report += ["", f"(a) Peak RSS growth while writing {low} vs {high} frames of a 4x4 batch of 32x32 "
                           f"RGB images (psutil, sampled every 2 ms; fresh process per case):",
                       f"  {'writer':<34} {'frames':>6} {'RSS growth':>11} {'+children':>10} {'seconds':>8} "
                       f"{'ms/frame':>8} {'file':>9}  frame size"]
            for case in MEMORY_CASES:
                for frames in args.frame_counts:
                    r = memory.get((case, frames))
                    if r is None:
                        continue
                    report.append(f"  {case:<34} {r['frames']:6d} {r['growth_mib']:8.1f} MiB {r['growth_all_mib']:6.1f} MiB "
                                  f"{r['seconds']:8.2f} {1000 * r['seconds'] / frames:8.2f} {r['bytes'] / 2**20:6.2f} MiB"
                                  f"  {r['size'][0]}x{r['size'][1]}")
            for case in MEMORY_CASES:
                if (case, low) in memory:
                    a, b = memory[case, low], memory[case, high]
                    report.append(f"  {case:<34} growth {high} / {low} frames: +{a['growth_all_mib']:.1f} -> "
                                  f"+{b['growth_all_mib']:.1f} MiB (with children); "
                                  f"{b['growth_all_mib'] - a['growth_all_mib']:+.1f} MiB for {high - low} more frames")
            for case in MEMORY_CASES:
                log(f"      {case}: {MEMORY_CASES[case]}")

        needs_model = not {"b", "c"} <= args.skip
        if needs_model:
            from visopt.demo import train_demo_model
            log(f"training the demo model (cnn, seed 0, size {args.size}) ...")
            model = train_demo_model("cnn", seed=0, size=args.size)

        recording = {}
        if "b" not in args.skip:
            log("(b) recording on vs off in Optimizer.minimize ...")
            contenders = recording_contenders(model, args.steps, folder)
            alternate(contenders, args.rounds, log, "(b)")
            recording = {c.name: c for c in contenders}
            off = recording["off"]
            report += ["", f"(b) Optimizer.minimize, {len(CLASSES)} images of {args.size}x{args.size}, {args.steps} steps, "
                           f"one reused Optimizer; "
                           f"seconds, best of {args.rounds} (CPU incl. the ffmpeg child):",
                       f"  {'progress recording':<24} {'best wall':>9} {'best CPU':>9} {'wall/off':>9} {'CPU/off':>8} "
                       f"{'median paired +s':>16}  {'frames':>6} {'file':>9}  frame size   rounds"]
            for c in contenders:
                rounds = " ".join(f"{s:.2f}" for s in c.wall)
                if c.last is not None:
                    frames, size, nbytes = describe(c.last)
                    files = f"{frames:6d} {nbytes / 2**20:6.2f} MiB  {size[0]}x{size[1]}".ljust(30)
                    extra = f"{paired_overhead(c, off):+16.3f}"
                else:
                    files, extra = f"{'-':>6} {'-':>9}  {'-':<10}".ljust(30), f"{'-':>16}"
                report.append(f"  {c.name:<24} {c.best:9.2f} {c.best_cpu:9.2f} {c.best / off.best:8.2f}x "
                              f"{c.best_cpu / off.best_cpu:7.2f}x {extra}  {files} {rounds}")

        if "c" not in args.skip and GifGenerator2D is not None:
            log("(c) tf-keras-vis ActivationMaximization with and without GifGenerator2D ...")
            peers = peer_contenders(model, args.steps, folder)
            alternate(peers, args.rounds, log, "(c)")
            off, gif = peers
            frames, size, nbytes = describe(gif.last)
            report += ["", f"(c) Recording the same request ({len(CLASSES)} images, {args.steps} steps): "
                           f"GIF file and recording overhead (best with - best without; median of paired rounds):",
                       f"  {'recorder':<40} {'frames':>6} {'frame size':>10} {'file':>9} {'without':>8} {'with':>7} "
                       f"{'overhead':>9} {'paired':>7} {'ms/frame':>8}"]
            rows = [("tf-keras-vis GifGenerator2D (1st image)", gif, off, (frames, size, nbytes))]
            if recording:
                for name in (".gif every step", ".gif first image only", ".gif frame_every=5"):
                    c = recording[name]
                    rows.append((f"visopt {name}", c, recording["off"], describe(c.last)))
            for label, on, base, (frames, size, nbytes) in rows:
                overhead = on.best - base.best
                paired = paired_overhead(on, base)
                report.append(f"  {label:<40} {frames:6d} {size[0]:>4}x{size[1]:<5} {nbytes / 2**20:5.2f} MiB "
                              f"{base.best:8.2f} {on.best:7.2f} {overhead:+8.2f}s {paired:+6.2f}s "
                              f"{1000 * paired / frames:8.2f}")
            if recording:
                report.append(f"  tf-keras-vis without recording / visopt without recording: "
                              f"{off.best / recording['off'].best:.2f}x")

        if "d" not in args.skip:
            snapshots = snapshot_contenders(args.fit_samples, args.fit_epochs, folder)
            batches = -(-args.fit_samples // SNAPSHOT_BATCH)
            log(f"(d) fit with and without WeightSnapshot: cnn size 64, {args.fit_samples} samples, batch "
                f"{SNAPSHOT_BATCH} ({batches} batches/epoch), {args.fit_epochs} epochs ...")
            rounds = max(args.rounds, 3) if not args.quick else 1
            alternate(snapshots, rounds, log, "(d)")
            without, with_, no_render = snapshots
            steps_total = batches * args.fit_epochs
            per_epoch = len(range(0, batches, SNAPSHOT_EVERY))
            count, nbytes, suffixes = with_.last
            ratio = with_.best / without.best
            report += ["", f"(d) model.fit of build_model('cnn', size=64, seed=0) (64x64x3 input), "
                           f"{args.fit_samples} samples of make_dataset(size=64), batch {SNAPSHOT_BATCH}, "
                           f"{batches} batches/epoch, {args.fit_epochs} epochs ({steps_total} batches), "
                           f"shuffle=False; WeightSnapshot(epoch_interval=1, batch_interval={SNAPSHOT_EVERY}, "
                           f"render_videos=True): {per_epoch * args.fit_epochs} snapshots; seconds, best of "
                           f"{rounds} (the untimed first call of each traced the train step):",
                       f"  {'':<34} {'best wall':>9} {'best CPU':>9} {'ms/batch':>8} {'/ without':>9}   rounds"]
            for c in snapshots:
                report.append(f"  {c.name:<34} {c.best:9.2f} {c.best_cpu:9.2f} "
                              f"{1000 * c.best / steps_total:8.1f} {c.best / without.best:8.3f}x   "
                              f"{' '.join(f'{s:.2f}' for s in c.wall)}")
            report.append(f"  with / without: {ratio:.3f}x wall ({with_.best_cpu / without.best_cpu:.3f}x CPU)   "
                          f"target <= {SNAPSHOT_TARGET:.2f}   {'PASS' if ratio <= SNAPSHOT_TARGET else 'MISS'}")
            report.append(f"  with / without, median of the {rounds} paired rounds: {paired_ratio(with_, without):.3f}x wall "
                          f"({paired_ratio(with_, without, cpu=True):.3f}x CPU)")
            report.append(f"  recording alone (render_videos=False) / without: {no_render.best / without.best:.3f}x wall "
                          f"({no_render.best_cpu / without.best_cpu:.3f}x CPU; paired medians "
                          f"{paired_ratio(no_render, without):.3f}x, {paired_ratio(no_render, without, cpu=True):.3f}x); "
                          f"rendering at train end: {with_.best - no_render.best:+.2f} s wall, "
                          f"{with_.best_cpu - no_render.best_cpu:+.2f} s CPU (differences of best rounds)")
            report.append(f"  output of the last round with videos: {count} files, {nbytes / 2**20:.2f} MiB, "
                          f"kinds {suffixes}")
        if "e" not in args.skip or "f" not in args.skip:
            wanted = [name.strip() for name in args.models.split(",")]
            models = {name: spec for name, spec in scale_models(args.quick).items()
                      if any(name.lower().startswith(w) for w in wanted)}
        if "e" not in args.skip:
            rounds = max(args.rounds, 3) if not args.quick else 1
            for name, (build, x, y, batch, epochs) in models.items():
                log(f"(e) {name}: fit with and without WeightSnapshot, videos at train end / in the background ...")
                load_start = load_average()
                contenders = scale_contenders(build, x, y, batch, epochs, folder)
                alternate(contenders, rounds, log, "(e)")
                report += scale_report(name, contenders, rounds, f"{load_start} at start, {load_average()} at end")
            if args.before:
                log(f"(e) render_snapshots alone: this visopt vs {args.before} ...")
                report += render_before_after(models, args.before, rounds, folder, log)
        if "f" not in args.skip:
            log("(f) disk per snapshot ...")
            report += disk_per_snapshot(models, folder, args.quick, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    log("")
    log("Results")
    for line in report:
        log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
