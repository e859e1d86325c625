"""Deep dream on the demo CNN: start from test images and exaggerate what ``conv_2`` sees in them.

Trains the demo model, takes one held-out image per class from ``visopt.demo.make_dataset`` as
``seed_input`` and minimizes ``DeepDream("conv_2") + 0.1 * TotalVariation()`` (that is, maximizes the
layer's mean squared activation, with a little smoothing) for 50 steps. Saves a grid with a row per
image: the original on the left, the dream on the right.

Run from the repository root (after ``pip install -e .``)::

    python examples/deep_dream.py --out examples_output/
    VISOPT_MAX_ITER=20 python examples/deep_dream.py     # quick run
"""

import argparse
from pathlib import Path

import numpy as np

import visopt
from visopt import DeepDream, Optimizer, TotalVariation
from visopt import save_image
from visopt.demo import CLASS_NAMES, make_dataset, train_demo_model


def main():
    parser = argparse.ArgumentParser(description="Deep dream on the demo CNN.")
    parser.add_argument("--out", type=Path, default=Path("examples_output"), help="output folder")
    parser.add_argument("--max-iter", type=int, default=50, help="steps (VISOPT_MAX_ITER caps it)")
    parser.add_argument("--zoom", type=int, default=4, help="upscaling factor of the saved image")
    args = parser.parse_args()

    model = train_demo_model("cnn", seed=0)
    x, y = make_dataset(16, seed=7)  # not the training data (train_demo_model uses seed 1000)
    photos = x[[int(np.flatnonzero(y == c)[0]) for c in range(len(CLASS_NAMES))]]  # one per class, in [0, 255]

    energy = DeepDream("conv_2") + 0.1 * TotalVariation()
    result = Optimizer(model, energy).minimize(seed_input=photos, max_iter=args.max_iter, seed=0, verbose=False)
    dream = result.history["deep_dream"]  # (steps, images): minus the mean squared activation, per image
    print(f"{result.steps} steps; deep_dream energy per image: start {np.round(dream[0], 2)} "
          f"-> end {np.round(dream[-1], 2)}")

    before = model.predict(photos, verbose=0).argmax(axis=1)
    after = model.predict(result.images.astype(np.float32), verbose=0).argmax(axis=1)
    for b, a in zip(before, after):
        print(f"predicted class: {CLASS_NAMES[b]:10s} -> {CLASS_NAMES[a]}")

    pairs = np.concatenate([photos.astype(np.uint8), result.images], axis=2)  # side by side, per row
    big = np.kron(pairs, np.ones((1, args.zoom, args.zoom, 1), np.uint8))
    path = save_image(args.out / "deep_dream.png", visopt.stitch_images(big, cols=1, margin=4))
    print(f"before | after -> {path}")


if __name__ == "__main__":
    main()
