"""The 90-minute lecture: one timed route through the notebooks, in the order of the deck.

:data:`ROUTE` lists the stops: a deck topic, the notebook sections that show it, the minutes to
present it, what to say, whether a slider explorer is shown live, and whether the stop is the first
to go when the lecture runs late. ``notebooks/00_overview`` shows it as a table
(:func:`route_markdown`) and ``scoretutor export lecture`` turns it into one reveal.js deck
(:func:`lecture_notebook` picks the route's cells out of the executed notebooks).

A section is named ``"§N"`` (the cells from the heading ``## N · …`` up to the next heading of the
same or a higher level) or by the start of its heading's title (``"Recap"``). Deep dives (🔍) inside
a section are left out of the deck; they stay in the notebooks for students.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


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


ROUTE: tuple[Stop, ...] = (
    Stop("Generative modelling; energy-based models p = e^{−f}/Z, maximum likelihood", "01", ("§1", "§2"), 7,
         "Goal: learn p_θ and sample from it. An EBM is any f_θ; the price is Z_θ. Show Z on a 2-D grid: "
         "fine here, hopeless in 784 dimensions."),
    Stop("Invertible models avoid Z (last week)", "01", ("§3",), 3,
         "Flows buy a tractable density with an invertible architecture and a Jacobian determinant."),
    Stop("The score: Z drops out", "01", ("§4",), 5,
         "∇ₓ log p_θ = −∇ₓ f_θ: no normaliser. Point at the score field: arrows towards the modes."),
    Stop("How to learn the score: the Fisher divergence", "02", ("§1",), 5,
         "The target is E_p‖∇log p − s_θ‖², but ∇log p is unknown: score matching removes it."),
    Stop("Denoising score matching (the deck's appendix, brought forward)", "02", ("§2",), 8,
         "Noise the data, regress onto −z/σ: the minimiser is the score of p_σ. Implicit and sliced score "
         "matching are in the notebook's appendix."),
    Stop("σ trades bias for variance", "02", ("§3",), 3,
         "Small σ: close to p but noisy targets; large σ: smooth but biased. Sets up noise levels.",
         optional=True),
    Stop("How to sample: Langevin dynamics", "03", ("§1",), 6,
         "x ← x + ε∇log p + √(2ε) z: five lines. Exact only as ε → 0 and K → ∞."),
    Stop("Explore ε and K", "03", ("§4",), 5,
         "Predict first: what happens to the cloud for ε ten times larger? Then move the slider.",
         live="LangevinExplorer (step size ε, steps K)"),
    Stop("Low-density regions: poor score estimates", "03", ("§5",), 5,
         "The Fisher divergence weights errors by p(x): where there are no data the learned score is "
         "arbitrary, and Langevin starts exactly there."),
    Stop("Langevin gets the mode weights wrong", "03", ("§6",), 4,
         "Even the exact score: chains do not cross the gap, so the 1:4 weights come out as the start's.",
         optional=True),
    Stop("Noise to the rescue: p_σ", "04", ("§1",), 5,
         "Adding noise fills the low-density regions; too much noise erases the signal."),
    Stop("Noise-conditional score model, weighted Fisher divergences", "04", ("§2", "§3"), 6,
         "One network s_θ(x, i) for all levels σ₁ < … < σ_L; the loss is a λ(i)-weighted sum of DSM losses. "
         "(The 2019 paper numbers the levels the other way round.)"),
    Stop("Annealed Langevin: σ_L first, σ₁ refines", "04", ("§4",), 6,
         "Start at the largest noise where the score is good everywhere, hand over level by level. The mode "
         "weights come out right."),
    Stop("Explore σ_max, σ_min, L, ε and T", "04", ("§5",), 4,
         "Ask: which knob breaks the mode weights first? Try σ_max = 2.",
         live="AnnealingExplorer (σ_max, σ_min, L, ε, T)"),
    Stop("Recap", "04", ("Recap",), 2,
         "Score instead of density; score matching to train; Langevin to sample; noise against low density."),
    Stop("MNIST: the same recipe on images", "05", ("§2", "§6", "§7"), 7,
         "Perturbed digits at each σ, samples from the shipped model, and how a judge scores them."),
    Stop("Connections: diffusion models and the SDE view", "06", ("§1", "§2"), 6,
         "Infinitely many noise levels are an SDE; DDPM is the same family (Song 2021, Ho 2020). One model, "
         "four samplers."),
    Stop("Exact log-likelihoods", "06", ("§4",), 3,
         "The probability-flow ODE turns a score model into a density (up to solver and trace error).",
         optional=True),
    Stop("Generative stochastic networks", "06", ("§6",), 2,
         "MCMC sampling with a denoising model: the ancestor of the idea.", optional=True),
)

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


def section_cells(nb, section: str) -> list:
    """The cells of ``section`` in notebook ``nb`` (see the module docstring), without 🔍 subsections
    and without cells hidden from slides (``slide_type: skip``) or tagged ``solution``."""
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
        if meta.get("slideshow", {}).get("slide_type") == "skip" or "solution" in meta.get("tags", []):
            continue
        cells.append(copy.deepcopy(cell))
    if level is None:
        raise KeyError(f"no section {section!r} in the notebook")
    return cells


def lecture_notebook(executed: dict[str, dict]) -> dict:
    """One notebook holding the route's cells in order, from ``executed`` ("01" → executed notebook):
    a new slide at every stop, with speaker notes (minutes, what to say, the live explorer), and
    explorers as their last frame (their widget views dropped)."""
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
        for cell in picked:
            for output in cell.get("outputs", []):
                output.get("data", {}).pop(WIDGET_MIME, None)
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
