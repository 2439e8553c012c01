"""A tiny invertible model (last week's alternative to EBMs): change of variables in 2D.

With an invertible map z = T(x) and a base density p_Z = N(0, I):
    p(x) = p_Z(T(x)) · |det ∂T(x)/∂x|.
``BananaFlow`` uses one affine coupling layer, whose Jacobian is triangular:
    z₁ = x₁ / a,   z₂ = (x₂ − b·(x₁² − a²)) · e^{−c·tanh(x₁)}
so log|det ∂T/∂x| = −log a − c·tanh(x₁), and the inverse is explicit.
"""

from __future__ import annotations

import math

import torch

from scoretutor.checks import count
from scoretutor.device import generator_device

Tensor = torch.Tensor


class BananaFlow:
    """p(x) by change of variables through an affine coupling map (a banana-shaped density)."""

    def __init__(self, a: float = 2.0, b: float = 0.25, c: float = 0.5):
        if a <= 0:
            raise ValueError(f"scale a must be positive, got {a}")
        self.a, self.b, self.c = float(a), float(b), float(c)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = T(x) and log|det ∂T/∂x|, for x of shape (..., 2)."""
        if x.shape[-1] != 2:
            raise ValueError(f"BananaFlow works in 2D: x must have shape (..., 2), got {tuple(x.shape)}")
        x1, x2 = x[..., 0], x[..., 1]
        s = -self.c * torch.tanh(x1)
        z1 = x1 / self.a
        z2 = (x2 - self.b * (x1**2 - self.a**2)) * torch.exp(s)
        return torch.stack([z1, z2], dim=-1), s - math.log(self.a)

    def inverse(self, z: Tensor) -> Tensor:
        """x = T⁻¹(z)."""
        x1 = z[..., 0] * self.a
        x2 = z[..., 1] * torch.exp(self.c * torch.tanh(x1)) + self.b * (x1**2 - self.a**2)
        return torch.stack([x1, x2], dim=-1)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = log N(T(x); 0, I) + log|det ∂T/∂x|."""
        z, log_det = self.forward(x)
        return -0.5 * (z**2).sum(-1) - math.log(2 * math.pi) + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """x = T⁻¹(z), z ~ N(0, I)."""
        n = count(n, "n")
        return self.inverse(torch.randn(n, 2, generator=generator, device=generator_device(generator)))
