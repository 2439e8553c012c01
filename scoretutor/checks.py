"""Input validation shared by every module: one wording for every "bad value" error.

Each check returns the cleaned value or raises ``ValueError`` naming the argument, what is allowed
and the value it got: ``count``, ``positive`` (numbers), ``batch`` (an (N, ...) float tensor),
``sigma`` (one noise level or one per example), ``sigmas`` (a decreasing schedule),
``call_score`` (a score function's output shaped like x); plus ``sq_norm``, ‖t_n‖² per example.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Tensor = torch.Tensor


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


def batch(x, name: str = "x", min_ndim: int = 2) -> Tensor:
    """An (N, ...) floating-point tensor with N >= 1 (and at least ``min_ndim`` dimensions)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
    if x.ndim < min_ndim or x.numel() == 0:
        shape = "(N, ...) with N >= 1 and features" if min_ndim >= 2 else "(N, ...) with N >= 1"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def sigma(value, x: Tensor, name: str = "sigma") -> Tensor:
    """A noise level σ for the batch x: a positive finite number or one per example.

    Accepts a number, a 0-d tensor, or an (N,) tensor; returns an (N,) tensor with x's dtype
    and device (a single σ is repeated N times).
    """
    n = x.shape[0]
    try:
        s = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a positive number or an ({n},) tensor, got {value!r}") from None
    if s.ndim == 0 or s.shape == (1,):
        s = s.reshape(()).expand(n)
    elif s.shape != (n,):
        raise ValueError(f"{name} must be a positive number or an ({n},) tensor (one per example), "
                         f"got shape {tuple(s.shape)}")
    if not (torch.isfinite(s).all() and (s > 0).all()):
        shown = s.tolist() if s.numel() <= 8 else f"min {s.min().item():.3g}"
        raise ValueError(f"{name} must be positive and finite, got {shown}")
    return s


def sigmas(values, name: str = "sigmas", decreasing: bool = True) -> list[float]:
    """Noise levels, positive and finite, in the order a sampler visits them: σ_max = σ_1 > … > σ_L.

    ``decreasing=False`` accepts any order (a set of levels rather than a schedule).
    """
    try:
        s = [float(v) for v in torch.as_tensor(values, dtype=torch.float64).flatten().tolist()]
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a sequence of positive numbers, got {values!r}") from None
    if not s:
        raise ValueError(f"{name} must contain at least one noise level")
    if not all(v > 0 and math.isfinite(v) for v in s):
        raise ValueError(f"{name} must be positive and finite, got {s}")
    if decreasing and any(b >= a for a, b in zip(s, s[1:], strict=False)):
        raise ValueError(f"{name} must be strictly decreasing (σ_max first, σ_min last), got {s}")
    return s


def call_score(score_fn: Callable[..., Tensor], x: Tensor, *args, name: str = "score_fn") -> Tensor:
    """score_fn(x, *args), checked to be a tensor shaped like x."""
    score = score_fn(x, *args)
    if not isinstance(score, Tensor) or score.shape != x.shape:
        got = tuple(score.shape) if isinstance(score, Tensor) else type(score).__name__
        raise ValueError(f"{name} must return a tensor shaped like x {tuple(x.shape)}, got {got}")
    return score


def sq_norm(t: Tensor) -> Tensor:
    """‖t_n‖² per example (trailing dimensions flattened), shape (N,)."""
    return t.reshape(t.shape[0], -1).pow(2).sum(-1)
