"""Check-yourself exercises: each notebook's checker functions live in a module named after it.

The checkers share three steps: call the student's function (:func:`attempt`, which recognises
the untouched ``raise NotImplementedError``), check that a tensor answer has the right shape
(:func:`shaped_like`), and compare it with the reference (:func:`max_relative_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Tensor = torch.Tensor


def attempt(student_fn: Callable, *args, what: str = "your answer") -> tuple[bool, Any]:
    """(True, student_fn(*args)), or (False, None) with a printed hint if it is not attempted yet."""
    try:
        return True, student_fn(*args)
    except NotImplementedError:
        print(f"Not attempted yet: replace `raise NotImplementedError` with {what}.")
        return False, None


def shaped_like(got: Any, shape: tuple[int, ...], what: str = "Your function should return") -> bool:
    """Whether ``got`` is a tensor of the given shape; prints what was expected if not."""
    if isinstance(got, Tensor) and tuple(got.shape) == tuple(shape):
        return True
    found = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
    print(f"{what} a tensor of shape {tuple(shape)}, got {found}.")
    return False


def max_relative_error(got: Tensor, expected: Tensor, floor: float) -> float:
    """max_n ‖got_n − expected_n‖ / (‖expected_n‖ + floor), in float64 (rows are examples)."""
    diff = (got.double() - expected.double()).norm(dim=-1)
    return (diff / (expected.double().norm(dim=-1) + floor)).max().item()
