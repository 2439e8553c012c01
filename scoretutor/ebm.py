"""Energy-based models p(x) = e^{−f(x)}/Z: the partition function by brute force, and the score.

Z = ∫ e^{−f(x)} dx is what maximum likelihood needs (log p = −f − log Z) and what makes EBMs
hard: on a grid with n points per axis it costs nᵈ energy evaluations. The score
∇ₓ log p(x) = −∇ₓ f(x) − ∇ₓ log Z = −∇ₓ f(x) does not need Z at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Tensor = torch.Tensor
EnergyFn = Callable[[Tensor], Tensor]


def grid_points_log10(dim: int, n_per_axis: int = 100) -> float:
    """log₁₀ of the energy evaluations a tensor-product grid needs: log₁₀(n_per_axisᵈ) = d·log₁₀ n."""
    if dim < 1 or n_per_axis < 2:
        raise ValueError(f"need dim >= 1 and n_per_axis >= 2, got dim={dim}, n_per_axis={n_per_axis}")
    return dim * math.log10(n_per_axis)


def grid_log_partition(energy: EnergyFn, dim: int, lim: float = 10.0, n_per_axis: int = 200,
                       chunk: int = 1_000_000, dtype: torch.dtype = torch.float64) -> float:
    """log Z ≈ log Σ_grid e^{−f(x)} hᵈ on [−lim, lim]ᵈ with spacing h (midpoint rule).

    Evaluated in chunks (n_per_axisᵈ points in all) with a streaming log-sum-exp.
    """
    if dim < 1 or n_per_axis < 2 or lim <= 0:
        raise ValueError(f"need dim >= 1, n_per_axis >= 2, lim > 0; got {dim}, {n_per_axis}, {lim}")
    log10_total = grid_points_log10(dim, n_per_axis)
    if log10_total > math.log10(5e8):
        raise ValueError(
            f"a {n_per_axis}^{dim} grid has 10^{log10_total:.1f} points — too many to evaluate; "
            "that is exactly why Z is intractable in high dimension"
        )
    h = 2 * lim / n_per_axis
    axis = -lim + h * (torch.arange(n_per_axis, dtype=dtype) + 0.5)
    n_total = n_per_axis**dim
    acc = torch.tensor(-math.inf, dtype=dtype)
    for start in range(0, n_total, chunk):
        idx = torch.arange(start, min(start + chunk, n_total))
        coords = []
        for _ in range(dim):  # mixed-radix digits of the flat index -> grid coordinates
            coords.append(axis[idx % n_per_axis])
            idx = idx // n_per_axis
        x = torch.stack(coords, dim=-1)
        acc = torch.logaddexp(acc, torch.logsumexp(-energy(x).to(dtype), dim=0))
    return acc.item() + dim * math.log(h)


def score_from_energy(energy: EnergyFn) -> Callable[[Tensor], Tensor]:
    """s(x) = −∇ₓ f(x) by autograd (Z drops out). Works inside ``torch.no_grad()`` too."""

    def score(x: Tensor) -> Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(x).sum(), x)
        return -grad

    return score
