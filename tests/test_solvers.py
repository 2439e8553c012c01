"""Fixed-step ODE/SDE solvers (scoretutor.diffusion.solvers): grids, DDIM's equivalences, measured orders."""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.diffusion import solvers as S
from scoretutor.diffusion.samplers import probability_flow
from scoretutor.diffusion.sde import VESDE, VPSDE, marginal_mixture, mixture_score_fn
from scoretutor.metrics import mode_fractions, sliced_wasserstein

F64 = torch.float64
SDES = [VESDE(0.1, 50.0), VPSDE()]
gen = lambda s: torch.Generator().manual_seed(s)


def test_karras_sigmas_are_evenly_spaced_in_sigma_to_the_one_over_rho():
    s = S.karras_sigmas(10, 0.1, 50.0, rho=7.0)
    assert s[0].item() == pytest.approx(50.0) and s[-1].item() == pytest.approx(0.1) and len(s) == 11
    step = (0.1 ** (1 / 7) - 50 ** (1 / 7)) / 10
    assert torch.allclose(torch.diff(s ** (1 / 7)), torch.full((10,), step, dtype=F64))


@pytest.mark.parametrize("sde", SDES, ids=repr)
def test_time_grid_puts_sigma_bar_on_the_karras_levels(sde):
    ts = S.time_grid(sde, 12)
    assert ts[0] == 1.0 and ts[-1] == sde.t_min and (torch.diff(ts) < 0).all()
    sb = S.sigma_bar(sde, ts)
    want = S.karras_sigmas(12, sb[-1].item(), sb[0].item())
    assert torch.allclose(sb, want, rtol=1e-10)
    if isinstance(sde, VESDE):  # independent inverse: t = log(σ/σ_min)/log(σ_max/σ_min)
        assert torch.allclose(ts, sde.t_from_sigma(want), atol=1e-12)
    else:                       # σ̄² = e^{B(t)} − 1, B quadratic in t
        B = torch.log1p(want**2)
        a, b = 0.5 * (sde.beta_max - sde.beta_min), sde.beta_min
        assert torch.allclose(ts[1:-1], ((-b + (b * b + 4 * a * B).sqrt()) / (2 * a))[1:-1], atol=1e-12)


@pytest.mark.parametrize("sde", SDES, ids=repr)
def test_denoiser_is_the_posterior_mean_for_gaussian_data(sde):
    # data N(μ, v I): x_t ~ N(αμ, (α²v + σ²) I) and E[x₀ | x_t] = μ + α v (x − αμ)/(α²v + σ²)
    mu, v = torch.tensor([[1.5, -2.0]], dtype=F64), 0.7
    gauss = GaussianMixture(mu, math.sqrt(v))
    x, t = torch.randn(50, 2, generator=gen(0), dtype=F64) * 3, torch.full((50,), 0.4, dtype=F64)
    a, s = (c.item() for c in sde.marginal(0.4))
    got = S.denoiser_from_score(mixture_score_fn(gauss, sde), sde)(x, t)
    assert torch.allclose(got, mu + a * v * (x - a * mu) / (a**2 * v + s**2), atol=1e-12)


@pytest.mark.parametrize("sde", SDES, ids=repr)
def test_ddim_step_is_the_exponential_integrator_and_euler_in_scaled_variables(sde):
    mix = ncsn_mixture(dtype=F64)
    score = mixture_score_fn(mix, sde)
    D = S.denoiser_from_score(score, sde)
    x = marginal_mixture(mix, sde, 0.6).sample(64, gen(1))
    t, s = 0.6, 0.45
    x_ddim = S.ddim(D, sde, x, [t, s]).x
    (a_t, s_t), (a_s, s_s) = (tuple(c.item() for c in sde.marginal(u)) for u in (t, s))
    eps = (x - a_t * D(x, torch.full((64,), t, dtype=F64))) / s_t
    assert torch.allclose(x_ddim, S.exponential_euler_step(x, eps, sde, t, s), atol=1e-10)
    euler_bar = x / a_t + (s_s / a_s - s_t / a_t) * eps          # Euler on dx̄/dσ̄ = ε̂
    assert torch.allclose(x_ddim, a_s * euler_bar, atol=1e-10)
    if isinstance(sde, VESDE):                                    # α = 1: Euler in σ on dx/dσ = −σ s
        assert torch.allclose(x_ddim, x + (s_s - s_t) * (-s_t) * score(x, torch.full((64,), t, dtype=F64)))


@pytest.fixture(scope="module")
def endpoint_errors():
    """Median endpoint error against a DOP853 solve at tolerance 1e-10, from the same exact x_T ~ p_1."""
    mix, out = ncsn_mixture(dtype=F64), {}
    calls = [32, 64, 128, 256]
    for sde in SDES:
        score = mixture_score_fn(mix, sde)
        x1 = marginal_mixture(mix, sde, 1.0).sample(300, gen(2))
        ref = probability_flow(score, sde, x1, rtol=1e-10, atol=1e-10, method="DOP853").x
        for name, (kind, _, order) in S.SOLVERS.items():
            if kind == "ode":
                errs = [(S.run_solver(name, score, sde, x1, n).x - ref).norm(dim=1).median().item()
                        for n in calls]
                out[repr(sde), name] = (calls, errs, order)
    return out


@pytest.mark.parametrize("sde", SDES, ids=repr)
@pytest.mark.parametrize("name", [n for n, v in S.SOLVERS.items() if v[0] == "ode"])
def test_measured_order_matches_theory(endpoint_errors, sde, name):
    calls, errs, order = endpoint_errors[repr(sde), name]
    p, se = S.convergence_order(calls, errs)
    # From 32 to 256 calls the error is discretisation error (the reference is 1e-10, ≥ 10⁴× smaller) and
    # near its asymptote C·N^{−p}: the next term, O(N^{−p−1}), is ≤ 15 % of the first at 32 calls, which
    # bends the log–log line by at most log(1.15)/log(8) ≈ 0.07 over the range. The median over 300 starts
    # (robust to the few starts next to the watershed between the modes) makes the fit's own scatter small
    # (se ≈ 0.01–0.03 measured). Band: 0.2 = the curvature bound (0.07), 4 se (≤ 0.12), and a margin.
    assert se < 0.05, (name, p, se, errs)
    assert abs(p - order) < 0.2, (name, p, se, errs)


@pytest.mark.parametrize("sde", SDES, ids=repr)
def test_second_order_solvers_beat_first_order_at_equal_calls(endpoint_errors, sde):
    at = lambda name: endpoint_errors[repr(sde), name][1][-1]   # 256 calls
    assert max(at("Heun (Karras)"), at("DPM-Solver++(2M)")) < 0.2 * min(at("DDIM"), at("Euler (ODE in t)"))


@pytest.mark.parametrize("sde", SDES, ids=repr)
@pytest.mark.parametrize("name", ["DDPM ancestral", "Euler–Maruyama"])
def test_stochastic_samplers_reach_the_target_law(sde, name):
    mix = ncsn_mixture(dtype=F64)
    n = 3000
    x1 = marginal_mixture(mix, sde, 1.0).sample(n, gen(3))
    x = S.run_solver(name, mixture_score_fn(mix, sde), sde, x1, 200, generator=gen(4)).x
    exact = marginal_mixture(mix, sde, sde.t_min)
    share = mode_fractions(x, mix).fractions[0].item()
    # binomial se 0.0073; weak error O(1/N) with N = 200: 3 se + 0.01
    assert abs(share - 0.2) < 3 * math.sqrt(0.16 / n) + 0.01
    floor = sliced_wasserstein(exact.sample(n, gen(5)), exact.sample(n, gen(6)), generator=gen(7))
    assert sliced_wasserstein(x, exact.sample(n, gen(8)), generator=gen(7)) < 2.5 * floor


def test_ancestral_step_is_ddpm_posterior_for_vp():
    # one step of the ancestral sampler with noise z: μ̃ = (√ᾱ_{s} β/(1−ᾱ_t)) x̂₀ + (√(1−β)(1−ᾱ_s)/(1−ᾱ_t)) x_t
    sde, mix = VPSDE(), ncsn_mixture(dtype=F64)
    score = mixture_score_fn(mix, sde)
    x = marginal_mixture(mix, sde, 0.5).sample(20, gen(9))
    t, s = 0.5, 0.48
    out = S.ddpm_ancestral(score, sde, x, [t, s], generator=gen(10)).x
    (a_t, _), (a_s, _) = (tuple(c.item() for c in sde.marginal(u)) for u in (t, s))
    abar_t, abar_s = a_t**2, a_s**2
    beta = 1 - abar_t / abar_s
    x0 = S.denoiser_from_score(score, sde)(x, torch.full((20,), t, dtype=F64))
    mean = (math.sqrt(abar_s) * beta / (1 - abar_t) * x0
            + math.sqrt(1 - beta) * (1 - abar_s) / (1 - abar_t) * x)
    var = (1 - abar_s) / (1 - abar_t) * beta
    z = torch.randn(x.shape, generator=gen(10), dtype=F64)
    assert torch.allclose(out, mean + math.sqrt(var) * z, atol=1e-12)


def test_convergence_order_of_an_exact_power_law():
    p, se = S.convergence_order([10, 20, 40, 80], [3 * n**-1.7 for n in (10, 20, 40, 80)])
    assert p == pytest.approx(1.7) and se < 1e-10
    with pytest.raises(ValueError):
        S.convergence_order([1, 2], [1.0, 0.5])


def test_solvers_reject_a_bad_grid():
    with pytest.raises(ValueError, match="decreasing"):
        S.euler(lambda x, t: x, torch.zeros(3, 2), [0.5, 0.7])
    with pytest.raises(ValueError, match="schedule"):
        S.time_grid(VPSDE(), 5, "cosine")
