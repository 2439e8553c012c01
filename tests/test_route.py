"""The 90-minute route (scoretutor.lecture.route): its minutes, its sections, and the deck built from it."""

from __future__ import annotations

import nbformat
import pytest

from scoretutor.lecture.overview import notebook_dir
from scoretutor.lecture.route import (
    NOTEBOOK_NAMES,
    ROUTE,
    lecture_notebook,
    route_markdown,
    section_cells,
    total_minutes,
)


def notebooks() -> dict[str, dict]:
    folder = notebook_dir()
    return {n: nbformat.read(folder / f"{name}.ipynb", as_version=4) for n, name in NOTEBOOK_NAMES.items()}


def test_the_route_takes_85_to_95_minutes_in_the_decks_order():
    assert 85 <= total_minutes() <= 95
    assert total_minutes(optional=False) < total_minutes()  # there is something to drop when late
    numbers = [s.notebook for s in ROUTE]
    assert numbers == sorted(numbers), "the route follows the deck, notebook by notebook"
    table = route_markdown()
    assert table.count("\n") == len(ROUTE) + 2 and f"**{total_minutes()}**" in table
    assert sum(1 for s in ROUTE if s.live) >= 2


def test_every_section_on_the_route_exists_and_leaves_deep_dives_and_solutions_out():
    nbs = notebooks()
    for stop in ROUTE:
        for section in stop.sections:
            cells = section_cells(nbs[stop.notebook], section)
            assert cells, (stop.topic, section)
            for cell in cells:
                assert "🔍" not in cell.source.splitlines()[0] or section in ("§6",), (stop.topic, section)
                assert "solution" not in cell.metadata.get("tags", [])
                assert cell.metadata.get("slideshow", {}).get("slide_type") != "skip"
    deep = section_cells(nbs["01"], "§2")  # §2 holds two 🔍 deep dives: they are not on the route
    assert not any("Deep dive" in c.source for c in deep) and any("brute force" in c.source for c in deep)
    with pytest.raises(KeyError, match="§9"):
        section_cells(nbs["01"], "§9")


def test_the_lecture_notebook_has_a_slide_and_speaker_notes_per_stop():
    nb = lecture_notebook(notebooks())
    slide_types = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    notes = [c for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "notes"]
    assert len(notes) == len(ROUTE) and slide_types.count("slide") >= len(ROUTE) + 1
    for stop, note in zip(ROUTE, notes, strict=True):
        assert f"{stop.minutes} min" in note.source and stop.say in note.source
        assert ("LIVE" in note.source) == bool(stop.live)


def test_each_notebooks_own_note_gives_its_minutes_on_the_route():
    import re

    folder = notebook_dir()
    for n, name in NOTEBOOK_NAMES.items():
        text = (folder / f"{name}.py").read_text()
        note = r"\*\*On the 90-minute lecture route\*\* \(notebook 00\): (.*?)\*\*(\d+) minutes\*\*"
        m = re.search(note, text, re.S)
        assert m, f"{name}: no lecture-route note"
        assert int(m.group(2)) == sum(s.minutes for s in ROUTE if s.notebook == n), name
        for section in {sec for s in ROUTE if s.notebook == n for sec in s.sections if sec.startswith("§")}:
            number = section[1:]
            listed = re.findall(r"§(\d+)(?:–§(\d+))?", m.group(1))
            assert any(int(a) <= int(number) <= int(b or a) for a, b in listed), f"{name}: {section} missing"


def test_route_cell_times_read_nbclients_timing_for_every_route_cell_hidden_ones_too():
    from scoretutor.lecture.route import route_cell_times

    nbs = notebooks()
    # a stop with hidden cells, which run too
    stop = next(s for s in ROUTE if len(section_cells(nbs[s.notebook], s.sections[0], hidden=True))
                > len(section_cells(nbs[s.notebook], s.sections[0])))
    timed = 0
    for k, cell in enumerate(nbs[stop.notebook].cells):  # fake timings: cell k ran k + 0.25 seconds
        if cell.cell_type == "code":
            cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000000Z",
                                          "shell.execute_reply": f"2026-01-01T00:00:{k:02d}.250000Z"}
            timed += 1
    times = [t for t in route_cell_times(nbs) if t[1].startswith(stop.notebook)]
    ks = [k for k, c in enumerate(nbs[stop.notebook].cells) if c.cell_type == "code"
          and any(c.source == h.source for st in ROUTE if st.notebook == stop.notebook
                  for sec in st.sections for h in section_cells(nbs[stop.notebook], sec, hidden=True))]
    assert sorted(t[2] for t in times) == sorted(k + 0.25 for k in ks) and 0 < len(times) < timed
