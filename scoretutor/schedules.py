"""Noise schedules σ_1 < σ_2 < … < σ_L and the NCSNv2 rules for choosing them.

Numbering as in the lecture deck and Song's 2021 essay: levels from small to large, σ_1 = σ_min
the smallest and σ_L = σ_max the largest (the 2019 paper and NCSNv2 number them the other way
round). Annealed Langevin visits σ_L first and σ_1 last. In code the levels are ``sigma_max``,
``sigma_min`` and ``sigmas`` in the order a sampler visits them (largest first).

Song & Ermon (2019) perturb the data with a geometric sequence of noise levels; Song & Ermon
(2020, "Improved Techniques for Training Score-Based Generative Models", NCSNv2) give rules of
thumb for its three knobs and for the sampler's step size:

- Technique 1 (``sigma_max_from_data``): σ_L = σ_max ≈ the largest pairwise Euclidean distance in
  the training data, so that p_{σ_L} is (nearly) one broad blob and Langevin can reach every mode.
- Technique 2 (``shell_overlap``, ``ncsnv2_gamma``, ``num_levels``): a sample of N(0, σ²I_D)
  lies on a thin shell ‖x‖ ≈ N(√D σ, σ²/2). Choose the ratio γ = σ_{i+1}/σ_i of adjacent levels
  so that p_{σ_i} puts about half of its mass in the 3-std shell of the next larger level p_{σ_{i+1}}:
      Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ) ≈ 0.5,
  then L = 1 + ⌈log(σ_max/σ_min)/log γ⌉. For D <= 4 the shell reaches down to ‖x‖ = 0 and the
  rule says nothing (see ``ncsnv2_gamma``).
- Technique 4 (``langevin_variance_ratio``, ``ncsnv2_step_size``): for data concentrated at
  one point, T steps of Langevin at level σ_i with α_i = ε σ_i²/σ_1² (σ_1 = σ_min), started from
  N(0, σ_{i+1}²), give x_T ~ N(0, s_T²) with
      s_T²/σ_i² = (1 − ε/σ_1²)^{2T} (γ² − 2ε/(σ_1² − σ_1²(1 − ε/σ_1²)²))
                  + 2ε/(σ_1² − σ_1²(1 − ε/σ_1²)²);
  choose T as large as the budget allows and ε so that this ratio is as close to 1 as possible.
"""

from __future__ import annotations

import math

import torch

from scoretutor import checks
from scoretutor.checks import count, positive
from scoretutor.device import generator_device

Tensor = torch.Tensor


def _normal_cdf(z: float) -> float:
    """Φ(z) = ½(1 + erf(z/√2))."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


# -- the schedule itself ---------------------------------------------------------------------
def geometric_sigmas(sigma_max: float, sigma_min: float, n: int, dtype: torch.dtype | None = None,
                     device=None) -> Tensor:
    """n geometric levels from σ_max down to σ_min, in the order a sampler visits them (largest
    first): element k is σ_max (σ_min/σ_max)^{k/(n−1)}, k = 0…n−1, both endpoints exact. In the
    deck's numbering that is σ_L, …, σ_1 (σ_1 = σ_min the smallest).

    A geometric sequence keeps the ratio γ = σ_{i+1}/σ_i = (σ_max/σ_min)^{1/(n−1)} constant.
    ``n = 1`` gives the single level σ_max.
    """
    sigma_max = positive(sigma_max, "sigma_max")
    sigma_min = positive(sigma_min, "sigma_min")
    n = count(n, "n", 1)
    if not sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if n == 1:
        return torch.tensor([sigma_max], dtype=dtype, device=device)
    logs = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64)
    sigmas = logs.exp()
    sigmas[0], sigmas[-1] = sigma_max, sigma_min  # exact endpoints despite exp(log(·)) rounding
    return sigmas.to(dtype=dtype or torch.get_default_dtype(), device=device)


# -- Technique 1 -----------------------------------------------------------------------------
def sigma_max_from_data(x: Tensor, max_points: int | None = 4096,
                        generator: torch.Generator | None = None) -> float:
    """Technique 1: σ_max (σ_L) = max_{j,k} ‖x_j − x_k‖₂ over the training set (flattened per example).

    With more than ``max_points`` examples, a random subset of that size is used (the exact
    maximum costs O(N²) memory); pass ``max_points=None`` for the exact value on all data.
    """
    x = checks.batch(x)
    if x.shape[0] < 2:
        raise ValueError(f"x must have shape (N, ...) with N >= 2 examples, got {tuple(x.shape)}")
    flat = x.reshape(x.shape[0], -1)
    if max_points is not None:
        max_points = count(max_points, "max_points", 2)
        if flat.shape[0] > max_points:
            idx = torch.randperm(flat.shape[0], generator=generator, device=generator_device(generator))
            idx = idx[:max_points]
            flat = flat[idx.to(flat.device)]
    flat = flat.double()
    best = 0.0
    for chunk in flat.split(1024):  # chunks keep the distance matrix small
        best = max(best, torch.cdist(chunk, flat).max().item())
    return best


# -- Technique 2 -----------------------------------------------------------------------------
def shell_overlap(gamma: float, dim: int, exact: bool = False) -> float:
    """P(‖x‖ ∈ 3-std shell of p_{σ_{i+1}}) for x ~ N(0, σ_i² I_D), with γ = σ_{i+1}/σ_i > 1: how much
    of a level's mass lies in the shell of the next larger level.

    The shell of N(0, σ²I_D) is [√D σ − 3σ/√2, √D σ + 3σ/√2] (‖x‖ ≈ N(√D σ, σ²/2) for large D).
    With that normal approximation the probability is the NCSNv2 expression
        Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ).
    ``exact=True`` uses ‖x‖²/σ_i² ~ χ²_D instead: P = F_{χ²_D}(r₊²) − F_{χ²_D}(r₋²) with
    r_± = γ(√D ± 3/√2) (r₋ clipped at 0). That is the right probability in any dimension, but for
    D <= 4 the "shell" is a ball around the origin (√D − 3/√2 < 0), so it measures no overlap of shells.
    """
    gamma = positive(gamma, "gamma")
    dim = count(dim, "dim", 1)
    if not exact:
        a = math.sqrt(2 * dim) * (gamma - 1)
        return _normal_cdf(a + 3 * gamma) - _normal_cdf(a - 3 * gamma)
    hi = gamma * (math.sqrt(dim) + 3 / math.sqrt(2))
    lo = max(gamma * (math.sqrt(dim) - 3 / math.sqrt(2)), 0.0)
    k = torch.tensor(dim / 2, dtype=torch.float64)
    cdf = lambda r: torch.special.gammainc(k, torch.tensor(r * r / 2, dtype=torch.float64)).item()
    return cdf(hi) - cdf(lo)


def ncsnv2_gamma(dim: int, target: float = 0.5, tol: float = 1e-12) -> float:
    """Technique 2: the smallest γ > 1 with Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ) = target.

    At γ = 1 the overlap is Φ(3) − Φ(−3) ≈ 0.997; it falls towards 0 as γ grows only when
    √(2D) > 3, i.e. D >= 5. For D <= 4 the lower edge of the shell sits at ‖x‖ < 0: the "shell"
    is a ball around the origin that holds most of the smaller level's mass for every ratio, so
    the criterion says nothing about how much adjacent levels overlap, and the rule gives no answer
    (ValueError); L is then set by the sampling budget instead.
    """
    dim = count(dim, "dim", 1)
    target = float(target)
    top = shell_overlap(1.0, dim)
    if not 0 < target < top:
        raise ValueError(f"target overlap must lie in (0, {top:.4f}) (the overlap at γ = 1), got {target}")
    if math.sqrt(2 * dim) <= 3:
        raise ValueError(
            f"dim={dim}: for D <= 4 the NCSNv2 overlap Φ(√(2D)(γ−1)+3γ) − Φ(√(2D)(γ−1)−3γ) never "
            f"falls to {target} (it tends to 1 as γ grows), so Technique 2 does not apply; choose the "
            "number of levels by the sampling budget"
        )
    lo, hi = 1.0, 2.0
    while shell_overlap(hi, dim) > target:  # march out until the overlap has dropped below target
        lo, hi = hi, 2 * hi
    while hi - lo > tol * hi:  # bisection on the first crossing in [lo, hi]
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if shell_overlap(mid, dim) > target else (lo, mid)
    return 0.5 * (lo + hi)


def num_levels(sigma_max: float, sigma_min: float, gamma: float) -> int:
    """L = 1 + ⌈log(σ_max/σ_min) / log γ⌉: the fewest geometric levels with ratio at most γ."""
    sigma_max, sigma_min, gamma = (positive(v, n) for v, n in
                                   ((sigma_max, "sigma_max"), (sigma_min, "sigma_min"), (gamma, "gamma")))
    if not sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if not gamma > 1:
        raise ValueError(f"gamma must be > 1, got {gamma}")
    # the 1e-9 guards against log rounding turning an exact integer into the next one up
    return 1 + math.ceil(math.log(sigma_max / sigma_min) / math.log(gamma) - 1e-9)


# -- Technique 4 -----------------------------------------------------------------------------
def langevin_variance_ratio(step_size: float, n_steps: int, gamma: float, sigma_min: float) -> float:
    """s_T²/σ_i² after T Langevin steps at level σ_i, α_i = ε σ_i²/σ_1², started at N(0, σ_{i+1}²).

    σ_1 = ``sigma_min`` is the smallest level and γ = σ_{i+1}/σ_i. For data at a single point,
    p_{σ_i} = N(0, σ_i²) and the update x ← x + α(−x/σ_i²) + √(2α) z is x ← a x + √(2α) z with
    a = 1 − α/σ_i² = 1 − ε/σ_1². The variance obeys v ← a² v + 2α, whose fixed point is
    v* = 2α/(1 − a²) (ULA's stationary variance); so v_T = a^{2T}(v_0 − v*) + v* and, dividing by
    σ_i² (v*/σ_i² depends on ε/σ_1² only, so it equals v*(ε, σ_1)/σ_1²),
        s_T²/σ_i² = a^{2T} (γ² − 2ε/(σ_1² − σ_1² a²)) + 2ε/(σ_1² − σ_1² a²).
    """
    step_size = positive(step_size, "step_size")
    n_steps = count(n_steps, "n_steps", 1)
    gamma = positive(gamma, "gamma")
    sigma_min = positive(sigma_min, "sigma_min")
    s2 = sigma_min**2
    if not step_size < 2 * s2:
        raise ValueError(f"step_size={step_size} makes the recursion unstable: need 0 < step_size < 2 σ_min² "
                         f"= {2 * s2:.4g}")
    a = 1.0 - step_size / s2
    stationary = 2 * (step_size / s2) / (1 - a * a)  # v*/σ_i² = 2u/(1 − a²), u = ε/σ_1²
    return a ** (2 * n_steps) * (gamma**2 - stationary) + stationary


def ncsnv2_step_size(n_steps: int, gamma: float, sigma_min: float) -> float:
    """Technique 4: the ε in (0, σ_1²] (σ_1 = ``sigma_min``) that brings ``langevin_variance_ratio``
    closest to 1.

    The ratio only depends on u = ε/σ_1², and for γ > 1 it is always above 1 (between γ²-ish
    for tiny ε and the stationary 2/(2 − u) for large ε), so "closest to 1" is its minimum.
    Found by a log-spaced grid over u ∈ [1e-8, 1] refined with golden-section search.
    """
    n_steps = count(n_steps, "n_steps", 1)
    gamma = positive(gamma, "gamma")
    sigma_min = positive(sigma_min, "sigma_min")
    if not gamma > 1:
        raise ValueError(f"gamma must be > 1, got {gamma}")
    s2 = sigma_min**2
    f = lambda log_u: langevin_variance_ratio(math.exp(log_u) * s2, n_steps, gamma, sigma_min)
    grid = [math.log(1e-8) + k * (math.log(1.0) - math.log(1e-8)) / 400 for k in range(401)]
    grid[-1] = math.log(1.0 - 1e-12)  # u = 1 exactly makes a = 0, fine, but stay inside (0, 2)
    values = [f(g) for g in grid]
    k = min(range(len(grid)), key=values.__getitem__)
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    inv_phi = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        c, d = hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo)
        if f(c) < f(d):
            hi = d
        else:
            lo = c
    return math.exp(0.5 * (lo + hi)) * s2
