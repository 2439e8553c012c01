"""Claims checked off screen: one readable line per claim in a notebook, an error when it fails.

A notebook states a claim ("Fisher − ISM is constant"), measures it, and calls

    check("Fisher − ISM is constant", measured=1.991, expected=2.0, tol=0.02)

which prints ``✓ Fisher − ISM is constant: 1.991 (expected 2 ± 0.02)`` and raises
:class:`ClaimError` (an ``AssertionError``, so nbmake and pytest fail) when |measured − expected| > tol.
The tolerance's derivation belongs in the package or the tests, not on the student's screen.
"""

from __future__ import annotations

import math


class ClaimError(AssertionError):
    """A claim a notebook makes did not hold for the numbers it measured."""


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def check(name: str, measured: float, expected: float, tol: float, unit: str = "") -> float:
    """Assert |measured − expected| <= tol; print one ✓ line and return ``measured``."""
    measured, expected, tol = float(measured), float(expected), float(tol)
    if not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    u = f" {unit}" if unit else ""
    line = f"{name}: {_fmt(measured)}{u} (expected {_fmt(expected)} ± {_fmt(tol)}{u})"
    if not (math.isfinite(measured) and abs(measured - expected) <= tol):
        raise ClaimError(f"✗ {line}")
    print(f"✓ {line}")
    return measured


def _bound(name: str, measured: float, bound: float, unit: str, op: str) -> float:
    """Assert ``measured op bound`` for op in "<", ">"; print one ✓ line and return ``measured``."""
    measured, bound = float(measured), float(bound)
    u = f" {unit}" if unit else ""
    line = f"{name}: {_fmt(measured)}{u} (must be {op} {_fmt(bound)}{u})"
    holds = measured < bound if op == "<" else measured > bound
    if not (math.isfinite(measured) and holds):
        raise ClaimError(f"✗ {line}")
    print(f"✓ {line}")
    return measured


def check_less(name: str, measured: float, bound: float, unit: str = "") -> float:
    """Assert measured < bound; print one ✓ line and return ``measured``."""
    return _bound(name, measured, bound, unit, "<")


def check_greater(name: str, measured: float, bound: float, unit: str = "") -> float:
    """Assert measured > bound; print one ✓ line and return ``measured``."""
    return _bound(name, measured, bound, unit, ">")


def check_true(name: str, condition: bool, detail: str = "") -> None:
    """Assert a yes/no claim; print one ✓ line (with ``detail``, e.g. the numbers behind it)."""
    line = f"{name}" + (f": {detail}" if detail else "")
    if not bool(condition):
        raise ClaimError(f"✗ {line}")
    print(f"✓ {line}")
