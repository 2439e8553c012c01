"""Noise schedules and the NCSNv2 rules, each checked against an independent computation."""

import itertools
import math

import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.schedules import (
    geometric_sigmas,
    langevin_variance_ratio,
    ncsnv2_gamma,
    ncsnv2_step_size,
    num_levels,
    shell_overlap,
    sigma_max_from_data,
)


# -- geometric_sigmas --------------------------------------------------------------------------
@pytest.mark.parametrize("sigma_max,sigma_min,n", [(20.0, 1.0, 10), (50.0, 0.01, 232), (1.5, 1.0, 2)])
def test_geometric_sigmas_monotone_exact_endpoints_constant_ratio(sigma_max, sigma_min, n):
    s = geometric_sigmas(sigma_max, sigma_min, n, dtype=torch.float64)
    assert s.shape == (n,)
    assert (s[1:] < s[:-1]).all()
    assert s[0].item() == sigma_max and s[-1].item() == sigma_min
    expected_gamma = (sigma_max / sigma_min) ** (1 / (n - 1))
    ratios = s[:-1] / s[1:]
    assert torch.allclose(ratios, torch.full((n - 1,), expected_gamma, dtype=torch.float64), rtol=1e-12)


def test_geometric_sigmas_default_dtype_and_single_level():
    s = geometric_sigmas(20, 1, 10)
    assert s.dtype == torch.get_default_dtype()
    assert s[0].item() == 20.0 and s[-1].item() == 1.0
    assert geometric_sigmas(3.0, 1.0, 1).tolist() == [3.0]


@pytest.mark.parametrize("args,match", [
    ((1.0, 2.0, 5), "sigma_min < sigma_max"),
    ((1.0, 1.0, 5), "sigma_min < sigma_max"),
    ((2.0, 0.0, 5), "sigma_min must be a positive"),
    ((-2.0, 1.0, 5), "sigma_max must be a positive"),
    ((2.0, 1.0, 0), "n must be an integer >= 1"),
    ((2.0, 1.0, 2.5), "n must be an integer >= 1"),
    ((float("inf"), 1.0, 3), "sigma_max must be a positive finite"),
])
def test_geometric_sigmas_validation(args, match):
    with pytest.raises(ValueError, match=match):
        geometric_sigmas(*args)


# -- Technique 1 ---------------------------------------------------------------------------------
def test_sigma_max_from_data_equals_brute_force_pairwise_maximum():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, 2, generator=g)  # shape (N, ...) is flattened per example
    pts = [a.flatten().tolist() for a in x]
    brute = max(math.dist(a, b) for a, b in itertools.combinations(pts, 2))
    assert sigma_max_from_data(x, max_points=None) == pytest.approx(brute, rel=1e-12)
    # a random subset can only find a smaller (or equal) maximum
    assert sigma_max_from_data(x, max_points=10, generator=g) <= brute + 1e-12


def test_sigma_max_of_ncsn_mixture_is_about_twenty():
    # Song & Ermon's σ_1 = 20 for their toy: modes at ±(5,5) are 10√2 ≈ 14.1 apart and with 2000
    # samples each unit Gaussian reaches ≈ 3.3 std out (in the far direction) on both sides,
    # so the largest distance is 14.1 + 2·(3 … 4) ∈ [18, 23].
    x = ncsn_mixture().sample(2000, generator=torch.Generator().manual_seed(1))
    assert 18 < sigma_max_from_data(x) < 23


def test_sigma_max_from_data_validation():
    with pytest.raises(ValueError, match="N >= 2"):
        sigma_max_from_data(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="max_points"):
        sigma_max_from_data(torch.zeros(5, 2), max_points=1)


# -- Technique 2 ---------------------------------------------------------------------------------
def _mc_shell_fraction(gamma: float, dim: int, n: int, seed: int) -> float:
    """Fraction of x ~ N(0, I_D) (σ_i = 1) with ‖x‖ in the 3-std shell of N(0, γ² I_D)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.cat([torch.randn(1000, dim, generator=g, dtype=torch.float64).norm(dim=1)
                   for _ in range(n // 1000)])
    lo, hi = gamma * (math.sqrt(dim) - 3 / math.sqrt(2)), gamma * (math.sqrt(dim) + 3 / math.sqrt(2))
    return ((r >= lo) & (r <= hi)).double().mean().item()


@pytest.mark.parametrize("dim", [2, 50, 1000])
def test_exact_shell_overlap_matches_monte_carlo(dim):
    n = 8000
    for gamma in (1.0, 1.1, 1.5):
        p = shell_overlap(gamma, dim, exact=True)
        mc = _mc_shell_fraction(gamma, dim, n, seed=dim)
        se = math.sqrt(max(p * (1 - p), 1e-4) / n)  # binomial standard error (floored for p ≈ 1)
        assert abs(mc - p) < 4 * se, (dim, gamma, mc, p)


@pytest.mark.parametrize("dim", [100, 1000, 10000])
def test_ncsnv2_overlap_formula_is_the_large_dimension_limit(dim):
    # ‖x‖ for x ~ N(0, I_D) has mean ≈ √D − 1/(4√D), sd → 1/√2 and skewness O(1/√D); shifting a
    # shell edge by 1/(4√D) moves the probability by ≤ φ(0)·(1/(4√D))/(1/√2) ≈ 0.14/√D, and the
    # skew adds the same order, so the normal-shell formula is within 0.25/√D of the exact value.
    for gamma in (1.0, 1 + 3 / math.sqrt(2 * dim), 1 + 6 / math.sqrt(2 * dim)):
        approx = shell_overlap(gamma, dim)
        exact = shell_overlap(gamma, dim, exact=True)
        assert abs(approx - exact) < 0.25 / math.sqrt(dim), (gamma, approx, exact)


@pytest.mark.parametrize("dim", [5, 100, 3072])
def test_ncsnv2_gamma_solves_the_overlap_equation(dim):
    gamma = ncsnv2_gamma(dim)
    a = math.sqrt(2 * dim) * (gamma - 1)
    phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # Φ written independently, via erfc
    assert phi(a + 3 * gamma) - phi(a - 3 * gamma) == pytest.approx(0.5, abs=1e-9)
    # it is the first crossing: slightly smaller ratios still overlap by more than a half
    assert shell_overlap(1 + 0.99 * (gamma - 1), dim) > 0.5


def test_ncsnv2_gamma_monte_carlo_half_the_mass_in_the_previous_shell():
    # Draw from p_{σ_i} (σ_i = 1) in D = 1000 and count norms in the shell of p_{σ_(i-1)}, σ_(i-1) = γ.
    # Expected 0.5 up to the normal-shell approximation (< 0.25/√1000 = 0.008, see above) and the
    # Monte Carlo error (se = √(0.25/8000) = 0.0056, allow 4 se).
    dim, n = 1000, 8000
    gamma = ncsnv2_gamma(dim)
    frac = _mc_shell_fraction(gamma, dim, n, seed=7)
    assert abs(frac - 0.5) < 0.25 / math.sqrt(dim) + 4 * math.sqrt(0.25 / n)


def test_ncsnv2_gamma_large_dimension_asymptote():
    # For γ ≈ 1, Φ(√(2D)(γ−1) + 3γ) ≈ 1 and the rule reduces to Φ(√(2D)(γ−1) − 3) ≈ 0.5,
    # i.e. γ ≈ 1 + 3/√(2D); the neglected 3(γ−1) term makes the relative error O(1/√D).
    for dim in (3072, 100_000):
        approx = 1 + 3 / math.sqrt(2 * dim)
        assert (ncsnv2_gamma(dim) - 1) == pytest.approx(approx - 1, rel=3 / math.sqrt(dim))


def test_ncsnv2_gamma_has_no_answer_in_low_dimension():
    for dim in (1, 2, 4):
        assert shell_overlap(50.0, dim) > 0.99  # the overlap never falls: the shells always overlap
        with pytest.raises(ValueError, match=f"dim={dim}: for D <= 4"):
            ncsnv2_gamma(dim)
    with pytest.raises(ValueError, match="target overlap"):
        ncsnv2_gamma(100, target=1.0)


def test_num_levels_is_the_fewest_geometric_levels_within_the_ratio():
    for sigma_max, sigma_min, gamma in [(50.0, 0.01, 1.0398), (20.0, 1.0, 1.3), (8.0, 1.0, 2.0)]:
        L = num_levels(sigma_max, sigma_min, gamma)
        sigmas = geometric_sigmas(sigma_max, sigma_min, L, dtype=torch.float64)
        assert (sigmas[:-1] / sigmas[1:]).max().item() <= gamma * (1 + 1e-12)
        assert (sigma_max / sigma_min) ** (1 / (L - 2)) > gamma  # one level fewer is too coarse
    assert num_levels(8.0, 1.0, 2.0) == 4  # 8, 4, 2, 1 exactly
    with pytest.raises(ValueError, match="gamma must be > 1"):
        num_levels(8.0, 1.0, 1.0)


# -- Technique 4 ---------------------------------------------------------------------------------
def test_variance_ratio_matches_the_variance_recursion():
    # Iterate v ← (1 − α/σ_i²)² v + 2α from v_0 = γ²σ_i² directly (no closed form).
    for eps, T, gamma, sigma_min, sigma_i in [(0.1, 100, 20 ** (1 / 9), 1.0, 20.0),
                                              (6.2e-6, 5, 1.0376, 0.01, 3.7),
                                              (1e-3, 50, 1.5, 0.1, 0.1)]:
        alpha = eps * sigma_i**2 / sigma_min**2
        v = (gamma * sigma_i) ** 2
        for _ in range(T):
            v = (1 - alpha / sigma_i**2) ** 2 * v + 2 * alpha
        assert langevin_variance_ratio(eps, T, gamma, sigma_min) == pytest.approx(v / sigma_i**2, rel=1e-10)


@pytest.mark.slow
def test_variance_ratio_matches_simulated_gaussian_ula():
    # Simulate 1-D ULA on p_{σ_i} = N(0, σ_i²): x ← x + α(−x/σ_i²) + √(2α) z from x_0 ~ N(0, γ²σ_i²).
    # The sample variance of n Gaussians has relative standard error √(2/(n−1)); allow 4 se.
    g = torch.Generator().manual_seed(3)
    n = 100_000
    sigma_min, sigma_i, gamma = 1.0, 5.0, 20 ** (1 / 9)
    for eps, T in [(0.1, 100), (0.01, 20), (0.3, 3)]:
        alpha = eps * sigma_i**2 / sigma_min**2
        x = gamma * sigma_i * torch.randn(n, generator=g, dtype=torch.float64)
        for _ in range(T):
            z = torch.randn(n, generator=g, dtype=torch.float64)
            x = x - alpha * x / sigma_i**2 + math.sqrt(2 * alpha) * z
        ratio = x.var().item() / sigma_i**2
        expected = langevin_variance_ratio(eps, T, gamma, sigma_min)
        assert ratio == pytest.approx(expected, rel=4 * math.sqrt(2 / (n - 1))), (eps, T)


def test_step_size_minimises_the_ratio_and_matches_the_paper():
    T, gamma, sigma_min = 100, 20 ** (1 / 9), 1.0
    eps = ncsnv2_step_size(T, gamma, sigma_min)
    best = langevin_variance_ratio(eps, T, gamma, sigma_min)
    assert best > 1  # s_T² never drops below σ_i² for γ > 1 (see the docstring)
    for factor in (0.5, 0.9, 0.99, 1.01, 1.1, 2.0):
        assert langevin_variance_ratio(eps * factor, T, gamma, sigma_min) >= best
    # NCSNv2, CIFAR-10: σ_1 = 50, σ_L = 0.01, L = 232, T = 5 → the paper reports ε = 6.2e-6 (2 s.f.)
    cifar_gamma = (50 / 0.01) ** (1 / 231)
    assert ncsnv2_step_size(5, cifar_gamma, 0.01) == pytest.approx(6.2e-6, abs=0.05e-6)


@pytest.mark.parametrize("args,match", [
    ((0.0, 10, 1.5, 1.0), "step_size must be a positive"),
    ((2.5, 10, 1.5, 1.0), "unstable"),
    ((0.1, 0, 1.5, 1.0), "n_steps must be an integer"),
])
def test_variance_ratio_validation(args, match):
    with pytest.raises(ValueError, match=match):
        langevin_variance_ratio(*args)


def test_step_size_validation():
    with pytest.raises(ValueError, match="gamma must be > 1"):
        ncsnv2_step_size(10, 1.0, 1.0)
