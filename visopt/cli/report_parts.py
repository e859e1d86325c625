"""The sections of ``visopt report``: each computes its pictures, writes them into the report's
folder (under construction) and returns a :class:`~visopt.cli.page.Section` that links to them.

Example:
    >>> section = filters_section(plan, Path(".report.part"))
    >>> [group.caption for group in section.groups]
    ['conv_1 (Conv2D): filters 0..15 of 16', ...]
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visopt.cli.classes import class_images, frame_every
from visopt.cli.explain import overlays
from visopt.cli.images import auto_zoom, file_stem, to_pixels
from visopt.cli.options import effective_steps
from visopt.cli.page import Figure, Group, Section
from visopt.frames.image_file import save_image
from visopt.model.layers import is_squashing
from visopt.optvis.visualization import visualize_activation

#: Longest side of a tile on the page (CSS pixels): small images are enlarged (pixelated) up to it.
TILE = 96
OVERLAY = 144
ATTACHED = 240


@dataclass
class Attachment:
    """Files the user attached (``--attach``): shown as one group, copied into ``attached/``."""

    caption: str
    text: str
    files: list[tuple[Path, int, int]]  # path, width, height


def _say(message: str) -> None:
    print(f"visopt report: {message}", file=sys.stderr, flush=True)


def _tile(folder: Path, relative: str, pixels: np.ndarray, caption: str, display: int) -> Figure:
    """Save one picture at its real size and describe it for the page, enlarged to ``display``."""
    save_image(folder / relative, pixels)
    h, w = pixels.shape[:2]
    size = max(h, w)
    return Figure(relative, caption, w, h, display=size * auto_zoom(size, target=display) if size < display else 0)


def filters_section(plan, folder: Path) -> Section:
    """The filters of each chosen conv layer, one row per layer."""
    groups = []
    for layer, indices, total in plan.filters:
        _say(f"filters of {layer.name!r}: {len(indices)} of {total}, {effective_steps(plan.args.steps)} steps")
        images = visualize_activation(plan.model, layer.name, indices, max_iter=plan.args.steps, seed=plan.args.seed,
                                      input_range=plan.args.input_range)
        pixels = to_pixels(images, plan.args.input_range)
        stem = file_stem(layer.name)
        figures = [_tile(folder, f"filters/{stem}/{i:03d}.png", image, str(i), TILE)
                   for i, image in zip(indices, pixels)]
        shown = f"filters {indices[0]}..{indices[-1]}" if indices == list(range(indices[0], indices[-1] + 1)) \
            else f"filters {','.join(map(str, indices))}"
        groups.append(Group(f"{layer.name} ({type(layer).__name__}): {shown} of {total}", figures))
    intro = ("One image per filter, optimized to make that filter's mean activation as large as possible "
             "(activation maximization with L2 and total-variation regularizers, random jitter). Early layers "
             "respond to colours and edges, later ones to larger patterns.")
    if plan.layer_note:
        intro += f" {plan.layer_note}"
    return Section("Filters", intro, groups)


def classes_section(plan, folder: Path) -> tuple[Section, Section, object]:
    """The class images (one row per class) and the progress animation of their optimization."""
    args = plan.args
    _say(f"class images of {plan.class_layer.name!r}: {len(plan.classes)} classes x {args.per_class}, "
         f"{effective_steps(args.steps)} steps, recording the progress animation")
    result = class_images(plan.model, plan.class_layer, plan.classes, args.per_class, args, plan.target,
                          animation=folder / "progress.gif")
    groups = _class_groups(plan, folder, result.images)
    judged = "" if result.recognised is None else \
        f" The model itself classifies {result.recognised:.0%} of these images as their class."
    how = " (on its logits: the class's log-odds)" if is_squashing(plan.class_layer) else ""
    intro = f"Images optimized to raise one unit of layer {plan.class_layer.name!r}{how}.{judged}"
    progress = _progress_section(folder, plan)
    return Section("Classes", intro, groups), progress, result


def _class_groups(plan, folder: Path, images) -> list[Group]:
    """One row per class, or, with one image per class, one row of all classes."""
    per_class = plan.args.per_class
    if per_class == 1:
        figures = [_tile(folder, f"classes/{c:03d}.png", image, _class_caption(plan.names, c, short=True), TILE)
                   for c, image in zip(plan.classes, images)]
        return [Group("one image per class", figures)]
    groups = []
    for row, c in enumerate(plan.classes):
        row_images = images[row * per_class:(row + 1) * per_class]
        figures = [_tile(folder, f"classes/{c:03d}-{k}.png", image, "", TILE) for k, image in enumerate(row_images)]
        groups.append(Group(_class_caption(plan.names, c), figures))
    return groups


def _progress_section(folder: Path, plan) -> Section:
    from PIL import Image  # Pillow comes with imageio and matplotlib

    with Image.open(folder / "progress.gif") as gif:
        width, height, frames = gif.width, gif.height, getattr(gif, "n_frames", 1)
    figure = Figure("progress.gif", f"{frames} frames", width, height, display=max(width, height, 320))
    intro = ("The class images above as they were optimized, from grey noise to the end, one frame every "
             f"{frame_every(plan.args.steps)} step(s); the caption shows the step and the energy.")
    return Section("Progress", intro, [Group("optimization of the class images", [figure])])


def _class_caption(names, c: int, short: bool = False) -> str:
    if names[c] == str(c):
        return str(c) if short else f"class {c}"
    return f"{c}: {names[c]}" if short else f"class {c}: {names[c]}"


def explanations_section(plan, folder: Path) -> Section:
    """Each image with its saliency and CAM overlays, one row per image."""
    from visopt.attribution.cam import visualize_cam
    from visopt.attribution.saliency import visualize_saliency

    batch, args = plan.job.batch, plan.args
    labels, scores = plan.job.labels()
    _say(f"saliency ({plan.saliency_method}) and CAM ({args.cam_method}) of {len(batch.paths)} image(s)")
    maps = {f"saliency: {plan.saliency_method}":
            visualize_saliency(plan.model, plan.class_layer.name, labels, batch.inputs, method=plan.saliency_method)}
    if plan.cam_problem is None:
        maps[f"CAM: {args.cam_method}"] = visualize_cam(plan.model, plan.class_layer.name, labels, batch.inputs,
                                                        method=args.cam_method)
    drawn = {name: overlays(batch.pictures, values, "jet", 0.5) for name, values in maps.items()}
    groups = []
    for i, path in enumerate(batch.paths):
        stem = f"{i:02d}-{file_stem(path.stem)}"
        figures = [_tile(folder, f"images/{stem}.png", _rgb(batch.pictures[i]), "input", OVERLAY)]
        for name, pictures in drawn.items():
            kind = name.split(":")[0]
            figures.append(_tile(folder, f"{kind.lower()}/{stem}.png", pictures[i], name, OVERLAY))
        groups.append(Group(plan.job.describe(i, labels, scores), figures))
    return Section("Saliency and CAM", _explanations_intro(plan, batch), groups)


def _rgb(picture: np.ndarray) -> np.ndarray:
    return np.repeat(picture, 3, axis=-1) if picture.shape[-1] == 1 else picture


def _explanations_intro(plan, batch) -> str:
    intro = ("Where the model looks: for each image, the class it predicts is explained by a saliency map (the "
             "gradient of the class's score with respect to the input pixels) and a class activation map (the last "
             "feature maps weighted by the gradient of the class's score), drawn in jet colours over the image "
             "(red: most important).")
    note = batch.resize_note(plan.target)
    extra = [note] if note else []
    if plan.image_note:
        extra.append(plan.image_note)
    if plan.cam_problem:
        extra.append(f"No CAM: {plan.cam_problem}")
    return " ".join([intro] + [f"{text[0].upper()}{text[1:]}." for text in extra])


def attached_section(plan, folder: Path, title: str = "Attached") -> Section:
    """The user's files, copied into ``attached/``, one group per ``--attach`` path."""
    groups = []
    for index, attachment in enumerate(plan.attachments):
        base = f"attached/{index:02d}-{file_stem(attachment.caption)}"
        figures = []
        for path, width, height in attachment.files:
            target = folder / base / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            size = max(width, height)  # a small animation (a weight video of a few filters) is enlarged
            display = size * auto_zoom(size, target=ATTACHED) if size < ATTACHED else 0
            figures.append(Figure(f"{base}/{path.name}", path.stem, width, height, display))
        groups.append(Group(attachment.caption, figures, attachment.text))
    return Section(title, "", groups)
