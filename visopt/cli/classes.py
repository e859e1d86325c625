"""``visopt classes MODEL``: images of the classes of the output layer, one row per class.

    visopt classes model.keras                                   # the first 16 classes -> classes.png
    visopt classes model.keras --classes 0,3 --per-class 4 --class-names cat,dog,car,ship --out classes.png
    visopt classes model.keras --animation progress.gif          # and the optimization as an animation
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from visopt.cli.images import as_model_input, auto_zoom, enlarge_batch, output_file, to_pixels
from visopt.cli.model_file import ImageInput, class_layer, class_scores, image_input, load, unit_count
from visopt.cli.options import (add_model_arguments, add_optimization_arguments, count, effective_steps,
                                parse_class_names, parse_indices)
from visopt.frames.image_file import save_image
from visopt.optvis.visualization import visualize_activation
from visopt.render.images import stitch_images

#: Frames kept in a progress animation at most: a small file whatever ``--steps`` is.
ANIMATION_FRAMES = 40


def add_parser(subparsers) -> None:
    """The ``classes`` subcommand: its options, and ``run`` as what it does."""
    parser = subparsers.add_parser(
        "classes", help="images that the model takes for each class (activation maximization of the output layer)",
        description="Optimize images that maximize each class of the output layer (on its logits for a softmax, "
                    "as visualize_activation) and save them as one PNG grid, one row per class.")
    add_model_arguments(parser)
    add_class_arguments(parser)
    add_optimization_arguments(parser)
    parser.add_argument("--out", default=None, metavar="FILE.png", help="the grid's file (default classes.png)")
    parser.add_argument("--animation", default=None, metavar="FILE.gif",
                        help="also record the optimization as an animation (.gif or .mp4)")
    parser.set_defaults(run=run)


def add_class_arguments(parser) -> None:
    """``--layer``, ``--classes``, ``--per-class`` and ``--class-names`` (also used by ``report``)."""
    parser.add_argument("--layer", default=None, help="the class layer (default: the output layer)")
    parser.add_argument("--classes", default=None, metavar="N|I,J,...",
                        help="a count (the first N; default 16), a list such as 0,3 ('3,' is class 3 alone), or all")
    parser.add_argument("--per-class", type=count, default=1, metavar="K", help="images per class (default 1)")
    parser.add_argument("--class-names", default=None, metavar="A,B,...|FILE",
                        help="names of the classes: a comma-separated list or a text file, one name a line")


@dataclass
class ClassImages:
    """Class images, uint8 channels last, ``per_class`` per class in ``classes`` order, and what the model said."""

    images: np.ndarray
    classes: list[int]
    per_class: int
    recognised: float | None  # share the model classifies as their class (None: not the output layer)

    @property
    def labels(self) -> list[int]:
        return [c for c in self.classes for _ in range(self.per_class)]


def class_images(model, layer, classes, per_class: int, args, target: ImageInput, animation=None) -> ClassImages:
    """Optimize ``per_class`` images of each class of ``layer`` (``args``: steps, seed, input_range).

    Example:
        >>> class_images(model, model.layers[-1], [0, 1], 2, args, image_input(model, "classes")).images.shape
        (4, 32, 32, 3)
    """
    labels = [c for c in classes for _ in range(per_class)]
    images = visualize_activation(model, layer.name, labels, max_iter=args.steps, seed=args.seed,
                                  input_range=args.input_range, verbose=sys.stderr.isatty(),
                                  progress_gif_path=animation, frame_every=frame_every(args.steps))
    scores = class_scores(model, layer, as_model_input(images, target))
    recognised = None if scores is None else float(np.mean(scores.argmax(axis=1) == np.array(labels)))
    return ClassImages(to_pixels(images, args.input_range), list(classes), per_class, recognised)


def frame_every(steps: int) -> int:
    """One frame every this many steps: at most ``ANIMATION_FRAMES`` frames (and the last step's)."""
    return max(1, effective_steps(steps) // ANIMATION_FRAMES)


def run(args) -> int:
    """Check everything, optimize, save the grid (and the animation); prints the paths."""
    model = load(args.model, args.unsafe)
    target = image_input(model, "classes")
    layer = class_layer(model, args.layer)
    total = unit_count(layer)
    classes = parse_indices(args.classes, total, "--classes", f"layer {layer.name!r}")
    names = parse_class_names(args.class_names, total)
    out = output_file(args.out, "classes.png")
    animation = output_file(args.animation, "progress.gif", (".gif", ".mp4")) if args.animation else None

    result = class_images(model, layer, classes, args.per_class, args, target, animation)
    tiles = enlarge_batch(result.images, auto_zoom(max(target.height, target.width), args.zoom))
    print(save_image(out, stitch_images(tiles, cols=args.per_class if args.per_class > 1 else None)))
    if animation is not None:
        print(animation)
    rows = "rows" if args.per_class > 1 else "tiles"
    print(f"{rows}: {', '.join(f'{c} {names[c]}' if names[c] != str(c) else str(c) for c in classes)}", file=sys.stderr)
    if result.recognised is not None:
        print(f"the model classifies {result.recognised:.0%} of the class images as their class", file=sys.stderr)
    return 0
