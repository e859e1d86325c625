"""What ``saliency`` and ``cam`` share: images in, one map per image, overlays out (beside the images or in ``--out``).

The explained unit is the class the model predicts for each image (``--class`` fixes one for all).
An overlay is drawn on the image as it is in its file: the map, computed at the model's input
size, is scaled back to the file's size.

Example:
    >>> job = prepare(args, "saliency")                  # every check, before any work
    >>> maps = job.explain(lambda labels: visualize_saliency(job.model, job.layer, labels, job.batch.inputs))
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from visopt.cli.images import ImageBatch, auto_zoom, enlarge, file_stem, image_paths, load_images
from visopt.cli.model_file import ImageInput, class_layer, class_scores, image_input, load, unit_count
from visopt.cli.options import add_model_arguments, parse_class_names, zoom
from visopt.frames.image_file import save_image
from visopt.render.images import overlay


def add_explain_arguments(parser, methods, default: str) -> None:
    """MODEL IMAGES... and the options of an explanation command."""
    add_model_arguments(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGES", help="image files, or folders of image files")
    parser.add_argument("--method", choices=methods, default=default, help=f"the method (default {default})")
    parser.add_argument("--layer", default=None, help="the explained layer (default: the output layer)")
    parser.add_argument("--class", dest="class_index", type=int, default=None, metavar="INDEX",
                        help="explain this class for every image (default: the class each image is predicted as)")
    parser.add_argument("--class-names", default=None, metavar="A,B,...|FILE",
                        help="names of the classes, for the messages: a comma-separated list or a text file")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the overlays (created; default: beside each image)")
    parser.add_argument("--cmap", default="jet", help="matplotlib colour map of the heatmap (jet, turbo, inferno...)")
    parser.add_argument("--alpha", type=float, default=0.5, help="the heatmap's weight over the image (0..1)")
    parser.add_argument("--zoom", type=zoom, default="auto",
                        help="enlarge small overlays this many times (auto: to at least 128 px)")
    parser.add_argument("--no-resize", dest="resize", action="store_false",
                        help="refuse images whose size differs from the model's input instead of resizing them")


@dataclass
class Job:
    """A checked explanation request: the model, the layer, the images and where each overlay goes."""

    model: object
    layer: object
    target: ImageInput
    batch: ImageBatch
    names: list[str]
    class_index: int | None = None
    outputs: list[Path] = field(default_factory=list)  # where each overlay goes (the report has its own names)

    def labels(self) -> tuple[list[int] | None, np.ndarray | None]:
        """The unit explained for each image and, on the output layer, the model's probabilities."""
        scores = class_scores(self.model, self.layer, self.batch.inputs)
        if self.class_index is not None:
            return [self.class_index] * len(self.batch.paths), scores
        return (None if scores is None else [int(i) for i in scores.argmax(axis=1)]), scores

    def describe(self, i: int, labels, scores) -> str:
        """``cat.png: class 3 'rings' (p=0.98)`` for the messages and the report."""
        if labels is None:
            return f"{self.batch.paths[i].name}: the top unit of layer {self.layer.name!r}"
        c = labels[i]
        name = "" if self.names[c] == str(c) else f" {self.names[c]!r}"
        p = "" if scores is None else f" (p={float(scores[i, c]):.2f})"
        return f"{self.batch.paths[i].name}: class {c}{name}{p}"


def prepare(args, command: str, suffix: str) -> Job:
    """Every check of an explanation command, before any work; ``suffix`` names the overlays
    (``cat.png`` -> ``cat.saliency-vanilla.png``)."""
    model = load(args.model, args.unsafe)
    target = image_input(model, command)
    layer = class_layer(model, args.layer)
    total = unit_count(layer)
    if args.class_index is not None and not 0 <= args.class_index < total:
        raise ValueError(f"--class {args.class_index} is out of range: layer {layer.name!r} has {total} units "
                         f"(valid 0..{total - 1})")
    if not 0 <= args.alpha <= 1:
        raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
    names = parse_class_names(args.class_names, total)
    batch = load_images(image_paths(args.images), target, args.input_range, resize=args.resize)
    outputs = overlay_paths(batch.paths, args.out, suffix)
    return Job(model, layer, target, batch, names, args.class_index, outputs)


def overlay_paths(paths, out, suffix: str) -> list[Path]:
    """Where each image's overlay goes: beside it, or in the folder ``out``; two images may not share one."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out '{out}' is a file; give a folder for the overlays")
    outputs = [(Path(out) if out is not None else p.parent) / f"{file_stem(p.stem)}.{suffix}.png" for p in paths]
    seen = {}
    for path, target in zip(paths, outputs):
        if target in seen:
            raise ValueError(f"images '{seen[target]}' and '{path}' would both write '{target}': give them "
                             "different names, or leave out --out")
        seen[target] = path
    return outputs


def overlays(pictures, maps, cmap: str, alpha: float) -> list[np.ndarray]:
    """Each map (at the model's size) scaled to its picture's size and coloured over it.

    Example:
        >>> overlays([np.zeros((64, 64, 3), np.uint8)], np.ones((1, 32, 32)), "jet", 0.5)[0].shape
        (64, 64, 3)
    """
    drawn = []
    for picture, heat in zip(pictures, np.asarray(maps, np.float32)):
        h, w = picture.shape[:2]
        if heat.shape != (h, w):
            heat = np.clip(cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
        drawn.append(overlay(picture, heat, cmap=cmap, alpha=alpha))
    return drawn


def run_job(args, command: str, job: Job, compute) -> int:
    """``compute(labels) -> maps``, then one overlay per image; prints each path (stdout) and what it
    explains (stderr)."""
    note = job.batch.resize_note(job.target)
    if note:
        print(f"visopt {command}: {note}", file=sys.stderr)
    labels, scores = job.labels()
    maps = compute(labels)
    for i, picture in enumerate(overlays(job.batch.originals, maps, args.cmap, args.alpha)):
        picture = enlarge(picture, auto_zoom(max(picture.shape[:2]), args.zoom))
        print(save_image(job.outputs[i], picture))
        print(job.describe(i, labels, scores), file=sys.stderr)
    return 0
