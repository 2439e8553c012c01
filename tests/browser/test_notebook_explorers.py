"""Every notebook with an explorer, run in JupyterLab in headless Chromium (fast mode).

Per notebook: all cells run without an error output and without browser console errors. Per
explorer (an ``Explorer.view``, CSS class ``scoretutor-explorer``) and per slider: a key press on the
slider handle changes the slider's readout and the image bytes, and the image keeps its pixel size
(shown 1:1, not stretched). The time from key press to the new image having loaded is recorded
(printed as a table at the end; speed targets are never asserted here — see benchmarks/).
"""

from __future__ import annotations

import time

import pytest

from .conftest import LATENCIES, PHASES, notebooks_with_explorers
from .explorers import STATE_JS, assert_pixel_size, press, probe

pytestmark = pytest.mark.browser

RUN_ALL_TIMEOUT_MS = 900_000  # a hang guard, as nbmake-timeout in scripts/test.sh (fast mode: ~1 min)
PRESSES_PER_SLIDER = 4  # forth, back, forth, back: always a valid move, 4 latency samples per slider

NOTEBOOKS = notebooks_with_explorers()

# Open the notebook's kernel, run all cells and report every code cell's execution count and errors.
RUN_ALL_JS = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const ok = await app.commands.execute('notebook:run-all-cells');
  const cells = [];
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') continue;
    const outs = cell.model.outputs.toJSON();
    cells.push({count: cell.model.executionCount,
                errors: outs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
                source: cell.model.sharedModel.getSource().slice(0, 80)});
  }
  return {ok, cells};
}"""

def open_notebook(page, lab, name: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext", timeout=120_000)
    dialog = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel", if JupyterLab asks
    try:
        dialog.click(timeout=3000)
    except Exception:  # noqa: BLE001 -- no dialog: nothing to accept
        pass


def run_all(page) -> dict:
    page.evaluate("() => { window.__run = null; (" + RUN_ALL_JS + ")().then(r => window.__run = r, "
                  "e => window.__run = {error: String(e)}); }")
    page.wait_for_function("window.__run !== null", timeout=RUN_ALL_TIMEOUT_MS, polling=500)
    return page.evaluate("window.__run")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_explorers_in_jupyterlab(page, lab, notebook):
    phases = PHASES.setdefault(notebook.stem, {})
    t0 = time.perf_counter()
    open_notebook(page, lab, notebook.name)
    try:
        check_notebook(page, notebook, phases, t0)
    finally:  # free the kernel (and its memory) before the next notebook; never mask a failure
        try:
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception as err:  # noqa: BLE001
            print(f"[browser] could not shut down the kernel of {notebook.name}: {err}")


def check_notebook(page, notebook, phases: dict, t0: float) -> None:
    t1 = time.perf_counter()
    result = run_all(page)
    t2 = time.perf_counter()
    phases.update(open=t1 - t0, run_all=t2 - t1)
    assert "error" not in result, f"run-all failed: {result.get('error')}"
    errors = [(c["source"], c["errors"]) for c in result["cells"] if c["errors"]]
    assert not errors, f"cells with errors: {errors}"
    not_run = [c["source"] for c in result["cells"] if c["count"] is None]
    assert result["ok"] and not not_run, f"cells not run: {not_run}"

    explorers = page.locator(".scoretutor-explorer")
    n = explorers.count()
    assert n >= 1, f"{notebook.name} imports scoretutor.lecture.widgets but shows no explorer"
    for i in range(n):
        root = explorers.nth(i)
        root.scroll_into_view_if_needed()
        name = f"{notebook.stem} #{i + 1}"
        handle = root.element_handle()
        probe(page, handle)
        handles = root.locator(".widget-slider .noUi-handle")
        assert handles.count() >= 1, f"{name}: no slider"
        state = page.evaluate(STATE_JS, handle)
        assert_pixel_size(state, name)
        size = state["natural"]
        for j in range(handles.count()):
            h = handles.nth(j)
            at_max = h.get_attribute("aria-valuenow") == h.get_attribute("aria-valuemax")
            forth, back = ("ArrowLeft", "ArrowRight") if at_max else ("ArrowRight", "ArrowLeft")
            for k in range(PRESSES_PER_SLIDER):
                before = state
                ms, state = press(page, handle, h, forth if k % 2 == 0 else back)
                where = f"{name}, slider {j + 1}, press {k + 1}"
                assert state["hash"] != before["hash"], f"{where}: the image bytes did not change"
                assert state["readouts"][j] != before["readouts"][j], \
                    f"{where}: the readout stayed {before['readouts'][j]!r}"
                assert_pixel_size(state, where)
                assert state["natural"] == size, f"{where}: image size {state['natural']} != {size}"
                LATENCIES.setdefault(name, []).append(ms)
    phases["sliders"] = time.perf_counter() - t2
    assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
