"""One picture to one file: PNG or JPEG, encoded by OpenCV and published atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from visopt._atomic import atomic_write_bytes


def save_image(path, image) -> Path:
    """Save a uint8 image (H, W), (H, W, 1) or RGB (H, W, 3) as PNG/JPEG, atomically; returns the path.

    Example:
        >>> save_image("out/classes.png", stitch_images(images))
        PosixPath('out/classes.png')
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
