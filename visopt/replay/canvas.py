"""How replay views draw: one figure, artists moved from point to point, frames streamed to the frame writer.

A view (:mod:`visopt.replay.views`) computes ``data(k)`` and makes its artists once in an axes
(:meth:`View.draw`); a :class:`Drawing` moves them to any point. ``plot`` draws one point into a
new figure (or a given axes); ``animate`` draws every point into the *same* figure: the layout is
solved once, the still parts (axes, ticks, labels) are rendered once and restored from a saved
background, only the moving artists are redrawn (blitting), and the canvas pixels go to
:class:`~visopt.frames.writer.FrameWriter`, which encodes them on its own thread. No image file is
written on the way. :func:`compose` puts several views into the panels of one figure.

Example:
    >>> view = replay.loss_histogram()
    >>> view.plot(12).savefig("losses.png")
    >>> compose([replay.feature_space("hidden"), replay.loss_histogram()]).animate("run.gif", fps=8)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from visopt._checks import check_int
from visopt.frames.writer import FrameWriter
from visopt.render.figures import NotebookFigure

ANIMATION_SUFFIXES = (".gif", ".mp4")
#: Class colours (matplotlib's tab10), class c gets CLASS_COLOURS[c % 10].
CLASS_COLOURS = np.array([[0.122, 0.467, 0.706], [1.0, 0.498, 0.055], [0.173, 0.627, 0.173], [0.839, 0.153, 0.157],
                          [0.580, 0.404, 0.741], [0.549, 0.337, 0.294], [0.890, 0.467, 0.761], [0.498, 0.498, 0.498],
                          [0.737, 0.741, 0.133], [0.090, 0.745, 0.812]])
RIGHT_COLOUR, WRONG_COLOUR = "#2ca02c", "#d62728"


class Drawing:
    """The artists a view made in one axes: ``update(k)`` moves them to point ``k``; ``artists`` are
    the ones that change (and those that must stay on top of them), in drawing order.

    Example:
        >>> drawing = view.draw(ax)
        >>> drawing.update(12)          # the same artists, now at point 12
    """

    def __init__(self, update, artists):
        self.update = update
        self.artists = list(artists)


class View:
    """The base of the replay views: ``data(k)`` cached per point, ``plot`` and ``animate`` from :meth:`draw`.

    A subclass implements ``_compute(k)`` (the dict of arrays at point k) and ``draw(ax)`` (makes the
    artists at fixed scales, returns a :class:`Drawing`).

    Example:
        >>> view = replay.loss_histogram(bins=30)
        >>> view.data(5)["counts"].sum() == len(replay.x)
        True
    """

    #: the figure size (inches) of ``plot`` and ``animate``; at 100 dpi 640 x 480 pixels (even: MP4 wants that)
    figsize = (6.4, 4.8)

    def __init__(self, replay):
        self.replay = replay
        self._data: dict[int, dict] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.replay!r})"

    def data(self, k: int) -> dict:
        """The arrays drawn at point ``k`` (computed once per point; out-of-range ``k`` raises IndexError)."""
        k = self.replay.index(k)
        if k not in self._data:
            self._data[k] = self._compute(k)
        return self._data[k]

    def all_data(self) -> list[dict]:
        """``data(k)`` at every point: what the fixed scales (limits, bins) are taken from."""
        return [self.data(k) for k in range(len(self.replay))]

    def plot(self, k: int, ax=None) -> Figure:
        """A matplotlib Figure of point ``k`` (a new one, or ``ax.figure`` after drawing into ``ax``); nothing is shown.

        Example:
            >>> fig = view.plot(-1)
            >>> fig.savefig("last.png")
        """
        k = self.replay.index(k)
        if ax is None:
            _, (ax,) = new_figure(1, 1, self.figsize)
        self.draw(ax).update(k)
        return ax.figure

    def animate(self, path, fps: float = 10, points=None, *, dpi: int = 100) -> Path:
        """Write an animation (``.gif`` or ``.mp4``), a frame per point (or per point of ``points``); returns the path.

        The file appears complete or not at all: an existing file is replaced only once the new one
        is written, and nothing else is left in its folder.

        Example:
            >>> view.animate("runs/losses.gif", fps=8, points=range(0, 150, 5))
            PosixPath('runs/losses.gif')
        """
        return animate_views([self], path, fps=fps, points=points, dpi=dpi, cols=1, panel_size=self.figsize)

    def draw(self, ax) -> Drawing:
        """Make this view's artists in ``ax`` at scales fixed for every point; the Drawing moves them."""
        raise NotImplementedError

    def _compute(self, k: int) -> dict:
        raise NotImplementedError

    def _title(self, name: str, k: int) -> str:
        return f"{name} - {point_label(self.replay, k)}"


class Composition:
    """Several views as the panels of one figure, with the same ``plot(k)`` and ``animate(path)``.

    Example:
        >>> both = compose([replay.feature_space("hidden"), replay.probability_histogram()])
        >>> both.animate("runs/both.mp4", fps=10)
    """

    panel_size = (4.8, 3.6)

    def __init__(self, views, cols: int | None = None):
        views = list(views) if not isinstance(views, View) else [views]
        if not views or not all(hasattr(view, "draw") and hasattr(view, "replay") for view in views):
            raise ValueError(f"compose takes a non-empty list of replay views, got {views!r}")
        self.views = views
        self.cols = len(views) if cols is None else check_int(cols, "cols", 1, len(views))

    def __repr__(self) -> str:
        return f"Composition({[type(view).__name__ for view in self.views]}, cols={self.cols})"

    def plot(self, k: int) -> Figure:
        """One Figure with every view at point ``k``, a panel each."""
        for view in self.views:
            view.replay.index(k)  # an out-of-range point is refused before any drawing
        figure, axes = new_figure(len(self.views), self.cols, self.panel_size)
        for view, ax in zip(self.views, axes):
            view.draw(ax).update(k)
        return figure

    def animate(self, path, fps: float = 10, points=None, *, dpi: int = 100) -> Path:
        """Like :meth:`View.animate`, every view in its panel of each frame."""
        return animate_views(self.views, path, fps=fps, points=points, dpi=dpi, cols=self.cols,
                             panel_size=self.panel_size)


def compose(views, cols: int | None = None) -> Composition:
    """Several views in one figure or animation: ``cols`` panels a row (all in one row by default).

    Example:
        >>> compose([replay.loss_and_metric_view("accuracy"), replay.loss_histogram()], cols=1).plot(30)
    """
    return Composition(views, cols)


# -- figures and frames ------------------------------------------------------------------
def new_figure(panels: int, cols: int, panel_size, dpi: int = 100) -> tuple[Figure, list]:
    """A Figure on an Agg canvas (no pyplot) with ``panels`` axes, ``cols`` a row; extra cells hidden.

    Example:
        >>> figure, axes = new_figure(3, 2, (4.8, 3.6))   # 2 x 2 cells, the fourth hidden
    """
    rows = math.ceil(panels / cols)
    figure = NotebookFigure(figsize=(panel_size[0] * cols, panel_size[1] * rows), dpi=dpi, layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for extra in axes[panels:]:
        extra.set_visible(False)
    return figure, axes[:panels]


def animate_views(views, path, *, fps, points, dpi, cols, panel_size) -> Path:
    """Draw ``views`` into one figure and stream a frame per point to ``path`` (see :meth:`View.animate`).

    Example:
        >>> animate_views([space, losses], "run.gif", fps=10, points=None, dpi=100, cols=2, panel_size=(4.8, 3.6))
    """
    path = _animation_path(path)
    points = _points(views, points)
    check_int(dpi, "dpi", 10, 1000)
    figure, axes = new_figure(len(views), cols, panel_size, dpi)
    width, height = figure.canvas.get_width_height()
    writer = FrameWriter(path, fps=fps, annotate=False, min_size=min(256, max(width, height)),
                         max_size=max(width, height))
    try:
        drawings = [view.draw(ax) for view, ax in zip(views, axes)]
        _stream(figure, drawings, points, writer)
    except BaseException:
        writer.abort()  # the target keeps what it held; the partial file is deleted
        raise
    return writer.close()


def _stream(figure, drawings, points, writer) -> None:
    """Blit: render the still parts once, then per point redraw only the drawings' artists."""
    canvas = figure.canvas
    for drawing in drawings:
        drawing.update(points[0])
    canvas.draw()  # the layout is solved here, with the texts of a real point
    figure.set_layout_engine("none")  # positions frozen: the frames that follow skip the solver
    moving = _redrawn([artist for drawing in drawings for artist in drawing.artists])
    for artist in moving:
        artist.set_animated(True)
    try:
        canvas.draw()
        background = canvas.copy_from_bbox(figure.bbox)
        for k in points:
            for drawing in drawings:
                drawing.update(k)
            canvas.restore_region(background)
            for artist in moving:
                figure.draw_artist(artist)
            writer.write(np.asarray(canvas.buffer_rgba())[..., :3])  # write() copies the pixels
    finally:
        for artist in moving:
            artist.set_animated(False)


def _redrawn(artists) -> list:
    """What each frame redraws, in the order a full draw would: the moving artists and the spines of
    their axes (which a full draw puts above collections and images), by zorder."""
    spines = []
    for ax in dict.fromkeys(artist.axes for artist in artists if artist.axes is not None):
        spines += [spine for spine in ax.spines.values() if ax.axison and spine.get_visible()]
    return sorted(artists + spines, key=lambda artist: artist.get_zorder())  # stable: ties keep their order


def _animation_path(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise ValueError(f"an animation is written as {' or '.join(ANIMATION_SUFFIXES)}; got {str(path)!r}")
    return path


def _points(views, points) -> list[int]:
    replay = views[0].replay
    if points is None:
        points = range(len(replay))
    points = [replay.index(k) for k in points]
    if not points:
        raise ValueError("points is empty: an animation needs at least one point")
    for view in views[1:]:
        for k in points:
            view.replay.index(k)
    return points


def point_label(replay, k: int) -> str:
    """``"epoch 3"``, or ``"epoch 3 batch 40"`` for a point inside an epoch.

    Example:
        >>> point_label(replay, 3)
        'epoch 3'
    """
    point = replay.points[k]
    batch = point.get("batch", 0)
    return f"epoch {point.get('epoch', k)}" + (f" batch {batch}" if batch else "")


def fixed_limits(arrays, margin: float = 0.05) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(xlim, ylim)`` holding every ``(..., 2)`` array of ``arrays`` (finite values), ``margin`` added each side.

    Example:
        >>> fixed_limits([np.array([[0, 0], [1, 2]])], margin=0.5)
        ((-0.5, 1.5), (-1.0, 3.0))
    """
    stacked = np.concatenate([np.asarray(a, np.float64).reshape(-1, 2) for a in arrays])
    stacked = stacked[np.isfinite(stacked).all(axis=1)]
    if not len(stacked):
        return (-1.0, 1.0), (-1.0, 1.0)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    pad = np.maximum((high - low) * margin, 1e-6)
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))


def bar_verts(edges, bottom, top) -> np.ndarray:
    """Rectangles ``(bins, 4, 2)`` from ``edges`` (bins + 1), ``bottom`` and ``top`` per bin: bars as one collection.

    Example:
        >>> bars.set_verts(bar_verts(np.linspace(0, 1, 11), 0.0, counts))
    """
    left, right = edges[:-1], edges[1:]
    bottom = np.broadcast_to(bottom, left.shape)
    return np.stack([np.stack([left, bottom], -1), np.stack([left, top], -1), np.stack([right, top], -1),
                     np.stack([right, bottom], -1)], axis=1)


def inset_panels(ax, count: int, gap: float = 0.1) -> list:
    """``count`` axes side by side inside ``ax`` (which is hidden but keeps its title): a view that needs
    several panels still draws into the one axes it is given.

    Example:
        >>> left, right = inset_panels(ax, 2)
    """
    ax.set_axis_off()
    width = (1 - gap * (count - 1)) / count
    return [ax.inset_axes([i * (width + gap), 0, width, 1]) for i in range(count)]
