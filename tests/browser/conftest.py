"""Fixtures for the real-browser tests: Debian's Chromium through Playwright, one JupyterLab server.

Missing Chromium or Playwright is a test FAILURE with the command that installs it, never a skip
(`scripts/test.sh` brings both). The browser: ``$SCORETUTOR_CHROMIUM``, else Debian's /usr/bin/chromium,
else Playwright's own (``python -m playwright install chromium``). Deselect them with ``-m "not browser"``.
Screenshots of failing pages go to ``$SCORETUTOR_BROWSER_ARTIFACTS`` (default
``browser-artifacts/`` in the checkout); its path is printed in the test summary.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .servers import ROOT, JupyterServer, start_lab

CHROMIUM = Path(os.environ.get("SCORETUTOR_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SCORETUTOR_BROWSER_ARTIFACTS", ROOT / "browser-artifacts"))
NOTEBOOKS = ROOT / "notebooks"

# explorer name -> key-press-to-new-image times in ms, filled by the tests, printed at the end
LATENCIES: dict[str, list[float]] = {}
# page name -> {phase: seconds} (open, run all cells, sliders), printed at the end
PHASES: dict[str, dict[str, float]] = {}
SCREENSHOTS: list[Path] = []


def notebooks_with_explorers() -> list[Path]:
    """Every notebook whose code imports ``scoretutor.lecture.widgets`` (so new ones join automatically)."""
    pattern = re.compile(r"^\s*(from|import)\s+scoretutor\.lecture\.widgets\b", re.M)

    def uses_widgets(path: Path) -> bool:
        cells = json.loads(path.read_text())["cells"]
        return any(c["cell_type"] == "code" and pattern.search("".join(c["source"])) for c in cells)

    return [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if uses_widgets(p)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium; fails (does not skip) with the install command when it cannot start."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[browser]' (the browser tests need it; "
                    "deselect them with -m 'not browser')", pytrace=False)
    with sync_playwright() as pw:
        chromium = CHROMIUM
        if "SCORETUTOR_CHROMIUM" not in os.environ and not chromium.exists():
            chromium = Path(pw.chromium.executable_path)  # Playwright's own, if it was installed
        if not chromium.exists():
            pytest.fail(f"Chromium not found at {chromium}: apt-get install -y chromium, or "
                        f"python -m playwright install chromium (or set SCORETUTOR_CHROMIUM to a Chromium "
                        f"binary; deselect with -m 'not browser')", pytrace=False)
        b = pw.chromium.launch(executable_path=str(chromium), headless=True,
                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


class ConsoleLog:
    """Console errors and uncaught page errors of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))


@pytest.fixture
def page(browser, request):
    """A fresh 1400×1000 page (device pixel ratio 1); screenshot saved if the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    # hang guards, not speed checks: on a 2-core machine shared by many jobs (load ~20) even loading
    # a local 1 MB page took over Playwright's default 30 s
    context.set_default_timeout(180_000)
    context.set_default_navigation_timeout(180_000)
    pg = context.new_page()
    pg.console = ConsoleLog(pg)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", request.node.name) + ".png")
        try:
            pg.screenshot(path=str(path), full_page=True)
            SCREENSHOTS.append(path)
        except Exception as err:  # noqa: BLE001 -- a failed screenshot must not hide the failure
            print(f"[browser] screenshot failed: {err}")
    context.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[JupyterServer]:
    """One JupyterLab server for all notebooks of a test module, always shut down (kernels included)."""
    server = start_lab(tmp_path_factory.mktemp("jupyterlab"), NOTEBOOKS)
    try:
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter):
    if LATENCIES:
        tr = terminalreporter
        tr.section("explorer latency in the browser: key press -> new image (ms)")
        tr.write_line(f"{'explorer':<44} {'n':>3} {'p50':>7} {'p95':>7} {'max':>7}")
        for name, times in LATENCIES.items():
            t = np.asarray(times)
            tr.write_line(f"{name:<44} {t.size:>3} {np.percentile(t, 50):>7.0f} {np.percentile(t, 95):>7.0f} "
                          f"{t.max():>7.0f}")
    if PHASES:
        terminalreporter.section("browser test phases (s)")
        for name, phases in PHASES.items():
            terminalreporter.write_line(f"{name:<32} " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    if SCREENSHOTS:
        terminalreporter.section("browser screenshots of failures")
        terminalreporter.write_line(f"[browser] screenshots in {ARTIFACTS}:")
        for p in SCREENSHOTS:
            terminalreporter.write_line(f"  {p}")
