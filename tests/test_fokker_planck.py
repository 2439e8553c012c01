"""Fokker–Planck: the probability-flow ODE and the reverse SDE share their marginals p_t
(scoretutor.diffusion.samplers.ode_sde_marginals), checked against the closed-form marginals of a
Gaussian mixture under the VE SDE (scoretutor.diffusion.sde.marginal_ks_distance)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from scoretutor.densities import GaussianMixture
from scoretutor.diffusion.samplers import ode_sde_marginals, probability_flow
from scoretutor.diffusion.sde import VESDE, marginal_ks_distance, marginal_mixture, mixture_score_fn

F64 = torch.float64
MIX1 = GaussianMixture(torch.tensor([[-5.0], [5.0]], dtype=F64), 1.0, torch.tensor([0.2, 0.8], dtype=F64))
VE = VESDE(0.1, 50.0)


def _moments(t: float) -> tuple[float, float]:
    """Mean and variance of p_t = ⅕ N(−5, 1 + σ(t)²) + ⅘ N(5, 1 + σ(t)²), by hand."""
    mean = 0.2 * -5 + 0.8 * 5
    var = 1 + VE.sigma(t).item() ** 2 + 0.2 * 25 + 0.8 * 25 - mean**2
    return mean, var


def test_ode_and_reverse_sde_share_the_marginals_but_not_the_paths():
    n, times = 4000, [0.75, 0.5, 0.25, 0.0]
    x1 = marginal_mixture(MIX1, VE, 1.0).sample(n, torch.Generator().manual_seed(0))  # the exact p_1
    ode, sde = ode_sde_marginals(mixture_score_fn(MIX1, VE), VE, x1, times, n_steps=500,
                                 generator=torch.Generator().manual_seed(1))
    assert ode.shape == sde.shape == (len(times), n, 1)
    # √N·KS of exact draws is Kolmogorov-distributed, P(KS > 1.95/√N) ≈ 0.001; + 0.01 for the solvers' bias
    crit = 1.95 / math.sqrt(n)
    for k, t in enumerate(times):
        mean, var = _moments(t)
        for name, x in (("ode", ode[k]), ("sde", sde[k])):
            assert marginal_ks_distance(x, MIX1, VE, t) < crit + 0.01, (name, t)
            assert abs(x.mean().item() - mean) < 4 * math.sqrt(var / n), (name, t)
            # se of a sample variance: √((μ₄ − v²)/n) ≤ v √(3/n), as μ₄/v² < 4 for these mixtures
            assert abs(x.var().item() / var - 1) < 4 * math.sqrt(3 / n), (name, t)
        # the same law, not the same points: a paired ODE and SDE sample end in the same mode about as
        # often as two independent draws would, 0.2² + 0.8² = 0.68 (4 se of a proportion)
        if t <= 0.25:
            same = ((ode[k] < 0) == (sde[k] < 0)).double().mean().item()
            assert abs(same - 0.68) < 4 * math.sqrt(0.68 * 0.32 / n)
    assert (ode[-1] - sde[-1]).abs().mean() > 1.0


def test_probability_flow_t_eval_follows_the_closed_form_flow():
    # data N(μ, v): p_t = N(μ, v + σ(t)²) and the ODE map is x_t = μ + (x_1 − μ) √((v + σ(t)²)/(v + σ_max²))
    mu, v = 2.0, 0.5
    gauss = GaussianMixture(torch.tensor([[mu]], dtype=F64), math.sqrt(v))
    x1 = torch.linspace(-60, 60, 9, dtype=F64)[:, None]
    times = [0.9, 0.5, 0.1, 0.0]
    out = probability_flow(mixture_score_fn(gauss, VE), VE, x1, rtol=1e-8, atol=1e-8, t_eval=times)
    scale = lambda t: math.sqrt((v + VE.sigma(t).item() ** 2) / (v + VE.sigma_max**2))
    want = torch.stack([mu + (x1 - mu) * scale(t) for t in times])
    torch.testing.assert_close(out.trajectory, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.x, want[-1], rtol=0, atol=1e-5)


def test_marginal_ks_distance_matches_scipy():
    x = marginal_mixture(MIX1, VE, 0.3).sample(500, torch.Generator().manual_seed(2)) + 0.2  # shifted
    p = marginal_mixture(MIX1, VE, 0.3)
    sd = p.covs[0, 0, 0].sqrt().item()
    cdf = lambda y: 0.2 * stats.norm.cdf(y, -5, sd) + 0.8 * stats.norm.cdf(y, 5, sd)
    ref = stats.kstest(x[:, 0].numpy(), cdf).statistic
    assert math.isclose(marginal_ks_distance(x, MIX1, VE, 0.3), ref, rel_tol=1e-9)


def test_bad_inputs():
    score = mixture_score_fn(MIX1, VE)
    x1 = torch.zeros(4, 1, dtype=F64)
    with pytest.raises(ValueError, match="grid"):
        ode_sde_marginals(score, VE, x1, [0.3333], n_steps=10)
    with pytest.raises(ValueError, match=r"t_eval must lie in \[0, 1\]"):
        probability_flow(score, VE, x1, t_eval=[1.5])
    with pytest.raises(ValueError, match="1-D mixture"):
        marginal_ks_distance(torch.zeros(4, 2), GaussianMixture(torch.zeros(1, 2), 1.0), VE, 0.5)
