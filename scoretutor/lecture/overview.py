"""The notebook suite as a table of contents (used by ``notebooks/00_overview``).

:data:`RUN_NOTES` holds what each notebook takes to run (measured with
``scoretutor export html NN [--full]``, which prints the time per notebook) and where a
GPU helps; :func:`contents` joins it with the notebooks actually present, so a new notebook appears
in the overview as soon as it exists (with "not measured yet" until its numbers are added here).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from scoretutor.errors import UsageError

PATTERN = "[0-9][0-9]_*.ipynb"  # the suite's numbered notebooks
_CHECKOUT = Path(__file__).resolve().parents[2] / "notebooks"  # in a source checkout


def notebook_dir(folder: str | Path | None = None) -> Path:
    """The folder of the numbered notebooks: ``folder`` (``--notebooks DIR``) if given, else
    ``./notebooks``, the current folder (a notebook's own kernel runs there), or the source checkout's
    ``notebooks/``. Raises :class:`~scoretutor.errors.UsageError` when it holds none."""
    if folder is not None:
        candidates = [Path(folder)]
    else:
        candidates = [Path("notebooks"), Path("."), _CHECKOUT]
    for candidate in candidates:
        if any(candidate.glob(PATTERN)):
            return candidate
    where = Path(folder) if folder is not None else Path("notebooks").resolve()
    raise UsageError(f"no numbered notebooks (NN_name.ipynb) in {where}; pass --notebooks DIR, the "
                     "notebooks/ folder of a scoretutor checkout")


@dataclass(frozen=True)
class RunNote:
    """Wall-clock times on a 2-core CPU without a GPU, and what a GPU changes."""

    fast: str
    full: str
    gpu: str


# number prefix -> run note (2-core CPU, no GPU; fast = SCORETUTOR_FAST=1 as in CI, full = the lecture).
# Fill in from `scoretutor export html NN [--full] --out /tmp/x` (it prints each time) on an
# otherwise idle machine; a test requires an entry for every notebook. Measured 2026-12-06 on the idle
# 2-core development machine: fast mode; full mode on a first run (empty cache); then with the cache filled.
RUN_NOTES: dict[str, RunNote] = {
    "00": RunNote("3 s", "4 s", "not needed"),
    "01": RunNote("12 s", "about 3 min (the deep dive trains four EBMs); 11 s with them cached",
                  "not needed (2-D toys)"),
    "02": RunNote("15 s", "72 s; 16 s with cached trainings", "not needed (small 2-D models)"),
    "03": RunNote("20 s", "36 s; 35 s with the cached training", "not needed (2-D toys)"),
    "04": RunNote("20 s", "27 s; 12 s with cached trainings", "not needed (small 2-D models)"),
    "05": RunNote("10 s", "about 35 s; 16 s with its samples cached (shipped model; retraining it: + 29 min)",
                  "used when present (sampling, retraining); no GPU time measured yet"),
    "06": RunNote("25 s", "about 2 min; 24 s with its trainings and sampler runs cached",
                  "not needed (small models)"),
    "07": RunNote("26 s", "80 s; 28 s with its training and solver sweeps cached",
                  "used for §3's MNIST digits when present"),
    "08": RunNote("14 s", "57 s (its guidance sweep is precomputed)",
                  "used for §2–§4's MNIST sampling when present"),
}


@dataclass(frozen=True)
class Entry:
    number: str
    file: str
    title: str
    run: RunNote | None


def title_of(path: Path) -> str:
    """The first markdown heading of a notebook (``# 01 · Title`` → ``Title``), else its file name."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
            if m:
                return re.sub(r"^\d\d\s*[·.:-]\s*", "", m.group(1).strip())
    return path.stem


def contents(folder: str | Path | None = None) -> list[Entry]:
    """Every numbered notebook in ``folder`` (default :func:`notebook_dir`), with its title and run note."""
    return [Entry(p.name[:2], p.name, title_of(p), RUN_NOTES.get(p.name[:2]))
            for p in sorted(notebook_dir(folder).glob(PATTERN))]


def contents_markdown(folder: str | Path | None = None) -> str:
    """:func:`contents` as a markdown table with links to the notebooks; those beyond the lecture's route
    (after 06) are marked as extension material."""
    from scoretutor.lecture.route import NOTEBOOK_NAMES

    rows = ["| # | notebook | fast mode (CI) | full mode (lecture) | GPU |", "|---|---|---|---|---|"]
    for e in contents(folder):
        run = e.run or RunNote("not measured yet", "not measured yet", "see the notebook")
        extra = " *(extension, after the route)*" if e.number > max(NOTEBOOK_NAMES) else ""
        rows.append(f"| {e.number} | [{e.title}]({e.file}){extra} | {run.fast} | {run.full} | {run.gpu} |")
    return "\n".join(rows)
