"""Notebook 01's check-yourself exercise: write the score of an energy by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoretutor.ebm import score_from_energy

Tensor = torch.Tensor


def mexican_hat_energy(x: Tensor) -> Tensor:
    """f(x) = (‖x‖² − 4)² / 4: low energy on the circle of radius 2."""
    return ((x**2).sum(-1) - 4.0) ** 2 / 4.0


def check_score(student_score: Callable[[Tensor], Tensor],
                energy: Callable[[Tensor], Tensor] = mexican_hat_energy,
                n: int = 256, seed: int = 0, rtol: float = 1e-4) -> bool:
    """Compare a hand-written score with −∇ₓf by autograd on random points; print a verdict."""
    x = 3 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    try:
        got = student_score(x.clone())
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` with your formula.")
        return False
    expected = score_from_energy(energy)(x)
    if not isinstance(got, Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
        print(f"Your function should return a tensor of shape {tuple(expected.shape)}, got {shape}.")
        return False
    err = ((got.double() - expected).norm(dim=-1) / (expected.norm(dim=-1) + 1e-8)).max().item()
    if err > rtol:
        i = int(((got.double() - expected).norm(dim=-1)).argmax())
        print(f"Not quite: at x = {x[i].tolist()} you give {got[i].tolist()}, "
              f"−∇f(x) = {expected[i].tolist()} (max relative error {err:.2e}). Hint: mind the sign.")
        return False
    print(f"Correct! Max relative error {err:.1e} over {n} random points.")
    return True
