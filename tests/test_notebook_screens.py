"""Clean screens: what the notebooks show besides their figures and the text they mean to print.

- A hidden claims cell (tagged ``claims``) prints only its ✓ lines: no echo of a bare expression's
  value (``check`` returns the measured number), no other print, and it never drives a widget that
  is on screen (checks that need an explorer live in tests/test_widgets_*.py).
- No cell shows a warning, a progress bar or a machine path (checked by running the notebooks).
- A training run that a notebook loads from its cache shows no progress bar, and neither does an
  exported handout (``SCORETUTOR_PROGRESS=0``).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import jupytext
import pytest
import torch

from scoretutor.config import show_progress
from scoretutor.training import fit

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
SILENT_CALLS = {"check_true"}  # return None, print one ✓ line


def _claims_cells(path: Path):
    for k, cell in enumerate(jupytext.read(path).cells):
        if cell.cell_type == "code" and "claims" in cell.metadata.get("tags", []):
            yield k, cell.source


def _name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_cells_print_only_their_check_lines(path):
    for k, source in _claims_cells(path):
        tree = ast.parse(source)
        where = f"{path.name}, cell {k}"
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):  # IPython echoes the value of a final bare expression
            silent = isinstance(last.value, ast.Call) and _name(last.value) in SILENT_CALLS
            ends_quiet = source.rstrip().endswith(";")
            assert silent or ends_quiet, f"{where}: the last line echoes its value; end it with ';'"
        calls = {_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert not calls & {"print", "display"}, f"{where}: a claims cell prints only its ✓ lines"
        assert not calls & {"update"}, f"{where}: a hidden cell must not move a widget that is on screen"
        assert ".sliders" not in source, f"{where}: a hidden cell must not move a widget that is on screen"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_echoes_the_number_a_check_returns(path):
    # check / check_less / check_greater print their ✓ line and return the measured number: as the last
    # line of any cell (claims or not) IPython would echo it, a bare number under the ✓ line
    for k, cell in enumerate(jupytext.read(path).cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        body = ast.parse(code).body
        last = body[-1] if body else None
        call = last.value if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) else None
        if call is not None and _name(call).startswith("check"):
            ends_quiet = cell.source.rstrip().endswith(";") or _name(call) in SILENT_CALLS
            assert ends_quiet, f"{path.name}, cell {k}: end the {_name(call)}(...) line with ';'"


def test_export_and_fast_mode_switch_progress_bars_off(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("SCORETUTOR_FAST", "0")
    monkeypatch.delenv("SCORETUTOR_PROGRESS", raising=False)
    assert show_progress() and show_progress(True) and not show_progress(False)
    monkeypatch.setenv("SCORETUTOR_FAST", "1")
    assert not show_progress() and show_progress(True)
    monkeypatch.setenv("SCORETUTOR_PROGRESS", "0")  # what `scoretutor export` sets for its kernels
    assert not show_progress() and not show_progress(True)


def test_export_kernels_run_without_progress_bars(monkeypatch):
    from scoretutor.lecture import export

    monkeypatch.setenv("SCORETUTOR_PROGRESS", "1")
    for full in (False, True):
        with export._mode(full):
            assert os.environ["SCORETUTOR_PROGRESS"] == "0" and not show_progress(True)
            assert os.environ["SCORETUTOR_FAST"] == ("0" if full else "1")
    assert os.environ["SCORETUTOR_PROGRESS"] == "1"


def test_fit_shows_no_bar_when_it_loads_a_finished_run(tmp_path, capsys):
    def run():
        model = torch.nn.Linear(2, 2)
        loss = lambda m, x, g: (m(x) ** 2).mean()
        return fit(model, loss, torch.randn(64, 2), n_steps=5, batch_size=8, device="cpu", progress=True,
                   checkpoint_path=tmp_path / "run.pt", desc="demo-bar")

    first = run()
    assert "demo-bar" in capsys.readouterr().err  # a fresh run with progress=True shows its bar
    assert run() == first  # loaded from the checkpoint, all 5 steps done
    captured = capsys.readouterr()
    assert "demo-bar" not in captured.err + captured.out


# -- running the notebooks (fast mode): what reaches the screen -------------------------------------
MACHINE_PATH = re.compile(r"(/root/|/home/|/tmp/|/Users/|\.cache/|site-packages|ipykernel_\d+)")


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return str(output.get("data", {}).get("text/plain", ""))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executed_notebook_shows_no_warning_bar_path_or_stray_echo(path, executed_notebook):
    # executed as `scoretutor export` runs it for a handout (shared with the lecture-deck test)
    nb = executed_notebook(path.with_suffix(".ipynb"))
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path.name}, cell {k}"
        for out in cell.outputs:
            text = _text(out)
            is_stderr = out.output_type == "stream" and out.name == "stderr"
            assert not is_stderr, f"{where}: stderr (a warning or a progress bar): {text[:300]}"
            assert "Warning" not in text, f"{where}: a warning on screen: {text[:300]}"
            assert not MACHINE_PATH.search(text), f"{where}: a machine path on screen: {text[:300]}"
            if "claims" in cell.metadata.get("tags", []):
                assert out.output_type == "stream", f"{where}: a claims cell shows a {out.output_type}"
                stray = [line for line in text.splitlines() if line.strip() and not line.startswith("✓")]
                assert not stray, f"{where}: a claims cell prints {stray}"
