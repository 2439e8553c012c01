"""``scoretutor explore [--port P]``: the σ and ε explorers as a web page without code cells.

Serves the app of :mod:`scoretutor.lecture.explore` with Voilà on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from scoretutor.cli import port
from scoretutor.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=port, default=8866, help="port on 127.0.0.1 (default 8866)")
    parser.add_argument("--token", help="access token (default: a random one, printed)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.add_argument("--fast", action="store_true", help="smaller trainings (SCORETUTOR_FAST=1)")
    parser.add_argument("--write", type=Path, metavar="IPYNB",
                        help="only write the app notebook to this file (to serve it some other way)")


def run(args: argparse.Namespace) -> int:
    from scoretutor.lecture.explore import ROOT, offline_template, voila_command, write_app

    if args.write:
        print(f"wrote {write_app(args.write)}")
        return 0
    try:
        import voila  # noqa: F401
    except ImportError:
        raise UsageError("Voilà is not installed: pip install -e '.[explore]'") from None
    token = args.token or secrets.token_hex(16)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.fast:
        env["SCORETUTOR_FAST"] = "1"
    with tempfile.TemporaryDirectory(prefix="scoretutor-explore-") as tmp:
        app = write_app(Path(tmp) / "explore.ipynb")
        templates = offline_template(Path(tmp) / "share")
        if templates is not None:  # no request to a CDN: the page works offline
            paths = [str(templates), env.get("JUPYTER_PATH", "")]
            env["JUPYTER_PATH"] = os.pathsep.join(paths).rstrip(os.pathsep)
        print(f"serving the explorers on http://127.0.0.1:{args.port}/?token={token} (Ctrl-C to stop)",
              flush=True)
        proc = subprocess.Popen(voila_command(app, args.port, token, not args.no_browser), env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(timeout=10)
            return 0
