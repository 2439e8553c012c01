"""Sample-only 2D toy data sets (no closed-form density): two moons and a checkerboard.

Every function takes a ``torch.Generator`` so draws are reproducible; samples are drawn on the
generator's device (so ``fit`` can pass its device generator to them).
"""

from __future__ import annotations

import math

import torch

from scoretutor.checks import count
from scoretutor.device import generator_device


def two_moons(n: int, noise: float = 0.1, scale: float = 3.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Two interleaved half circles (as in scikit-learn's make_moons), centred and scaled."""
    n = count(n, "n")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    dev = generator_device(generator)  # samples live where the generator draws them
    upper = torch.rand(n, generator=generator, device=dev) < 0.5
    t = torch.rand(n, generator=generator, device=dev) * math.pi
    x = torch.where(upper, t.cos(), 1 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    pts = torch.stack([x - 0.5, y - 0.25], dim=-1) * scale
    return pts + noise * scale * torch.randn(n, 2, generator=generator, device=dev)


def checkerboard(n: int, squares: int = 4, size: float = 8.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform on the dark squares of a ``squares × squares`` board spanning [−size/2, size/2]²."""
    n = count(n, "n")
    if squares < 2 or size <= 0:
        raise ValueError(f"need squares >= 2 and size > 0, got squares={squares}, size={size}")
    cell = size / squares
    dark = [(i, j) for i in range(squares) for j in range(squares) if (i + j) % 2 == 0]
    dev = generator_device(generator)  # samples live where the generator draws them
    idx = torch.randint(len(dark), (n,), generator=generator, device=dev)
    corners = torch.tensor(dark, dtype=torch.get_default_dtype(), device=dev)[idx] * cell - size / 2
    return corners + torch.rand(n, 2, generator=generator, device=dev) * cell
