"""``visopt render DIR``: kept weight snapshots to one animation per weight tensor."""

from __future__ import annotations

import argparse
import re
import sys

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_size(text: str) -> int:
    """``"200M"`` -> 209715200: a number of bytes with an optional K, M, G or T (powers of 1024; a
    trailing B or iB is allowed).

    Example:
        >>> byte_size("1.5G"), byte_size("4096")
        (1610612736, 4096)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None or float(match.group(1)) * _UNITS[match.group(2).upper()] < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give bytes, or a number with K, M, G or T "
                                         "(200M, 1.5G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


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
    parser.add_argument("--min-value-size", type=int, default=2,
                        help="fewest pixels per value each way: bigger matrices are folded into blocks, or "
                             "shown by a sample of their rows (default 2)")
    parser.add_argument("--out", default=None, help="folder for the animations (default: DIRECTORY)")
    parser.add_argument("--weights", nargs="+", default=None, metavar="PATH",
                        help="only these weights (variable paths or file names)")
    parser.add_argument("--include", nargs="+", default=None, metavar="PATTERN",
                        help="only the weights whose path matches one of these patterns ('*embedding*')")
    parser.add_argument("--exclude", nargs="+", default=None, metavar="PATTERN",
                        help="none of the weights whose path matches one of these patterns")
    parser.add_argument("--max-bytes", type=byte_size, default=None, metavar="SIZE",
                        help="first thin the kept snapshots IN PLACE (every other one, evenly spaced, "
                             "repeatedly) until the folder's snapshots fit SIZE (200M, 1.5G)")
    parser.add_argument("--no-annotate", dest="annotate", action="store_false",
                        help="no epoch/batch caption above the frames")
    parser.set_defaults(run=run)


def run(args) -> int:
    """Render the folder (thinned first with ``--max-bytes``); prints each file written, and a count on stderr."""
    from visopt.store.writer import thin_folder  # Keras loads only when a command runs
    from visopt.training.videos import render_snapshots

    fps = args.fps
    if fps is not None and fps.is_integer():
        fps = int(fps)
    if args.max_bytes is not None:
        kept = thin_folder(args.directory, args.max_bytes)
        print(f"kept {kept} snapshot(s) within {args.max_bytes} bytes", file=sys.stderr)
    paths = render_snapshots(args.directory, format=args.format, cmap=args.cmap, fps=fps, per_epoch=args.per_epoch,
                             max_frame_size=args.max_frame_size, out=args.out, annotate=args.annotate,
                             weights=args.weights, include=args.include, exclude=args.exclude,
                             min_value_size=args.min_value_size)
    for path in paths:
        print(path)
    print(f"rendered {len(paths)} animation(s)", file=sys.stderr)
    return 0
