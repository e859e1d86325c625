"""Captions for frames: Hershey-font text drawn from glyphs rendered once per process.

OpenCV's first text call on a thread is expensive (docs/benchmarks.md), and every FrameWriter
encodes on a new thread. So each character is drawn once per process at a master size, and a
caption is assembled from those masks and resized: cheap on any thread.

Example:
    >>> band = np.zeros((16, 200, 3), np.uint8)
    >>> draw_caption(band, "step 3  loss -1.2", (3, 12), 0.4, 0, (255, 255, 255), antialias=True)
    >>> caption_width("step 3", 0.4)
    34
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MASTER_HEIGHT, _MASTER_BASELINE = 32, 24  # canvas rows and baseline row of a glyph at scale 1
_GLYPHS: dict = {}
_GLYPH_LOCK = threading.Lock()


def _glyph(char: str) -> tuple[np.ndarray, int]:
    """The anti-aliased mask (32 rows, float32 in [0, 1]) and the advance of ``char`` at scale 1."""
    glyph = _GLYPHS.get(char)
    if glyph is None:
        with _GLYPH_LOCK:
            # the advance is what a second copy of the character adds (a lone one also counts the stroke)
            advance = cv2.getTextSize(char * 2, _FONT, 1.0, 1)[0][0] - cv2.getTextSize(char, _FONT, 1.0, 1)[0][0]
            canvas = np.zeros((_MASTER_HEIGHT, advance + 4), np.uint8)
            cv2.putText(canvas, char, (1, _MASTER_BASELINE), _FONT, 1.0, 255, 2, cv2.LINE_AA)
            glyph = _GLYPHS[char] = (canvas.astype(np.float32) / 255, advance)
    return glyph


def caption_width(text: str, scale: float) -> int:
    """Pixels ``text`` takes at ``scale`` (Hershey simplex, scaled linearly from its size at scale 1)."""
    return int(round((sum(_glyph(char)[1] for char in text) + 2) * scale))


def draw_caption(out: np.ndarray, text: str, origin: tuple[int, int], scale: float, background, foreground,
                  antialias: bool) -> None:
    """Draw ``text`` with its baseline starting at ``origin`` (x, y), clipped to ``out``."""
    glyphs = [_glyph(char) for char in text]
    strip = np.zeros((_MASTER_HEIGHT, sum(g[1] for g in glyphs) + 4), np.float32)
    x = 0
    for mask, advance in glyphs:
        np.maximum(strip[:, x:x + mask.shape[1]], mask, out=strip[:, x:x + mask.shape[1]])
        x += advance
    size = (max(1, round(strip.shape[1] * scale)), max(1, round(_MASTER_HEIGHT * scale)))
    alpha = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
    left, top = origin[0], origin[1] - round(_MASTER_BASELINE * scale)
    rows = slice(max(0, top), min(out.shape[0], top + alpha.shape[0]))
    cols = slice(max(0, left), min(out.shape[1], left + alpha.shape[1]))
    alpha = alpha[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
    region = out[rows, cols]
    if antialias:  # blend RGB
        alpha = alpha[..., None] if region.ndim == 3 else alpha
        blended = region * (1 - alpha) + np.asarray(foreground, np.float32) * alpha
        region[...] = np.clip(np.rint(blended), 0, 255).astype(out.dtype)
    else:  # palette indices: a pixel is text or background
        region[alpha >= 0.5] = foreground
