"""Texture synthesis, diversity and the new objectives on the textures task.

Trains a CNN on ``visopt.demo.tasks``' textures (dots, checkerboard, blotches, zigzag), then:

1. synthesizes a texture from noise whose Gram matrices on ``conv_1`` and ``conv_2`` match those
   of one image of each class (``Texture``), and asks an independently trained judge what it sees;
2. draws three images of one class with and without ``Diversity``;
3. draws one ``Neuron`` (the centre of a ``conv_3`` channel) and a ``ChannelInterpolation``.

Run from the repository root (after ``pip install -e .``)::

    python examples/texture.py --out examples_output/
    VISOPT_MAX_ITER=30 python examples/texture.py     # quick run
"""

import argparse
from pathlib import Path

import numpy as np

import visopt
from visopt import (ActivationMaximization, ChannelInterpolation, Diversity, Neuron, Optimizer, Texture,
                    save_image)
from visopt.demo.tasks import TASKS, make_task_data, train_task_model


def enlarge(grid, zoom=4):
    return np.kron(grid, np.ones((zoom, zoom, 1), grid.dtype))


def main():
    parser = argparse.ArgumentParser(description="Texture synthesis and the lucid-style objectives.")
    parser.add_argument("--out", type=Path, default=Path("examples_output"), help="output folder")
    parser.add_argument("--max-iter", type=int, default=300, help="steps (VISOPT_MAX_ITER caps it)")
    args = parser.parse_args()
    names = TASKS["textures"]
    model = train_task_model("textures", "cnn", seed=0)
    judge = train_task_model("textures", "wide", seed=2)
    x, y = make_task_data("textures", 64, seed=5)

    targets = [x[np.flatnonzero(y == c)[0]] for c in range(4)]
    synthesized = []
    for target in targets:
        texture = Texture(model, ["conv_1", "conv_2"], target)
        synthesized.append(Optimizer(model, texture).minimize(max_iter=args.max_iter, seed=0, verbose=False).images[0])
    judged = judge.predict(np.asarray(synthesized, np.float32), verbose=0).argmax(axis=1)
    print("texture synthesis, judged by another model:",
          ", ".join(f"{names[c]} -> {names[j]}" for c, j in enumerate(judged)))
    rows = np.stack([np.clip(targets, 0, 255).astype(np.uint8), np.asarray(synthesized)], axis=1).reshape(-1, 32, 32, 3)
    print("targets | synthesized ->", save_image(args.out / "texture.png", enlarge(visopt.stitch_images(rows, cols=2))))

    plain = ActivationMaximization("predictions", [0, 0, 0])
    same = Optimizer(model, plain).minimize(max_iter=args.max_iter, seed=0, verbose=False).images
    varied = Optimizer(model, plain + 2.0 * Diversity("conv_2")).minimize(max_iter=args.max_iter, seed=0,
                                                                          verbose=False).images
    grid = visopt.stitch_images(np.concatenate([same, varied]), cols=3)
    print(f"'{names[0]}' x3 without | with Diversity ->", save_image(args.out / "diversity.png", enlarge(grid)))

    neuron = Optimizer(model, Neuron("conv_3", [0, 1, 2, 3])).minimize(max_iter=args.max_iter, seed=0,
                                                                        verbose=False).images
    blend = Optimizer(model, ChannelInterpolation("conv_3", 0, 1, images=5)).minimize(
        max_iter=args.max_iter, seed=0, verbose=False).images
    print("conv_3 centre neurons 0-3 ->", save_image(args.out / "neurons.png", enlarge(visopt.stitch_images(neuron, cols=4))))
    print("conv_3 channel 0 -> 1 ->", save_image(args.out / "interpolation.png", enlarge(visopt.stitch_images(blend, cols=5))))


if __name__ == "__main__":
    main()
