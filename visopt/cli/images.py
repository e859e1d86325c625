"""Image files in, pictures out: what the commands read from the user's images and how they lay out results.

Images are read with OpenCV (PNG, JPEG, BMP, TIFF, WebP), made RGB or grey to match the model,
resized to its input size when they differ (the command says so) and mapped from 0..255 to the
model's ``--input-range``. Every file that cannot be read is named before any work starts.

Example:
    >>> paths = image_paths(["photos/"])
    >>> batch = load_images(paths, ImageInput(32, 32, 3, False), (0, 255))
    >>> batch.inputs.shape, batch.pictures.dtype
    ((4, 32, 32, 3), dtype('uint8'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from visopt.cli.model_file import ImageInput
from visopt.render.images import deprocess_image

#: The files a folder of images is searched for (what OpenCV decodes).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def image_paths(items) -> list[Path]:
    """The image files named by ``items``: files as given, folders expanded to their image files (sorted).

    Example:
        >>> image_paths(["cat.jpg", "more/"])
        [PosixPath('cat.jpg'), PosixPath('more/a.png'), PosixPath('more/b.png')]
    """
    paths = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder '{path}'")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"no image file at '{path}'")
    if not paths:
        raise ValueError("no images given")
    return paths


def read_image(path: Path) -> np.ndarray:
    """One file as uint8 RGB ``(H, W, 3)`` or grey ``(H, W, 1)``; a ValueError naming it when it does not decode."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ValueError(f"cannot read '{path}' as an image (readable: {', '.join(IMAGE_SUFFIXES)})")
    if pixels.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the top 8 bits
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = deprocess_image(pixels.astype(np.float32)[None])[0]
    if pixels.ndim == 2:
        return pixels[..., None]
    if pixels.shape[-1] == 4:
        pixels = pixels[..., :3]  # alpha dropped: models take colour
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if pixels.shape[-1] == 3 else pixels[..., :1]


@dataclass
class ImageBatch:
    """The loaded images: ``inputs`` for the model, ``pictures`` (uint8, channels last, at the model's
    size) and ``originals`` (as in the files) to draw on, ``resized`` the files whose size changed."""

    paths: list[Path]
    inputs: np.ndarray
    pictures: np.ndarray
    originals: list[np.ndarray]
    resized: list[tuple[Path, tuple[int, int]]]

    def resize_note(self, target: ImageInput) -> str | None:
        """One line saying which images were resized, or None."""
        if not self.resized:
            return None
        sizes = sorted({f"{h}x{w}" for _, (h, w) in self.resized})
        return (f"resized {len(self.resized)} of {len(self.paths)} image(s) ({', '.join(sizes)}) to the model's input "
                f"size {target.height}x{target.width}")


def load_images(paths, target: ImageInput, input_range, resize: bool = True) -> ImageBatch:
    """Read every file and shape it for the model: a ValueError naming the file (and the expected
    shape when ``resize`` is False and the size differs) before any work.

    Example:
        >>> load_images([Path("cat.png")], ImageInput(32, 32, 3, False), (0, 1)).inputs.max() <= 1
        True
    """
    pictures, originals, resized = [], [], []
    for path in paths:
        pixels = _match_channels(read_image(path), target.channels, path)
        originals.append(pixels)
        size = pixels.shape[:2]
        if size != (target.height, target.width):
            if not resize:
                raise ValueError(f"image '{path}' is {size[0]}x{size[1]}; the model takes {target.height}x"
                                 f"{target.width} ({target.describe()}): resize it, or leave out --no-resize")
            pixels = cv2.resize(pixels, (target.width, target.height), interpolation=cv2.INTER_AREA)
            pixels = pixels.reshape(target.height, target.width, -1)
            resized.append((path, size))
        pictures.append(pixels)
    pictures = np.stack(pictures)
    low, high = input_range
    inputs = low + pictures.astype(np.float32) * ((high - low) / 255.0)
    if target.channels_first:
        inputs = inputs.transpose(0, 3, 1, 2)
    return ImageBatch(list(paths), inputs, pictures, originals, resized)


def _match_channels(pixels: np.ndarray, channels: int, path: Path) -> np.ndarray:
    if pixels.shape[-1] == channels:
        return pixels
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., None]
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    raise ValueError(f"the model takes {channels}-channel images; '{path}' has {pixels.shape[-1]} "
                     "(image files give 1 or 3)")


def enlarge(image: np.ndarray, zoom: int) -> np.ndarray:
    """``image`` ``(H, W[, C])`` enlarged ``zoom`` times, nearest neighbour (pixels stay sharp)."""
    if zoom <= 1:
        return image
    return np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)


def enlarge_batch(images: np.ndarray, zoom: int) -> np.ndarray:
    """A batch ``(N, H, W[, C])`` with each image enlarged ``zoom`` times, nearest neighbour."""
    if zoom <= 1:
        return images
    return np.repeat(np.repeat(images, zoom, axis=1), zoom, axis=2)


def auto_zoom(size: int, zoom="auto", target: int = 128) -> int:
    """``--zoom``: a whole number as it is, or ``"auto"``: the smallest factor that makes ``size`` pixels
    at least ``target``.

    Example:
        >>> auto_zoom(32), auto_zoom(224), auto_zoom(32, 2)
        (4, 1, 2)
    """
    if zoom == "auto":
        return max(1, -(-target // max(size, 1)))
    return int(zoom)


def to_pixels(images: np.ndarray, input_range) -> np.ndarray:
    """Optimized images (channels last) as uint8 for files: the model's range mapped to 0..255."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return deprocess_image(images.astype(np.float32), input_range=input_range)


def file_stem(text: str) -> str:
    """``text`` made safe as (part of) a file name: 'block1/conv 2' -> 'block1_conv_2'."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._") or "x"


def output_file(out, default: str, suffixes=(".png", ".jpg", ".jpeg")) -> Path:
    """The file ``--out`` names (or ``default`` in the working folder); a ValueError for a folder or an
    unknown suffix, before any work."""
    path = Path(out) if out else Path(default)
    if path.is_dir():
        raise ValueError(f"--out '{path}' is a folder; give a file name such as '{path / default}'")
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"--out '{path}' must end in {', '.join(suffixes)}")
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"--out '{path}': '{path.parent}' is not a folder")
    return path


def as_model_input(images: np.ndarray, target: ImageInput) -> np.ndarray:
    """Channels-last images (as visualize_activation returns them) as float32 in the model's layout."""
    batch = np.asarray(images, np.float32)
    return batch.transpose(0, 3, 1, 2) if target.channels_first else batch
