"""Score-matching losses against closed forms, autograd Jacobians and Monte Carlo.

Closed forms used throughout: data x ∼ N(m, c I) in d dimensions and the linear score model
s(x) = −(x − μ)/v (the score of N(μ, v I)). With Δ = m − μ:

    Fisher = ½ [ d (1/√c − √c/v)² + ‖Δ‖²/v² ]
    ISM    = −d/v + (d c + ‖Δ‖²) / (2 v²)
    Fisher − ISM = d / (2c) = ½ E‖∇ log p‖²
    DSM_σ  = ½ [ (d c + ‖Δ‖²)/v² + d (1/σ − σ/v)² ]
    DSM_σ − Fisher(p_σ) = (d/2) (1/σ² − 1/(c + σ²))     with p_σ = N(m, (c + σ²) I)

Monte Carlo tolerances: a loss on a batch is a mean of i.i.d. per-example terms; we repeat it
on K independent batches, estimate the standard error SE = std(batch values)/√K and accept
|estimate − truth| < 5·SE (a false failure has probability < 10⁻⁵ under a normal approximation
with K ≥ 30; everything is seeded, so the tests are deterministic anyway).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.func import jacrev, vmap

from scoretutor.densities import GaussianMixture, gaussian_score, ncsn_mixture
from scoretutor.device import available_devices
from scoretutor.losses import (
    denoising_score_matching,
    divergence,
    fisher_divergence,
    implicit_score_matching,
    ncsn_loss,
    probe_like,
    sliced_score_matching,
)
from scoretutor.models import EnergyMLP, NoiseConditionalScoreMLP, ScoreMLP

DT = torch.float64
Z = 5.0  # accepted deviation in standard errors


def mc(fn, K: int = 40) -> tuple[float, float]:
    """Mean and standard error of fn(k) over k = 0..K−1 (each call uses its own seed)."""
    vals = torch.tensor([float(fn(k).detach()) for k in range(K)], dtype=DT)
    return vals.mean().item(), (vals.std() / math.sqrt(K)).item()


def gauss_data(n: int, m: torch.Tensor, c: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return m + math.sqrt(c) * torch.randn(n, m.numel(), generator=g, dtype=DT)


def closed_forms(d: int, c: float, delta2: float, v: float, sigma: float) -> dict[str, float]:
    return {
        "fisher": 0.5 * (d * (1 / math.sqrt(c) - math.sqrt(c) / v) ** 2 + delta2 / v**2),
        "ism": -d / v + (d * c + delta2) / (2 * v**2),
        "dsm": 0.5 * ((d * c + delta2) / v**2 + d * (1 / sigma - sigma / v) ** 2),
    }


M = torch.tensor([1.0, -2.0, 0.5], dtype=DT)
C = 0.7
SETTINGS = [  # (μ, v): three different linear score models
    (torch.tensor([0.0, 0.0, 0.0], dtype=DT), 1.0),
    (torch.tensor([1.0, -2.0, 0.5], dtype=DT), 0.7),
    (torch.tensor([2.0, -1.0, 0.0], dtype=DT), 2.5),
]


def small_mlp(dim: int = 2, seed: int = 0) -> ScoreMLP:
    torch.manual_seed(seed)
    return ScoreMLP(dim, hidden=32, n_layers=2).to(DT)


# -- closed forms ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mu,v", SETTINGS)
def test_fisher_ism_dsm_match_gaussian_closed_forms(mu, v):
    d, sigma = 3, 0.5
    truth = closed_forms(d, C, float(((M - mu) ** 2).sum()), v, sigma)
    s = gaussian_score(mu, v)
    p_score = gaussian_score(M, C)
    n = 2000
    est = {
        "fisher": mc(lambda k: fisher_divergence(s, p_score, gauss_data(n, M, C, k))),
        "ism": mc(lambda k: implicit_score_matching(s, gauss_data(n, M, C, k))),
        "dsm": mc(lambda k: denoising_score_matching(s, gauss_data(n, M, C, k), sigma,
                                                     generator=torch.Generator().manual_seed(1000 + k))),
    }
    for name, (mean, se) in est.items():
        assert abs(mean - truth[name]) < Z * se + 1e-12, (name, mean, se, truth[name])


def test_dsm_per_example_formula_with_shared_noise():
    """With the same generator state, DSM = ½ mean ‖s(x + σz) + z/σ‖² for z = the generator's draw."""
    x = gauss_data(64, M, C, 0)
    s = small_mlp(3)
    sigma = 0.3
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=DT)
    ref = 0.5 * ((s(x + sigma * z) + z / sigma) ** 2).sum(-1).mean()
    got = denoising_score_matching(s, x, sigma, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


# -- exact trace vs the autograd Jacobian --------------------------------------------------------
@pytest.mark.parametrize("shape", [(16, 2), (8, 5), (6, 1, 2, 2)])
def test_exact_ism_equals_full_jacobian_trace(shape):
    d = math.prod(shape[1:])
    model = small_mlp(d, seed=1)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=DT)
    flat = x.reshape(shape[0], d)
    f = lambda v: model(v[None]).reshape(-1)  # R^d -> R^d for one example
    jac = vmap(jacrev(f))(flat)  # (N, d, d)
    ref = (torch.diagonal(jac, dim1=-2, dim2=-1).sum(-1) + 0.5 * (model(flat) ** 2).sum(-1)).mean()
    torch.testing.assert_close(implicit_score_matching(model, x), ref, rtol=1e-10, atol=1e-12)


# -- the divergence helper shared by ISM, SSM and the likelihood code -----------------------------
def _jacobians(model, x):
    d = math.prod(x.shape[1:])
    f = lambda v: model(v.reshape(1, *x.shape[1:])).reshape(-1)
    return vmap(jacrev(f))(x.reshape(x.shape[0], d))  # (N, d, d)


@pytest.mark.parametrize("shape", [(5, 3), (4, 1, 2, 2)])
def test_divergence_exact_and_fixed_probe_match_the_jacobian(shape):
    model = small_mlp(math.prod(shape[1:]), seed=2)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=DT)
    jac = _jacobians(model, x)
    with torch.no_grad():  # works without gradients enabled, returns detached values
        out, div = divergence(model, x)
    assert not out.requires_grad and not div.requires_grad and div.shape == (shape[0],)
    torch.testing.assert_close(out, model(x).detach())
    torch.testing.assert_close(div, torch.diagonal(jac, dim1=-2, dim2=-1).sum(-1), rtol=1e-10, atol=1e-12)
    v = probe_like(x, "gaussian", torch.Generator().manual_seed(1))
    _, quad = divergence(model, x, "hutchinson", v=v)
    vf = v.reshape(shape[0], -1)
    torch.testing.assert_close(quad, torch.einsum("ni,nij,nj->n", vf, jac, vf), rtol=1e-10, atol=1e-12)


def test_hutchinson_over_all_sign_patterns_is_the_exact_trace():
    # E[vᵀJv] = tr J for Rademacher v because E[v_i v_j] = δ_ij; averaging over all 2^d sign patterns
    # is that expectation exactly (the off-diagonal terms cancel pairwise): equal up to rounding.
    model = small_mlp(3, seed=3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=DT)
    _, exact = divergence(model, x, "exact")
    patterns = [torch.tensor(p, dtype=DT).expand(6, 3) for p in itertools.product((-1.0, 1.0), repeat=3)]
    mean = sum(divergence(model, x, "hutchinson", v=v)[1] for v in patterns) / len(patterns)
    torch.testing.assert_close(mean, exact, rtol=1e-10, atol=1e-12)


def test_divergence_graph_trains_like_the_exact_trace():
    model = small_mlp(2, seed=4)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=DT)
    _, div = divergence(model, x, create_graph=True)
    params = list(model.parameters())  # (the last bias shifts s but not its Jacobian: zero gradient)
    got = torch.autograd.grad(div.sum(), params, allow_unused=True, materialize_grads=True)
    jac = lambda xi: torch.autograd.functional.jacobian(lambda v: model(v[None])[0], xi, create_graph=True)
    ref = torch.autograd.grad(sum(jac(xi).trace() for xi in x), params, allow_unused=True,
                              materialize_grads=True)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_probes_have_the_right_law_and_bad_arguments_are_named():
    x = torch.zeros(4000, 5, dtype=DT)
    r = probe_like(x, "rademacher", torch.Generator().manual_seed(0))
    assert r.dtype == DT and set(r.unique().tolist()) == {-1.0, 1.0}
    gauss = probe_like(x, "gaussian", torch.Generator().manual_seed(0))
    # E[v vᵀ] = I: entries of the empirical second moment have standard error ≈ √(2/n) on the
    # diagonal (Gaussian; 0 for Rademacher) and 1/√n off it; allow 5 of them.
    for v in (r, gauss):
        moment = v.T @ v / x.shape[0]
        assert (moment - torch.eye(5, dtype=DT)).abs().max() < 5 * math.sqrt(2 / x.shape[0])
    assert torch.equal(probe_like(x, "gaussian", torch.Generator().manual_seed(0)), gauss)
    model = small_mlp(2)
    y = torch.zeros(3, 2, dtype=DT)
    for kwargs, match in [({"method": "trace"}, "method must be one of"),
                          ({"probe": "uniform"}, "probe must"), ({"n_probes": 0}, "n_probes"),
                          ({"v": torch.ones(3, 3)}, "v must be a tensor shaped")]:
        with pytest.raises(ValueError, match=match):
            divergence(model, y, **kwargs)
    with pytest.raises(ValueError, match="fn must return a tensor shaped like x"):
        divergence(lambda t: t[:, :1], y)


def test_energy_model_ism_equals_minus_hessian_trace():
    """For s = −∇f: tr(∇s) = −Δf (Laplacian), computed here with an independent Hessian."""
    torch.manual_seed(0)
    energy = EnergyMLP(2, hidden=16, n_layers=2).to(DT)
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(1), dtype=DT)
    hess = vmap(torch.func.hessian(lambda v: energy(v[None])[0]))(x)
    grad = vmap(torch.func.grad(lambda v: energy(v[None])[0]))(x)
    ref = (-torch.diagonal(hess, dim1=-2, dim2=-1).sum(-1) + 0.5 * (grad**2).sum(-1)).mean()
    torch.testing.assert_close(implicit_score_matching(energy.score, x), ref, rtol=1e-10, atol=1e-12)


# -- unbiasedness of the stochastic traces ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator",
    [
        lambda m, x, g: implicit_score_matching(m, x, "hutchinson", generator=g),
        lambda m, x, g: implicit_score_matching(m, x, "hutchinson", generator=g, probe="gaussian"),
        lambda m, x, g: sliced_score_matching(m, x, variance_reduction=True, generator=g),
        lambda m, x, g: sliced_score_matching(m, x, variance_reduction=False, generator=g),
        lambda m, x, g: sliced_score_matching(m, x, n_projections=3, variance_reduction=False, generator=g),
    ],
    ids=["hutch-rademacher", "hutch-gaussian", "ssm-vr", "ssm", "ssm-3proj"],
)
def test_stochastic_estimators_are_unbiased_for_exact_ism(estimator):
    # For fixed x the exact ISM is a number; the estimators' randomness is in the probes only,
    # so the mean over K probe draws must match it within Z·SE.
    model = small_mlp(3, seed=2)
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(12345), dtype=DT) * 2
    exact = implicit_score_matching(model, x).item()
    mean, se = mc(lambda k: estimator(model, x, torch.Generator().manual_seed(k)), K=300)
    assert se > 0  # the estimator really is random here (off-diagonal Jacobian terms exist)
    assert abs(mean - exact) < Z * se, (mean, se, exact)


def test_sliced_vr_has_lower_variance_than_plain_ssm():
    # SSM-VR replaces ½(vᵀs)² by its mean ½‖s‖², removing that term's variance; with scores of
    # size ~‖x‖ ≫ Jacobian entries the difference is large (a factor > 4 here by construction).
    model = gaussian_score(torch.zeros(3, dtype=DT), 0.5)
    x = gauss_data(64, M, C, 777) * 3
    _, se_vr = mc(lambda k: sliced_score_matching(model, x, generator=torch.Generator().manual_seed(k)))
    _, se_plain = mc(lambda k: sliced_score_matching(model, x, variance_reduction=False,
                                                     generator=torch.Generator().manual_seed(k)))
    assert se_vr < se_plain / 4


# -- Fisher − ISM is a constant ---------------------------------------------------------------------
@pytest.mark.slow
def test_fisher_minus_ism_constant_across_mlps_on_mixture():
    # On a shared batch, (Fisher − ISM) − ½ mean‖∇log p‖² = mean[−sᵀ∇log p − tr ∇s], whose
    # expectation is 0 by integration by parts. We check that residual within Z·SE for three
    # different networks, and that Fisher − ISM itself agrees across networks.
    mix = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=DT), 1.0,
                          torch.tensor([0.3, 0.7], dtype=DT))
    K = 30
    diffs = []
    for seed in range(3):
        model = small_mlp(2, seed=seed)
        diff, resid = [], []
        for k in range(K):
            x = mix.sample(1000, generator=torch.Generator().manual_seed(k))
            d_k = (fisher_divergence(model, mix.score, x) - implicit_score_matching(model, x)).item()
            diff.append(d_k)
            resid.append(d_k - 0.5 * (mix.score(x) ** 2).sum(-1).mean().item())
        resid_t, diff_t = torch.tensor(resid), torch.tensor(diff)
        se = resid_t.std().item() / math.sqrt(K)
        assert abs(resid_t.mean().item()) < Z * se, (seed, resid_t.mean().item(), se)
        diffs.append((diff_t.mean().item(), diff_t.std().item() / math.sqrt(K)))
    (m0, s0), *rest = diffs
    for m1, s1 in rest:
        assert abs(m0 - m1) < Z * math.hypot(s0, s1)


@pytest.mark.parametrize("mu,v", SETTINGS)
def test_dsm_minus_fisher_of_p_sigma_is_the_closed_form_constant(mu, v):
    d, sigma = 3, 0.8
    s = gaussian_score(mu, v)
    p_sigma_score = gaussian_score(M, C + sigma**2)
    const = 0.5 * d * (1 / sigma**2 - 1 / (C + sigma**2))

    def diff(k):
        x = gauss_data(2000, M, C, k)
        x_sigma = gauss_data(2000, M, C + sigma**2, 10_000 + k)  # samples of p_σ
        dsm = denoising_score_matching(s, x, sigma, generator=torch.Generator().manual_seed(20_000 + k))
        return dsm - fisher_divergence(s, p_sigma_score, x_sigma)

    mean, se = mc(diff)
    assert abs(mean - const) < Z * se, (mean, se, const)


# -- ncsn_loss -------------------------------------------------------------------------------------
def test_ncsn_loss_single_level_equals_weighted_dsm():
    torch.manual_seed(0)
    model = NoiseConditionalScoreMLP(2, hidden=32, n_layers=2).to(DT)
    x = ncsn_mixture(dtype=DT).sample(50, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([5.0, 1.0, 0.2], dtype=DT)
    for i, sig in enumerate(sigmas.tolist()):
        levels = torch.full((50,), i, dtype=torch.long)
        dsm = denoising_score_matching(lambda y, sig=sig: model(y, sig), x, sig,
                                       generator=torch.Generator().manual_seed(4))
        for weighting, lam in [("uniform", 1.0), ("sigma2", sig**2), (lambda s: s**0.5, sig**0.5)]:
            got = ncsn_loss(model, x, sigmas, weighting=weighting, levels=levels,
                            generator=torch.Generator().manual_seed(4))
            torch.testing.assert_close(got, lam * dsm, rtol=1e-10, atol=1e-12)


def test_ncsn_loss_random_levels_average_the_weighted_dsm_terms():
    # E[ncsn_loss] = (1/L) Σ_i λ(σ_i) DSM_{σ_i}; with a linear model s(x, σ) = −(x − μ)/(v + σ²)
    # each DSM_{σ_i} has the closed form above (v → v + σ_i²).
    d, mu = 3, SETTINGS[0][0]
    v0 = 0.9
    sigmas = [2.0, 0.7, 0.3]
    model = lambda y, sig: -(y - mu) / (v0 + sig[:, None] ** 2)
    truth = sum(s**2 * closed_forms(d, C, float(((M - mu) ** 2).sum()), v0 + s**2, s)["dsm"]
                for s in sigmas) / len(sigmas)
    mean, se = mc(lambda k: ncsn_loss(model, gauss_data(2000, M, C, k), sigmas,
                                      generator=torch.Generator().manual_seed(50_000 + k)))
    assert abs(mean - truth) < Z * se, (mean, se, truth)


# -- training-readiness: gradients reach the parameters ---------------------------------------------
@pytest.mark.parametrize("loss", [
    lambda f, x: implicit_score_matching(f, x),
    lambda f, x: implicit_score_matching(f, x, "hutchinson", n_probes=2),
    lambda f, x: sliced_score_matching(f, x),
    lambda f, x: sliced_score_matching(f, x, variance_reduction=False),
    lambda f, x: denoising_score_matching(f, x, 0.1),
], ids=["ism-exact", "ism-hutch", "ssm-vr", "ssm", "dsm"])
def test_losses_backpropagate_through_energy_model(loss):
    torch.manual_seed(0)
    energy = EnergyMLP(2, hidden=16, n_layers=2)
    x = torch.randn(32, 2)
    loss(energy.score, x).backward()
    # Every parameter but the output bias (∇ₓ f does not depend on it) must get a gradient; they
    # are reached only through ∇ₓ f, i.e. only if the score kept its graph (create_graph=True).
    *weights, out_bias = list(energy.parameters())
    assert out_bias.grad is None
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


def test_losses_evaluate_under_no_grad():
    model = small_mlp(2)
    x = torch.randn(16, 2, dtype=DT)
    with_grad = implicit_score_matching(model, x)
    with torch.no_grad():
        without = implicit_score_matching(model, x)
        ssm = sliced_score_matching(model, x, generator=torch.Generator().manual_seed(0))
    assert not without.requires_grad and not ssm.requires_grad
    torch.testing.assert_close(without, with_grad.detach())


# -- devices ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", available_devices())
def test_losses_follow_the_device_of_model_and_data(device):
    model = ScoreMLP(2, hidden=16, n_layers=1).to(device)
    x = torch.randn(8, 2).to(device)
    g_cpu = torch.Generator().manual_seed(0)  # a CPU generator works with data anywhere
    values = [
        implicit_score_matching(model, x),
        implicit_score_matching(model, x, "hutchinson", generator=g_cpu),
        sliced_score_matching(model, x, generator=g_cpu),
        denoising_score_matching(model, x, 0.5, generator=g_cpu),
        fisher_divergence(model, lambda y: -y, x),
    ]
    for v in values:
        assert v.device.type == torch.device(device).type and v.ndim == 0 and torch.isfinite(v)


# -- bad input ----------------------------------------------------------------------------------------
def test_bad_input_raises_value_errors_naming_the_problem():
    model = small_mlp(2)
    x = torch.randn(4, 2, dtype=DT)
    with pytest.raises(ValueError, match="sigma"):
        denoising_score_matching(model, x, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        denoising_score_matching(model, x, -1.0)
    with pytest.raises(ValueError, match="trace"):
        implicit_score_matching(model, x, trace="full")
    with pytest.raises(ValueError, match="probe"):
        implicit_score_matching(model, x, trace="hutchinson", probe="uniform")
    with pytest.raises(ValueError, match="n_probes"):
        implicit_score_matching(model, x, trace="hutchinson", n_probes=0)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_score_matching(model, x, n_projections=0)
    wrong = lambda y: y[:, :1]
    for loss in (implicit_score_matching, sliced_score_matching,
                 lambda f, y: denoising_score_matching(f, y, 0.1),
                 lambda f, y: fisher_divergence(f, lambda t: -t, y)):
        with pytest.raises(ValueError, match="score_fn must return a tensor shaped like x"):
            loss(wrong, x)
    with pytest.raises(ValueError, match="x must have shape"):
        implicit_score_matching(model, torch.randn(3, dtype=DT))
    nc = lambda y, s: y
    with pytest.raises(ValueError, match="weighting"):
        ncsn_loss(nc, x, [1.0, 0.5], weighting="linear")
    with pytest.raises(ValueError, match="sigmas"):
        ncsn_loss(nc, x, [1.0, -0.5])
    with pytest.raises(ValueError, match="levels"):
        ncsn_loss(nc, x, [1.0, 0.5], levels=torch.tensor([0, 1, 2, 0]))
