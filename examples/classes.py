"""Show what the demo classifier thinks each of its four classes looks like.

Trains the demo model, then makes three images per class three ways and checks each with the model:

1. the one-liner ``visualize_activation(model, "predictions", [...])``;
2. its default objective written out as an energy expression and run by an ``Optimizer`` on pixels
   (same seed, so the same images);
3. that energy on the ``"fourier"`` parameterization (smoother images, no heavy TV weight needed).

``predictions`` ends in softmax, so visopt climbs its logits. The script prints the class the model
predicts for every image and saves one grid per method (a row per class).

Run from the repository root (after ``pip install -e .``)::

    python examples/classes.py --out examples_output/
    VISOPT_MAX_ITER=40 python examples/classes.py     # quick run
"""

import argparse
from pathlib import Path

import numpy as np

import visopt
from visopt import ActivationMaximization, LPNorm, Optimizer, TotalVariation
from visopt.demo import CLASS_NAMES, train_demo_model
from visopt import save_image

PER_CLASS = 3


def report(model, method: str, images: np.ndarray, targets: list[int]) -> None:
    """Print the class the model predicts for every image, and how many match the target."""
    probabilities = model.predict(images.astype(np.float32), verbose=0)
    predicted = probabilities.argmax(axis=1)
    print(f"{method}: predicted " + ", ".join(
        f"{CLASS_NAMES[c]}({p[c]:.2f})" for c, p in zip(predicted, probabilities)))
    print(f"{method}: {int(np.sum(predicted == targets))}/{len(targets)} images classified as intended")


def main():
    parser = argparse.ArgumentParser(description="Class images of the demo classifier.")
    parser.add_argument("--out", type=Path, default=Path("examples_output"), help="output folder")
    parser.add_argument("--max-iter", type=int, default=300, help="steps per run (VISOPT_MAX_ITER caps it)")
    parser.add_argument("--zoom", type=int, default=4, help="upscaling factor of the saved images")
    args = parser.parse_args()

    model = train_demo_model("cnn", seed=0)
    # one entry per image: [0, 0, 0, 1, 1, 1, ...] asks for three different images of every class
    targets = [c for c in range(len(CLASS_NAMES)) for _ in range(PER_CLASS)]

    runs = {"visualize_activation": visopt.visualize_activation(
        model, "predictions", targets, max_iter=args.max_iter, seed=0)}
    energy = ActivationMaximization("predictions", targets) + 0.5 * LPNorm() + 2 * TotalVariation()
    for parameterization in ("pixels", "fourier"):
        result = Optimizer(model, energy, parameterization=parameterization).minimize(
            max_iter=args.max_iter, seed=0, verbose=False)
        final = {name: float(values[-1].mean()) for name, values in result.history.items()}
        print(f"{parameterization}: {result.steps} steps, final per-term energy (batch mean): "
              + ", ".join(f"{name}={value:.3g}" for name, value in final.items()))
        runs[parameterization] = result.images
    # visualize_activation's default energy is exactly this one, so with the same seed the images match
    print("one-liner == Optimizer on pixels:", np.array_equal(runs["visualize_activation"], runs["pixels"]))

    for method, images in runs.items():
        report(model, method, images, targets)
        big = np.kron(images, np.ones((1, args.zoom, args.zoom, 1), images.dtype))
        path = save_image(args.out / f"classes_{method}.png", visopt.stitch_images(big, cols=PER_CLASS, margin=4))
        print(f"{method} -> {path}")


if __name__ == "__main__":
    main()
