"""``scoretutor export slides|html|all [notebooks…] --out DIR [--full]``.

Executes the notebooks (fast mode by default, full mode with ``--full``: what a lecture shows) and
writes, with nbconvert, reveal.js slides (``NN_name.slides.html``) and/or static HTML handouts
(``NN_name.html``) into DIR. Both work offline: reveal.js, require.js and MathJax 3 are copied from
``scoretutor/lecture/vendor`` into ``DIR/_static``, and explorers show their last frame (the PNG every
explorer carries next to its widget view) instead of loading the widget manager from a CDN.

Cells tagged ``solution`` (the exercises' worked answers) are left out of handouts and slides; with
``solutions=True`` (``--solutions``) the handouts keep them and are written as ``NN_name.solutions.html``,
so they never replace the students' copy.
"""

from __future__ import annotations

import copy
import gzip
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

from scoretutor.errors import UsageError
from scoretutor.files import atomic_write
from scoretutor.lecture.overview import PATTERN, notebook_dir

VENDOR = Path(__file__).resolve().parent / "vendor"
STATIC = "_static"
FORMATS = {"html": ("HTMLExporter", ".html"), "slides": ("SlidesExporter", ".slides.html")}
# vendored file -> where it goes under DIR/_static
ASSETS = {
    "require.js.gz": "require.js",
    "mathjax-tex-svg-full.js.gz": "mathjax/tex-svg-full.js",
    "reveal.js.gz": "reveal.js/dist/reveal.js",
    "reveal.css.gz": "reveal.js/dist/reveal.css",
    "reveal-theme-white.css.gz": "reveal.js/dist/theme/white.css",
    "reveal-notes.js.gz": "reveal.js/plugin/notes/notes.js",
}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class NotebookError(RuntimeError):
    """A cell of a notebook failed while it was executed for export (a bug, shown with its traceback)."""

# MathJax 3 (SVG output needs no font files) configured like nbconvert's MathJax 2 block.
_MATHJAX = """
<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true, tags: 'ams'},
  options: {enableMenu: false}
};
</script>
<script src="{{ resources.mathjax_url }}" defer></script>
"""
# nbconvert's lab stylesheets (270 kB), which its template inlines into every page: the handouts link
# one copy in DIR/_static instead (the template's own small inline styles stay in each page).
LAB_CSS = ("index.css", "theme-light.css")
# Templates on top of nbconvert's own: local MathJax 3, no mermaid/jQuery from a CDN, linked lab
# stylesheets in the handouts, and a reveal start-up script without MathJax 2 calls.
TEMPLATES = {
    "scoretutor_handout.html.j2": "{%- extends 'index.html.j2' -%}\n"
    "{% block html_head_js_mathjax %}" + _MATHJAX + "{% endblock html_head_js_mathjax %}\n"
    "{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}\n"
    "{% block notebook_css %}"
    + "".join(f'<link rel="stylesheet" href="{STATIC}/nbconvert/{name}">\n' for name in LAB_CSS)
    + "{{ super()"
    + "".join(f' | replace(resources.include_css("static/{name}"), "")' for name in LAB_CSS)
    + " }}{% endblock notebook_css %}\n",
    "scoretutor_slides.html.j2": "{%- extends 'index.html.j2' -%}\n"
    "{% block html_head_js_jquery %}{% endblock html_head_js_jquery %}\n"
    "{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}\n"
    "{% block html_head_js_mathjax %}" + _MATHJAX + "{% endblock html_head_js_mathjax %}\n"
    """{% block footer_js %}
<style>.reveal h1, .reveal h2, .reveal h3 { text-transform: none; }</style>
<script>
require(["{{ resources.reveal.url_prefix }}/dist/reveal.js",
         "{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"],
  function (Reveal, RevealNotes) {
    Reveal.initialize({controls: true, progress: true, history: true, hash: true,
                       transition: "{{ resources.reveal.transition }}",
                       slideNumber: "{{ resources.reveal.number }}",
                       width: {{ resources.reveal.width | default('960', true) }},
                       height: {{ resources.reveal.height | default('700', true) }}, plugins: [RevealNotes]});
  });
</script>
{% endblock footer_js %}
""",
}


def find_notebooks(names: list[str], folder: str | Path | None = None) -> list[Path]:
    """Resolve notebook paths or number prefixes ("01", "01_energy_based_models") to .ipynb files in
    ``folder`` (default :func:`~scoretutor.lecture.overview.notebook_dir`)."""
    numbered = sorted(notebook_dir(folder).glob(PATTERN))
    if not names:
        return numbered
    found = []
    for name in names:
        path = Path(name)
        if path.suffix == ".py" and path.with_suffix(".ipynb").exists():
            path = path.with_suffix(".ipynb")
        if path.suffix == ".ipynb" and path.exists():
            found.append(path)
            continue
        matches = [p for p in numbered if p.stem == name or p.stem.startswith(f"{name}_")]
        if len(matches) != 1:
            available = ", ".join(p.stem for p in numbered)
            raise UsageError(f"no single notebook matches {name!r}; available: {available}")
        found.append(matches[0])
    return found


def copy_assets(out: Path) -> None:
    """Decompress the vendored reveal.js / require.js / MathJax files into ``out/_static``, and copy
    nbconvert's lab stylesheets there (``_static/nbconvert``)."""
    files = {dest: gzip.decompress((VENDOR / src).read_bytes()) for src, dest in ASSETS.items()}
    files.update({f"nbconvert/{name}": (_lab_static() / name).read_bytes() for name in LAB_CSS})
    for dest, data in files.items():
        target = out / STATIC / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != data:
            atomic_write(target, data)


def _lab_static() -> Path:
    """The ``static`` folder of nbconvert's installed lab template."""
    from jupyter_core.paths import jupyter_path

    for root in jupyter_path("nbconvert", "templates"):
        folder = Path(root) / "lab" / "static"
        if (folder / LAB_CSS[0]).exists():
            return folder
    raise FileNotFoundError("nbconvert's lab template is not installed (pip install nbconvert)")


@contextmanager
def _mode(full: bool):
    """Set SCORETUTOR_FAST, and SCORETUTOR_PROGRESS=0 (no progress bar in a handout or slide), for
    the kernels started inside (they inherit this environment)."""
    settings = {"SCORETUTOR_FAST": "0" if full else "1", "SCORETUTOR_PROGRESS": "0"}
    old = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(path: Path, full: bool = False, timeout: int = 3600):
    """Run every cell of the notebook in a fresh kernel started in its folder; returns the notebook."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {
        "path": str(path.parent)}})
    with _mode(full):
        try:
            client.execute(stderr=subprocess.DEVNULL)  # kernel start-up chatter; errors come as messages
        except CellExecutionError as err:
            last = [line for line in str(err).splitlines() if line.strip()][-1:]
            raise NotebookError(f"{path.name} failed while executing: {' '.join(last)}") from None
    return nb


SOLUTION_TAG = "solution"


def without_solutions(nb):
    """The notebook without its cells tagged ``solution`` (what students get)."""
    nb.cells = [c for c in nb.cells if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    return nb


def _static_outputs(nb):
    """Drop widget views (they need a live kernel) so each explorer shows its PNG frame."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "data" in output:
                output["data"].pop(WIDGET_MIME, None)
    return nb


def _exporter(fmt: str):
    import nbconvert
    from jinja2 import DictLoader

    cls = getattr(nbconvert, FORMATS[fmt][0])
    common = dict(extra_loaders=[DictLoader(TEMPLATES)], require_js_url=f"{STATIC}/require.js",
                  mathjax_url=f"{STATIC}/mathjax/tex-svg-full.js", exclude_input_prompt=True,
                  exclude_output_prompt=True)
    if fmt == "slides":
        return cls(template_file="scoretutor_slides.html.j2", reveal_url_prefix=f"{STATIC}/reveal.js",
                   reveal_theme="white", reveal_transition="none", **common)
    return cls(template_file="scoretutor_handout.html.j2", **common)


def export_notebook(path: Path, formats: list[str], out: Path, full: bool = False, timeout: int = 3600,
                    solutions: bool = False, executed=None) -> list[Path]:
    """Execute ``path`` once (or take ``executed``, the notebook already run) and write it in each of
    ``formats`` into ``out``; returns the files. Solution cells are left out unless ``solutions`` (then
    the files are named ``*.solutions.*``)."""
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    nb = copy.deepcopy(executed) if executed is not None else execute(path, full=full, timeout=timeout)
    nb = _static_outputs(nb)
    if not solutions:
        nb = without_solutions(nb)
    written = []
    for fmt in formats:
        body, _ = _exporter(fmt).from_notebook_node(nb, resources={"metadata": {"name": _title(nb, path)}})
        suffix = FORMATS[fmt][1]
        target = out / (path.stem + (suffix.replace(".", ".solutions.", 1) if solutions else suffix))
        atomic_write(target, body.encode("utf-8"))
        written.append(target)
    return written


def export_lecture(out: Path, full: bool = False, timeout: int = 3600, folder: str | Path | None = None,
                   executed: dict | None = None) -> Path:
    """Execute the notebooks of the 90-minute route once each and write the route as one offline
    reveal.js deck, ``out/lecture.slides.html``, with speaker notes (press S) at every stop.
    ``executed`` ("01" → notebook) supplies notebooks already executed instead."""
    from scoretutor.lecture.route import NOTEBOOK_NAMES, ROUTE, lecture_notebook

    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    needed = sorted({stop.notebook for stop in ROUTE})
    paths = find_notebooks([NOTEBOOK_NAMES[n] for n in needed], folder)
    if executed is None:
        executed = {n: execute(p, full=full, timeout=timeout) for n, p in zip(needed, paths, strict=True)}
    nb = _static_outputs(lecture_notebook(executed))
    body, _ = _exporter("slides").from_notebook_node(nb, resources={"metadata": {"name": "Lecture"}})
    return atomic_write(out / "lecture.slides.html", body.encode("utf-8"))


def _title(nb, path: Path) -> str:
    """The notebook's first markdown heading, else its file name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return path.stem
