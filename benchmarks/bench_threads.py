"""What thread safety costs: ``Optimizer.minimize`` with its per-run lock vs the same Optimizer without it.

Since issue 10 an Optimizer runs one ``minimize`` at a time (docs/faults.md). The lock is taken
once per call; this measures that a single thread pays nothing for it. Two Optimizers of the same
request (the demo CNN's 4 classes x 4, 32x32, 200 steps), one whose lock is replaced by a no-op,
timed in alternating rounds; the best round of each gives the ratio. Also checked: 4 threads on
one Optimizer give the images of the same calls made one after the other.

    python benchmarks/bench_threads.py [--rounds 6] [--steps 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from visopt import ActivationMaximization, Optimizer  # noqa: E402
from visopt.demo.models import build_model  # noqa: E402


def timed_rounds(optimizers: dict, rounds: int, steps: int) -> dict[str, float]:
    """Best wall time of each optimizer over alternating rounds (order flipped every round)."""
    times = {name: [] for name in optimizers}
    for r in range(rounds):
        order = list(optimizers.items())
        for name, opt in order if r % 2 else order[::-1]:
            start = time.perf_counter()
            opt.minimize(max_iter=steps, seed=r, verbose=False)
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def threads_equal_sequential(opt, steps: int) -> bool:
    sequential = [opt.minimize(max_iter=steps, seed=s, verbose=False).images for s in range(4)]
    results = [None] * 4

    def run(s):
        results[s] = opt.minimize(max_iter=steps, seed=s, verbose=False).images

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return all(np.array_equal(a, b) for a, b in zip(results, sequential))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    model = build_model("cnn", 32)
    energy = ActivationMaximization("predictions", [0, 1, 2, 3] * 4)
    locked, unlocked = Optimizer(model, energy), Optimizer(model, energy)
    unlocked._lock = contextlib.nullcontext()
    for opt in (locked, unlocked):
        opt.minimize(max_iter=5, seed=0, verbose=False)  # tracing
    best = timed_rounds({"with lock": locked, "without lock": unlocked}, args.rounds, args.steps)
    print(f"load average {os.getloadavg()[0]:.2f}; best of {args.rounds} rounds, {args.steps} steps")
    for name, seconds in best.items():
        print(f"  {name:13s} {seconds:.3f} s")
    print(f"  ratio with/without {best['with lock'] / best['without lock']:.3f}")
    print(f"  4 threads equal sequential runs: {threads_equal_sequential(locked, min(args.steps, 30))}")


if __name__ == "__main__":
    main()
