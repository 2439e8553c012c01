"""``scoretutor explore``: the σ, ε and guidance explorers as a web page without code cells.

Builds a small app notebook (the cells in ``APP_CELLS``) and serves it with Voilà on 127.0.0.1
(optional extra ``explore``: ``pip install -e '.[explore]'``), so students can explore on their own
laptops and a lecturer can project it. Voilà runs the cells in a kernel and shows only their
outputs; the page lives as long as the command (Ctrl-C stops it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (cell type, source) of the app; explorers come from scoretutor.lecture.widgets with the exact scores of
# the NCSN toy mixture, so nothing has to be trained except the σ trade-off's small models.
APP_CELLS: list[tuple[str, str]] = [
    ("markdown", "# scoretutor · explore\n"
     "Sliders for the Langevin step size ε and the noise level σ on Song & Ermon's toy mixture "
     "⅕·N((−5,−5), I) + ⅘·N((5,5), I). Each figure updates when you release a slider."),
    ("code", "%matplotlib inline\n"
     "from IPython.display import display\n"
     "from scoretutor import pick\n"
     "from scoretutor.densities import ncsn_mixture\n"
     "from scoretutor.lecture.widgets.annealing import AnnealingExplorer, NoiseTradeoffExplorer\n"
     "from scoretutor.lecture.widgets.langevin import LangevinExplorer\n"
     "mixture = ncsn_mixture()"),
    ("markdown", "## Langevin dynamics with the exact score: step size ε, number of steps K\n"
     "x ← x + ε ∇log p(x) + √(2ε) z. Small ε: slow; large ε: biased, then divergent. "
     "However long it runs, plain Langevin gets the weights of the two modes wrong."),
    ("code", "display(LangevinExplorer(mixture, lim=10.0, init='uniform', n_steps=100, "
     "n_particles=500))"),
    ("markdown", "## How much noise? One score model per σ, trained by denoising score matching\n"
     "Small σ: accurate only where the data is. Large σ: accurate everywhere, but p_σ has lost "
     "the shape of p."),
    ("code", "display(NoiseTradeoffExplorer(mixture, n_steps=pick(full=1500, fast=300), "
     "grid_n=pick(full=100, fast=60)))"),
    ("markdown", "## Annealed Langevin with the exact noise-conditional score\n"
     "Run Langevin at each noise level from the largest to the smallest: the mode weights come out right."),
    ("code", "display(AnnealingExplorer(mixture.noise_conditional_score(), mixture))"),
    ("markdown", "## Guidance on MNIST: which digit, how strongly\n"
     "Digits of one class from the same start, classifier-free guidance with scale γ (notebook 08): "
     "0 ignores the class, 1 is the conditional model, larger γ gives bolder, more alike digits."),
    ("code", "from scoretutor.lecture.widgets.guidance import DigitGuidanceExplorer\n"
     "from scoretutor.mnist.guidance import load_conditional\n"
     "display(DigitGuidanceExplorer(*load_conditional(device='cpu'), n=pick(full=16, fast=4), "
     "n_calls=pick(full=30, fast=6)))"),
]


def write_app(path: Path) -> Path:
    """Write the explorer app as a notebook (outputs empty) to ``path``."""
    import nbformat

    cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
             for kind, src in APP_CELLS]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def voila_command(app: Path, port: int, token: str, open_browser: bool) -> list[str]:
    """The Voilà command line serving ``app`` on 127.0.0.1:port with ``token``."""
    return [sys.executable, "-m", "voila", str(app), "--Voila.ip=127.0.0.1", f"--port={port}",
            "--Voila.port_retries=0", f"--token={token}", "--show_tracebacks=True",
            # jupytext's lab extension fails to load in Voilà (a console error); it and RISE are not needed
            '--VoilaConfiguration.extension_denylist=["jupyterlab-jupytext", "jupyterlab-rise"]',
            *([] if open_browser else ["--no-browser"])]


def offline_template(root: Path) -> Path | None:
    """Write Voilà's ``lab`` template without its two Font Awesome links to a CDN (the icons are in
    Voilà's own bundle too) under ``root/voila/templates/lab``; put ``root`` first on JUPYTER_PATH to
    use it. Returns None (Voilà's template is used as is) if the template is not as expected."""
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("voila", "templates", "lab"):
        original = Path(folder) / "index.html.j2"
        if original.exists():
            break
    else:
        return None
    text = original.read_text()
    cdn_link = r'\s*<link rel="stylesheet" href="https://cdn\.jsdelivr\.net/npm/@fortawesome/[^>]*>'
    patched = re.sub(cdn_link, "", text)
    if patched == text or re.search(r'(href|src)="https?://', patched):
        return None
    target = root / "voila" / "templates" / "lab" / "index.html.j2"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(patched)
    return root
