"""``python -m visopt render DIR``: the ``visopt`` command without the console script (see :mod:`visopt.cli`)."""

from visopt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
