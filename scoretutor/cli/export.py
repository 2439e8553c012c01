"""``scoretutor export slides|html|all|lecture [notebooks…] --out DIR [--full] [--solutions]
[--notebooks DIR]``.

Executes the notebooks (fast mode by default, full mode with ``--full``) and writes reveal.js slides
and/or HTML handouts that work offline (:mod:`scoretutor.lecture.export`); ``lecture`` writes the
90-minute route (:mod:`scoretutor.lecture.route`) as one deck, ``DIR/lecture.slides.html``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from scoretutor.cli import positive_int

FORMATS = ("html", "slides")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=[*FORMATS, "all", "lecture"],
                        help="slides (reveal.js), html (handouts), all, or lecture (the route as one deck)")
    parser.add_argument("notebooks", nargs="*",
                        help="notebook files or number prefixes such as 01 (default: all numbered notebooks)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--full", action="store_true",
                        help="execute in full mode (the lecture's sizes; minutes) instead of fast mode")
    parser.add_argument("--timeout", type=positive_int, default=3600,
                        help="seconds allowed per cell (default 3600)")
    parser.add_argument("--solutions", action="store_true",
                        help="keep the exercises' solution cells (written as NN_name.solutions.html; "
                             "without it, handouts and slides leave them out)")
    parser.add_argument("--notebooks", dest="notebook_dir", type=Path,
                        help="folder of the numbered notebooks (default: ./notebooks)")


def run(args: argparse.Namespace) -> int:
    from scoretutor.errors import UsageError
    from scoretutor.lecture.export import export_lecture, export_notebook, find_notebooks

    needed = ("nbformat", "nbclient", "nbconvert", "jinja2")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"export needs {', '.join(missing)}: pip install -e '.[lecture]'")
    mode = "full" if args.full else "fast"
    if args.format == "lecture":
        if args.solutions:
            raise UsageError("export lecture never shows solutions; use export html --solutions for handouts")
        if args.notebooks:
            raise UsageError("export lecture takes no notebook names: the route decides (see notebook 00)")
        t0 = time.perf_counter()
        path = export_lecture(args.out, full=args.full, timeout=args.timeout, folder=args.notebook_dir)
        print(f"lecture ({mode} mode, {time.perf_counter() - t0:.0f} s) -> {path}")
        return 0
    formats = list(FORMATS) if args.format == "all" else [args.format]
    notebooks = find_notebooks(args.notebooks, args.notebook_dir)
    for path in notebooks:
        t0 = time.perf_counter()
        files = export_notebook(path, formats, args.out, full=args.full, timeout=args.timeout,
                                solutions=args.solutions)
        print(f"{path.name} ({mode} mode, {time.perf_counter() - t0:.0f} s) -> "
              + ", ".join(str(f) for f in files))
    return 0
