"""Files: every write goes to a temporary name in the target folder, then is renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that the file appears complete or not at all; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_image(path, image) -> Path:
    """Save a uint8 image (H, W), (H, W, 1) or RGB (H, W, 3) as PNG/JPEG, atomically.

    Example:
        >>> save_image("out/classes.png", stitch_images(images))
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"save_image takes uint8 images (see deprocess_image), got {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 1)):
        raise ValueError(f"save_image takes (H, W), (H, W, 1) or (H, W, 3) images, got shape {array.shape}")
    suffix = Path(path).suffix.lower() or ".png"
    ok, encoded = cv2.imencode(suffix, array)
    if not ok:
        raise ValueError(f"cannot encode an image as {suffix!r}; use .png or .jpg")
    return atomic_write_bytes(path, encoded.tobytes())
