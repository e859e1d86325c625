"""The report's choices, made before any work: which layers' filters, whether a CAM is possible,
which attached files (each one opened, so that a file that does not decode is named at once).

Example:
    >>> layers, note = chosen_layers(model, None)       # every conv layer, at most 6
    >>> attachments(["runs/videos"])[0].caption
    'videos'
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from visopt.cli.report_parts import Attachment
from visopt.model.layers import find_layer, find_penultimate_layer, layer_names, walk

#: Layers whose filters a report shows by default.
CONV_LAYERS = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D,
               keras.layers.Conv2DTranspose)
#: At most this many layers by default, spread from the first to the last.
MAX_LAYERS = 6
#: What ``--attach`` takes: pictures shown with <img>, videos with <video>.
ATTACH_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4", ".webm")


def chosen_layers(model, text: str | None) -> tuple[list, str]:
    """The layers named by ``--layers`` (a wrong name lists the valid ones), or the model's conv
    layers (at most ``MAX_LAYERS``, evenly spread), with a note when some were left out."""
    if text:
        return [find_layer(model, name.strip()) for name in text.split(",") if name.strip()], ""
    convs = conv_layers(model)
    if not convs:
        return [], (f"model {model.name!r} has no conv layer; --layers chooses layers to show "
                    f"(valid names: {layer_names(model)})")
    if len(convs) <= MAX_LAYERS:
        return convs, ""
    picks = sorted({int(round(i)) for i in np.linspace(0, len(convs) - 1, MAX_LAYERS)})
    return [convs[i] for i in picks], f"showing {len(picks)} of {len(convs)} conv layers (--layers chooses)"


def conv_layers(model) -> list:
    """The model's 2-D conv layers that visopt can reach, in graph order (nested models in place)."""
    found, seen = [], set()
    for visit in walk(model):
        layer = visit.layer
        if visit.is_model or not isinstance(layer, CONV_LAYERS) or id(layer) in seen:
            continue
        seen.add(id(layer))
        try:
            find_layer(model, layer.name)  # a layer inside a subclassed model cannot be reached
        except ValueError:
            continue
        found.append(layer)
    return found


def cam_problem(model, layer) -> str | None:
    """Why no CAM can be drawn for ``layer`` (no spatial feature map before it), or None."""
    try:
        find_penultimate_layer(model, layer.name)
    except ValueError as err:
        return str(err)
    return None


def attachments(paths) -> list[Attachment]:
    """One :class:`Attachment` per ``--attach`` path: a file alone, or a folder's pictures and videos."""
    found = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in ATTACH_SUFFIXES)
            if not files:
                raise ValueError(f"--attach '{path}' holds no pictures or videos ({', '.join(ATTACH_SUFFIXES)})")
            about = path / "about.txt"
            text = about.read_text(encoding="utf-8").strip() if about.is_file() else ""
            found.append(Attachment(path.name.replace("_", " "), text, [_media(p) for p in files]))
        elif path.is_file():
            found.append(Attachment(path.stem.replace("_", " "), "", [_media(path)]))
        else:
            raise FileNotFoundError(f"--attach '{path}': no such file or folder")
    return found


def _media(path: Path) -> tuple[Path, int, int]:
    """``path`` and its size in pixels; a ValueError naming it when it is not a picture or video that decodes."""
    if path.suffix.lower() not in ATTACH_SUFFIXES:
        raise ValueError(f"--attach '{path}': not a picture or video ({', '.join(ATTACH_SUFFIXES)})")
    try:
        if path.suffix.lower() in (".mp4", ".webm"):
            import cv2

            video = cv2.VideoCapture(str(path))
            ok, frame = video.read()
            video.release()
            if not ok:
                raise ValueError
            return path, frame.shape[1], frame.shape[0]
        from PIL import Image  # Pillow comes with imageio and matplotlib

        with Image.open(path) as image:
            image.verify()
            return path, image.width, image.height
    except Exception:  # noqa: BLE001 - whatever the decoder raises, the user needs the file's name
        raise ValueError(f"--attach '{path}' does not decode as a {path.suffix} file") from None

