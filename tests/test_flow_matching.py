"""Flow matching on the linear path (scoretutor.diffusion.flow_matching): the closed-form marginal velocity,
its relation to the score, the loss, a short training and the exact log-likelihood."""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.diffusion import flow_matching as F
from scoretutor.diffusion import solvers as S
from scoretutor.diffusion.likelihood import log_likelihood
from scoretutor.diffusion.sde import marginal_mixture, mixture_score_fn

F64 = torch.float64
gen = lambda s: torch.Generator().manual_seed(s)
# an anisotropic two-component mixture, so that Σ_k ≠ I is exercised
MIX = GaussianMixture(torch.tensor([[-2.0, 1.0], [3.0, 0.5]], dtype=F64),
                      torch.tensor([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 1.5]]], dtype=F64),
                      torch.tensor([0.3, 0.7], dtype=F64))


@pytest.mark.parametrize("t", [0.05, 0.3, 0.7, 0.99])
def test_velocity_is_a_x_plus_b_score(t):
    x, tt = torch.randn(100, 2, generator=gen(0), dtype=F64) * 3, torch.full((100,), t, dtype=F64)
    v = F.mixture_velocity_fn(MIX)(x, tt)
    via_score = F.velocity_from_score(mixture_score_fn(MIX, F.LinearPath()))(x, tt)
    assert torch.allclose(v, via_score, atol=1e-10)
    assert torch.allclose(F.score_from_velocity(F.mixture_velocity_fn(MIX))(x, tt),
                          mixture_score_fn(MIX, F.LinearPath())(x, tt), atol=1e-9)
    # and the linear path's probability-flow ODE, f − ½ g² s, is the same field
    assert torch.allclose(v, F.LinearPath().ode_drift(x, tt, mixture_score_fn(MIX, F.LinearPath())(x, tt)),
                          atol=1e-10)


def test_velocity_at_the_ends():
    x = torch.randn(50, 2, generator=gen(1), dtype=F64)
    v = F.mixture_velocity_fn(MIX)
    mean = (MIX.weights[:, None] * MIX.means).sum(0)
    assert torch.allclose(v(x, torch.ones(50, dtype=F64)), x - mean, atol=1e-12)   # x₁ = z ⟂ x₀
    assert torch.allclose(v(x, torch.zeros(50, dtype=F64)), -x, atol=1e-12)        # E[z | x₀] = 0


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_velocity_solves_the_continuity_equation(t):
    # ∂_t log p_t + ∇·v + v·∇log p_t = 0, with ∂_t by central differences and ∇· by autograd
    x = marginal_mixture(MIX, F.LinearPath(), t).sample(40, gen(2)).requires_grad_(True)
    v = F.mixture_velocity_fn(MIX)
    h = 1e-5
    logp = lambda s, y: marginal_mixture(MIX, F.LinearPath(), s).log_prob(y)
    dt_logp = (logp(t + h, x) - logp(t - h, x)) / (2 * h)
    vx = v(x, torch.full((40,), t, dtype=F64))
    div = sum(torch.autograd.grad(vx[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2))
    score = torch.autograd.grad(logp(t, x).sum(), x)[0]
    residual = dt_logp + div + (vx * score).sum(-1)
    assert residual.abs().max().item() < 1e-6   # central differences: O(h²) ≈ 1e-10, rounding ≈ 1e-11/h


def test_velocity_is_the_conditional_mean_of_z_minus_x0_by_monte_carlo():
    # E[z − x₀ | x_t = x] with x₀ ~ p by self-normalised importance sampling, weights N(x; (1 − t)x₀, t² I)
    t, m = 0.6, 400_000
    x = torch.tensor([[0.5, 0.8], [-1.0, 0.2], [1.5, 0.6]], dtype=F64)
    x0 = MIX.sample(m, gen(3))
    logw = -((x[:, None, :] - (1 - t) * x0) ** 2).sum(-1) / (2 * t**2)           # (3, m)
    w = torch.softmax(logw, -1)
    z = (x[:, None, :] - (1 - t) * x0) / t
    u = z - x0
    mc = (w[..., None] * u).sum(1)
    ess = 1 / (w**2).sum(-1)
    se = ((w[..., None] * (u - mc[:, None]) ** 2).sum(1) / ess[:, None]).sqrt()
    want = F.mixture_velocity_fn(MIX)(x, torch.full((3,), t, dtype=F64))
    assert ((mc - want).abs() < 5 * se + 1e-3).all(), (mc, want, se, ess)


def test_excess_loss_is_the_field_error():
    # L(v) − L(v*) = ½ E_t E_{x_t} ‖v − v*‖² for any v: check with common random numbers, within 4 se
    torch.manual_seed(0)
    model = F.VelocityMLP(hidden=32, n_layers=2).double()
    vstar = F.mixture_velocity_fn(MIX)
    n = 200_000
    x0 = MIX.sample(n, gen(4))
    g = gen(5)
    t = torch.rand(n, generator=g, dtype=F64)
    z = torch.randn(n, 2, generator=g, dtype=F64)
    xt = (1 - t[:, None]) * x0 + t[:, None] * z
    with torch.no_grad():
        vm, vs = model(xt, t), vstar(xt, t)
    per = 0.5 * ((vm - (z - x0)) ** 2).sum(-1) - 0.5 * ((vs - (z - x0)) ** 2).sum(-1)
    err = 0.5 * ((vm - vs) ** 2).sum(-1)
    diff = per - err
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(n)
    # and flow_matching_loss is that loss: with the same draws (t, then z), the same value
    g = gen(6)
    t6, z6 = torch.rand(1000, generator=g, dtype=F64), torch.randn(1000, 2, generator=g, dtype=F64)
    xt6 = (1 - t6[:, None]) * x0[:1000] + t6[:, None] * z6
    want = 0.5 * ((model(xt6, t6) - (z6 - x0[:1000])) ** 2).sum(-1).mean()
    assert F.flow_matching_loss(model, x0[:1000], gen(6)).item() == pytest.approx(want.item(), rel=1e-12)


def test_short_training_learns_the_marginal_velocity():
    data = MIX.to(dtype=torch.float32)
    model, hist = F.train_velocity_model(data.sample, "test-mix", n_steps=800, hidden=64, n_layers=2,
                                         cache=False, progress=False, device="cpu")
    t = torch.rand(4000, generator=gen(7)) * 0.98 + 0.01
    x0, z = data.sample(4000, gen(8)), torch.randn(4000, 2, generator=gen(9))
    xt = (1 - t[:, None]) * x0 + t[:, None] * z
    with torch.no_grad():
        err = (model(xt, t) - F.mixture_velocity_fn(MIX)(xt, t)).pow(2).sum(-1).mean()
    scale = F.mixture_velocity_fn(MIX)(xt, t).pow(2).sum(-1).mean()
    # an untrained net has relative error ≈ 1; 800 steps reach ≈ 0.02 (measured); 0.1 leaves room for seeds
    assert (err / scale).item() < 0.1, (err / scale).item()


def test_exact_velocity_gives_the_exact_log_likelihood():
    x = MIX.sample(30, gen(10))
    ll = log_likelihood(F.mixture_velocity_fn(MIX), F.VelocityODE(), x, rtol=1e-8, atol=1e-8)
    assert (ll - MIX.log_prob(x)).abs().max().item() < 1e-4


def test_ddim_on_the_linear_path_is_euler_in_t():
    v = F.mixture_velocity_fn(MIX)
    z = torch.randn(100, 2, generator=gen(11), dtype=F64)
    ts = torch.linspace(1, 0, 9, dtype=F64)
    a = S.ddim(F.denoiser_from_velocity(v), F.LinearPath(), z, ts).x
    assert torch.allclose(a, S.euler(v, z, ts).x, atol=1e-10)


def test_straightness():
    line = torch.linspace(0, 1, 11)[:, None, None] * torch.tensor([[3.0, 4.0]])
    corner = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[1.0, 1.0]]])
    assert F.straightness(line).item() == pytest.approx(1.0)
    assert F.straightness(corner).item() == pytest.approx(1 / math.sqrt(2))


def test_ncsn_mixture_flow_samples_land_on_the_weights():
    mix = ncsn_mixture(dtype=F64)
    z = torch.randn(4000, 2, generator=gen(12), dtype=F64)
    x = S.heun_t(F.mixture_velocity_fn(mix), z, torch.linspace(1, 0, 33, dtype=F64)).x
    share = (x.sum(1) < 0).double().mean().item()
    assert abs(share - 0.2) < 4 * math.sqrt(0.16 / 4000)
