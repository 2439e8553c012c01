"""The command line: ``scoretutor COMMAND [options]`` (or ``python -m scoretutor``); ``--help`` lists them.

Each command is a module here (``train``, ``sample``, ``export``, ``explore``) with
``add_arguments(parser)`` and ``run(args) -> int``; keep their top-level imports light (torch is
imported inside ``run``). A mistake the user can fix — a bad option value, a missing or broken
checkpoint, a device that is not there, no network — is printed as one line ``error: …`` on stderr
with exit status 2 (:class:`~scoretutor.errors.ScoretutorError` and argparse's own errors); Ctrl-C
exits with 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import shlex
import sys
from collections.abc import Callable, Sequence

from scoretutor.errors import ScoretutorError, UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "digit", "main", "non_negative_float", "positive_float",
           "positive_int", "port", "unit_interval"]

PROG = "scoretutor"
# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("scoretutor.cli.train", "train the MNIST score model: train mnist --steps N --out DIR"),
    "sample": ("scoretutor.cli.sample", "draw MNIST digits: sample mnist --n N --seed S --out FILE.npy"),
    "explore": ("scoretutor.cli.explore", "serve the σ/ε explorers as a page without code (Voilà)"),
    "export": ("scoretutor.cli.export", "run notebooks, export reveal.js slides / HTML handouts (offline)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: argument --n: must be a positive integer, got -3``."""

    def error(self, message: str):  # noqa: D102 (argparse's hook)
        print(f"error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def _argument(convert: Callable[[str], float], ok: Callable[[float], bool], what: str):
    """An argparse type: ``convert(text)``, accepted when ``ok``; else argparse's one-line error."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type by it in some messages
    return parse


positive_int = _argument(int, lambda v: v >= 1, "a positive integer")
positive_float = _argument(float, lambda v: 0 < v < math.inf, "a positive number")
unit_interval = _argument(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")
port = _argument(int, lambda v: 1024 <= v <= 65535, "a port number 1024–65535")
non_negative_float = _argument(float, lambda v: 0 <= v < math.inf, "a number >= 0")
digit = _argument(int, lambda v: 0 <= v <= 9, "a digit 0-9")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="scoretutor: score-based generative modelling, taught.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 a user error, 130 Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, already printed)
        return int(stop.code or 0)
    if args.command is None:
        print(f"error: no command given; choose one of {', '.join(COMMANDS)} (see '{PROG} --help')",
              file=sys.stderr)
        return 2
    args.command_line = f"{PROG} " + shlex.join(argv)  # what a checkpoint card records
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except ScoretutorError as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
