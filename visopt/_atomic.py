"""Files that appear complete or not at all: write under a temporary name in the target folder, then rename.

Every file visopt writes goes through here (PNGs, manifests, animations, figures), so one rule holds
everywhere: a reader never sees half a file, an interrupted or failed write leaves nothing under the
final name and never destroys the previous file, and what is published gets the permissions the
user's umask gives a new file (``0o666 & ~umask``) or folder (``0o777 & ~umask``), whatever the
temporary file had. The umask is read once, when visopt is imported: reading it means setting it
for a moment, which the other threads of the process would see.

Example:
    >>> atomic_write_bytes("runs/manifest.json", b"{}")
    >>> tmp = temporary_file(Path("runs/opt.gif"))      # write to tmp, then:
    >>> publish(tmp, Path("runs/opt.gif"))
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def temporary_file(path: Path, suffix: str = "") -> Path:
    """A new empty file beside ``path`` (``.NAME.XXXX.part[suffix]``), parent folders created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def temporary_folder(path: Path) -> Path:
    """A new empty folder beside ``path``, parent folders created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))


def publish(tmp: Path, path: Path) -> Path:
    """Rename the finished ``tmp`` to ``path`` (replacing a file there), with the umask's permissions."""
    base = 0o777 if Path(tmp).is_dir() else 0o666  # mkstemp/mkdtemp make 0600/0700
    os.chmod(tmp, base & ~_UMASK)
    os.replace(tmp, path)
    return Path(path)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that the file appears complete or not at all; parent folders are created.

    Example:
        >>> atomic_write_bytes("out/notes.txt", b"hello")
        PosixPath('out/notes.txt')
    """
    path = Path(path)
    tmp = temporary_file(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        return publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
