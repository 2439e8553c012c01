"""Sample-quality metrics for comparing a sampler's output with a reference sample.

- ``sliced_wasserstein``: SW₂(x, y)² = E_θ W₂²(θᵀx, θᵀy), θ uniform on the unit sphere; each 1-D
  W₂ between empirical distributions is exact (sorted samples, quantile functions matched on the
  merged grid of breakpoints), the expectation over θ is a Monte Carlo average.
- ``mode_fractions``: the fraction of points nearest to each mode, with binomial standard errors
  √(f(1 − f)/n).

All accept samples of shape (N, ...) (flattened to (N, D)) on any device.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from scoretutor import checks
from scoretutor.checks import count
from scoretutor.device import generator_device

Tensor = torch.Tensor

__all__ = ["sliced_wasserstein", "mode_fractions", "ModeFractions"]


def _flat(x, name: str) -> Tensor:
    """(N, ...) → (N, D), finite, integer tensors promoted to the default float dtype."""
    if isinstance(x, Tensor) and not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    x = checks.batch(x, name, min_ndim=1)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x.reshape(x.shape[0], -1)


def _pair(x, y) -> tuple[Tensor, Tensor]:
    x, y = _flat(x, "x"), _flat(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features, got {x.shape[1]} and {y.shape[1]}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(device=x.device, dtype=dtype)


# -- sliced Wasserstein ---------------------------------------------------------------------------
def _w2_squared_1d(a: Tensor, b: Tensor) -> Tensor:
    """Exact W₂² between the empirical distributions of the columns of a (n, P) and b (m, P).

    W₂² = ∫₀¹ (F_a⁻¹(u) − F_b⁻¹(u))² du; both quantile functions are step functions with jumps at
    k/n and k/m, so the integral is an exact sum over the merged breakpoints.
    """
    a, b = a.sort(0).values, b.sort(0).values
    n, m = a.shape[0], b.shape[0]
    if n == m:
        return ((a - b) ** 2).mean(0)
    u = torch.cat([torch.arange(1, n + 1, device=a.device, dtype=a.dtype) / n,
                   torch.arange(1, m + 1, device=a.device, dtype=a.dtype) / m]).sort().values
    lengths = torch.diff(u, prepend=u.new_zeros(1))
    mid = u - lengths / 2
    ia = (mid * n).long().clamp_(0, n - 1)
    ib = (mid * m).long().clamp_(0, m - 1)
    return (lengths[:, None] * (a[ia] - b[ib]) ** 2).sum(0)


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None, return_std: bool = False
                       ) -> float | tuple[float, float]:
    """SW₂(x, y) = (E_θ W₂²(θᵀx, θᵀy))^{1/2} with θ uniform on the unit sphere of R^D.

    The expectation is a Monte Carlo average over ``n_projections`` random directions; with
    ``return_std`` the standard error of SW₂ from that average is returned too (delta method:
    se(√m) = se(m)/(2√m)). It does not include the sampling error of x and y themselves.
    """
    x, y = _pair(x, y)
    n_projections = count(n_projections, "n_projections", 1)
    D = x.shape[1]
    gdev = generator_device(generator, x.device)
    theta = torch.randn(D, n_projections, generator=generator, dtype=x.dtype, device=gdev).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    w2 = _w2_squared_1d(x @ theta, y @ theta)  # (P,)
    mean = w2.mean().clamp_min(0)
    value = mean.sqrt().item()
    if not return_std:
        return value
    se_mean = (w2.std() / math.sqrt(w2.numel())).item() if w2.numel() > 1 else float("nan")
    return value, (se_mean / (2 * value) if value > 0 else 0.0)


# -- mode fractions -------------------------------------------------------------------------------
class ModeFractions(NamedTuple):
    """Fraction of points nearest to each mode, its binomial standard error and the raw counts."""

    fractions: Tensor
    stderr: Tensor
    counts: Tensor

    def __str__(self) -> str:
        pairs = zip(self.fractions.tolist(), self.stderr.tolist(), strict=True)
        parts = [f"{f:.3f} ± {s:.3f}" for f, s in pairs]
        return f"mode fractions [{', '.join(parts)}] (n = {int(self.counts.sum())})"


def mode_fractions(x: Tensor, modes) -> ModeFractions:
    """f_k = #{i : argmin_j ‖x_i − μ_j‖ = k} / n with standard error √(f_k(1 − f_k)/n).

    ``modes``: a (K, D) tensor of mode locations or anything with a ``.means`` attribute (e.g. a
    :class:`~scoretutor.densities.GaussianMixture`). Assignment is to the nearest mode in Euclidean
    distance, which does not depend on the mixture weights.
    """
    x = _flat(x, "x")
    means = getattr(modes, "means", modes)
    if not isinstance(means, Tensor):
        means = torch.as_tensor(means)
    means = means.reshape(means.shape[0], -1) if means.ndim >= 1 else means
    if means.ndim != 2 or means.shape[1] != x.shape[1] or means.shape[0] < 1:
        raise ValueError(f"modes must be (K, {x.shape[1]}) locations or a mixture with such means, "
                         f"got shape {tuple(means.shape)}")
    means = means.to(device=x.device, dtype=x.dtype)
    nearest = torch.cdist(x, means).argmin(1)
    counts = torch.bincount(nearest, minlength=means.shape[0])
    n = x.shape[0]
    f = counts.to(x.dtype) / n
    return ModeFractions(f, (f * (1 - f) / n).sqrt(), counts)
