"""Exercises in every notebook: at least one that needs thought, with solutions that students don't get.

- Each of notebooks 01–06 has an exercise cell (tagged ``exercise``) and a solution cell (tagged
  ``solution``), and at least one exercise introduced as **Predict, then check.**, **Derive.**, **Debug.**
  or **Experiment.** (not "restate the formula above").
- A solution cell is hidden (source collapsed, slide skipped) and never reassigns a name the student's
  exercise cell defines: running it does not overwrite the student's work.
- ``scoretutor export`` leaves solution cells out of handouts and slides; ``--solutions`` keeps them in
  ``NN_name.solutions.html``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from scoretutor.lecture import export

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("0[1-9]_*.py"))
KINDS = re.compile(r"\*\*(Predict, then check|Derive|Debug|Experiment)\.\*\*")


def _tagged(cells, tag):
    return [c for c in cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def _defined(source: str) -> set[str]:
    """Names a cell binds at top level (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_a_thinking_exercise_with_hidden_solutions(path):
    cells = jupytext.read(path).cells
    exercises, solutions = _tagged(cells, "exercise"), _tagged(cells, "solution")
    assert exercises and solutions, f"{path.name}: needs exercise and solution cells"
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert KINDS.search(text), f"{path.name}: no exercise that needs thought (see KINDS)"
    student = set().union(*(_defined(c.source) for c in exercises))
    for cell in solutions:
        meta = cell.metadata
        assert meta.get("slideshow", {}).get("slide_type") == "skip", f"{path.name}: solution on a slide"
        assert meta.get("jupyter", {}).get("source_hidden"), f"{path.name}: solution code not collapsed"
        clash = _defined(cell.source) & student
        assert not clash, f"{path.name}: a solution overwrites the student's {sorted(clash)}"


def test_without_solutions_drops_only_solution_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["exercise"]}),
                nbformat.v4.new_code_cell("b = 2", metadata={"tags": ["solution"]}),
                nbformat.v4.new_markdown_cell("text")]
    assert [c.source for c in export.without_solutions(nb).cells] == ["a = 1", "text"]


def test_export_leaves_solutions_out_unless_asked(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo"),
                nbformat.v4.new_code_cell("def my_f(x):\n    return STUDENT_MARK",
                                          metadata={"tags": ["exercise"]}),
                nbformat.v4.new_code_cell("def solution_f(x):\n    return 'SOLUTION_MARK'",
                                          metadata={"tags": ["solution"]})]
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scoretutor", "export", "html", str(path), "--out", str(out)]
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    assert subprocess.run([*cmd, "--solutions"], cwd=ROOT, capture_output=True).returncode == 0
    student = (out / "01_demo.html").read_text(encoding="utf-8")
    teacher = (out / "01_demo.solutions.html").read_text(encoding="utf-8")
    assert "STUDENT_MARK" in student and "SOLUTION_MARK" not in student
    assert "STUDENT_MARK" in teacher and "SOLUTION_MARK" in teacher
