"""``visopt render DIR``: kept weight snapshots to one animation per weight tensor."""

from __future__ import annotations

import sys

def add_parser(subparsers) -> None:
    """The ``render`` subcommand: its options, and ``run`` as what it does."""
    parser = subparsers.add_parser(
        "render", help="render WeightSnapshot snapshots to one animation per weight tensor",
        description="Render the weight snapshots kept by visopt.WeightSnapshot (a folder with "
                    "manifest.json) to one animation per weight tensor, named layer_NAME-weights_YY. Each "
                    "weight's colour scale is fixed over all its snapshots. Unset options take the values "
                    "the callback stored in the manifest.")
    parser.add_argument("directory", help="the WeightSnapshot output_dir")
    parser.add_argument("--format", choices=("mp4", "gif", "png"), default=None,
                        help="animation format (png: a folder of frames per weight); default: the callback's "
                             "video_format, else mp4")
    parser.add_argument("--cmap", default=None, help="matplotlib colormap name (gray, RdBu, viridis, jet...)")
    parser.add_argument("--fps", type=float, default=None, help="frames per second")
    parser.add_argument("--per-epoch", action="store_true", default=None,
                        help="also write epoch_XXX-layer_NAME-weights_YY files, one per epoch (0-based)")
    parser.add_argument("--max-frame-size", type=int, default=None, help="longest side of a frame in pixels")
    parser.add_argument("--out", default=None, help="folder for the animations (default: DIRECTORY)")
    parser.add_argument("--weights", nargs="+", default=None, metavar="PATH",
                        help="only these weights (variable paths or file names)")
    parser.add_argument("--no-annotate", dest="annotate", action="store_false",
                        help="no epoch/batch caption above the frames")
    parser.set_defaults(run=run)


def run(args) -> int:
    """Render the folder; prints each file written, and a count on stderr."""
    from visopt.training.videos import render_snapshots  # Keras loads only when a command runs

    fps = args.fps
    if fps is not None and fps.is_integer():
        fps = int(fps)
    paths = render_snapshots(args.directory, format=args.format, cmap=args.cmap, fps=fps, per_epoch=args.per_epoch,
                             max_frame_size=args.max_frame_size, out=args.out, annotate=args.annotate,
                             weights=args.weights)
    for path in paths:
        print(path)
    print(f"rendered {len(paths)} animation(s)", file=sys.stderr)
    return 0
