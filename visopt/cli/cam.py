"""``visopt cam MODEL IMAGES...``: class activation maps (Grad-CAM and kin) over the images.

    visopt cam model.keras cat.png dog.png                            # cat.cam-gradcam.png beside cat.png
    visopt cam model.keras photos/ --method gradcam++ --out cams/
    visopt cam model.keras cat.png --penultimate-layer block4_conv3 --class 281
"""

from __future__ import annotations

from visopt.attribution.cam import CAM_METHODS, visualize_cam
from visopt.cli.explain import add_explain_arguments, prepare, run_job
from visopt.model.layers import find_feature


def add_parser(subparsers) -> None:
    """The ``cam`` subcommand: its options, and ``run`` as what it does."""
    parser = subparsers.add_parser(
        "cam", help="Grad-CAM maps of images, overlaid on them (gradcam, gradcam++, scorecam, layercam)",
        description="Compute a class activation map (as visualize_cam) of the class each image is predicted as "
                    "and save it over the image as NAME.cam-METHOD.png, beside the image or in --out. Images of "
                    "another size than the model's input are resized (and the command says so).")
    add_explain_arguments(parser, CAM_METHODS, "gradcam")
    parser.add_argument("--penultimate-layer", default=None, metavar="LAYER",
                        help="the feature maps to weight (default: the last spatial map before the global pooling)")
    parser.set_defaults(run=run)


def run(args) -> int:
    """Check everything, compute the maps, save the overlays; prints their paths."""
    job = prepare(args, "cam", f"cam-{args.method}")
    if args.penultimate_layer is not None:
        find_feature(job.model, args.penultimate_layer)  # a wrong name lists the valid ones, before any work
    return run_job(args, "cam", job,
                   lambda labels: visualize_cam(job.model, job.layer.name, labels, job.batch.inputs,
                                                penultimate_layer=args.penultimate_layer, method=args.method))
