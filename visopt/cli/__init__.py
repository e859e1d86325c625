"""The ``visopt`` command: visopt on a model file, and weight snapshots to animations, from the shell.

    visopt filters model.keras conv_1 --filters 0,1,2 --out conv_1.png    # filter visualizations, one grid
    visopt classes model.keras --classes 4 --per-class 2                   # class images of the output layer
    visopt saliency model.keras photos/ --method smoothgrad --out maps/    # saliency overlays
    visopt cam model.keras cat.png dog.png                                 # Grad-CAM overlays, beside the images
    visopt report model.keras --images photos/ --out report/               # all of it as one HTML page
    visopt render runs/weights --format gif --cmap RdBu                    # WeightSnapshot snapshots to animations
    python -m visopt report model.keras --out report/                      # the same without the console script

A model file is loaded in Keras' safe mode (``--unsafe`` allows Lambda layers). Every argument is
checked before any work starts; an error is one line on stderr (``--debug`` shows the traceback)
and the exit status is 1 (2 for a usage error, 130 when interrupted). See docs/cli.md.

What belongs here: the shell's way into visopt. One module per subcommand (:mod:`visopt.cli.render`,
``filters``, ``classes``, ``saliency``, ``cam``, ``report``), each adding its parser to ``_COMMANDS``
with a ``run`` that returns an exit status; what they share (loading the model file, reading images,
options, the report's HTML page) in modules beside them. The work itself is done by the library,
so a command is checking arguments, calling visopt and writing files.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from visopt.cli import cam, classes, filters, render, report, saliency

_COMMANDS = (filters.add_parser, classes.add_parser, saliency.add_parser, cam.add_parser, report.add_parser,
             render.add_parser)


class _Parser(argparse.ArgumentParser):
    """A usage error in one line, like every other error of the command."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    """Run the ``visopt`` command with ``argv`` (``sys.argv[1:]`` when None); returns the exit status.

    Example:
        >>> main(["render", "runs/weights", "--format", "gif"])
        0
    """
    parser = _Parser(prog="visopt", description="visopt command-line tools (see docs/cli.md)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(subparsers)
    for sub in subparsers.choices.values():  # `visopt filters ... --debug` works too
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the traceback of an error")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line(args.command)
        return _run(args)


def _run(args) -> int:
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


def _warning_line(command: str):
    """Library warnings as one line each, like the errors (no source line under them)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"visopt {command}: warning: {_one_line(str(message))}", file=file or sys.stderr)

    return show


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or "unknown error"


if __name__ == "__main__":
    raise SystemExit(main())
