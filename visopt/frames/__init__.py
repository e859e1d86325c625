"""Pixels to files.

What belongs here: writing pictures that already exist as RGB arrays: the frame writer
(:mod:`~visopt.frames.writer`: frames composed and encoded on a background worker, memory flat in
the number of frames), its formats (:mod:`~visopt.frames.sinks`: GIF, MP4, a PNG folder,
TensorBoard), captions drawn into frames (:mod:`~visopt.frames.captions`), single images
(:func:`save_image`), and pictures and files shown in a notebook (:mod:`~visopt.frames.display`:
``show``, ``Picture``, ``Media``: encoded images that display themselves). Every file appears
complete under its final name or not at all. Both the optimizer's progress animations and the
training-time weight videos go through here.

Example:
    >>> from visopt.frames import FrameWriter, save_image
    >>> with FrameWriter("out/progress.gif", fps=20) as writer:
    ...     writer.write(images, text="step 0")
"""

from visopt.frames.display import Media, Picture, in_notebook, media_html, show
from visopt.frames.image_file import save_image
from visopt.frames.writer import FORMATS, FrameWriter, FrameWriterError, check_output_path, format_for, partial_path

__all__ = ["FORMATS", "FrameWriter", "FrameWriterError", "Media", "Picture", "check_output_path", "format_for",
           "in_notebook", "media_html", "partial_path", "save_image", "show"]
