"""Training replay costs: recording overhead on ``fit``, store size and float16 error, rendering speed.

The task: the parabola data (2000 points uniform in [-1, 1]^2, label ``x1 > x0**2``) and an MLP
2-64-64-2-1 (relu, relu, a 2-unit sigmoid layer "hidden", a sigmoid output; 4485 parameters), SGD,
batches of 16 (125 a epoch), 20 epochs: a plain ``fit`` of about 3-4 s on 2 cores.

1. ``model.fit`` (20 epochs, after a 1-epoch warm-up that traces the step) with and without
   ``ReplayRecorder`` (its default: a point per epoch, a probe of 1000 of the 2000 samples), a fresh model and
   folder each round; and with ``batch_interval=10`` (13 points an epoch). Target: at most 1.10x
   at the default. The time spent inside the recorder's hooks is printed too (less noisy than a
   difference of two fits), and, as a control for the batch points, a callback that only sleeps
   1.2 ms (a point's cost) at the same batches: on a busy 2-core machine any pause between steps
   costs more than itself.
2. Bytes on disk per recorded point (the ``.npy`` stacks; then with the journal and manifest)
   divided by the number of model parameters, for float32 and float16 storage; and the error
   float16 storage causes in replay: one ``fit`` recorded by two recorders into two folders,
   max |``probabilities(k)`` float16 - float32| over every point and probe sample, and the
   largest difference of the recomputed loss (``loss_and_metric``) over the points.
3. Animating the frames of a view: ``view.animate(path.gif)`` against a straightforward
   ``matplotlib.animation.FuncAnimation(fig, update, frames=...).save(path.gif, writer="pillow")``
   whose ``update(k)`` clears the axes and draws ``view.data(k)`` again, as a user would. For
   ``feature_space("hidden")`` and ``probability_histogram()``, 21 frames, same figure size and
   dpi, a fresh view each time (both compute every point's data once). Target: visopt at least
   3x faster. Then the same with the data computed beforehand (drawing and encoding only).

Best of ``--rounds`` alternating rounds (the machine is shared). Results: docs/benchmarks.md and
docs/replay.md.

    python benchmarks/bench_replay.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import cpu_name, load_average, visopt_revision  # noqa: E402

import visopt  # noqa: E402

EPOCHS = 20
BATCH = 16
PAUSE_SECONDS = 0.0012  # about what ReplayRecorder spends on a point of this model (measured by its hooks)


def parabola(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype("float32")
    return x, (x[:, 1] > x[:, 0] ** 2).astype("float32")[:, None]


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(2, activation="sigmoid", name="hidden"),
                              keras.layers.Dense(1, activation="sigmoid", name="output")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy", metrics=["accuracy"])
    return model


# -- 1. recording overhead ---------------------------------------------------------------------
class TimedRecorder(visopt.ReplayRecorder):
    """ReplayRecorder adding up the time spent in its hooks (less noisy than the difference of two fits)."""

    hook_seconds = 0.0

    def _timed(self, hook, *args):
        start = time.perf_counter()
        try:
            return getattr(super(), hook)(*args)
        finally:
            self.hook_seconds += time.perf_counter() - start

    def on_train_begin(self, logs=None):
        return self._timed("on_train_begin", logs)

    def on_train_batch_begin(self, batch, logs=None):
        return self._timed("on_train_batch_begin", batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        return self._timed("on_epoch_end", epoch, logs)

    def on_train_end(self, logs=None):
        return self._timed("on_train_end", logs)


class Pause(keras.callbacks.Callback):
    """The control for batch points: no reads, no files, only a pause as long as a recorded point takes."""

    def __init__(self, batch_interval: int, seconds: float):
        super().__init__()
        self.batch_interval, self.seconds = batch_interval, seconds

    def on_train_batch_begin(self, batch, logs=None):
        if batch > 0 and batch % self.batch_interval == 0:
            time.sleep(self.seconds)


def recording_overhead(x, y, rounds: int, workdir: Path) -> dict[str, float]:
    """Best fit time per variant: plain, recorder at its default, recorder with batch_interval=10, pause."""
    variants = {"plain": None, "default": {}, "batch_interval=10": {"batch_interval": 10}, "pause": "pause"}
    best = dict.fromkeys(list(variants) + [name + " hooks" for name in variants], float("inf"))
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate: each sees the machine alike
            model = build()
            model.fit(x[:4 * BATCH], y[:4 * BATCH], batch_size=BATCH, epochs=1, verbose=0)  # trace
            callbacks = []
            folder = workdir / f"overhead-{r}-{name}"
            if variants[name] == "pause":
                callbacks = [Pause(10, PAUSE_SECONDS)]
            elif variants[name] is not None:
                callbacks = [TimedRecorder(folder, x, y, **variants[name])]
            start = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=callbacks)
            best[name] = min(best[name], time.perf_counter() - start)
            if isinstance(variants[name], dict):
                best[name + " points"] = len(visopt.Replay(folder))
                best[name + " hooks"] = min(best[name + " hooks"], callbacks[0].hook_seconds)
            shutil.rmtree(folder, ignore_errors=True)
    return best


# -- 2. store size and float16 error ------------------------------------------------------------
def folder_bytes(folder: Path) -> tuple[int, int]:
    """(bytes of the .npy stacks, bytes of stacks + journal + manifest)."""
    stacks = sum(p.stat().st_size for p in (folder / "snapshots").glob("*.npy"))
    return stacks, stacks + sum((folder / name).stat().st_size for name in ("journal.jsonl", "manifest.json"))


def store_size_and_float16(x, y, workdir: Path) -> dict:
    model = build()
    folders = {dtype: workdir / f"store-{dtype}" for dtype in ("float32", "float16")}
    recorders = [visopt.ReplayRecorder(folder, x, y, dtype=dtype) for dtype, folder in folders.items()]
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=recorders)
    params = model.count_params()
    result = {"params": params}
    replays = {dtype: visopt.Replay(folder) for dtype, folder in folders.items()}
    for dtype, folder in folders.items():
        stacks, total = folder_bytes(folder)
        points = len(replays[dtype])
        result[dtype] = {"points": points, "stacks": stacks / points / params, "total": total / points / params,
                         "model+probe": sum((folder / n).stat().st_size for n in ("model.keras", "probe.npz"))}
    # the float32 recording holds exactly what the model holds at the end
    end = np.abs(replays["float32"].probabilities(-1) - model.predict(replays["float32"].x, verbose=0)).max()
    prob_error = max(np.abs(replays["float16"].probabilities(k) - replays["float32"].probabilities(k)).max()
                     for k in range(len(replays["float32"])))
    sample_loss_error = max(np.abs(replays["float16"].losses(k) - replays["float32"].losses(k)).max()
                            for k in range(len(replays["float32"])))
    curves = {dtype: replay.loss_and_metric("accuracy") for dtype, replay in replays.items()}
    result.update(end_error=float(end), prob_error=float(prob_error), sample_loss_error=float(sample_loss_error),
                  loss_error=float(np.abs(curves["float16"]["loss"] - curves["float32"]["loss"]).max()),
                  accuracy_error=float(np.abs(curves["float16"]["accuracy"] - curves["float32"]["accuracy"]).max()),
                  loss_range=(float(curves["float32"]["loss"].min()), float(curves["float32"]["loss"].max())))
    return result


# -- 3. rendering against FuncAnimation ---------------------------------------------------------
def draw_feature_space(fig, data: dict) -> None:
    """What a user writes to draw a feature-space frame from ``view.data(k)``: clear, draw it all again."""
    ax = fig.axes[0] if fig.axes else fig.add_subplot()
    ax.clear()
    cells = data["cells"]  # the corners of the region cells, mapped through the layer
    ax.pcolormesh(cells[..., 0], cells[..., 1], data["outputs"][..., 0], cmap="RdBu", vmin=0, vmax=1)
    for line in data["lines"]:
        ax.plot(line[:, 0], line[:, 1], color="0.3", linewidth=0.6)
    ax.scatter(data["inputs"][:, 0], data["inputs"][:, 1], c=data["labels"], cmap="coolwarm", s=10,
               edgecolors="white", linewidths=0.3)


def draw_probability_histogram(fig, data: dict) -> None:
    """A panel per class, right predictions below and wrong ones stacked on top."""
    classes = len(data["right"])
    axes = fig.axes or list(fig.subplots(1, classes, squeeze=False)[0])
    width = np.diff(data["edges"])
    for c, ax in enumerate(axes):
        ax.clear()
        ax.bar(data["edges"][:-1], data["right"][c], width, align="edge", color="tab:green")
        ax.bar(data["edges"][:-1], data["wrong"][c], width, bottom=data["right"][c], align="edge", color="tab:red")
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"P(class {c})")


def func_animation(view, draw, path: Path, frames, fps: int, figsize, dpi) -> None:
    """matplotlib's own way: FuncAnimation calling update(k) per frame, saved by the pillow writer."""
    fig = plt.figure(figsize=figsize, dpi=dpi, layout="constrained")

    def update(k):
        draw(fig, view.data(k))
        fig.suptitle(f"point {k}")
        return []

    FuncAnimation(fig, update, frames=list(frames), blit=False).save(path, writer="pillow", fps=fps, dpi=dpi)
    plt.close(fig)


def rendering(replay, rounds: int, workdir: Path) -> dict[tuple[str, bool], tuple[float, float, int]]:
    """Best seconds (visopt, FuncAnimation, frames) per (view, data cached beforehand or not)."""
    frames = range(len(replay))
    makers = {"feature_space": (lambda: replay.feature_space("hidden"), draw_feature_space),
              "probability_histogram": (lambda: replay.probability_histogram(), draw_probability_histogram)}
    results = {}
    for name, (make, draw) in makers.items():
        figure = make().plot(0)
        figsize, dpi = tuple(figure.get_size_inches()), figure.dpi
        for cached in (False, True):
            best = {"visopt": float("inf"), "peer": float("inf")}
            for r in range(rounds):
                for who in (("visopt", "peer") if r % 2 == 0 else ("peer", "visopt")):
                    view = make()  # fresh, so that neither reuses what the other computed
                    if cached:
                        view.all_data()  # every point's data computed beforehand: drawing and encoding only
                    path = workdir / f"{name}-{who}-{r}.gif"
                    start = time.perf_counter()
                    if who == "visopt":
                        view.animate(path, fps=10)
                    else:
                        func_animation(view, draw, path, frames, 10, figsize, dpi)
                    best[who] = min(best[who], time.perf_counter() - start)
                    path.unlink(missing_ok=True)
            results[name, cached] = (best["visopt"], best["peer"], len(frames))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("overhead", "store", "render"), action="append",
                        help="run only these measures (repeatable)")
    args = parser.parse_args()
    only = set(args.only or ("overhead", "store", "render"))
    print(f"load average at start: {load_average()}")
    print(f"machine: {os.cpu_count()} cores, {cpu_name()}; keras {keras.__version__}, "
          f"visopt {visopt_revision()}")
    warnings.simplefilter("ignore", UserWarning)  # the probe-bound warning is expected nowhere here
    x, y = parabola()
    workdir = Path(tempfile.mkdtemp(prefix="bench_replay-"))
    try:
        if "overhead" in only:
            best = recording_overhead(x, y, args.rounds, workdir)
            plain = best["plain"]
            print(f"fit of {EPOCHS} epochs x {len(x) // BATCH} batches, plain: {plain:.2f} s")
            for name, target in (("default", "  (target <= 1.10)"), ("batch_interval=10", "  (for information)")):
                print(f"fit with ReplayRecorder({name}, {best[name + ' points']} points): {best[name]:.2f} s: "
                      f"{best[name] / plain:.3f}x{target}; time in the recorder's hooks {best[name + ' hooks']:.3f} s "
                      f"({best[name + ' hooks'] / best[name + ' points'] * 1e3:.1f} ms a point with the model save, "
                      f"{(plain + best[name + ' hooks']) / plain:.3f}x of the plain fit)")
            print(f"fit with a callback that only sleeps {PAUSE_SECONDS * 1e3:.1f} ms every 10 batches (the control): "
                  f"{best['pause']:.2f} s: {best['pause'] / plain:.3f}x  (for information)")
        if "store" in only:
            size = store_size_and_float16(x, y, workdir)
            for dtype in ("float32", "float16"):
                s = size[dtype]
                print(f"store per point ({dtype}, {s['points']} points, {size['params']} parameters): "
                      f"{s['stacks']:.2f} bytes per parameter in the stacks, {s['total']:.2f} with journal and "
                      f"manifest (model.keras + probe.npz once: {s['model+probe'] / 1024:.0f} KiB)")
            print(f"float16 replay error: max |probabilities| {size['prob_error']:.2e}, per-sample loss "
                  f"{size['sample_loss_error']:.2e}, recomputed loss {size['loss_error']:.2e} (loss range "
                  f"{size['loss_range'][0]:.3f}-{size['loss_range'][1]:.3f}), accuracy {size['accuracy_error']:.4f}; "
                  f"float32 replay vs the trained model {size['end_error']:.1e}")
        if "render" in only:
            model = build()
            folder = workdir / "render"
            model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0,
                      callbacks=[visopt.ReplayRecorder(folder, x, y)])
            for (name, cached), (ours, peer, frames) in rendering(visopt.Replay(folder), args.rounds,
                                                                  workdir).items():
                what = "drawing and encoding only (data computed beforehand)" if cached else \
                    "data computed in the loop, as a user would"
                print(f"animate {name} ({frames} frames, GIF), {what}: visopt {ours / frames * 1e3:.0f} ms a frame, "
                      f"FuncAnimation.save {peer / frames * 1e3:.0f} ms a frame: {peer / ours:.2f}x faster  "
                      + ("(target >= 3)" if not cached else "(for information)"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
