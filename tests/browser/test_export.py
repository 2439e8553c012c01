"""`python -m scoretutor export`: notebook 01 (the fastest) as HTML handout and reveal.js slides,
opened from disk in headless Chromium with every network request blocked (they must work offline)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from scoretutor.lecture.export import export_notebook, find_notebooks

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def exported(tmp_path_factory, executed_notebook):
    out = tmp_path_factory.mktemp("export")
    (notebook,) = find_notebooks(["01"])  # executed once per session (tests/conftest.py), as export runs it
    html, slides = export_notebook(notebook, ["html", "slides"], out, executed=executed_notebook(notebook))
    return {"html": html, "slides": slides}


def offline(page) -> list[str]:
    """Abort every non-file request; returns the list of URLs that were attempted."""
    attempted: list[str] = []

    def block(route):
        attempted.append(route.request.url)
        route.abort()

    page.route("http://**/*", block)
    page.route("https://**/*", block)
    return attempted


@pytest.mark.parametrize("fmt", ["html", "slides"])
def test_exported_notebook_opens_offline(page, exported, fmt):
    path = exported[fmt]
    attempted = offline(page)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    # MathJax 3 typesets asynchronously: wait until it reports it is done
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=180_000)
    page.evaluate("() => MathJax.startup.promise")
    title = "Energy-based models and the score"
    assert title in page.title()
    assert page.get_by_text(title).count() >= 1, "the notebook's title is not in the page"
    assert page.locator("mjx-container").count() > 0, "no formula was typeset by MathJax"
    # nbconvert's lab stylesheets apply (linked from _static in handouts, inlined in slides)
    assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--jp-border-width')"
                         ).strip() == "1px", "the lab theme's stylesheet did not load"
    if fmt == "slides":
        page.wait_for_selector(".reveal.ready", timeout=180_000)  # reveal.js adds "ready" once initialised
        assert page.locator(".reveal .slides section.present").count() >= 1, "reveal.js shows no slide"
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=float)
    assert shot.std() > 5, "the screenshot is blank"
    assert not attempted, f"the page tried to load from the network: {attempted}"
    assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)


@pytest.fixture(scope="module")
def lecture_deck(tmp_path_factory, executed_notebook):
    from scoretutor.lecture.export import export_lecture
    from scoretutor.lecture.route import NOTEBOOK_NAMES

    # fast mode; each route notebook runs once per session (tests/conftest.py's executed_notebook)
    (first,) = find_notebooks(["01"])
    executed = {n: executed_notebook(first.parent / f"{name}.ipynb") for n, name in NOTEBOOK_NAMES.items()}
    return export_lecture(tmp_path_factory.mktemp("lecture"), executed=executed)


def test_lecture_deck_opens_offline_with_a_slide_per_stop_and_speaker_notes(page, lecture_deck):
    from scoretutor.lecture.route import ROUTE

    attempted = offline(page)
    page.goto(lecture_deck.as_uri())
    page.wait_for_selector(".reveal.ready", timeout=180_000)
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=180_000)
    page.evaluate("() => MathJax.startup.promise")
    n_slides = page.locator(".reveal .slides > section").count()
    assert n_slides >= len(ROUTE) + 1, f"{n_slides} slides for {len(ROUTE)} stops and a title"
    notes = page.locator(".reveal aside.notes")
    assert notes.count() == len(ROUTE), "every stop carries speaker notes"
    assert all(f"{s.minutes} min" in notes.nth(k).inner_text() for k, s in enumerate(ROUTE))
    assert page.locator("mjx-container").count() > 0, "no formula was typeset by MathJax"
    assert page.locator(".reveal img").count() >= 10, "the route's figures and explorer frames are missing"
    assert page.locator(".reveal section p", has_text="▶ Live:").count() == sum(1 for s in ROUTE if s.live)
    heading = page.locator(".reveal h2").first
    assert heading.evaluate("h => getComputedStyle(h).textTransform") == "none", "ε must not become Ε"
    assert not attempted, f"the page tried to load from the network: {attempted}"
    assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
