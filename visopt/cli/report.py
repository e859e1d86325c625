"""``visopt report MODEL --out DIR``: one self-contained HTML page of what a model learned.

    visopt report model.keras --out report/                          # filters, class images, progress
    visopt report model.keras --images photos/ --out report/         # + saliency and Grad-CAM overlays
    visopt report model.keras --images a.png b.png --class-names cat,dog --steps 100 --out report/
    visopt report model.keras --out report/ --attach runs/weights/videos --attach-title "Training"

``DIR/index.html`` links only to files inside ``DIR`` (relative paths, no network). The page is
built in a temporary folder beside ``DIR`` and swapped in when complete: an interrupted or failed
report leaves the previous one as it was, and a half-written page never appears. ``DIR`` must be
new, empty or an earlier report (``report.json`` says so); ``--overwrite`` replaces any folder.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from visopt import __version__
from visopt._atomic import atomic_write_bytes, publish, temporary_folder
from visopt.attribution.cam import CAM_METHODS
from visopt.cli import report_parts, saliency
from visopt.cli.classes import add_class_arguments
from visopt.cli.explain import Job
from visopt.cli.images import image_paths, load_images
from visopt.cli.model_file import ImageInput, class_layer, image_input, load, unit_count
from visopt.cli.options import add_model_arguments, count, parse_class_names, parse_indices
from visopt.cli.page import render_page
from visopt.cli.report_inputs import attachments, chosen_layers, cam_problem

#: What ``report.json`` says, so that a later report knows it may replace the folder.
GENERATOR = "visopt report"


def add_parser(subparsers) -> None:
    """The ``report`` subcommand: its options, and ``run`` as what it does."""
    parser = subparsers.add_parser(
        "report", help="one self-contained HTML page: filters, class images, progress, saliency and CAM",
        description="Write DIR/index.html and its pictures: the filters of each conv layer, class images of the "
                    "output layer, the animation of their optimization and, with --images, saliency and CAM "
                    "overlays. Relative links only: the folder can be zipped, moved or served as it is.")
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="the report's folder (replaced when complete)")
    parser.add_argument("--images", nargs="+", default=None, metavar="PATH", help="image files or folders to explain")
    parser.add_argument("--max-images", type=count, default=12, help="explain at most this many images (default 12)")
    parser.add_argument("--layers", default=None, metavar="A,B,...",
                        help="the layers whose filters to show (default: the conv layers, at most 6, spread over "
                             "the model)")
    parser.add_argument("--filters", type=count, default=16, metavar="N", help="filters shown per layer (default 16)")
    add_class_arguments(parser)
    parser.add_argument("--steps", type=count, default=200, help="optimization steps per image (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--saliency-method", choices=saliency.CHOICES, default="smoothgrad",
                        help="the saliency method (default smoothgrad; see visopt saliency --help)")
    parser.add_argument("--cam-method", choices=CAM_METHODS, default="gradcam", help="the CAM method (default gradcam)")
    parser.add_argument("--attach", nargs="+", action="extend", default=[], metavar="PATH",
                        help="also show these pictures or videos (files, or folders: one group each; a folder's "
                             "about.txt is shown as its text)")
    parser.add_argument("--attach-title", default="Attached", help="the title of the attached files' section")
    parser.add_argument("--title", default=None, help="the page's title (default: the model's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR even when it is not an earlier report")
    parser.set_defaults(run=run)


@dataclass
class Plan:
    """A checked report request: everything ``build`` needs, settled before any work."""

    args: object
    model: object
    target: ImageInput
    out: Path
    filters: list = field(default_factory=list)  # (layer, indices, total)
    layer_note: str = ""
    class_layer: object = None
    classes: list = field(default_factory=list)
    names: list = field(default_factory=list)
    job: Job | None = None
    image_note: str = ""
    saliency_method: str = "vanilla"
    cam_problem: str | None = None
    attachments: list = field(default_factory=list)


def plan(args) -> Plan:
    """Every check of ``report``, in the order a user would fix them; nothing is written."""
    out = check_out(Path(args.out), args.overwrite, [args.model, *(args.images or []), *args.attach])
    model = load(args.model, args.unsafe)
    result = Plan(args, model, image_input(model, "report"), out)
    layers, result.layer_note = chosen_layers(model, args.layers)
    result.filters = [(layer, parse_indices(str(args.filters), unit_count(layer), "--filters", f"layer {layer.name!r}"),
                       unit_count(layer)) for layer in layers]
    result.class_layer = class_layer(model, args.layer)
    total = unit_count(result.class_layer)
    result.classes = parse_indices(args.classes, total, "--classes", f"layer {result.class_layer.name!r}")
    result.names = parse_class_names(args.class_names, total)
    result.saliency_method = saliency.method_name(args.saliency_method)
    if args.images:
        paths = image_paths(args.images)
        if len(paths) > args.max_images:
            result.image_note = f"showing the first {args.max_images} of {len(paths)} images (--max-images)"
            paths = paths[:args.max_images]
        batch = load_images(paths, result.target, args.input_range)
        result.job = Job(model, result.class_layer, result.target, batch, result.names)
        result.cam_problem = cam_problem(model, result.class_layer)
    result.attachments = attachments(args.attach)
    return result


def check_out(out: Path, overwrite: bool, inputs=()) -> Path:
    """``--out``: new, empty, an earlier report, or anything with ``overwrite``; never a file, the
    working folder (or one above it), nor a folder holding an input (replacing it would delete them)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out}' is a file; give a folder for the report")
    where = out.resolve()
    if where == Path.cwd() or where in Path.cwd().parents:
        raise ValueError(f"--out '{out}' is the working folder or holds it: give a folder of its own, e.g. report/")
    for item in inputs:
        if where in Path(item).resolve().parents:
            raise ValueError(f"--out '{out}' holds the input '{item}', which replacing the folder would delete: "
                             "give another --out, or move the input out of it")
    if out.is_dir() and any(out.iterdir()) and not overwrite and not is_report(out):
        raise ValueError(f"--out '{out}' is a folder that holds other files, not an earlier report (no report.json "
                         "by visopt report): give a new or empty folder, or --overwrite to replace it")
    return out


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds a report written by ``visopt report``."""
    try:
        return json.loads((folder / "report.json").read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def run(args) -> int:
    """Check everything, build the report in a temporary folder, swap it in; prints ``DIR/index.html``."""
    request = plan(args)
    for note in (request.layer_note, request.image_note,
                 request.job.batch.resize_note(request.target) if request.job else None):
        if note:
            print(f"visopt report: {note}", file=sys.stderr)
    folder = temporary_folder(request.out)
    try:
        build(request, folder)
        publish_folder(folder, request.out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # the previous report stays as it was
        raise
    print(request.out / "index.html")
    return 0


def build(request: Plan, folder: Path) -> None:
    """Every section's files, then ``report.json`` and, last, ``index.html``."""
    sections = [report_parts.filters_section(request, folder)]
    classes, progress, class_result = report_parts.classes_section(request, folder)
    sections += [classes, progress]
    if request.job is not None:
        sections.append(report_parts.explanations_section(request, folder))
    if request.attachments:
        sections.append(report_parts.attached_section(request, folder, request.args.attach_title))
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    summary = _summary(request)
    # what a program may read back: the class of each class image (the demo judges them), every file
    record = {"generator": GENERATOR, "visopt": __version__, "model": str(request.args.model),
              "created": summary[-1][1], "sections": [s.title for s in sections],
              "class_images": {path: label for path, label in zip(classes.sources(), class_result.labels)},
              "recognised": class_result.recognised, "files": files}
    atomic_write_bytes(folder / "report.json", json.dumps(record, indent=1).encode())
    title = request.args.title or f"What {request.model.name} learned"
    footer = f"made by visopt {__version__} (visopt report); every file of this page is in its folder"
    page = render_page(title, summary, sections, footer)
    atomic_write_bytes(folder / "index.html", page.encode("utf-8"))


def _summary(request: Plan) -> list[tuple[str, str]]:
    model, target = request.model, request.target
    low, high = request.args.input_range
    return [("model", f"{model.name} ({Path(request.args.model).name}), {model.count_params():,} parameters"),
            ("input", f"{target.height}x{target.width}x{target.channels}, pixel range {low:g}..{high:g}"),
            ("classes", f"{unit_count(request.class_layer)} units in layer {request.class_layer.name!r}"),
            ("created", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))]


def publish_folder(folder: Path, out: Path) -> Path:
    """Put the finished ``folder`` in the place of ``out``: the old one is moved aside, the new one
    renamed in, the old one deleted (if the rename fails, the old one goes back)."""
    if not out.exists():
        return publish(folder, out)
    aside = temporary_folder(out)
    os.rmdir(aside)  # a fresh name beside out, for the old report
    os.rename(out, aside)
    try:
        publish(folder, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return out
