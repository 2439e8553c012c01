"""The explorer pattern: sliders drive a matplotlib figure that is built once and re-rendered to PNG.

No ipympl and no pyplot state: a ``matplotlib.figure.Figure`` on an Agg canvas is created once, its
artists are kept, and every slider change only updates their data (``set_offsets``, ``set_data``,
``set_UVC``, ``set_array``) before the figure is encoded to PNG bytes into an ``ipywidgets.Image``.

Writing an explorer (the whole API)::

    class MyExplorer(Explorer):
        def __init__(self):
            self.fig, (ax,) = new_figure(1)                  # Agg figure, not pyplot-managed
            self.points = ax.scatter([], [])                 # keep the artists you will update
            super().__init__({"step_size": FloatLogSlider(value=1e-2, base=10, min=-4, max=0,
                                                          description="ε")})   # renders the first frame

        def draw(self, step_size: float) -> None:            # one keyword per slider
            self.points.set_offsets(compute(step_size))      # update artists, never rebuild

    ex = MyExplorer()
    ex                          # in a notebook: sliders + image; elsewhere a static PNG frame
    ex.update(step_size=0.1)    # headless: sets sliders, recomputes, re-renders once
    ex.sliders["step_size"].value = 0.2   # same as moving the slider
    ex.last_update_s            # wall time of the last update (compute + draw + PNG encoding)
    ex.last_timings             # {"compute": s, "encode": s} of the last update
    ex.png                      # PNG bytes of the current frame

``Explorer.__init__(sliders, figure=None, dpi=80, status=True)``: ``sliders`` maps the keyword names
passed to :meth:`Explorer.draw` to ipywidgets value widgets; ``figure`` defaults to ``self.fig``.
``draw`` may return a short string, shown under the image as a status line (e.g. measured numbers).
The first frame is laid out with the figure's layout engine, which is then switched off so that
later frames skip the layout pass (keep the axes limits fixed in ``draw``).

Front ends without widget support (nbmake, nbconvert to HTML, GitHub) show the ``image/png`` frame
and the ``text/plain`` line that :meth:`Explorer._repr_mimebundle_` returns next to the widget view.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Mapping

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

__all__ = ["Explorer", "PrefetchFrames", "new_figure", "figure_to_png"]


def new_figure(ncols: int = 1, nrows: int = 1, size: float = 3.6, layout: str | None = "constrained"
               ) -> tuple[Figure, list]:
    """An Agg-backed figure (not registered with pyplot, so never shown twice) and its axes as a list."""
    if ncols < 1 or nrows < 1:
        raise ValueError(f"need at least one row and column of axes, got nrows={nrows}, ncols={ncols}")
    fig = Figure(figsize=(size * ncols, size * nrows), layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def figure_to_png(fig: Figure, dpi: float = 80) -> bytes:
    """Render the figure once with Agg and encode the pixels as PNG bytes.

    Faster than ``fig.savefig``: no second (layout) draw pass, and zlib level 1 instead of the
    default 6 (about 40 % less encoding time for ~20 % larger files).
    """
    if fig.dpi != dpi:
        fig.set_dpi(dpi)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    buf = io.BytesIO()
    Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
        buf, format="png", compress_level=1)
    return buf.getvalue()


class Explorer:
    """Base class for slider explorers; subclasses build ``self.fig`` and implement :meth:`draw`."""

    fig: Figure

    def __init__(self, sliders: Mapping[str, widgets.ValueWidget], figure: Figure | None = None,
                 dpi: float = 80, status: bool = True):
        if not sliders:
            raise ValueError("an explorer needs at least one slider")
        if figure is not None:
            self.fig = figure
        if not isinstance(getattr(self, "fig", None), Figure):
            raise ValueError("pass a matplotlib Figure (or set self.fig before calling Explorer.__init__)")
        if not isinstance(self.fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(self.fig)
        self.sliders: dict[str, widgets.ValueWidget] = dict(sliders)
        self.dpi = dpi
        self.png: bytes = b""
        self.status_text: str = ""
        self.last_update_s: float = float("nan")
        self.last_timings: dict[str, float] = {}
        self.n_updates = 0
        self._suspend = False
        # Shown at its own pixel size: a column box would otherwise stretch it to the full output width.
        self.image = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))
        self.status = widgets.HTML() if status else None
        for w in self.sliders.values():
            w.observe(self._on_change, names="value")
        controls = widgets.VBox(list(self.sliders.values()))
        children = [controls, self.image] + ([self.status] if self.status is not None else [])
        self.view = widgets.VBox(children)
        self.view.add_class("scoretutor-explorer")  # how the browser test (tests/browser) finds explorers
        self._render()
        if self.fig.get_layout_engine() is not None:  # freeze the first frame's layout
            self.fig.set_layout_engine(None)

    # -- the subclass hook ---------------------------------------------------------------------
    def draw(self, **values) -> str | None:
        """Recompute and update the artists for the given slider values (one keyword per slider)."""
        raise NotImplementedError

    # -- driving it ----------------------------------------------------------------------------
    @property
    def values(self) -> dict:
        """The current slider values by name."""
        return {name: w.value for name, w in self.sliders.items()}

    def update(self, **values) -> bytes:
        """Set any sliders by name, recompute and re-render once; returns the new PNG bytes."""
        unknown = set(values) - set(self.sliders)
        if unknown:
            raise ValueError(f"unknown slider(s) {sorted(unknown)}; this explorer has {sorted(self.sliders)}")
        self._suspend = True
        try:
            for name, value in values.items():
                self.sliders[name].value = value
        finally:
            self._suspend = False
        return self._render()

    def _on_change(self, change) -> None:
        if not self._suspend:
            self._render()

    def _render(self) -> bytes:
        t0 = time.perf_counter()
        message = self.draw(**self.values)
        t1 = time.perf_counter()
        self.png = figure_to_png(self.fig, self.dpi)
        t2 = time.perf_counter()
        self.image.value = self.png
        self.status_text = message or ""
        if self.status is not None:
            self.status.value = f"<tt>{self.status_text}</tt>" if self.status_text else ""
        self.last_timings = {"compute": t1 - t0, "encode": t2 - t1}
        self.last_update_s = time.perf_counter() - t0
        self.n_updates += 1
        return self.png

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.values.items())
        text = f"{type(self).__name__}({args})"
        return f"{text}: {self.status_text}" if self.status_text else text

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """Widget view for live front ends, plus a PNG frame and a text line for all others."""
        bundle = dict(self.view._repr_mimebundle_(include=include, exclude=exclude, **kwargs) or {})
        bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        bundle["text/plain"] = repr(self) + " (interactive controls need a live Jupyter kernel)"
        return bundle


class PrefetchFrames:
    """Frames computed once per slider setting and cached, with an optional background thread that computes
    every setting (nearest to the start first) while the lecturer talks, so slider moves only swap images.

    A subclass calls :meth:`_init_frames` before ``Explorer.__init__`` (which draws the first frame),
    implements ``settings_grid()`` (every key, in the order to compute them) and ``_compute(*key)`` (a frame),
    reads frames with :meth:`_frame`, and starts the thread with :meth:`_start_prefetch` at the end of
    ``__init__``.
    """

    def _init_frames(self) -> None:
        self.cache: dict = {}
        self._pending: dict = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.prefetch_thread: threading.Thread | None = None

    def settings_grid(self) -> list:
        raise NotImplementedError

    def _compute(self, *key):
        raise NotImplementedError

    def _start_prefetch(self, name: str) -> None:
        self.prefetch_thread = threading.Thread(target=self._prefetch, name=name, daemon=True)
        self.prefetch_thread.start()

    def _prefetch(self) -> None:
        for key in self.settings_grid():
            if self._stop.is_set():
                return
            self._frame(key)

    def stop_prefetch(self) -> None:
        """Stop the background thread after its current frame."""
        self._stop.set()

    def _frame(self, key):
        """The cached frame of ``key``; computed here, or awaited if the other thread is computing it."""
        with self._lock:
            if key in self.cache:
                return self.cache[key]
            event = self._pending.get(key)
            mine = event is None
            if mine:
                event = self._pending[key] = threading.Event()
        if mine:
            try:
                self.cache[key] = self._compute(*key)
            finally:
                event.set()
        else:
            event.wait()
        return self.cache[key]
