"""DDPM's chain and ELBO ↔ weighted DSM (scoretutor.diffusion.ddpm); GSN chains (scoretutor.diffusion.gsn)."""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.diffusion import ddpm
from scoretutor.diffusion.gsn import exact_posterior_denoiser, gsn_chain, tweedie_denoiser
from scoretutor.diffusion.sde import VPSDE
from scoretutor.metrics import mode_fractions

F64 = torch.float64
BETAS = VPSDE().ddpm_betas(100)


def test_forward_chain_marginal_is_sqrt_alpha_bar():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20_000, 2), 3.0, dtype=F64)
    chain = ddpm.forward_chain(x0, BETAS, g)
    ab = ddpm.alpha_bars(BETAS)
    for i in (10, 50, 100):
        m, v = math.sqrt(ab[i - 1]) * 3.0, 1 - ab[i - 1].item()
        # Monte Carlo: se(mean) = √(v/n), se(var) = v √(2/n), 4 se
        assert (chain[i].mean(0) - m).abs().max() < 4 * math.sqrt(v / 20_000)
        assert (chain[i].var(0) - v).abs().max() < 4 * v * math.sqrt(2 / 20_000)


def test_posterior_is_bayes_rule_by_monte_carlo():
    # q(x_{i−1} | x_i, x_0): regress x_{i−1} on x_i from simulated pairs at fixed x_0 (1-D, many draws)
    g = torch.Generator().manual_seed(1)
    i, n = 30, 200_000
    x0 = torch.zeros(n, 1, dtype=F64)
    ab = ddpm.alpha_bars(BETAS)
    x_prev = math.sqrt(ab[i - 2]) * x0 + math.sqrt(1 - ab[i - 2]) * torch.randn(n, 1, generator=g, dtype=F64)
    beta = BETAS[i - 1].item()
    xi = math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * torch.randn(n, 1, generator=g, dtype=F64)
    mean, var = ddpm.posterior(x0, xi, BETAS, i)
    resid = x_prev - mean
    assert abs(resid.mean().item()) < 4 * math.sqrt(var / n)  # E[x_{i−1} − μ̃] = 0
    assert abs((resid * xi).mean().item()) < 4 * math.sqrt(var * (1 - ab[i - 1].item()) / n)  # ⟂ x_i
    assert abs(resid.var().item() / var - 1) < 4 * math.sqrt(2 / n)


@pytest.mark.parametrize("i", [2, 10, 60, 100])
def test_elbo_term_is_weighted_denoising_score_matching(i):
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(8, 3, generator=g, dtype=F64), torch.randn(8, 3, generator=g, dtype=F64)
    eps_pred = torch.randn(8, 3, generator=g, dtype=F64)
    ab = ddpm.alpha_bars(BETAS)[i - 1].item()
    xi = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps
    kl = ddpm.elbo_term(x0, xi, eps_pred, BETAS, i)
    kl_perfect = ddpm.elbo_term(x0, xi, eps, BETAS, i)  # the θ-independent part: ε_θ = ε
    s_pred, s_true = -eps_pred / math.sqrt(1 - ab), -eps / math.sqrt(1 - ab)  # score ↔ ε, ∇log q(x_i|x_0)
    dsm = ddpm.dsm_weight(BETAS, i) * 0.5 * ((s_pred - s_true) ** 2).sum(-1)  # λ_i · ½‖·‖²
    torch.testing.assert_close(kl - kl_perfect, dsm, rtol=1e-9, atol=1e-12)
    # and against torch.distributions' KL of the two Gaussians
    mean_q, var_q = ddpm.posterior(x0, xi, BETAS, i)
    beta = BETAS[i - 1].item()
    mean_p = (xi - beta / math.sqrt(1 - ab) * eps_pred) / math.sqrt(1 - beta)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mean_q, math.sqrt(var_q)),
                                            torch.distributions.Normal(mean_p, math.sqrt(beta))).sum(-1)
    torch.testing.assert_close(kl, ref, rtol=1e-9, atol=1e-12)


def test_dsm_weight_is_likelihood_weighting_g2_dt():
    # λ_i = β_i/(1 − β_i) ≈ β_i = g(t_i)² Δt (VP SDE, Δt = 1/N, t_i = (i − 1)/(N − 1)),
    # relative gap β_i/(1 − β_i)
    n = 1000
    vp = VPSDE()
    betas = vp.ddpm_betas(n)
    for i in (2, 300, 1000):
        t = torch.tensor([(i - 1) / (n - 1)], dtype=F64)
        g2_dt = vp.diffusion(t).item() ** 2 / n
        beta = betas[i - 1].item()
        assert math.isclose(ddpm.dsm_weight(betas, i), beta / (1 - beta), rel_tol=1e-12)
        assert abs(ddpm.dsm_weight(betas, i) / g2_dt - 1) <= beta / (1 - beta) + 1e-9


def test_ddpm_bad_inputs():
    with pytest.raises(ValueError, match=r"betas must be >= 2 values in \(0, 1\)"):
        ddpm.alpha_bars([0.1, 1.5])
    with pytest.raises(ValueError, match=r"i must be an integer in \[2, 100\], got 1"):
        ddpm.dsm_weight(BETAS, 1)


def test_gsn_with_the_exact_posterior_leaves_p_invariant_and_mixes():
    mix = ncsn_mixture(dtype=F64)
    g = torch.Generator().manual_seed(3)
    den = exact_posterior_denoiser(mix, 4.0)
    n = 4000
    se = math.sqrt(0.16 / n)
    x = gsn_chain(den, mix.sample(n, g), 4.0, 20, generator=g)  # from p: stays p
    assert abs(mode_fractions(x, mix).fractions[0].item() - 0.2) < 4 * se
    torch.testing.assert_close(x.mean(0), mix.means.T @ mix.weights, rtol=0, atol=4 * 4.6 / math.sqrt(n))
    x0 = torch.rand(n, 2, generator=g, dtype=F64) * 16 - 8  # from a uniform box: converges to 0.2
    x = gsn_chain(den, x0, 4.0, 60, generator=g)
    assert abs(mode_fractions(x, mix).fractions[0].item() - 0.2) < 4 * se


def test_tweedie_denoiser_mean():
    mix = ncsn_mixture(dtype=F64)
    sigma = 1.5
    den = tweedie_denoiser(mix.noise_conditional_score(), sigma, spread=1e-12)
    x_noisy = torch.tensor([[0.3, -2.0], [4.0, 6.0]], dtype=F64)
    # Tweedie: E[x | x̃] = Σ_k r_k m_k from the exact posterior mixture
    post = exact_posterior_denoiser(mix, sigma)
    g = torch.Generator().manual_seed(4)
    mc = post(x_noisy.repeat(20_000, 1), g).reshape(20_000, 2, 2).mean(0)
    torch.testing.assert_close(den(x_noisy, g), mc, rtol=0, atol=0.05)  # se ≈ 1.5/√20000 ≈ 0.011 → 4.5 se
