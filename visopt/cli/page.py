"""The report's HTML page: sections of captioned pictures, one self-contained file with inline CSS.

The page links only to files in its own folder (relative paths, no ``..``), needs no script and
no network: it opens from a disk, a zip or a static web server alike. Small pictures are stored at
their real size and enlarged by the browser without smoothing (``image-rendering: pixelated``).

Example:
    >>> section = Section("Filters", "What each filter responds to.",
    ...                   [Group("conv_1", [Figure("filters/conv_1_000.png", "0", 32, 32)])])
    >>> html = render_page("Model demo_cnn", [("input", "32x32x3")], [section], "made by visopt report")
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import quote

#: Suffixes shown with <video>; everything else is an <img>.
VIDEO_SUFFIXES = (".mp4", ".webm")


@dataclass
class Figure:
    """One picture (or video) of the page: ``src`` relative to the page, its real size in pixels."""

    src: str
    caption: str
    width: int
    height: int
    display: int = 0  # the longer side on the page in CSS pixels (0: the real size)

    def __post_init__(self):
        path = PurePosixPath(self.src)
        if path.is_absolute() or ".." in path.parts or "://" in self.src:
            raise ValueError(f"a report links only to files inside its folder, got {self.src!r}")


@dataclass
class Group:
    """Figures shown in a row under one caption (a layer's filters, a class, an image and its maps)."""

    caption: str
    figures: list[Figure]
    text: str = ""


@dataclass
class Section:
    """A titled part of the page with an introduction and its groups."""

    title: str
    intro: str
    groups: list[Group] = field(default_factory=list)

    def sources(self) -> list[str]:
        """Every file the section shows, in page order."""
        return [figure.src for group in self.groups for figure in group.figures]

    @property
    def anchor(self) -> str:
        return "".join(ch if ch.isalnum() else "-" for ch in self.title.lower()).strip("-")


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 0 20px 40px; color: #1d2430; background: #fff; }
h1 { font-size: 1.6em; margin: 24px 0 6px; } h2 { margin: 32px 0 4px; border-bottom: 1px solid #d8dde6; }
h3 { font-size: 1em; margin: 18px 0 6px; } p.intro { color: #4a5568; margin: 4px 0 10px; }
nav a { margin-right: 14px; } table.summary td { padding: 1px 14px 1px 0; vertical-align: top; }
table.summary td:first-child { color: #4a5568; }
.groups { display: flex; flex-wrap: wrap; gap: 0 40px; } .group { max-width: 100%; }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; }
figure { margin: 0; text-align: center; font-size: 12px; color: #4a5568; }
figure img, figure video { display: block; max-width: 100%; height: auto; background: #eef1f5;
                           border: 1px solid #d8dde6; }
img.pixelated { image-rendering: pixelated; image-rendering: crisp-edges; }
p.group-text { margin: 0 0 6px; color: #4a5568; } footer { margin-top: 36px; font-size: 12px; color: #718096; }
"""


def render_page(title: str, summary: list[tuple[str, str]], sections: list[Section], footer: str) -> str:
    """The whole HTML document.

    Example:
        >>> render_page("Model m", [], [], "").startswith("<!DOCTYPE html>")
        True
    """
    nav = " ".join(f'<a href="#{s.anchor}">{_text(s.title)}</a>' for s in sections)
    rows = "\n".join(f"<tr><td>{_text(key)}</td><td>{_text(value)}</td></tr>" for key, value in summary)
    body = "\n".join(_section(section) for section in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="visopt report">
<title>{_text(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_text(title)}</h1>
<table class="summary">
{rows}
</table>
<nav>{nav}</nav>
{body}
<footer>{_text(footer)}</footer>
</body>
</html>
"""


def _section(section: Section) -> str:
    groups = "\n".join(_group(group) for group in section.groups)
    intro = f'<p class="intro">{_text(section.intro)}</p>\n' if section.intro else ""
    return (f'<section id="{section.anchor}">\n<h2>{_text(section.title)}</h2>\n'
            f'{intro}<div class="groups">\n{groups}\n</div>\n</section>')


def _group(group: Group) -> str:
    text = f'<p class="group-text">{_text(group.text)}</p>' if group.text else ""
    figures = "\n".join(_figure(figure) for figure in group.figures)
    return f'<div class="group"><h3>{_text(group.caption)}</h3>{text}\n<div class="row">\n{figures}\n</div></div>'


def _figure(figure: Figure) -> str:
    scale = figure.display / max(figure.width, figure.height) if figure.display else 1.0
    width, height = round(figure.width * scale), round(figure.height * scale)
    src = html.escape(quote(figure.src), quote=True)
    caption = f"<figcaption>{_text(figure.caption)}</figcaption>" if figure.caption else ""
    if PurePosixPath(figure.src).suffix.lower() in VIDEO_SUFFIXES:
        media = (f'<video src="{src}" width="{width}" height="{height}" controls muted loop autoplay playsinline '
                 f'preload="auto"></video>')
    else:
        pixelated = ' class="pixelated"' if scale > 1 else ""
        media = f'<img src="{src}" width="{width}" height="{height}" alt="{_text(figure.caption)}"{pixelated}>'
    return f"<figure>{media}{caption}</figure>"


def _text(value) -> str:
    return html.escape(str(value), quote=True)
