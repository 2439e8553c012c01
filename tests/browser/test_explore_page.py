"""`python -m scoretutor explore`: the explorer page (Voilà) loads, shows no code, and a slider works."""

from __future__ import annotations

import secrets
import sys

import pytest

from .conftest import LATENCIES
from .explorers import STATE_JS, assert_pixel_size, press, probe
from .servers import JupyterServer, free_port, kernel_env

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def explore_server(tmp_path_factory):
    try:
        import voila  # noqa: F401
    except ImportError:
        pytest.fail("Voilà is not installed: pip install -e '.[explore]'", pytrace=False)
    port, token = free_port(), secrets.token_hex(16)
    args = [sys.executable, "-m", "scoretutor", "explore", f"--port={port}", f"--token={token}",
            "--no-browser"]
    server = JupyterServer(args, port, token, tmp_path_factory.mktemp("voila") / "voila.log",
                           kernel_env(SCORETUTOR_FAST="1"), status_path="/voila/static/voila.js")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_explore_page_has_explorers_and_no_code(page, explore_server):
    external: list[str] = []

    def block(route):  # no network: like a laptop in a lecture hall
        external.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith(explore_server.url), block)
    page.goto(f"{explore_server.url}/?token={explore_server.token}", wait_until="commit")
    page.wait_for_function("document.querySelectorAll('.scoretutor-explorer').length >= 4", timeout=600_000)
    text = page.inner_text("body")
    assert "import " not in text and "display(" not in text, "the page shows code"
    sources = page.evaluate("Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea'), "
                            "e => e.innerText.trim())")
    assert not any(sources), f"the page shows code cell sources: {sources}"

    for which, root in (("#1", page.locator(".scoretutor-explorer").first),
                        ("guidance", page.locator(".scoretutor-explorer").last)):
        handle = root.element_handle()
        probe(page, handle)
        before = page.evaluate(STATE_JS, handle)
        assert_pixel_size(before, f"explore page {which}")
        slider = root.locator(".widget-slider .noUi-handle").first
        state = before
        for k in range(4):
            previous = state
            ms, state = press(page, handle, slider, "ArrowRight" if k % 2 == 0 else "ArrowLeft")
            assert state["hash"] != previous["hash"], f"{which}, press {k + 1}: the image did not change"
            assert state["readouts"][0] != previous["readouts"][0], \
                f"{which}, press {k + 1}: the readout did not change"
            assert_pixel_size(state, f"explore page {which}")
            LATENCIES.setdefault(f"explore page (Voilà) {which}", []).append(ms)

    assert not external, f"the page tried to load from the network: {external}"
    assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
