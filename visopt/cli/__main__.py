"""``python -m visopt.cli render DIR``: the same as ``visopt render DIR``."""

from visopt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
