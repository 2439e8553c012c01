"""Langevin samplers against closed forms: the ULA stationary covariance, MALA's exact invariance,
the mode-weight failure of Song & Ermon 2019, and the mechanics (shapes, seeds, devices, guard)."""

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.device import available_devices
from scoretutor.models import EnergyMLP
from scoretutor.sampling import (
    LangevinDivergenceError,
    SamplerOutput,
    annealed_langevin,
    langevin,
    mala,
    step_sizes,
    ula_stationary_variance,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ula_stationary_variance_is_the_fixed_point_of_the_variance_recursion():
    # Target N(0, σ²): one step is x' = a·x + √(2ε)·z with a = 1 − ε/σ², so Var obeys v ← a²v + 2ε.
    # Iterating that map numerically (independent of the closed form) from v = 0 until a^{2n} < 1e-15
    # must land on the package's fixed point 2ε/(1 − a²) = σ²/(1 − ε/(2σ²)).
    for eps, sigma in [(0.01, 1.0), (0.5, 1.0), (1.5, 1.0), (0.3, 0.5), (3.0, 2.0)]:
        a, v = 1 - eps / sigma**2, 0.0
        for _ in range(20_000):
            v = a * a * v + 2 * eps
        assert ula_stationary_variance(eps, sigma) == pytest.approx(v, rel=1e-10)
        assert ula_stationary_variance(eps, sigma) > sigma**2  # the O(ε) bias, always upwards
    for eps, sigma in [(2.0, 1.0), (0.0, 1.0), (0.1, 0.0)]:  # unstable (ε >= 2σ²) or not positive
        with pytest.raises(ValueError, match="step_size|sigma"):
            ula_stationary_variance(eps, sigma)


@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0, 1.5])
def test_ula_variance_follows_the_recursion_and_its_fixed_point(eps):
    # Target N(0, s²) with s² = 1 in 2-D (independent coordinates), chain started at x0 = c.
    # Exactly: mean_n = aⁿ c, var_n = 2ε (1 − a^{2n}) / (1 − a²). With N particles × 2 coordinates,
    # the sample variance has relative standard error √(2/(2N)) and the sample mean has standard
    # error √(var/(2N)) (chains are independent): allow 4 standard errors.
    s2, N, c = 1.0, 20_000, 3.0
    a = 1 - eps / s2
    x0 = torch.full((N, 2), c, dtype=torch.float64)
    for n in (3, 60):
        x = langevin(lambda x: -x / s2, x0, eps, n, generator=gen(n)).x
        var_n = 2 * eps * (1 - a ** (2 * n)) / (1 - a * a)
        mean_n = a**n * c
        se_var = var_n * math.sqrt(2 / (2 * N))
        assert abs(x.var().item() - var_n) < 4 * se_var, (eps, n, x.var().item(), var_n)
        assert abs(x.mean().item() - mean_n) < 4 * math.sqrt(var_n / (2 * N)) + 1e-12
    # after 60 steps the start-up term a^{120}·v* ≤ 0.9^{120}·v* ≈ 3e-6·v* is far below the sampling
    # error (≈ 1 % of v*): the chain sits at the package's fixed point v*(ε), not at the target's s².
    v_star = ula_stationary_variance(eps, math.sqrt(s2))
    assert abs(x.var().item() - v_star) < 4 * v_star * math.sqrt(2 / (2 * N)) + v_star * abs(a) ** 120


@pytest.mark.slow
def test_ula_with_small_step_converges_to_the_target_mean_and_variance():
    # ε = 0.01, s² = 1: stationary variance 1/(1 − 0.005) = 1.005, i.e. bias ε/(2s²)/(1 − ε/(2s²)).
    # After 1500 steps the memory of x0 = 4 is a^1500 ≈ 3e-7. Tolerance = bias + 4 standard errors.
    eps, s2, N = 0.01, 1.0, 10_000
    x0 = torch.full((N, 1), 4.0, dtype=torch.float64)
    x = langevin(lambda x: -x / s2, x0, eps, 1500, generator=gen(1)).x
    bias = ula_stationary_variance(eps, math.sqrt(s2)) - s2
    assert abs(x.var().item() - s2) < bias + 4 * math.sqrt(2 / N) * s2
    assert abs(x.mean().item()) < 4 * math.sqrt(s2 / N)


@pytest.mark.slow
def test_ula_stationary_covariance_for_a_correlated_gaussian():
    # Target N(μ, Σ): score −P(x − μ) with P = Σ⁻¹. With A = I − εP (symmetric, commutes with P),
    # C = A C A + 2ε I has the fixed point C = 2ε (I − A²)⁻¹ = (P (I − εP/2))⁻¹ = Σ (I − εP/2)⁻¹.
    # Standard error of an empirical covariance entry: √((C_ii C_jj + C_ij²)/N); allow 4.
    Sigma = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
    target = GaussianMixture(mu[None], Sigma[None])
    P = torch.linalg.inv(Sigma)
    # Stable iff the eigenvalues of A lie in (−1, 1), i.e. ε < 2 λ_min(Σ) ≈ 0.2; take ε = 0.1, where
    # the narrow direction (variance λ_min(Σ) ≈ 0.1) is inflated to 0.1/(1 − 0.5) = 0.2.
    eps, N = 0.1, 20_000
    C = Sigma @ torch.linalg.inv(torch.eye(2, dtype=torch.float64) - eps * P / 2)
    x0 = target.sample(N, generator=gen(2))
    # slowest mode: eigenvalue λ_max(A) = 1 − ε λ_min(P); 150 steps shrink the start-up transient
    # (Σ vs C) by λ_max^300 < 1e-4.
    lam = 1 - eps * torch.linalg.eigvalsh(P).min().item()
    assert lam**300 < 1e-4
    x = langevin(target.score, x0, eps, 150, generator=gen(3)).x
    emp = torch.cov(x.T)
    se = ((torch.diag(C)[:, None] * torch.diag(C)[None, :] + C**2) / N).sqrt()
    assert ((emp - C).abs() < 4 * se).all(), (emp, C)
    assert ((x.mean(0) - mu).abs() < 4 * (torch.diag(C) / N).sqrt()).all()
    # and the bias is real: along the narrow eigen-direction the chain's variance is ≈ 2× the target's.
    ev_emp, ev_target = torch.linalg.eigvalsh(emp)[0].item(), torch.linalg.eigvalsh(Sigma)[0].item()
    assert ev_emp / ev_target > 1.8


@pytest.mark.slow
def test_mode_weight_failure_with_the_exact_score():
    # Song & Ermon 2019 Fig. 3: p = 1/5 N((−5,−5), I) + 4/5 N((5,5), I), Langevin with the exact
    # score from U[−8, 8]². Each particle relaxes into the basin it starts in (the score near a mode
    # ignores the other mode's weight, and crossing the gap is exponentially unlikely), so the
    # (−5,−5) fraction is ≈ the area fraction of its basin ≈ 1/2, not 1/5.
    # N = 3000: standard error √(0.25/3000) ≈ 0.009, so "> 0.35" has a margin of > 15 standard errors.
    mix = ncsn_mixture(dtype=torch.float64)
    g = gen(4)
    N = 3000
    x0 = 16 * torch.rand(N, 2, generator=g, dtype=torch.float64) - 8
    x = langevin(mix.score, x0, 0.1, 300, generator=g).x
    frac = (mix.component_of(x) == 0).double().mean().item()
    se = math.sqrt(frac * (1 - frac) / N)
    assert frac > 0.35 and abs(frac - 0.5) < 0.1, (frac, se)
    # the same counting applied to exact samples gives 1/5 within 4 standard errors.
    exact = (mix.component_of(mix.sample(N, generator=g)) == 0).double().mean().item()
    assert abs(exact - 0.2) < 4 * math.sqrt(0.2 * 0.8 / N)
    # within each mode, the particles did equilibrate: mean ≈ μ_k within 4 standard errors (σ = 1).
    for k in (0, 1):
        pts = x[mix.component_of(x) == k]
        assert ((pts.mean(0) - mix.means[k]).abs() < 4 / math.sqrt(len(pts)) + 0.02).all()


@pytest.mark.slow
def test_mala_is_exactly_invariant_where_ula_is_biased():
    # Start from exact samples of N(0, 1): MALA keeps the marginal exactly N(0, 1) at any ε
    # (detailed balance), while ULA with ε = 1.5 drifts to variance 1/(1 − 0.75) = 4.
    # Sample-variance standard error √(2/N) (the N chains are independent).
    N, eps = 20_000, 1.5
    x0 = torch.randn(N, 1, generator=gen(5), dtype=torch.float64)
    log_p = lambda x: -0.5 * (x**2).sum(-1)
    out = mala(log_p, x0, eps, 30, generator=gen(6))
    x, acc = out.x, out.acceptance
    assert abs(x.var().item() - 1.0) < 4 * math.sqrt(2 / N)
    assert abs(x.mean().item()) < 4 * math.sqrt(1 / N)
    assert 0.05 < acc.mean().item() < 0.95  # the correction really rejected some proposals
    # ULA from the same start: Var_n = v* + a^{2n}(1 − v*) with a = 1 − ε = −0.5, v* = 4; after 30
    # steps a^60 ≈ 1e-18, so Var = v* with relative standard error √(2/N) (4 of them allowed).
    y = langevin(lambda x: -x, x0, eps, 30, generator=gen(6)).x
    v_star = ula_stationary_variance(eps, 1.0)
    assert abs(y.var().item() - v_star) < 4 * v_star * math.sqrt(2 / N)


def test_mala_with_given_score_equals_autograd_score():
    mix = ncsn_mixture(dtype=torch.float64)
    x0 = 3 * torch.randn(200, 2, generator=gen(7), dtype=torch.float64)
    a = mala(mix.log_prob, x0, 0.3, 20, generator=gen(8))
    b = mala(mix.log_prob, x0, 0.3, 20, score_fn=mix.score, generator=gen(8))
    torch.testing.assert_close(a.x, b.x)
    torch.testing.assert_close(a.acceptance, b.acceptance)


def test_reproducible_with_a_generator_and_different_across_seeds():
    mix = ncsn_mixture()
    x0 = torch.randn(100, 2, generator=gen(9))
    a = langevin(mix.score, x0, 0.05, 25, generator=gen(10)).x
    b = langevin(mix.score, x0, 0.05, 25, generator=gen(10)).x
    c = langevin(mix.score, x0, 0.05, 25, generator=gen(11)).x
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x0, torch.randn(100, 2, generator=gen(9)))  # x0 not modified in place


def test_one_step_by_hand_on_images():
    # Any shape: (N, C, H, W) images with a per-pixel Gaussian score.
    x0 = torch.randn(3, 2, 4, 5, generator=gen(12))
    eps = 0.07
    x1 = langevin(lambda x: -2 * x, x0, eps, 1, generator=gen(13)).x
    z = torch.randn(x0.shape, generator=gen(13))
    torch.testing.assert_close(x1, x0 + eps * (-2 * x0) + math.sqrt(2 * eps) * z)


@pytest.mark.parametrize("device", available_devices())
def test_device_and_dtype_follow_x0(device):
    x0 = torch.randn(50, 2, dtype=torch.float64).to(device)
    out, traj, _, _ = langevin(lambda x: -x, x0, 0.1, 5, generator=gen(0), return_trajectory=True)
    assert out.device == x0.device and out.dtype == torch.float64
    assert traj.device == x0.device
    out2 = annealed_langevin(lambda x, s: -x / (1 + s**2), x0, [2.0, 1.0], 0.1, 3, generator=gen(0)).x
    assert out2.device == x0.device and out2.dtype == torch.float64
    out3 = mala(lambda x: -0.5 * (x**2).sum(-1), x0, 0.1, 3, generator=gen(0))
    assert out3.x.device == x0.device and out3.acceptance.device == x0.device


def test_energy_model_score_with_autograd_works_inside_no_grad_sampler():
    # EnergyMLP.score switches gradients on locally: langevin (which runs under no_grad) must let it.
    torch.manual_seed(0)
    model = EnergyMLP(dim=2, hidden=16, n_layers=2).double()
    x0 = torch.randn(10, 2, generator=gen(14), dtype=torch.float64)
    eps = 0.01
    x1 = langevin(model.score, x0, eps, 1, generator=gen(15)).x
    xr = x0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xr).sum(), xr)
    z = torch.randn(x0.shape, generator=gen(15), dtype=torch.float64)
    torch.testing.assert_close(x1, x0 - eps * grad + math.sqrt(2 * eps) * z)
    assert not x1.requires_grad


def test_trajectory_keeps_every_kth_iterate_and_the_last():
    seen = {}
    x0 = torch.randn(7, 2, generator=gen(16))
    x, traj, _, _ = langevin(lambda x: -x, x0, 0.1, 10, generator=gen(17), return_trajectory=True,
                             trajectory_every=4, callback=lambda i, x: seen.__setitem__(i, x.clone()))
    assert traj.shape == (4, 7, 2)  # steps 0, 4, 8 and the last (10)
    assert torch.equal(traj[0], x0) and torch.equal(traj[-1], x)
    assert torch.equal(traj[1], seen[4]) and torch.equal(traj[2], seen[8])
    assert sorted(seen) == list(range(1, 11))
    full = langevin(lambda x: -x, x0, 0.1, 10, generator=gen(17), return_trajectory=True).trajectory
    assert full.shape == (11, 7, 2) and torch.equal(full[4], traj[1])
    x_zero = langevin(lambda x: -x, x0, 0.1, 0)
    assert torch.equal(x_zero.x, x0) and x_zero.trajectory is None


def test_divergence_guard_names_the_step():
    calls = {"n": 0}

    def breaks_at_fifth_call(x):
        calls["n"] += 1
        return -x if calls["n"] < 5 else torch.full_like(x, float("inf"))

    with pytest.raises(FloatingPointError, match=r"step 5 of 20.*smaller step size") as info:
        langevin(breaks_at_fifth_call, torch.zeros(4, 2), 0.1, 20, generator=gen(0))
    err = info.value
    assert (err.step, err.level, err.step_size) == (5, None, 0.1)
    # a genuinely exploding score: s(x) = 10·x grows like (1 + 10ε)^n and overflows float32.
    with pytest.raises(LangevinDivergenceError, match="smaller step size"):
        langevin(lambda x: 10 * x, torch.ones(4, 2), 1.0, 1000, generator=gen(0))
    with pytest.raises(FloatingPointError, match=r"level 2 of 3") as info:
        # stable at σ = 3 (an attracting score), exploding from σ = 2 on
        annealed_langevin(lambda x, s: -x if s > 2.5 else 10 * x, torch.ones(4, 2), [3.0, 2.0, 1.0],
                          0.01, 500, generator=gen(0))
    # level index 1 (σ = 2), step size α = ε·σ²/σ_L² = 0.04; float32 overflows after ~ln(1e38)/ln(1.4) steps
    err = info.value
    assert err.level == 1 and err.step_size == pytest.approx(0.04) and 200 < err.step < 300


def test_bad_inputs_raise_value_error():
    x0 = torch.zeros(4, 2)
    s = lambda x: -x
    for kwargs, match in [({"step_size": 0.0}, "step_size"), ({"step_size": -1.0}, "step_size"),
                          ({"step_size": float("nan")}, "step_size"), ({"n_steps": -1}, "n_steps"),
                          ({"n_steps": 2.5}, "n_steps"), ({"trajectory_every": 0}, "trajectory_every")]:
        args = {"step_size": 0.1, "n_steps": 3} | kwargs
        with pytest.raises(ValueError, match=match):
            langevin(s, x0, **args)
    with pytest.raises(ValueError, match="floating"):
        langevin(s, torch.zeros(4, 2, dtype=torch.long), 0.1, 3)
    with pytest.raises(ValueError, match="torch.Tensor"):
        langevin(s, [[0.0, 0.0]], 0.1, 3)
    with pytest.raises(ValueError, match="shaped like x"):
        langevin(lambda x: x[:, :1], x0, 0.1, 3)
    a = lambda x, sig: -x
    for sigmas in ([1.0, 2.0], [1.0, 1.0], [2.0, -1.0], [], [float("inf"), 1.0]):
        with pytest.raises(ValueError, match="sigmas"):
            annealed_langevin(a, x0, sigmas, 0.1, 3)
    with pytest.raises(ValueError, match="n_steps_each"):
        annealed_langevin(a, x0, [2.0, 1.0], 0.1, -1)
    with pytest.raises(ValueError, match="one value per batch element"):
        mala(lambda x: (x**2).sum(), x0, 0.1, 3)


def test_annealed_step_size_schedule_seen_by_the_callback():
    sigmas = torch.tensor([10.0, 3.0, 1.0, 0.5])
    eps, T = 1e-3, 3
    log = []
    annealed_langevin(lambda x, s: -x / (1 + s**2), torch.zeros(5, 2), sigmas, eps, T, generator=gen(0),
                      denoise_last=False, callback=lambda lvl, t, x, s, a: log.append((lvl, t, s, a)))
    assert [(lvl, t) for lvl, t, _, _ in log] == [(i, t) for i in range(4) for t in range(1, T + 1)]
    for lvl, _, s, a in log:
        assert isinstance(s, float) and s == pytest.approx(sigmas[lvl].item())
        assert a == pytest.approx(eps * sigmas[lvl].item() ** 2 / 0.5**2, rel=1e-6)
    assert step_sizes(sigmas, eps) == pytest.approx([log[3 * i][3] for i in range(4)])


def test_annealed_single_level_equals_langevin():
    mix = ncsn_mixture(dtype=torch.float64)
    x0 = torch.randn(64, 2, generator=gen(18), dtype=torch.float64)
    a = annealed_langevin(lambda x, s: mix.perturb(s).score(x), x0, [0.7], 0.05, 40, generator=gen(19),
                          denoise_last=False)
    b = langevin(mix.perturb(0.7).score, x0, 0.05, 40, generator=gen(19))
    assert torch.equal(a.x, b.x) and a.n_score_evals == b.n_score_evals == 40


def test_annealed_denoising_step_and_trajectory():
    mix = ncsn_mixture(dtype=torch.float64)
    score = lambda x, s: mix.perturb(s).score(x)
    x0 = torch.randn(30, 2, generator=gen(20), dtype=torch.float64)
    # with zero Langevin steps only the final step x + σ_L² s(x, σ_L) remains (Tweedie's formula)
    out = annealed_langevin(score, x0, [2.0, 0.5], 0.01, 0).x
    torch.testing.assert_close(out, x0 + 0.25 * score(x0, 0.5))
    out, traj, _, _ = annealed_langevin(score, x0, [2.0, 1.0, 0.5], 0.01, 5, generator=gen(21),
                                        return_trajectory=True, trajectory_every=5)
    # saved: x0, after each level (steps 5, 10, 15), and the denoised result
    assert traj.shape == (5, 30, 2)
    assert torch.equal(traj[0], x0) and torch.equal(traj[-1], out)
    no_denoise = annealed_langevin(score, x0, [2.0, 1.0, 0.5], 0.01, 5, generator=gen(21),
                                   denoise_last=False).x
    torch.testing.assert_close(traj[3], no_denoise)
    torch.testing.assert_close(out, no_denoise + 0.25 * score(no_denoise, 0.5))


def test_sampler_output_counts_score_evaluations_and_fills_only_its_fields():
    calls = {"n": 0}

    def counting(x, *sigma):
        calls["n"] += 1
        return -x

    x0 = torch.zeros(6, 2, dtype=torch.float64)
    log_p = lambda x: -0.5 * (x**2).sum(-1)
    runs = {
        "langevin": (lambda: langevin(counting, x0, 0.1, 7, generator=gen(0)), 7),
        "annealed": (lambda: annealed_langevin(counting, x0, [3.0, 2.0, 1.0], 0.01, 4, generator=gen(0)),
                     3 * 4 + 1),
        "annealed, no denoising": (lambda: annealed_langevin(counting, x0, [2.0, 1.0], 0.01, 4,
                                                             generator=gen(0), denoise_last=False), 2 * 4),
        "mala": (lambda: mala(log_p, x0, 0.1, 7, score_fn=counting, generator=gen(0)), 7 + 1),
    }
    for name, (run, expected) in runs.items():
        calls["n"] = 0
        out = run()
        assert isinstance(out, SamplerOutput), name
        assert out.n_score_evals == calls["n"] == expected, name
        assert out.trajectory is None, name
        assert (out.acceptance is not None) == (name == "mala"), name
    acc = runs["mala"][0]().acceptance
    assert acc.shape == (6,) and ((acc >= 0) & (acc <= 1)).all()
