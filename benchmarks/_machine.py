"""What a benchmark ran on: the CPU's name, the load on it and the visopt commit, printed with every result."""

from __future__ import annotations

import os
import platform
import subprocess

import visopt


def visopt_revision() -> str:
    """The git commit of the visopt checkout being measured (``+modified`` with local changes), if any."""
    package = os.path.dirname(os.path.abspath(visopt.__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        changes = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=package, capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return commit + ("+modified" if changes else "")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ("unavailable" where the system has none)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unavailable"
