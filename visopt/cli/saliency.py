"""``visopt saliency MODEL IMAGES...``: saliency maps over the images, saved beside them or in ``--out``.

    visopt saliency model.keras cat.png dog.png                       # cat.saliency-vanilla.png beside cat.png
    visopt saliency model.keras photos/ --method smoothgrad --out maps/
    visopt saliency model.keras cat.png --method integrated_gradients --class 3 --cmap inferno
"""

from __future__ import annotations

from visopt.attribution.saliency import METHODS, visualize_saliency
from visopt.cli.explain import add_explain_arguments, prepare, run_job

#: The shell's names: the library's methods, and ``gradient`` for the plain gradient (``vanilla``).
CHOICES = ("gradient",) + METHODS
_ALIASES = {"gradient": "vanilla"}


def add_parser(subparsers) -> None:
    """The ``saliency`` subcommand: its options, and ``run`` as what it does."""
    parser = subparsers.add_parser(
        "saliency", help="saliency maps of images, overlaid on them (gradient, smoothgrad, guided, ...)",
        description="Compute a saliency map (as visualize_saliency) of the class each image is predicted as and "
                    "save it over the image as NAME.saliency-METHOD.png, beside the image or in --out. Images of "
                    "another size than the model's input are resized (and the command says so).")
    add_explain_arguments(parser, CHOICES, "gradient")
    parser.set_defaults(run=run)


def method_name(method: str) -> str:
    """The library's name of a ``--method`` choice."""
    return _ALIASES.get(method, method)


def run(args) -> int:
    """Check everything, compute the maps, save the overlays; prints their paths."""
    method = method_name(args.method)
    job = prepare(args, "saliency", f"saliency-{method}")
    return run_job(args, "saliency", job, lambda labels: visualize_saliency(job.model, job.layer.name, labels,
                                                                             job.batch.inputs, method=method))
