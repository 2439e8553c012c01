"""Exact log-likelihoods along the probability-flow ODE, and bits/dim."""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, eight_gaussians, ncsn_mixture
from scoretutor.diffusion.likelihood import (
    bits_per_dim,
    bits_per_dim_from_log_likelihood,
    dequantize,
    log_likelihood,
)
from scoretutor.diffusion.sde import VESDE, VPSDE, marginal_mixture, mixture_prior_log_prob, mixture_score_fn

F64 = torch.float64
TOL = 1e-5


def _solver_bound(nfev: int, x: torch.Tensor, sde) -> float:
    """A rough global-error bound for RK45: K ≈ nfev/6 steps, each with local error below
    atol + rtol·|y| in the RMS norm over the state, with |y| at most the prior's ~4σ_prior + ‖x‖."""
    y_scale = 4 * sde.prior_std() + x.abs().max().item()
    return nfev / 6 * (TOL + TOL * y_scale)


@pytest.mark.parametrize("density", [ncsn_mixture, eight_gaussians], ids=["ncsn_mixture", "eight_gaussians"])
@pytest.mark.parametrize("sde", [VESDE(0.01, 20.0), VPSDE()], ids=repr)
def test_exact_score_and_prior_give_the_analytic_log_density(density, sde):
    mix = density(dtype=F64)
    x = mix.sample(100, torch.Generator().manual_seed(0))
    got, nfev = log_likelihood(mixture_score_fn(mix, sde), sde, x, rtol=TOL, atol=TOL,
                               prior_log_prob=mixture_prior_log_prob(mix, sde), return_nfev=True)
    if isinstance(sde, VESDE):
        truth = mix.perturb(sde.sigma_min).log_prob(x)  # p_0 = p ∗ N(0, σ_min² I)
    else:
        truth = marginal_mixture(mix, sde, sde.t_min).log_prob(x)  # p_{t_min}: α x_data + σ z
    err = (got - truth).abs().mean().item()
    assert err <= min(1e-3, _solver_bound(nfev, x, sde)), (err, nfev)


def test_gaussian_prior_error_shrinks_as_sigma_max_grows():
    mix = ncsn_mixture(dtype=F64)
    x = mix.sample(100, torch.Generator().manual_seed(1))
    truth = mix.perturb(0.01).log_prob(x)
    errs = []
    for sigma_max in (10.0, 20.0, 50.0):
        sde = VESDE(0.01, sigma_max)
        errs.append((log_likelihood(mixture_score_fn(mix, sde), sde, x) - truth).abs().mean().item())
    # the mismatch KL(p_1 ‖ N(0, σ_max²)) falls like ‖mean‖²/σ_max²; seen point by point it is ~1/σ_max
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.5 * errs[0] and errs[0] > 10 * 1e-3


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_around_the_exact_trace(probe):
    mix = ncsn_mixture(dtype=F64)
    sde = VESDE(0.01, 20.0)
    score_fn, prior = mixture_score_fn(mix, sde), mixture_prior_log_prob(mix, sde)
    n, m = 20, 16
    x = mix.sample(n, torch.Generator().manual_seed(2))
    exact = log_likelihood(score_fn, sde, x, prior_log_prob=prior)
    # m independent probes per point, all in one solve (each row has its own fixed probe)
    hutch = log_likelihood(score_fn, sde, x.repeat(m, 1), trace="hutchinson", prior_log_prob=prior,
                           probe=probe, generator=torch.Generator().manual_seed(3)).reshape(m, n)
    diff = hutch - exact  # (m, n)
    assert diff.std() > 1e-3  # a real estimate, not the exact trace in disguise
    # pooled mean over n·m estimates; se from the per-point sample variances: se² = Σ_i var_i / (m n²)
    se = math.sqrt(diff.var(0).sum().item() / m) / n
    assert abs(diff.mean().item()) < 3 * se + 1e-3  # + the ODE solver error of the two solves


def test_image_shaped_input_and_a_bad_prior():
    sde = VESDE(0.01, 10.0)
    p = GaussianMixture(torch.zeros(1, 4, dtype=F64), 1.0)
    x = p.sample(5, torch.Generator().manual_seed(4)).reshape(5, 1, 2, 2)
    got = log_likelihood(mixture_score_fn(p, sde), sde, x, prior_log_prob=mixture_prior_log_prob(p, sde))
    torch.testing.assert_close(got, p.perturb(0.01).log_prob(x.reshape(5, 4)), rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match=r"one value per example, shape \(5,\)"):
        log_likelihood(mixture_score_fn(p, sde), sde, x, prior_log_prob=lambda y: y.sum())
    with pytest.raises(ValueError, match="trace must be one of"):
        log_likelihood(mixture_score_fn(p, sde), sde, x, trace="fast")
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\)"):
        log_likelihood(mixture_score_fn(p, sde), sde, torch.zeros(4))


@pytest.mark.parametrize("data_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_a_uniform_model_has_exactly_8_bits_per_dim(data_range):
    # score 0 and f = 0 make the VE ODE the identity; a prior uniform on the data range [lo, hi]^D has
    # log p = −D log(hi − lo), the continuous counterpart of P(x) = 256^−D: exactly 8 bits/dim.
    lo, hi = data_range
    g = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (3, 1, 4, 4), generator=g, dtype=torch.uint8)
    uniform = lambda y: torch.full((y.shape[0],), -y[0].numel() * math.log(hi - lo), dtype=y.dtype)
    bpd = bits_per_dim(lambda y, t: torch.zeros_like(y), VESDE(0.01, 1.0), images, data_range=data_range,
                       prior_log_prob=uniform, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(bpd, torch.full((3,), 8.0), rtol=0, atol=1e-6)


def test_dequantize_and_the_offset():
    images = torch.tensor([[0, 255, 128]], dtype=torch.uint8)
    y = dequantize(images, torch.Generator().manual_seed(7))
    assert ((y * 256 - images.double()).ge(0) & (y * 256 - images.double()).lt(1)).all()
    # a density twice as high as uniform on [0, 1]^D: one bit per dimension better than 8
    assert bits_per_dim_from_log_likelihood(torch.tensor([3 * math.log(2)]), 3).item() == pytest.approx(7.0)
    with pytest.raises(ValueError, match="8-bit"):
        dequantize(torch.tensor([[0.5, 3.0]]))
    with pytest.raises(ValueError, match="data_range"):
        bits_per_dim_from_log_likelihood(torch.zeros(1), 3, (1.0, 0.0))
