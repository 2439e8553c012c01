"""Command line: ``python -m scoretutor COMMAND [options]`` (``--help`` lists the commands).

Each command lives in the module named in ``COMMANDS`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Command modules are imported when the parser is built: keep their
top-level imports light.
Errors a user can fix (bad arguments, a missing checkpoint, no network) are reported as one line
on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("scoretutor.train_cli", "train the MNIST score model: train mnist --steps N --out DIR"),
    "sample": ("scoretutor.sample_cli", "draw MNIST digits: sample mnist --n N --seed S --out FILE.npy"),
    "explore": ("scoretutor.explore", "serve the σ/ε explorers as a page without code (Voilà, 127.0.0.1)"),
    "export": ("scoretutor.export", "run notebooks, export reveal.js slides / HTML handouts (offline)"),
}


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scoretutor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
