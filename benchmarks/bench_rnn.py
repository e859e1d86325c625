"""RNN introspection costs: ``rnn_gates`` against the layer's own forward pass, and ``GateMonitor`` on ``fit``.

1. ``visopt.inspect.rnn_gates`` on 256 sequences x 100 steps into an LSTM of 64 units (input 16
   features), against the same model's ``predict`` on the same batch (the layer's own forward
   pass; both after a warm-up call). Target: at most 3x.
2. ``model.fit`` (2 epochs of 40 batches) with and without ``GateMonitor(batch_interval=10)`` (its
   default 16 probe sequences), with targets (gradient norms on) and without, for that LSTM with
   batches of 32 and for an LSTM of 256 units with batches of 128. Target: at most 1.10x.

Best of ``--rounds`` alternating rounds (the machine is shared). Results: docs/benchmarks.md.

    python benchmarks/bench_rnn.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from visopt import GateMonitor, inspect  # noqa: E402


def build(units: int = 64, features: int = 16, steps: int = 100) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((steps, features))
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm")(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gates_vs_forward(model, x, rounds: int) -> tuple[float, float]:
    inspect.rnn_gates(model, "lstm", x)  # warm-up: surgery and tracing once
    model.predict(x, verbose=0, batch_size=len(x))
    gates = forward = float("inf")
    for _ in range(rounds):  # alternate, so that both see the same machine
        gates = min(gates, best(lambda: inspect.rnn_gates(model, "lstm", x), 1))
        forward = min(forward, best(lambda: model.predict(x, verbose=0, batch_size=len(x)), 1))
    return gates, forward


def fit_with_and_without_monitor(rounds: int, gradients: bool = True, units: int = 64,
                                 batch_size: int = 32) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40 * batch_size, 100, 16)).astype("float32")
    y = rng.normal(size=(40 * batch_size, 1)).astype("float32")
    plain = monitored = float("inf")
    with tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            for name in (("plain", "monitored") if r % 2 else ("monitored", "plain")):
                model = build(units)
                probe_y = y[:64] if gradients else None
                callbacks = [GateMonitor(os.path.join(folder, "gates.csv"), x[:64], probe_y, batch_interval=10)] \
                    if name == "monitored" else []
                model.fit(x[:2 * batch_size], y[:2 * batch_size], batch_size=batch_size, epochs=1, verbose=0,
                          callbacks=callbacks)  # trace
                start = time.perf_counter()
                model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, callbacks=callbacks)
                elapsed = time.perf_counter() - start
                if name == "plain":
                    plain = min(plain, elapsed)
                else:
                    monitored = min(monitored, elapsed)
    return monitored, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    model = build()
    x = np.random.default_rng(1).normal(size=(256, 100, 16)).astype("float32")
    gates, forward = gates_vs_forward(model, x, args.rounds)
    print(f"rnn_gates {gates * 1e3:.1f} ms, layer forward (predict) {forward * 1e3:.1f} ms: "
          f"{gates / forward:.2f}x  (target <= 3)")
    for units, batch_size in ((64, 32), (256, 128)):  # a small LSTM, and one whose batches take longer
        for gradients in (True, False):
            monitored, plain = fit_with_and_without_monitor(args.rounds, gradients, units, batch_size)
            what = "with gradient norms (y given)" if gradients else "gates and weight norms only (no y)"
            print(f"fit of LSTM({units}), batches of {batch_size}, with GateMonitor, {what}: {monitored:.2f} s, "
                  f"without {plain:.2f} s ({plain / 80 * 1e3:.0f} ms a batch): {monitored / plain:.3f}x  "
                  "(target <= 1.10)")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
