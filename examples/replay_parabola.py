"""Replay a training run: deepreplay's README example on visopt.

A 2-2-1 sigmoid network learns to separate two parabolas (y = x**2, class 0, and y = x**2 - 0.5,
class 1; 1000 points each). ``ReplayRecorder`` keeps every weight at the end of each of the 150
epochs; ``Replay`` then rebuilds the model at any epoch and draws what it did with the data: the
feature space of the 2-unit layer "hidden" (how it bends the plane so that a line can split the
classes), the decision boundary, the class probabilities, the loss and accuracy, the per-sample
losses. Writes PNGs of epoch 60 and a GIF of the whole run. See docs/replay.md.

Run from the repository root (after ``pip install -e .``)::

    python examples/replay_parabola.py                    # writes replay_out/
    python examples/replay_parabola.py my_folder
    VISOPT_MAX_ITER=5 python examples/replay_parabola.py  # quick run: 5 epochs
"""

import os
import sys
from pathlib import Path

import keras
import numpy as np

import visopt


def parabolas(n=1000, seed=13):
    """Two parabolas of ``n`` points each, shuffled: (x, x**2) is class 0, (x, x**2 - 0.5) class 1."""
    x0 = np.linspace(-1, 1, n)
    x = np.concatenate([np.stack([x0, x0**2], 1), np.stack([x0, x0**2 - 0.5], 1)]).astype("float32")
    y = np.repeat([0.0, 1.0], n).astype("float32")[:, None]
    order = np.random.default_rng(seed).permutation(2 * n)
    return x[order], y[order]


out = Path(sys.argv[1] if len(sys.argv) > 1 else "replay_out")
epochs = min(150, int(os.environ.get("VISOPT_MAX_ITER", 150)))  # VISOPT_MAX_ITER caps the epochs
epoch = min(60, epochs)  # the epoch drawn in the PNGs
keras.utils.set_random_seed(42)

x, y = parabolas()
# all 2000 samples as the probe set (the default keeps at most 1000); new_run: a second run of this
# script starts the folder over instead of appending its epochs to the first one's
recorder = visopt.ReplayRecorder(out / "run", x, y, max_samples=len(x), new_run=True)

model = keras.Sequential([
    keras.Input((2,)),
    keras.layers.Dense(2, activation="sigmoid", name="hidden",
                       kernel_initializer=keras.initializers.GlorotNormal(seed=42)),
    keras.layers.Dense(1, activation="sigmoid", name="output",
                       kernel_initializer=keras.initializers.RandomNormal(seed=42)),
])
model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=0.05), metrics=["accuracy"])
model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[recorder])

replay = visopt.Replay(out / "run")
print(replay)

feature_space = replay.feature_space("hidden")
feature_space.plot(epoch).savefig(out / f"feature_space_epoch{epoch}.png", dpi=120)
feature_space.animate(out / "feature_space.gif", fps=5)  # one frame per epoch

pictures = {"decision_boundary": replay.decision_boundary(),
            "probability_histogram": replay.probability_histogram(),
            "loss_and_metric": replay.loss_and_metric_view("accuracy"),
            "loss_histogram": replay.loss_histogram()}
for name, view in pictures.items():
    view.plot(epoch).savefig(out / f"{name}_epoch{epoch}.png", dpi=120)

for path in sorted(out.glob("*.*")):
    print(path)
