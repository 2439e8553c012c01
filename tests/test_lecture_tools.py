"""The lecture tools without a browser: export's notebook lookup and offline assets, the explorer
app, the overview's table of contents. (Their browser checks are in tests/browser.)"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from scoretutor.errors import UsageError
from scoretutor.lecture import explore, export
from scoretutor.lecture import overview as lecture

ROOT = Path(__file__).resolve().parents[1]


def test_find_notebooks_by_prefix_path_and_default():
    (nb,) = export.find_notebooks(["01"])
    assert nb.name.startswith("01_") and nb.suffix == ".ipynb"
    assert export.find_notebooks([str(nb.with_suffix(".py"))]) == [nb]
    everything = export.find_notebooks([])
    assert nb in everything and all(re.match(r"\d\d_", p.name) for p in everything)
    with pytest.raises(UsageError, match="no single notebook matches '99'.*01_"):
        export.find_notebooks(["99"])


def test_export_cli_reports_an_unknown_notebook_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "scoretutor", "export", "html", "99", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: no single notebook matches '99'")
    assert len(r.stderr.strip().splitlines()) == 1


def test_vendored_assets_unpack_into_static(tmp_path):
    export.copy_assets(tmp_path)
    static = tmp_path / export.STATIC
    for dest in export.ASSETS.values():
        assert (static / dest).stat().st_size > 1000, dest
    assert "Reveal" in (static / "reveal.js/dist/reveal.js").read_text()
    assert "MathJax" in (static / "mathjax/tex-svg-full.js").read_text()
    # the theme must not ask for web fonts (offline: a failed request is a console error)
    assert "@import" not in (static / "reveal.js/dist/theme/white.css").read_text()
    for src in export.ASSETS:  # every shipped file is listed with its origin
        assert src in (export.VENDOR / "README.md").read_text()
        gzip.decompress((export.VENDOR / src).read_bytes())


def test_templates_keep_every_url_local():
    for name, text in export.TEMPLATES.items():
        assert "http://" not in text and "https://" not in text, name


def test_static_outputs_drop_widget_views_but_keep_the_png_frame():
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {}}})
    out = nbformat.v4.new_output("display_data", data={export.WIDGET_MIME: {"model_id": "x"},
                                                       "image/png": "iVBOR", "text/plain": "frame"})
    nb.cells.append(nbformat.v4.new_code_cell("explorer", outputs=[out]))
    nb = export._static_outputs(nb)
    assert "widgets" not in nb.metadata
    assert set(nb.cells[0].outputs[0]["data"]) == {"image/png", "text/plain"}


def test_explore_app_is_code_free_python_with_explorers(tmp_path):
    path = explore.write_app(tmp_path / "app.ipynb")
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert sum("Explorer(" in c for c in code) >= 3
    for src in code:  # valid IPython (magics allowed)
        compile(TransformerManager().transform_cell(src), "<cell>", "exec")
    cmd = explore.voila_command(path, 8999, "t0k3n", open_browser=False)
    assert "--Voila.ip=127.0.0.1" in cmd and "--token=t0k3n" in cmd and "--no-browser" in cmd


def test_overview_contents_link_every_numbered_notebook():
    entries = lecture.contents()
    files = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [e.file for e in entries] == files
    table = lecture.contents_markdown()
    for link in re.findall(r"\]\(([^)]+)\)", table):
        assert (ROOT / "notebooks" / link).exists(), link
    assert all(e.title and not e.title[:2].isdigit() for e in entries)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "extension" in rows["07"] and not any("extension" in rows[n] for n in ("01", "06"))


def test_explore_page_template_has_no_cdn_links(tmp_path):
    root = explore.offline_template(tmp_path)
    assert root is not None, ("Voilà missing (pip install -e '.[explore]') or its lab template changed: "
                              "update scoretutor.lecture.explore.offline_template")
    text = (root / "voila/templates/lab/index.html.j2").read_text()
    assert not re.search(r'(href|src)="https?://', text) and "extends" in text


def test_every_notebook_has_measured_run_times():
    # a new notebook joins the overview with its measured fast- and full-mode times (lecture.RUN_NOTES)
    for entry in lecture.contents():
        assert entry.run is not None, f"{entry.file}: add its run times to lecture.overview.RUN_NOTES"
        for field in ("fast", "full"):
            assert "not measured" not in getattr(entry.run, field), (entry.file, field)


def test_every_notebook_has_a_committed_handout():
    # docs/handouts holds the full-mode HTML handouts the README links to; a new notebook needs one
    handouts = ROOT / "docs" / "handouts"
    for entry in lecture.contents():
        page = handouts / entry.file.replace(".ipynb", ".html")
        rebuild = "python -m scoretutor export html --full --out docs/handouts"
        assert page.exists(), f"{page.name} missing: run {rebuild}"
        text = page.read_text(encoding="utf-8")
        assert entry.title.split(":")[0] in text and "_static/mathjax/tex-svg-full.js" in text
        assert 'href="_static/nbconvert/index.css"' in text and "--jp-border-width" not in text  # linked once
    assert (handouts / "_static" / "mathjax" / "tex-svg-full.js").exists()
    assert (handouts / "_static" / "nbconvert" / "theme-light.css").exists()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\((docs/handouts/[^)]+\.html)\)", readme):
        assert (ROOT / link).exists(), link
