"""The ``visopt`` command: ``visopt render DIR`` turns kept weight snapshots into animations.

    visopt render runs/weights                          # one MP4 per weight tensor, next to the snapshots
    visopt render runs/weights --format gif --cmap RdBu --fps 8 --per-epoch
    python -m visopt render runs/weights                # the same without the console script

What belongs here: the shell's way into visopt. One module per subcommand
(:mod:`visopt.cli.render`), each adding its parser to ``_COMMANDS`` with a ``run`` that returns an
exit status; the work itself is done by the library, so a command is argument parsing and printing.
"""

from __future__ import annotations

import argparse
import sys

from visopt.cli import render

_COMMANDS = (render.add_parser,)


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
