"""Data on a curve (densities.UniformCircle, NoisyCircle): p_σ's closed form against quadrature over
the angle, autograd and finite differences, and the σ → 0 limit −σ²∇log p_σ(x) → x − proj(x)."""

import math

import pytest
import torch

from scoretutor.densities import NoisyCircle, UniformCircle
from scoretutor.losses import implicit_score_matching

F64 = torch.float64


def quadrature(x: torch.Tensor, radius: float, sigma: float, m: int = 4000):
    """log p_σ and ∇log p_σ by the trapezoid rule over θ: p_σ(x) = (2π)⁻¹∫N(x; R u(θ), σ²I) dθ.

    The integrand is smooth and 2π-periodic, so the rule converges geometrically: with θ spacing
    2π/m ≪ σ/R the error is at round-off level. The score is the posterior mean of −(x − Ru)/σ²."""
    theta = torch.arange(m, dtype=F64) * (2 * math.pi / m)
    u = radius * torch.stack([theta.cos(), theta.sin()], -1)  # (m, 2)
    log_k = -((x[:, None] - u) ** 2).sum(-1) / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)
    log_p = torch.logsumexp(log_k, dim=1) - math.log(m)
    w = torch.softmax(log_k, dim=1)
    score = -(w[..., None] * (x[:, None] - u)).sum(1) / sigma**2
    return log_p, score


def points(n: int = 200, seed: int = 0) -> torch.Tensor:
    return 2.5 * (2 * torch.rand(n, 2, generator=torch.Generator().manual_seed(seed), dtype=F64) - 1)


@pytest.mark.parametrize("radius, sigma", [(1.0, 0.05), (1.0, 0.3), (2.0, 1.0), (0.5, 3.0)])
def test_closed_form_matches_quadrature_over_the_angle(radius, sigma):
    x = points()
    p = NoisyCircle(radius, sigma)
    log_p, score = quadrature(x, radius, sigma)
    torch.testing.assert_close(p.log_prob(x), log_p, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(p.score(x), score, rtol=1e-8, atol=1e-8 / sigma**2)


@pytest.mark.parametrize("sigma", [0.05, 0.3, 2.0])
def test_score_matches_autograd_and_finite_differences(sigma):
    x = points(seed=1)
    p = NoisyCircle(1.0, sigma)
    xr = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(p.log_prob(xr).sum(), xr)
    torch.testing.assert_close(p.score(x), auto, rtol=1e-9, atol=1e-9)
    # central differences: error h²/6·|∂³log p| with |∂³log p| ≲ 1/σ⁴ near the circle
    h = 1e-4 * sigma
    fd = torch.stack([(p.log_prob(x + h * e) - p.log_prob(x - h * e)) / (2 * h)
                      for e in torch.eye(2, dtype=F64)], -1)
    torch.testing.assert_close(p.score(x), fd, rtol=1e-6, atol=1e-6 / sigma**2)


def test_score_at_and_near_the_centre_is_finite():
    p = NoisyCircle(1.0, 0.1)
    assert torch.equal(p.score(torch.zeros(1, 2, dtype=F64)), torch.zeros(1, 2, dtype=F64))
    # A(κ)/κ → ½ as κ → 0: s(x) ≈ (R²/(2σ²) − 1)·x/σ² near the centre
    x = torch.tensor([[1e-9, -2e-9]], dtype=F64)
    torch.testing.assert_close(p.score(x), (1 / (2 * 0.01) - 1) * x / 0.01)


def test_density_integrates_to_one():
    # Riemann sum on a grid of spacing σ/5 (spectrally accurate for a Gaussian-smoothed density); the
    # box reaches 12σ beyond the circle.
    p = NoisyCircle(1.0, 0.2)
    xs = torch.linspace(-3.4, 3.4, 171, dtype=F64)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    h = (xs[1] - xs[0]).item()
    total = p.prob(torch.stack([X.reshape(-1), Y.reshape(-1)], -1)).sum().item() * h * h
    assert abs(total - 1) < 1e-8


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_small_sigma_score_points_to_the_curve_with_magnitude_distance_over_sigma_squared(sigma):
    circle = UniformCircle(1.5)
    g = torch.Generator().manual_seed(2)
    theta = 2 * math.pi * torch.rand(300, generator=g, dtype=F64)
    r = 1.5 + 4 * sigma * (2 * torch.rand(300, generator=g, dtype=F64) - 1)  # within 4σ of the circle
    x = r[:, None] * torch.stack([theta.cos(), theta.sin()], -1)
    residual = -sigma**2 * circle.perturb(sigma).score(x) - (x - circle.project(x))
    # I₁/I₀(κ) = 1 − 1/(2κ) + O(κ⁻²) makes the residual σ²/(2r)·x̂ + O(σ⁴): check both the size and the term
    torch.testing.assert_close(residual, sigma**2 / (2 * r[:, None] ** 2) * x, rtol=0.05, atol=1e-12)
    assert residual.norm(dim=-1).max() < 1.05 * sigma**2 / (2 * (1.5 - 4 * sigma))  # O(σ²) → 0


def test_samples_have_the_right_radii_and_the_noise_scale():
    g = torch.Generator().manual_seed(3)
    on = UniformCircle(2.0).sample(1000, generator=g, dtype=F64)
    torch.testing.assert_close(on.norm(dim=-1), torch.full((1000,), 2.0, dtype=F64))
    noisy = NoisyCircle(2.0, 0.05).sample(20000, generator=g, dtype=F64)
    # the radial offset is ≈ N(σ²/(2R), σ²) for σ ≪ R; sample sd within 4 standard errors (√(1/(2n)) relative)
    sd = (noisy.norm(dim=-1) - 2.0).std().item()
    assert abs(sd / 0.05 - 1) < 4 * math.sqrt(1 / 40000) + 1e-3


def test_score_matching_on_the_curve_has_no_minimiser_and_noise_gives_one_at_one_over_sigma_squared():
    # The field s_c(x) = −c(x − proj(x)) pulls towards the circle. Its divergence is −c(2r − R)/r and it
    # vanishes on the circle, so on data on the circle the score-matching objective E[tr ∇s + ½‖s‖²] is −c
    # (autograd computes it here, independently of that formula): unbounded below, no minimiser.
    circle = UniformCircle(1.0)
    g = torch.Generator().manual_seed(4)
    pull = lambda c: lambda x: -c * (x - circle.project(x))
    on = circle.sample(500, generator=g, dtype=F64)
    for c in (1.0, 10.0, 1000.0):
        assert implicit_score_matching(pull(c), on).item() == pytest.approx(-c, rel=1e-10)
    # On p_σ the objective is quadratic in c, E[−c(2r − R)/r] + ½c²E[(r − R)²], minimised near c = 1/σ².
    for sigma in (0.05, 0.2):
        x = NoisyCircle(1.0, sigma).sample(20000, generator=g, dtype=F64)
        j1, j2 = (implicit_score_matching(pull(c), x).item() for c in (1.0, 2.0))
        b = j2 - 2 * j1  # J(c) = −a·c + ½b·c², from J(1) and J(2)
        a = b / 2 - j1
        assert a / b * sigma**2 == pytest.approx(1.0, abs=0.05)


def test_noise_conditional_score_and_checks():
    circle = UniformCircle(1.0)
    x = points(5)
    torch.testing.assert_close(circle.noise_conditional_score()(x, 0.3), NoisyCircle(1.0, 0.3).score(x))
    with pytest.raises(ValueError):
        NoisyCircle(1.0, 0.0)
    with pytest.raises(ValueError):
        UniformCircle(-1.0)
    with pytest.raises(ValueError):
        NoisyCircle(1.0, 0.1).score(torch.zeros(3))
