"""The ``visopt`` command: ``visopt render DIR`` turns kept weight snapshots into animations.

    visopt render runs/weights                          # one MP4 per weight tensor, next to the snapshots
    visopt render runs/weights --format gif --cmap RdBu --fps 8 --per-epoch
    python -m visopt render runs/weights                # the same without the console script

Subcommands live in ``_COMMANDS``; each adds its parser and returns an exit status.
"""

from __future__ import annotations

import argparse
import sys


def _add_render(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="render WeightSnapshot snapshots to one animation per weight tensor",
        description="Render the weight snapshots kept by visopt.callbacks.WeightSnapshot (a folder with "
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
    parser.set_defaults(run=_render)


def _render(args) -> int:
    from visopt.snapshots import render_snapshots

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


_COMMANDS = (_add_render,)


def main(argv=None) -> int:
    """Run the ``visopt`` command with ``argv`` (``sys.argv[1:]`` when None); returns the exit status.

    Example:
        >>> main(["render", "runs/weights", "--format", "gif"])
        0
    """
    parser = argparse.ArgumentParser(prog="visopt", description="visopt command-line tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"visopt {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
