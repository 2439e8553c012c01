"""Run-mode switches shared by notebooks, tests and benchmarks.

``SCORETUTOR_FAST=1`` shrinks every training and sampling loop so the whole notebook suite runs
in CI in minutes; unset (or ``0``) gives the full sizes a lecture uses.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

FAST_ENV = "SCORETUTOR_FAST"
PROGRESS_ENV = "SCORETUTOR_PROGRESS"  # "0": no progress bars at all (exports)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """True when ``SCORETUTOR_FAST`` is set to 1/true/yes/on (case-insensitive)."""
    value = os.environ.get(FAST_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{FAST_ENV}={os.environ[FAST_ENV]!r} is not understood; use one of "
        f"{sorted(_TRUE)} to switch fast mode on or {sorted(_FALSE - {''})} to switch it off"
    )


def show_progress(progress: bool | None = None) -> bool:
    """Whether long loops show a tqdm bar. Bars are for live, long work only:

    - ``SCORETUTOR_PROGRESS=0`` (set by ``scoretutor export`` for the kernels it starts, so no
      handout or slide shows a bar) turns every bar off, even where ``progress=True``;
    - otherwise ``progress`` if given, else on unless fast mode or CI.
    """
    if os.environ.get(PROGRESS_ENV, "").strip().lower() in _FALSE - {""}:
        return False
    if progress is not None:
        return bool(progress)
    on_ci = os.environ.get("CI", "").strip().lower() not in _FALSE
    return not (fast_mode() or on_ci)


def pick(full: T, fast: T) -> T:
    """Choose a size by mode, so notebooks read naturally: ``steps = pick(full=5000, fast=200)``."""
    return fast if fast_mode() else full
