"""Every notebook with an explorer, run in JupyterLab in headless Chromium (fast mode).

Per notebook: all cells run without an error output and without browser console errors. Per
explorer (an ``Explorer.view``, CSS class ``scoretutor-explorer``) and per slider: a key press on the
slider handle changes the slider's readout and the image bytes, and the image keeps its pixel size
(shown 1:1, not stretched). The time from key press to the new image having loaded is recorded
(printed as a table at the end; speed targets are never asserted here — see benchmarks/).
"""

from __future__ import annotations

import pytest

from .conftest import LATENCIES, notebooks_with_explorers

pytestmark = pytest.mark.browser

RUN_ALL_TIMEOUT_MS = 600_000  # fast mode runs a notebook in well under a minute; this is a hang guard
UPDATE_TIMEOUT_MS = 30_000
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

# Install the probes on one explorer: key-down time and image-load times (page clock, ms).
PROBE_JS = """(root) => {
  const img = root.querySelector('img');
  window.__keyT = null; window.__loads = [];
  if (!root.__probed) {
    root.addEventListener('keydown', () => { window.__keyT = performance.now(); }, true);
    img.addEventListener('load', () => window.__loads.push({t: performance.now(), src: img.src}));
    root.__probed = true;
  }
}"""

STATE_JS = """async (root) => {
  const img = root.querySelector('img');
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const rect = img.getBoundingClientRect();
  return {hash: Array.from(digest).map(b => b.toString(16).padStart(2, '0')).join(''), src: img.src,
          natural: [img.naturalWidth, img.naturalHeight], shown: [rect.width, rect.height],
          readouts: Array.from(root.querySelectorAll('.widget-readout')).map(e => e.value ?? e.textContent),
          status: root.querySelector('.widget-html') ? root.querySelector('.widget-html').innerText : ''};
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


def assert_pixel_size(state: dict, where: str) -> None:
    (nw, nh), (w, h) = state["natural"], state["shown"]
    assert nw > 0 and abs(w - nw) <= 1 and abs(h - nh) <= 1, \
        f"{where}: image shown at {w:.0f}×{h:.0f} px, its pixel size is {nw}×{nh}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_explorers_in_jupyterlab(page, lab, notebook):
    open_notebook(page, lab, notebook.name)
    result = run_all(page)
    assert "error" not in result, f"run-all failed: {result.get('error')}"
    errors = [(c["source"], c["errors"]) for c in result["cells"] if c["errors"]]
    assert not errors, f"cells with errors: {errors}"
    not_run = [c["source"] for c in result["cells"] if c["count"] is None]
    assert result["ok"] and not not_run, f"cells not run: {not_run}"

    explorers = page.locator(".scoretutor-explorer")
    n = explorers.count()
    assert n >= 1, f"{notebook.name} imports scoretutor.widgets but shows no explorer"
    for i in range(n):
        root = explorers.nth(i)
        root.scroll_into_view_if_needed()
        name = f"{notebook.stem} #{i + 1}"
        handle = root.element_handle()
        page.evaluate(PROBE_JS, handle)
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
                page.evaluate("() => { window.__keyT = null; window.__loads = []; }")
                h.focus()
                h.press(forth if k % 2 == 0 else back)
                page.wait_for_function(
                    "window.__keyT !== null && window.__loads.some(e => e.t > window.__keyT)",
                    timeout=UPDATE_TIMEOUT_MS)
                ms = page.evaluate("window.__loads.find(e => e.t > window.__keyT).t - window.__keyT")
                state = page.evaluate(STATE_JS, handle)
                where = f"{name}, slider {j + 1}, press {k + 1}"
                assert state["hash"] != before["hash"], f"{where}: the image bytes did not change"
                assert state["readouts"][j] != before["readouts"][j], \
                    f"{where}: the readout stayed {before['readouts'][j]!r}"
                assert_pixel_size(state, where)
                assert state["natural"] == size, f"{where}: image size {state['natural']} != {size}"
                LATENCIES.setdefault(name, []).append(ms)
    assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
