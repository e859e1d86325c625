"""The options the commands share, parsed and checked before any work starts.

Each parser here names the bad value and the valid ones in its error: ``--input-range`` (the
model's pixel range), counts, ``--filters``/``--classes`` (a count, a list or ``all``) and
``--class-names``.

Example:
    >>> parse_indices("0,2", 16, "--filters", "layer 'conv_1'")
    [0, 2]
    >>> parse_range("-1,1")
    (-1.0, 1.0)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from visopt._checks import check_range
from visopt.optvis.optimizer import MAX_ITER_ENV


def add_model_arguments(parser) -> None:
    """MODEL, ``--unsafe`` and ``--input-range``: what every command that reads a model file takes."""
    parser.add_argument("model", metavar="MODEL", help="a Keras model file (.keras or .h5)")
    parser.add_argument("--unsafe", action="store_true",
                        help="allow Lambda layers: runs the Python code stored in the file (only for files you trust)")
    parser.add_argument("--input-range", type=parse_range, default=(0.0, 255.0), metavar="LOW,HIGH",
                        help="the pixel range the model takes (default 0,255; e.g. 0,1 or -1,1)")


def add_optimization_arguments(parser) -> None:
    """``--steps``, ``--seed`` and ``--zoom``: shared by the commands that optimize images."""
    parser.add_argument("--steps", type=count, default=200,
                        help="optimization steps per image (default 200; the VISOPT_MAX_ITER variable caps it)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same images)")
    parser.add_argument("--zoom", type=zoom, default="auto",
                        help="enlarge each tile this many times, nearest neighbour (auto: to at least 128 px)")


def effective_steps(steps: int) -> int:
    """``--steps`` as the optimizer will run it: capped by the ``VISOPT_MAX_ITER`` environment variable."""
    cap = os.environ.get(MAX_ITER_ENV, "").strip()
    return min(steps, int(cap)) if cap.isdigit() and int(cap) > 0 else steps


def parse_range(text: str) -> tuple[float, float]:
    """``"0,255"`` -> ``(0.0, 255.0)``; an argparse type, so a bad value is a usage error."""
    try:
        return check_range(text.split(","), "--input-range")
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err}; e.g. 0,255 or -1,1") from None


def count(text: str) -> int:
    """A whole number >= 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def zoom(text: str):
    """``auto`` or a whole number >= 1 (an argparse type)."""
    return text if text == "auto" else count(text)


def parse_indices(text: str | None, total: int, option: str, owner: str, default: int = 16) -> list[int]:
    """Which of ``total`` filters or classes to show: ``text`` is a count (``"8"``: the first 8), a
    comma-separated list (``"0,3,7"``; ``"3,"`` is index 3 alone) or ``"all"``; None is the first ``default``.

    Example:
        >>> parse_indices("3,", 16, "--filters", "layer 'conv_1'")
        [3]
    """
    if text is None:
        return list(range(min(default, total)))
    text = text.strip()
    if text == "all":
        return list(range(total))
    try:
        if "," not in text:
            wanted = int(text)
            if wanted < 1:
                raise ValueError
            return list(range(min(wanted, total)))
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a count or a comma-separated list of indices "
                         f"(e.g. 16, or 0,1,2, or 3, for index 3 alone)") from None
    bad = [i for i in indices if not 0 <= i < total]
    if bad or not indices:
        raise ValueError(f"{option} {text!r}: index {bad[0] if bad else 'list'} is out of range: {owner} has "
                         f"{total} (valid indices 0..{total - 1})")
    return indices


def parse_class_names(text: str | None, total: int) -> list[str]:
    """Class names from ``--class-names`` (a comma-separated list, or a text file with one name a
    line), one per unit; the unit indices as names when None.

    Example:
        >>> parse_class_names("cat,dog", 2)
        ['cat', 'dog']
    """
    if text is None:
        return [str(i) for i in range(total)]
    path = Path(text)
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        names = [name.strip() for name in text.split(",")]
    if len(names) != total:
        raise ValueError(f"--class-names gives {len(names)} name(s); the class layer has {total} units")
    return names
