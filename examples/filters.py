"""Show what every filter of the demo CNN's three convolution layers responds to.

Trains the built-in demo model (synthetic stripes and rings, a few seconds on a CPU), then for each
of ``conv_1``, ``conv_2`` and ``conv_3`` optimizes one image per filter with ``visualize_activation``
and saves the batch as one enlarged grid, a PNG per layer.

Run from the repository root (after ``pip install -e .``)::

    python examples/filters.py --out examples_output/
    VISOPT_MAX_ITER=40 python examples/filters.py     # quick run: every optimization stops after 40 steps
"""

import argparse
from pathlib import Path

import numpy as np

import visopt
from visopt.demo import train_demo_model
from visopt import save_image

LAYERS = ("conv_1", "conv_2", "conv_3")


def enlarge(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a batch (N, H, W, C) so that single pixels stay visible."""
    return np.kron(images, np.ones((1, factor, factor, 1), images.dtype))


def main():
    parser = argparse.ArgumentParser(description="Visualize every filter of the demo CNN's conv layers.")
    parser.add_argument("--out", type=Path, default=Path("examples_output"), help="output folder")
    parser.add_argument("--max-iter", type=int, default=200, help="steps per layer (VISOPT_MAX_ITER caps it)")
    parser.add_argument("--zoom", type=int, default=3, help="upscaling factor of the saved images")
    args = parser.parse_args()

    model = train_demo_model("cnn", seed=0)
    for layer in LAYERS:
        # filter_indices=None: one image per filter of the layer, optimized together as one batch
        images = visopt.visualize_activation(model, layer, None, max_iter=args.max_iter, seed=0)
        grid = visopt.stitch_images(enlarge(images, args.zoom), cols=8, margin=4)
        path = save_image(args.out / f"filters_{layer}.png", grid)
        print(f"{layer}: {len(images)} filters -> {path}")


if __name__ == "__main__":
    main()
