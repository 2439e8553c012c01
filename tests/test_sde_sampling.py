"""Reverse-SDE, predictor–corrector and probability-flow samplers (scoretutor.sampling, SDE block)."""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.diffusion.samplers import (
    SDEDivergenceError,
    predictor_corrector,
    probability_flow,
    reverse_sde,
)
from scoretutor.diffusion.sde import VESDE, VPSDE, marginal_mixture, mixture_score_fn
from scoretutor.metrics import mode_fractions
from scoretutor.sampling import langevin

F64 = torch.float64
N, STEPS = 4000, 200
SE = math.sqrt(0.2 * 0.8 / N)  # binomial standard error of the (−5,−5) share, 0.0063
# Weak (distributional) error of Euler–Maruyama / reverse diffusion is O(Δt): with 20 000 samples the
# share's bias was 0.014/0.006/0.005 (reverse SDE) and 0.022/0.012/0.007 (PC) at 50/100/200 steps,
# i.e. ≈ 1.2/n_steps; we allow 2/n_steps on top of 3 standard errors.
STEP_BIAS = 2.0 / STEPS


@pytest.fixture(scope="module")
def exact():
    """The NCSN mixture on the VE SDE (σ_max = 50) with its exact score and exact prior sample."""
    mix = ncsn_mixture(dtype=F64)
    sde = VESDE(0.01, 50.0)
    x_T = marginal_mixture(mix, sde, 1.0).sample(N, torch.Generator().manual_seed(0))
    return mix, sde, mixture_score_fn(mix, sde), x_T


def _share(x, mix) -> float:
    return mode_fractions(x, mix).fractions[0].item()


@pytest.mark.slow
def test_stochastic_samplers_recover_the_mode_weight(exact):
    mix, sde, score_fn, x_T = exact
    out = reverse_sde(score_fn, sde, x_T, STEPS, generator=torch.Generator().manual_seed(1))
    assert out.n_score_evals == STEPS
    assert abs(_share(out.x, mix) - 0.2) < 3 * SE + STEP_BIAS
    out = predictor_corrector(score_fn, sde, x_T, STEPS, generator=torch.Generator().manual_seed(2))
    assert out.n_score_evals == 2 * STEPS
    assert abs(_share(out.x, mix) - 0.2) < 3 * SE + STEP_BIAS


def test_probability_flow_recovers_the_mode_weight_with_the_exact_prior(exact):
    mix, sde, score_fn, x_T = exact
    out = probability_flow(score_fn, sde, x_T, rtol=1e-5, atol=1e-5)
    # deterministic map of an exact prior sample: only Monte Carlo error (solver error at 1e-5 moves a
    # point across the decision line x₁ + x₂ = 0 with negligible probability)
    assert abs(_share(out.x, mix) - 0.2) < 3 * SE
    assert 20 < out.n_score_evals < 1000


def test_probability_flow_from_the_gaussian_prior_overweights_the_far_mode(exact):
    # N(0, σ_max² I) ignores the data mean (3, 3): with σ_max = 20 the ODE sends too many points to (−5,−5)
    mix, _, _, _ = exact
    sde = VESDE(0.01, 20.0)
    x_T = sde.prior_sample((N, 2), torch.Generator().manual_seed(3), dtype=F64)
    out = probability_flow(mixture_score_fn(mix, sde), sde, x_T, rtol=1e-4, atol=1e-4)
    assert _share(out.x, mix) > 0.2 + 4 * SE


def test_plain_langevin_still_misses_the_mode_weight():
    mix = ncsn_mixture(dtype=F64)
    x0 = torch.rand(N // 2, 2, generator=torch.Generator().manual_seed(4), dtype=F64) * 16 - 8
    x = langevin(mix.score, x0, 0.1, 200, generator=torch.Generator().manual_seed(5)).x
    assert abs(_share(x, mix) - 0.2) > 10 * math.sqrt(0.16 / (N // 2))  # stays near the starting split ≈ 0.5


def test_reverse_sde_on_the_vp_sde():
    mix = ncsn_mixture(dtype=F64)
    sde = VPSDE()
    x_T = sde.prior_sample((2000, 2), torch.Generator().manual_seed(6), dtype=F64)
    out = reverse_sde(mixture_score_fn(mix, sde), sde, x_T, 300, generator=torch.Generator().manual_seed(7))
    # N(0, I) is the VP marginal at t = 1 up to α_1 = 0.0066 (mean 0.02): 3 se + 2/n_steps
    assert abs(_share(out.x, mix) - 0.2) < 3 * math.sqrt(0.16 / 2000) + 2 / 300


# -- conventions -----------------------------------------------------------------------------------
def _gaussian_image_score(sde):
    p = GaussianMixture(torch.zeros(1, 4, dtype=F64), 1.0)
    return mixture_score_fn(p, sde)


@pytest.mark.parametrize("sampler", ["reverse_sde", "predictor_corrector", "probability_flow"])
def test_any_shape_trajectory_and_reproducibility(sampler):
    sde = VESDE(0.01, 10.0)
    score_fn = _gaussian_image_score(sde)
    x_T = sde.prior_sample((8, 1, 2, 2), torch.Generator().manual_seed(8), dtype=F64)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        if sampler == "reverse_sde":
            return reverse_sde(score_fn, sde, x_T, 10, generator=g, return_trajectory=True,
                               trajectory_every=5)
        if sampler == "predictor_corrector":
            return predictor_corrector(score_fn, sde, x_T, 10, n_corrector=2, generator=g,
                                       return_trajectory=True, trajectory_every=5)
        return probability_flow(score_fn, sde, x_T, return_trajectory=True)

    a, b = run(0), run(0)
    assert a.x.shape == x_T.shape and a.x.dtype == F64 and a.x.device == x_T.device
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    assert a.trajectory.shape[1:] == x_T.shape
    torch.testing.assert_close(a.trajectory[0], x_T)
    torch.testing.assert_close(a.trajectory[-1], a.x)
    if sampler != "probability_flow":
        assert a.trajectory.shape[0] == 3  # x_T, step 5, step 10
        assert not torch.equal(run(1).x, a.x)
        assert a.n_score_evals == (10 if sampler == "reverse_sde" else 30)
    assert reverse_sde(score_fn, sde, x_T, 3).trajectory is None


def test_divergence_guard_names_the_step():
    sde = VESDE(0.01, 10.0)
    bad = lambda x, t: torch.where(t[:, None] < 0.5, torch.full_like(x, math.inf), -x)
    x_T = sde.prior_sample((4, 2), torch.Generator().manual_seed(9))
    with pytest.raises(SDEDivergenceError, match="reverse_sde.*step 7 of 10") as err:
        reverse_sde(bad, sde, x_T, 10)
    assert err.value.step == 7 and err.value.step_size == pytest.approx(0.1)  # t_6 = 0.4 < 0.5: 7th step
    with pytest.raises(SDEDivergenceError, match="predictor_corrector"):
        predictor_corrector(bad, sde, x_T, 10)
    with pytest.raises(SDEDivergenceError, match="probability_flow"):
        probability_flow(bad, sde, x_T)


def test_bad_inputs():
    sde = VESDE(0.01, 10.0)
    score_fn = lambda x, t: -x
    x_T = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got 0"):
        reverse_sde(score_fn, sde, x_T, 0)
    with pytest.raises(ValueError, match="snr must be a positive finite number, got -0.1"):
        predictor_corrector(score_fn, sde, x_T, 5, snr=-0.1)
    with pytest.raises(ValueError, match="rtol"):
        probability_flow(score_fn, sde, x_T, rtol=0)
    with pytest.raises(ValueError, match="tensor shaped like x"):
        reverse_sde(lambda x, t: x[:, :1], sde, x_T, 5)
    with pytest.raises(ValueError):
        reverse_sde(score_fn, sde, [[0.0, 0.0]], 5)
