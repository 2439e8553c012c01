"""The SDE view (diffusion.sde): marginals against the forward SDE, conversions, adapters, inputs."""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.diffusion.sde import (
    VESDE,
    VPSDE,
    check_time,
    eps_from_score,
    eps_model_score_fn,
    marginal_mixture,
    mixture_prior_log_prob,
    mixture_score_fn,
    score_from_eps,
    sigma_model_score_fn,
    ve_loss,
    vp_eps_loss,
)
from scoretutor.schedules import geometric_sigmas

F64 = torch.float64


# -- conversions ---------------------------------------------------------------------------------
def test_ncsn_geometric_sigmas_are_the_ve_sde_at_equally_spaced_times():
    sigmas = geometric_sigmas(50.0, 0.01, 10, dtype=F64)
    sde = VESDE.from_sigmas(sigmas)
    assert (sde.sigma_min, sde.sigma_max) == (0.01, 50.0)
    times = VESDE.times(10)
    torch.testing.assert_close(sde.sigma(times), sigmas, rtol=1e-12, atol=0)
    torch.testing.assert_close(sde.t_from_sigma(sigmas), times, rtol=0, atol=1e-12)  # and back


def test_ddpm_betas_round_trip_and_match_the_continuous_vp_marginal():
    sde = VPSDE(0.1, 20.0)
    betas = sde.ddpm_betas(1000)
    back = VPSDE.from_ddpm_betas(betas)
    assert back.beta_min == pytest.approx(0.1, rel=1e-12) and back.beta_max == pytest.approx(20.0, rel=1e-12)
    # DDPM's ᾱ_N = Π(1 − β_j) against the SDE's α_1² = exp(−B(1)). Σβ_j = B(1) exactly for a linear
    # schedule, so −log ᾱ_N − B(1) = Σ(β + β²/2 + β³/3 + …) − Σβ = ½Σβ² + r with 0 < r <= Σβ³/(3(1 − β_max)).
    log_abar = torch.log1p(-betas).sum()
    B1 = sde.integrated_beta(torch.tensor([1.0], dtype=F64))[0]
    gap = -log_abar - B1 - 0.5 * (betas**2).sum()
    assert 0 < gap <= (betas**3).sum() / (3 * (1 - betas.max()))
    alpha1, _ = sde.marginal(torch.tensor([1.0], dtype=F64))
    assert alpha1[0] ** 2 == pytest.approx(math.exp(-B1.item()), rel=1e-12)


def test_eps_and_score_convert_both_ways_and_eps_is_the_kernel_score():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, 3, generator=g, dtype=F64)
    alpha, sigma = torch.rand(5, generator=g, dtype=F64), torch.rand(5, generator=g, dtype=F64) + 0.1
    xt = (alpha[:, None] * x0 + sigma[:, None] * eps).requires_grad_(True)
    log_kernel = (-((xt - alpha[:, None] * x0) ** 2).sum(-1) / (2 * sigma**2)).sum()
    (grad,) = torch.autograd.grad(log_kernel, xt)  # ∇ log N(x_t; α x₀, σ² I) by autograd
    torch.testing.assert_close(score_from_eps(eps, sigma), grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eps_from_score(score_from_eps(eps, sigma), sigma), eps, rtol=1e-12, atol=1e-12)


def test_sigma_model_adapter_on_the_ve_sde():
    # p = N(0, I): the σ-perturbed score is −x/(1 + σ²); the adapter must evaluate it at σ(t).
    sde = VESDE(0.1, 10.0)
    model = lambda x, sigma: -x / (1 + sigma[:, None] ** 2)
    score_fn = sigma_model_score_fn(model, sde)
    x = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=F64)
    exact = mixture_score_fn(GaussianMixture(torch.zeros(1, 2, dtype=F64), 1.0), sde)
    torch.testing.assert_close(score_fn(x, t), exact(x, t), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="VESDE"):
        sigma_model_score_fn(model, VPSDE())


def test_eps_model_adapter_on_the_vp_sde():
    # p = N(0, I) is invariant under the VP SDE: score −x at every t, so the ideal ε(x, σ_t) is σ_t x.
    sde = VPSDE()
    score_fn = eps_model_score_fn(lambda x, sigma_t: sigma_t[:, None] * x, sde)
    x = torch.randn(3, 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.01, 0.5, 1.0], dtype=F64)
    torch.testing.assert_close(score_fn(x, t), -x, rtol=1e-12, atol=1e-12)
    exact = mixture_score_fn(GaussianMixture(torch.zeros(1, 2, dtype=F64), 1.0), sde)
    torch.testing.assert_close(exact(x, t), -x, rtol=1e-10, atol=1e-12)


# -- the SDEs themselves -------------------------------------------------------------------------
@pytest.mark.parametrize("sde", [VESDE(0.01, 50.0), VPSDE(0.1, 20.0)], ids=repr)
def test_marginal_solves_the_moment_equations_of_the_sde(sde):
    # For dx = b(t) x dt + g(t) dw: dα/dt = b α and d(σ²)/dt = 2 b σ² + g² (central differences, h = 1e-5:
    # truncation error O(h²·|third derivative|) ≲ 1e-6 relative).
    h = 1e-5
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    a_p, s_p = sde.marginal(t + h)
    a_m, s_m = sde.marginal(t - h)
    a, s = sde.marginal(t)
    _, g = sde.sde(torch.zeros(3, 1, dtype=F64), t)
    b = sde.drift_coef(t)
    torch.testing.assert_close((a_p - a_m) / (2 * h), b * a, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close((s_p**2 - s_m**2) / (2 * h), 2 * b * s**2 + g**2, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("sde", [VESDE(0.01, 5.0), VPSDE(0.1, 20.0)], ids=repr)
def test_marginal_matches_monte_carlo_of_the_forward_sde(sde):
    # Euler–Maruyama on dx = f dt + g dw from p_0 (data; for VE data + σ_min z), coefficients at the
    # midpoint of each of 500 steps, n = 10 000 paths; compared at t = 0.3 and t = 1 with p_t of the
    # Gaussian data N(μ, diag(s²)), which is N(α_t μ, α_t² s² + σ_t²).
    g = torch.Generator().manual_seed(3)
    mu, sd = torch.tensor([2.0, -1.0], dtype=F64), torch.tensor([0.5, 1.5], dtype=F64)
    data = GaussianMixture(mu[None], sd[None])
    n, steps = 10_000, 500
    x = data.sample(n, g)
    if isinstance(sde, VESDE):
        x = x + sde.sigma_min * torch.randn(n, 2, generator=g, dtype=F64)
    dt = 1.0 / steps
    # Discretisation: for VP each step multiplies the mean by 1 − u, u = ½β dt, instead of e^{−u}: relative
    # error <= Σu²/2 <= β_max² dt/8 (= 0.1 here); the variance recursion likewise. For VE the midpoint sum
    # of g² = dσ²/dt ∝ e^{2ct} (c = log(σ_max/σ_min)) has relative error ≈ (c dt)²/6 < 1e-3.
    bias = sde.beta_max**2 * dt / 8 if isinstance(sde, VPSDE) else 1e-3
    for k in range(steps):
        f, gt = sde.sde(x, torch.full((n,), (k + 0.5) * dt, dtype=F64))
        x = x + f * dt + gt[:, None] * math.sqrt(dt) * torch.randn(n, 2, generator=g, dtype=F64)
        if k + 1 in (150, steps):
            p_t = marginal_mixture(data, sde, (k + 1) * dt)
            mean, var = p_t.means[0], torch.diagonal(p_t.covs[0])
            # Monte Carlo: se(mean) = √(var/n), se(var) = var √(2/n); 4 se + the discretisation bound
            assert ((x.mean(0) - mean).abs() <= 4 * (var / n).sqrt() + bias * mean.abs()).all(), k
            assert ((x.var(0) - var).abs() <= 4 * var * math.sqrt(2 / n) + bias * var).all(), k


def test_transition_composes_and_inverts_the_marginals():
    for sde in (VESDE(0.01, 50.0), VPSDE()):
        s, u, t = (torch.tensor([v], dtype=F64) for v in (0.2, 0.5, 0.9))
        a1, g1 = sde.transition(s, u)
        a2, g2 = sde.transition(u, t)
        a, g = sde.transition(s, t)
        torch.testing.assert_close(a1 * a2, a, rtol=1e-12, atol=0)
        torch.testing.assert_close(a2**2 * g1**2 + g2**2, g**2, rtol=1e-10, atol=1e-12)


def test_mixture_score_is_the_gradient_of_the_marginal_log_density():
    mix = ncsn_mixture(dtype=F64)
    for sde in (VESDE(0.01, 20.0), VPSDE()):
        score_fn = mixture_score_fn(mix, sde)
        x = 4 * torch.randn(6, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
        x.requires_grad_(True)
        for tv in (0.05, 0.5, 1.0):
            (grad,) = torch.autograd.grad(marginal_mixture(mix, sde, tv).log_prob(x).sum(), x)
            torch.testing.assert_close(score_fn(x.detach(), torch.full((6,), tv, dtype=F64)), grad,
                                       rtol=1e-8, atol=1e-10)
        mixed_t = torch.tensor([0.1, 0.1, 0.5, 0.9, 0.5, 1.0], dtype=F64)
        rows = torch.stack([score_fn(x.detach()[i:i + 1], mixed_t[i:i + 1])[0] for i in range(6)])
        torch.testing.assert_close(score_fn(x.detach(), mixed_t), rows)
        torch.testing.assert_close(mixture_prior_log_prob(mix, sde)(x.detach()),
                                   marginal_mixture(mix, sde, 1.0).log_prob(x.detach()))


def test_prior_sample_and_log_prob():
    for sde, std in ((VESDE(0.01, 7.0), 7.0), (VPSDE(), 1.0)):
        g = torch.Generator().manual_seed(5)
        x = sde.prior_sample((50_000, 2), g, dtype=F64)
        # std of the sample std ≈ std/√(2n) = 0.0032 std; 5 se
        assert (x.std(0) / std - 1).abs().max() < 5 / math.sqrt(2 * 50_000)
        ref = torch.distributions.Normal(torch.zeros(2, dtype=F64), std).log_prob(x[:10]).sum(-1)
        torch.testing.assert_close(sde.prior_log_prob(x[:10]), ref)
        assert sde.prior_sample((3, 1, 2, 2)).shape == (3, 1, 2, 2)


# -- training objectives ---------------------------------------------------------------------------
def test_vp_eps_loss_is_half_the_ddpm_simple_loss():
    sde = VPSDE()
    eps_model = lambda x, s: torch.tanh(x) * s[:, None]  # any ε-predictor conditioned on σ_t
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    loss = vp_eps_loss(eps_model, x, sde, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)  # the same draws, by hand: t, then ε
    t = sde.t_min + (1 - sde.t_min) * torch.rand(64, generator=g, dtype=F64)
    eps = torch.randn(64, 2, generator=g, dtype=F64)
    alpha, sigma = sde.marginal(t)
    xt = alpha[:, None] * x + sigma[:, None] * eps
    by_hand = 0.5 * ((eps_model(xt, sigma) - eps) ** 2).sum(-1).mean()
    torch.testing.assert_close(loss, by_hand, rtol=1e-10, atol=1e-12)


def test_ve_loss_is_continuous_sigma_dsm():
    sde = VESDE(0.1, 10.0)
    model = lambda x, s: -x / (1 + s[:, None] ** 2)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(8), dtype=F64)
    loss = ve_loss(model, x, sde, generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    sigma = sde.sigma(torch.rand(64, generator=g, dtype=F64))
    z = torch.randn(64, 2, generator=g, dtype=F64)
    xt = x + sigma[:, None] * z
    by_hand = (0.5 * sigma**2 * ((model(xt, sigma) + z / sigma[:, None]) ** 2).sum(-1)).mean()
    torch.testing.assert_close(loss, by_hand, rtol=1e-10, atol=1e-12)


# -- bad inputs ------------------------------------------------------------------------------------
def test_bad_inputs_raise_value_errors_naming_the_value():
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\], got \[1.5\]"):
        VESDE().sigma(1.5)
    with pytest.raises(ValueError, match=r"-0.1"):
        VPSDE().marginal(torch.tensor([0.5, -0.1]))
    with pytest.raises(ValueError, match="sigma_min=5.*sigma_max=5"):
        VESDE(5.0, 5.0)
    with pytest.raises(ValueError, match="sigma_min must be a positive"):
        VESDE(-1.0, 5.0)
    with pytest.raises(ValueError, match="beta_min must be a positive finite number, got 0"):
        VPSDE(0.0, 20.0)
    with pytest.raises(ValueError, match="beta_max must be a positive finite number, got -1"):
        VPSDE(0.1, -1.0)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        VESDE().sde(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\).*\(2,\)"):
        VESDE().sde(torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"shape must be \(N, \.\.\.\)"):
        VESDE().prior_sample((5,))
    with pytest.raises(ValueError, match="sigma must lie in"):
        VESDE(0.1, 1.0).t_from_sigma(2.0)
    with pytest.raises(ValueError, match="linearly spaced"):
        VPSDE.from_ddpm_betas([0.1, 0.2, 0.5])
    with pytest.raises(ValueError, match=r"decreasing"):
        VESDE.from_sigmas([0.1, 1.0])
    assert check_time(0.25, 3).tolist() == [0.25] * 3
