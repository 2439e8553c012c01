"""Notebook 01's formulas: brute-force Z, the score without Z, change of variables."""

import math

import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.ebm import grid_log_partition, grid_points_log10, score_from_energy
from scoretutor.flows import BananaFlow
from scoretutor.lecture.exercises.energy import check_score, mexican_hat_energy


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_grid_log_partition_of_a_gaussian_energy(dim):
    # f(x) = ‖x‖²/(2s²) has Z = (2π s²)^{d/2}. Midpoint rule with h = 0.2 ≪ s = 1.5 is spectrally
    # accurate (error ~ e^{-2π²s²/h²}); the box ±10 cuts mass e^{-22}: 1e-8 is safe.
    s = 1.5
    logz = grid_log_partition(lambda x: (x**2).sum(-1) / (2 * s**2), dim=dim, lim=10.0, n_per_axis=100)
    assert logz == pytest.approx(0.5 * dim * math.log(2 * math.pi * s**2), abs=1e-8)


def test_grid_log_partition_of_the_mixture_energy_is_log_2pi():
    mix = ncsn_mixture(dtype=torch.float64)
    logz = grid_log_partition(mix.energy, dim=2, lim=14.0, n_per_axis=400)
    assert logz == pytest.approx(mix.log_normaliser(), abs=1e-8)
    assert mix.log_normaliser() == pytest.approx(math.log(2 * math.pi))


def test_grid_cost_grows_exponentially_and_refuses_absurd_grids():
    assert grid_points_log10(784, 100) == pytest.approx(1568)
    assert 10 ** grid_points_log10(3, 10) == pytest.approx(1000)
    with pytest.raises(ValueError, match="intractable"):
        grid_log_partition(lambda x: (x**2).sum(-1), dim=10, n_per_axis=100)
    with pytest.raises(ValueError, match="dim >= 1"):
        grid_points_log10(0)


def test_score_from_energy_ignores_constants_and_matches_closed_form():
    mix = ncsn_mixture(dtype=torch.float64)
    x = 6 * torch.randn(100, 2, dtype=torch.float64)
    s1 = score_from_energy(mix.energy)(x)
    s2 = score_from_energy(lambda y: mix.energy(y) + 123.4)(x)  # log Z shifts, score does not
    torch.testing.assert_close(s1, s2)
    torch.testing.assert_close(s1, mix.score(x))
    with torch.no_grad():  # usable inside no_grad (as samplers call it)
        torch.testing.assert_close(score_from_energy(mix.energy)(x), s1)


def test_banana_flow_log_det_matches_autograd_jacobian():
    flow = BananaFlow()
    x = torch.randn(20, 2, dtype=torch.float64) * 2
    _, log_det = flow.forward(x)
    for i in range(len(x)):
        J = torch.autograd.functional.jacobian(lambda v: flow.forward(v[None])[0][0], x[i])
        assert log_det[i].item() == pytest.approx(torch.linalg.det(J).abs().log().item(), abs=1e-10)
    torch.testing.assert_close(flow.inverse(flow.forward(x)[0]), x)


def test_banana_flow_density_integrates_to_one_and_matches_samples():
    flow = BananaFlow()
    n, lo, hi = 700, -12.0, 12.0
    h = (hi - lo) / n
    xs = lo + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], -1)
    # x₂ spreads up to ~b·x₁² + 3·e^{c}: the box holds all but ~1e-5 of the mass; midpoint error is
    # O(h²·curvature) ≈ 1e-4 for h ≈ 0.034.
    assert flow.log_prob(pts).exp().sum().item() * h * h == pytest.approx(1.0, abs=2e-3)
    # The fraction of samples in a box equals the integral of p over it (4 binomial std errors).
    x = flow.sample(40_000, generator=torch.Generator().manual_seed(0)).double()
    inside = ((x[:, 0] > 0) & (x[:, 1] > 0)).double().mean().item()
    mask = (pts[:, 0] > 0) & (pts[:, 1] > 0)
    integral = flow.log_prob(pts[mask]).exp().sum().item() * h * h
    assert abs(inside - integral) < 4 * math.sqrt(integral * (1 - integral) / 40_000) + 2e-3


def test_exercise_checker(capsys):
    def right(x):
        r2 = (x**2).sum(-1, keepdim=True)
        return -(r2 - 4.0) * x

    def wrong_sign(x):
        return -right(x)

    def not_done(x):
        raise NotImplementedError

    assert check_score(right, mexican_hat_energy)
    assert not check_score(wrong_sign)
    assert "sign" in capsys.readouterr().out
    assert not check_score(not_done)
    assert not check_score(lambda x: x[:, 0])


def test_grad_log_partition_is_minus_model_expectation_of_grad_energy():
    # f_θ = θ·f with f the mixture energy: ∂θ log Z_θ = −E_{p_θ}[f]. At θ = 1 (p_1 = p, which we can
    # sample) a central difference of brute-force log Z (error O(h²) ~ 1e-7) must match a Monte Carlo
    # mean within 4 standard errors.
    mix = ncsn_mixture(dtype=torch.float64)
    h = 1e-3
    logz = lambda t: grid_log_partition(lambda x: t * mix.energy(x), dim=2, lim=14.0, n_per_axis=400)
    fd = (logz(1 + h) - logz(1 - h)) / (2 * h)
    f = mix.energy(mix.sample(50_000, generator=torch.Generator().manual_seed(0)))
    assert abs(fd + f.mean().item()) < 4 * f.std().item() / math.sqrt(len(f))
    # In 2D, E_p[f] = 1 + E_p[-log Σ_k w_k e^{-‖x-μ_k‖²/2}] ≈ 1 + H(w) (the modes barely overlap):
    # so the value itself is known too — a check that the test is not comparing two wrong numbers.
    entropy = -(mix.weights * mix.weights.log()).sum().item()
    assert fd == pytest.approx(-(1 + entropy), abs=1e-3)


def test_banana_flow_validation():
    with pytest.raises(ValueError, match="-1"):
        BananaFlow(a=-1.0)
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        BananaFlow().log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"n must be an integer >= 0, got 2.5"):
        BananaFlow().sample(2.5)
