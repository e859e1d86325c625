"""``visopt filters MODEL LAYER``: a grid of images that maximize a layer's filters.

    visopt filters model.keras conv_1                         # the first 16 filters -> filters_conv_1.png
    visopt filters model.keras conv_1 --filters 0,3,7 --steps 300 --out conv_1.png
    visopt filters model.keras block5_conv3 --filters 64 --input-range -1,1
"""

from __future__ import annotations

import sys

from visopt.cli.images import auto_zoom, enlarge_batch, file_stem, output_file, to_pixels
from visopt.cli.model_file import image_input, load, unit_count
from visopt.cli.options import add_model_arguments, add_optimization_arguments, count, parse_indices
from visopt.frames.image_file import save_image
from visopt.model.layers import find_layer
from visopt.optvis.visualization import visualize_activation
from visopt.render.images import stitch_images


def add_parser(subparsers) -> None:
    """The ``filters`` subcommand: its options, and ``run`` as what it does."""
    parser = subparsers.add_parser(
        "filters", help="a grid of images that maximize the filters of one layer",
        description="Optimize one image per filter of LAYER (activation maximization, as visualize_activation) and "
                    "save them as one PNG grid, in filter order, row by row.")
    add_model_arguments(parser)
    parser.add_argument("layer", metavar="LAYER", help="the layer's name (a wrong name lists the valid ones)")
    parser.add_argument("--filters", default=None, metavar="N|I,J,...",
                        help="a count (the first N; default 16), a list such as 0,3,7 ('3,' is filter 3 alone), or all")
    add_optimization_arguments(parser)
    parser.add_argument("--cols", type=count, default=None, help="tiles per row (about square by default)")
    parser.add_argument("--out", default=None, metavar="FILE.png", help="the grid's file (default filters_LAYER.png)")
    parser.set_defaults(run=run)


def run(args) -> int:
    """Check everything, optimize, save the grid; prints its path, and what it shows on stderr."""
    model = load(args.model, args.unsafe)
    target = image_input(model, "filters")
    layer = find_layer(model, args.layer)
    total = unit_count(layer)
    indices = parse_indices(args.filters, total, "--filters", f"layer {layer.name!r}")
    out = output_file(args.out, f"filters_{file_stem(layer.name)}.png")

    images = visualize_activation(model, layer.name, indices, max_iter=args.steps, seed=args.seed,
                                  input_range=args.input_range, verbose=sys.stderr.isatty())
    tiles = enlarge_batch(to_pixels(images, args.input_range), auto_zoom(max(target.height, target.width), args.zoom))
    print(save_image(out, stitch_images(tiles, cols=args.cols)))
    print(f"{len(indices)} of {total} filters of layer {layer.name!r}: {short_list(indices)}", file=sys.stderr)
    return 0


def short_list(indices, limit: int = 60) -> str:
    """``0,1,2,...`` cut to about ``limit`` characters, for messages."""
    text = ",".join(str(i) for i in indices)
    return text if len(text) <= limit else text[:limit - 3] + "..."
