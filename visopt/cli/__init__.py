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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"visopt {args.command}: interrupted; nothing partial was kept", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a shell user gets one line, not a traceback
        if args.debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"visopt {args.command}: error: {_one_line(str(message))}", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or "unknown error"


if __name__ == "__main__":
    raise SystemExit(main())
