"""Notebook 01's check-yourself exercise: write the score of an energy by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoretutor.ebm import score_from_energy
from scoretutor.lecture.exercises import attempt, max_relative_error, shaped_like

Tensor = torch.Tensor


def mexican_hat_energy(x: Tensor) -> Tensor:
    """f(x) = (‖x‖² − 4)² / 4: low energy on the circle of radius 2."""
    return ((x**2).sum(-1) - 4.0) ** 2 / 4.0


def check_score(student_score: Callable[[Tensor], Tensor],
                energy: Callable[[Tensor], Tensor] = mexican_hat_energy,
                n: int = 256, seed: int = 0, rtol: float = 1e-4) -> bool:
    """Compare a hand-written score with −∇ₓf by autograd on random points; print a verdict."""
    x = 3 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    done, got = attempt(student_score, x.clone(), what="your formula")
    expected = score_from_energy(energy)(x)
    if not (done and shaped_like(got, expected.shape)):
        return False
    err = max_relative_error(got, expected, 1e-8)
    if err > rtol:
        i = int(((got.double() - expected).norm(dim=-1)).argmax())
        print(f"Not quite: at x = {x[i].tolist()} you give {got[i].tolist()}, "
              f"−∇f(x) = {expected[i].tolist()} (max relative error {err:.2e}). Hint: mind the sign.")
        return False
    print(f"Correct! Max relative error {err:.1e} over {n} random points.")
    return True
