"""The 90-minute lecture: one timed route through the notebooks, in the order of the deck.

:data:`ROUTE` lists the stops (kept as data in ``route.json``): a deck topic, the notebook sections
that show it, the minutes to present it, what to say, whether a slider explorer is shown live, and
whether the stop is the first to go when the lecture runs late. ``notebooks/00_overview`` shows it as a table
(:func:`route_markdown`) and ``scoretutor export lecture`` turns it into one reveal.js deck
(:func:`lecture_notebook` picks the route's cells out of the executed notebooks).

A section is named ``"§N"`` (the cells from the heading ``## N · …`` up to the next heading of the
same or a higher level) or by the start of its heading's title (``"Recap"``). Deep dives (🔍) inside
a section are left out of the deck; they stay in the notebooks for students.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stop:
    """One stop of the route: ``sections`` of notebook ``notebook`` ("01" … "06") for ``minutes``."""

    topic: str
    notebook: str
    sections: tuple[str, ...]
    minutes: int
    say: str
    live: str = ""  # the explorer to show live in JupyterLab, if any
    optional: bool = False  # the first to drop (or to mention in one sentence) when running late


ROUTE_FILE = Path(__file__).with_name("route.json")


def load_route(path: Path = ROUTE_FILE) -> tuple[Stop, ...]:
    """The stops of ``route.json`` (data a lecturer can edit: reorder, retime, rewrite the notes)."""
    return tuple(Stop(**{**stop, "sections": tuple(stop["sections"])})
                 for stop in json.loads(path.read_text(encoding="utf-8"))["stops"])


ROUTE: tuple[Stop, ...] = load_route()

NOTEBOOK_NAMES = {"01": "01_energy_based_models", "02": "02_score_matching", "03": "03_langevin_dynamics",
                  "04": "04_noise_annealing", "05": "05_mnist", "06": "06_diffusion_connections"}


def total_minutes(optional: bool = True) -> int:
    """Minutes of the route (without the optional stops if ``optional`` is False)."""
    return sum(s.minutes for s in ROUTE if optional or not s.optional)


def route_markdown() -> str:
    """The route as a markdown table: deck topic → notebook and sections (linked) → minutes."""
    rows = ["| # | deck topic | notebook · sections | min | live explorer |", "|---|---|---|---|---|"]
    for k, s in enumerate(ROUTE, 1):
        name = NOTEBOOK_NAMES[s.notebook]
        where = f"[{s.notebook}]({name}.ipynb) · " + ", ".join(s.sections)
        late = " *(drop if late)*" if s.optional else ""
        rows.append(f"| {k} | {s.topic}{late} | {where} | {s.minutes} | {s.live or '–'} |")
    rows.append(f"| | **total** (without the stops to drop: {total_minutes(False)}) | | "
                f"**{total_minutes()}** | |")
    return "\n".join(rows)


# -- the deck ---------------------------------------------------------------------------------------
def _heading(cell) -> tuple[int, str] | None:
    """(level, title) of a markdown cell that starts with a heading, else None."""
    if cell.get("cell_type") != "markdown":
        return None
    m = re.match(r"\s*(#{1,6})\s+(.+)", "".join(cell.get("source", "")))
    return (len(m.group(1)), m.group(2).strip()) if m else None


def _matches(title: str, section: str) -> bool:
    if section.startswith("§"):
        return re.match(rf"{re.escape(section[1:])}\s*·", title) is not None
    return title.startswith(section)


def section_cells(nb, section: str, hidden: bool = False) -> list:
    """The cells of ``section`` in notebook ``nb`` (see the module docstring), without 🔍 subsections
    and, unless ``hidden``, without cells hidden from slides (``slide_type: skip``) or tagged ``solution``."""
    cells, level, skipping = [], None, None
    for cell in nb["cells"]:
        head = _heading(cell)
        if level is None:
            if head and _matches(head[1], section):
                level = head[0]
            else:
                continue
        elif head and head[0] <= level:
            break
        if head and head[0] > level:  # a subsection: 🔍 ones are skipped up to the next sibling heading
            if skipping is not None and head[0] <= skipping:
                skipping = None
            if "🔍" in head[1]:
                skipping = head[0]
        if skipping is not None:
            continue
        meta = cell.get("metadata", {})
        skip = meta.get("slideshow", {}).get("slide_type") == "skip" or "solution" in meta.get("tags", [])
        if skip and not hidden:
            continue
        cells.append(copy.deepcopy(cell))
    if level is None:
        raise KeyError(f"no section {section!r} in the notebook")
    return cells


def lecture_notebook(executed: dict[str, dict]) -> dict:
    """One notebook holding the route's cells in order, from ``executed`` ("01" → executed notebook):
    a new slide at every stop, with speaker notes (minutes, what to say, the live explorer), and
    explorers as in their notebooks (the export drops their widget views, leaving the last frame)."""
    import nbformat

    first = next(iter(executed.values()))
    cells = [nbformat.v4.new_markdown_cell(
        "# Generative modelling by estimating gradients of the data distribution\n\n"
        f"Song & Ermon 2019, after Yang Song's 2021 essay — a {total_minutes()}-minute route through the "
        "scoretutor notebooks", metadata={"slideshow": {"slide_type": "slide"}})]
    for k, stop in enumerate(ROUTE, 1):
        picked = [c for section in stop.sections for c in section_cells(executed[stop.notebook], section)]
        if not picked:
            raise ValueError(f"route stop {k} ({stop.topic}) has no cells")
        picked[0].setdefault("metadata", {}).setdefault("slideshow", {})["slide_type"] = "slide"
        live = f"\n\nLIVE: switch to JupyterLab, notebook {stop.notebook}: {stop.live}." if stop.live else ""
        late = " (drop if late)" if stop.optional else ""
        notes = nbformat.v4.new_markdown_cell(
            f"**Stop {k}/{len(ROUTE)} · {stop.minutes} min{late}** — {stop.topic} "
            f"(notebook {stop.notebook}, {', '.join(stop.sections)})\n\n{stop.say}{live}",
            metadata={"slideshow": {"slide_type": "notes"}})
        cells += [picked[0], notes, *picked[1:]]
        if stop.live:  # on the slide too: the frame shown is a still
            cells.append(nbformat.v4.new_markdown_cell(
                f"*▶ Live: this is the explorer's last frame. Switch to JupyterLab, notebook {stop.notebook} "
                f"({', '.join(stop.sections)}), to move the sliders.*",
                metadata={"slideshow": {"slide_type": "-"}}))
    return nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(first.get("metadata", {})))


def route_cell_times(executed: dict[str, dict]) -> list[tuple[int, str, float, str]]:
    """Every code cell the route runs (hidden ones too) with its run time, from the timing that
    nbclient records in each executed cell: (stop number, "NN §N", seconds, the cell's first line)."""
    from datetime import datetime

    times = []
    for k, stop in enumerate(ROUTE, 1):
        for section in stop.sections:
            for cell in section_cells(executed[stop.notebook], section, hidden=True):
                timing = cell.get("metadata", {}).get("execution", {})
                if cell.get("cell_type") != "code" or "shell.execute_reply" not in timing:
                    continue
                start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                              for key in ("iopub.execute_input", "shell.execute_reply"))
                first = next((line for line in "".join(cell["source"]).splitlines()
                              if line.strip() and not line.startswith("#")), "")
                times.append((k, f"{stop.notebook} {section}", (end - start).total_seconds(), first[:60]))
    return times
