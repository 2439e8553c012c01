"""Input validation shared by every module: one wording for every "bad value" error.

Each check returns the cleaned value or raises ``ValueError`` naming the argument, what is allowed
and the value it got.
"""

from __future__ import annotations

import math


def count(value, name: str, minimum: int = 0) -> int:
    """An integer >= ``minimum`` (booleans and non-integral floats are refused)."""
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive(value, name: str) -> float:
    """A positive finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v
