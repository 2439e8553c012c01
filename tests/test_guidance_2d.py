"""Conditioning and guidance on exact 2-D mixtures (scoretutor.diffusion.guidance, notebook 08).

Closed forms are checked against autograd of the closed-form log densities (float64, to rounding);
samplers against the exact tilted density on a grid, with Monte-Carlo bounds from binomial standard
errors √(m(1 − m)/n) (the soft mode weights are means of numbers in [0, 1], so their variance is at most
m(1 − m)).
"""

from __future__ import annotations

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.diffusion.guidance import (
    LabelledMixture,
    classifier_free_guidance,
    classifier_free_score_fn,
    conditional_score_fn,
    guided_langevin,
    guided_sample,
    guided_score_fn,
    overlapping_classes,
    tilted_density,
    tilted_prior_sample,
)
from scoretutor.diffusion.sde import VESDE, VPSDE, mixture_score_fn

F64 = torch.float64
EXACT = 1e-10  # float64 rounding of O(1) scores: the closed forms agree with autograd to ~1e-14
GRID = 160     # cells per axis for the tilted densities in these tests (h = 1/8 on [−10, 10]²)


def _general() -> LabelledMixture:
    """Three classes, unequal weights, full and anisotropic covariances: nothing special to lean on."""
    means = torch.tensor([[-2.0, 1.0], [1.5, 2.0], [0.0, -2.5], [3.0, -1.0], [-1.0, -0.5]], dtype=F64)
    a = torch.tensor([[[1.0, 0.3], [0.3, 0.5]], [[0.4, -0.1], [-0.1, 0.9]], [[2.0, 0.0], [0.0, 0.3]],
                      [[0.7, 0.2], [0.2, 0.7]], [[0.5, 0.0], [0.0, 0.5]]], dtype=F64)
    weights = torch.tensor([0.1, 0.25, 0.2, 0.3, 0.15], dtype=F64)
    return LabelledMixture(GaussianMixture(means, a, weights), torch.tensor([0, 1, 2, 1, 0]))


def _levels():
    """(name, noisy labelled mixture) at several VE noise levels and VE/VP SDE times."""
    out = []
    for name, lm in (("overlapping", overlapping_classes(F64)), ("general", _general()),
                     ("ncsn", LabelledMixture(ncsn_mixture(F64)))):
        out += [(f"{name}-σ={s}", lm.perturb(s)) for s in (0.05, 0.5, 3.0)]
        out += [(f"{name}-VP-t={t}", lm.marginal(VPSDE(), t)) for t in (0.01, 0.3, 0.9)]
        out += [(f"{name}-VE-t={t}", lm.marginal(VESDE(0.01, 50.0), t)) for t in (0.0, 0.4)]
    return out


LEVELS = _levels()


def _points(n: int = 64, seed: int = 0) -> torch.Tensor:
    return 4 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _grad(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g


# -- closed forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,lm", LEVELS, ids=[n for n, _ in LEVELS])
def test_bayes_rule_for_scores(name, lm):
    """∇log p_t(x | y) = ∇log p_t(x) + ∇log p_t(y | x): the class's sub-mixture score on the left, the
    unconditional score plus the closed-form classifier gradient on the right, both against autograd."""
    x = _points()
    for y in range(lm.n_classes):
        left = lm.conditional_score(x, y)
        right = lm.score(x) + lm.classifier_gradient(x, y)
        assert (left - right).abs().max() < EXACT
        assert (left - _grad(lambda v, y=y: lm.conditional_log_prob(v, y), x)).abs().max() < EXACT
        both = _grad(lambda v, y=y: lm.log_prob(v) + lm.log_class_posterior(v, y), x)
        assert (right - both).abs().max() < EXACT


@pytest.mark.parametrize("name,lm", LEVELS, ids=[n for n, _ in LEVELS])
def test_classifier_gradient_matches_autograd_and_densities_obey_bayes(name, lm):
    x = _points(seed=1)
    log_prior = lm.class_prior().log()
    post = lm.class_posterior(x)
    assert torch.allclose(post.sum(-1), torch.ones(len(x), dtype=F64), atol=1e-12)
    for y in range(lm.n_classes):
        assert (lm.classifier_gradient(x, y) - _grad(lambda v, y=y: lm.log_class_posterior(v, y), x)
                ).abs().max() < EXACT
        # log p(x | y) = log p(x) + log p(y | x) − log p(y), and p(y | x) from both routes
        assert (lm.conditional_log_prob(x, y) - lm.log_prob(x) - lm.log_class_posterior(x, y)
                + log_prior[y]).abs().max() < EXACT
        assert torch.allclose(lm.log_class_posterior(x, y).exp(), post[:, y], atol=1e-12)


def test_guided_score_at_gamma_0_and_1_and_classifier_free_form():
    lm = overlapping_classes(F64).perturb(0.7)
    x = _points(seed=2)
    for y in (0, 1):
        assert (lm.guided_score(x, y, 0.0) - lm.score(x)).abs().max() < EXACT
        assert (lm.guided_score(x, y, 1.0) - lm.conditional_score(x, y)).abs().max() < EXACT
        for w in (-1.0, -0.5, 0.0, 0.5, 2.0, 7.0):
            cfg = classifier_free_guidance(lm.conditional_score(x, y), lm.score(x), w)
            assert (cfg - lm.guided_score(x, y, 1 + w)).abs().max() < 1e-9
            classifier = lm.score(x) + (1 + w) * lm.classifier_gradient(x, y)
            assert (cfg - classifier).abs().max() < 1e-9


@pytest.mark.parametrize("sde", [VESDE(0.01, 50.0), VPSDE()], ids=["VE", "VP"])
def test_score_fns_for_samplers(sde):
    """Guided, conditional and classifier-free score functions at per-example times agree."""
    lm = overlapping_classes(F64)
    x = _points(24, seed=3)
    t = torch.linspace(0.0, 1.0, 8, dtype=F64).clamp_min(sde.t_min).repeat_interleave(3)
    uncond = mixture_score_fn(lm.mixture, sde)
    for y in (0, 1):
        cond = conditional_score_fn(lm, sde, y)
        for w in (0.0, 2.0):
            got = classifier_free_score_fn(cond, uncond, w)(x, t)
            want = guided_score_fn(lm, sde, y, 1 + w)(x, t)
            assert (got - want).abs().max() < 1e-9
        row = 17
        exact = lm.marginal(sde, t[row].item()).conditional_score(x[row:row + 1], y)
        assert (cond(x, t)[row] - exact[0]).abs().max() < EXACT
        assert (guided_score_fn(lm, sde, y, 0.0)(x, t) - uncond(x, t)).abs().max() < 1e-9


def test_per_point_labels_and_scales():
    lm = _general().perturb(0.3)
    x = _points(30, seed=4)
    y = torch.arange(30) % 3
    gamma = torch.linspace(-1.0, 4.0, 30, dtype=F64)
    got = lm.guided_score(x, y, gamma)
    for i in range(30):
        want = lm.guided_score(x[i:i + 1], int(y[i]), gamma[i].item())
        assert (got[i] - want[0]).abs().max() < EXACT
    assert (lm.conditional_score(x, y) - lm.guided_score(x, y, 1.0)).abs().max() < EXACT
    assert (lm.log_tilted(x, y, gamma) - lm.log_prob(x) - gamma * lm.log_class_posterior(x, y)
            ).abs().max() < EXACT


def test_ncsn_mixture_each_component_its_own_class():
    lm = LabelledMixture(ncsn_mixture(F64))
    assert lm.n_classes == 2 and torch.allclose(lm.class_prior(), torch.tensor([0.2, 0.8], dtype=F64))
    assert torch.allclose(lm.conditional(0).means, torch.tensor([[-5.0, -5.0]], dtype=F64))


# -- the tilted density on a grid ------------------------------------------------------------------
@pytest.mark.parametrize("lm", [overlapping_classes(F64), _general().perturb(0.2)],
                         ids=["overlapping", "general"])
def test_tilted_density_normalises_and_reduces_to_p_and_p_given_y(lm):
    """The midpoint rule is spectrally accurate for these smooth integrands (error ~ exp(−2π²s²/h²) for a
    Gaussian of std s on cells of size h: e^{−100} here, h = 1/8, s ≥ 0.55), and [−10, 10]² holds all but
    ~1e-12 of the mass: Z(0) = ∫p = 1 and Z(1) = p(y) to rounding, π_0 = p and π_1 = p(x | y) pointwise."""
    for y in range(lm.n_classes):
        t0, t1 = tilted_density(lm, y, 0.0, n=GRID), tilted_density(lm, y, 1.0, n=GRID)
        assert abs(t0.log_normaliser) < 1e-9
        assert abs(t1.log_normaliser - lm.class_prior()[y].log().item()) < 1e-9
        assert (t0.log_prob.exp() - lm.log_prob(t0.points).exp()).abs().max() < 1e-9
        assert (t1.log_prob.exp() - lm.conditional_log_prob(t1.points, y).exp()).abs().max() < 1e-9
        assert torch.allclose(t0.weights, lm.mixture.weights, atol=1e-9)   # E_p[r_k] = w_k
        assert torch.allclose(t0.class_weights, lm.class_prior(), atol=1e-9)
        t3 = tilted_density(lm, y, 3.0, n=GRID)
        assert abs((t3.log_prob.exp() * t3.cell_area).sum().item() - 1) < 1e-12
        # Z(γ) = E_p[p(y | x)^γ] falls with γ (p(y | x) ≤ 1), and guidance moves mass to class y
        assert t3.log_normaliser < t1.log_normaliser < t0.log_normaliser + 1e-12
        assert t3.class_weights[y] > t1.class_weights[y] > t0.class_weights[y]


def test_tilted_density_samples_follow_it():
    td = tilted_density(overlapping_classes(F64), 0, 3.0, n=GRID)
    lm = overlapping_classes(F64)
    n = 4000
    mw = lm.mode_weights(td.sample(n, torch.Generator().manual_seed(0)))
    bound = 4 * (td.weights * (1 - td.weights) / n).sqrt()
    assert ((mw.weights - td.weights).abs() < bound).all(), (mw, td.weights)


# -- sampling --------------------------------------------------------------------------------------
N = 2000


def _within(x: torch.Tensor, end: LabelledMixture, exact: torch.Tensor, by_class: bool = False,
            bias: float = 0.0) -> None:
    m = end.mode_weights(x, by_class=by_class).weights
    bound = 4 * (exact * (1 - exact) / x.shape[0]).sqrt() + bias
    assert ((m - exact).abs() <= bound).all(), f"{m.tolist()} vs {exact.tolist()} (bound {bound.tolist()})"


# Euler–Maruyama's weak error is O(Δt); benchmarks/bench_guidance.py measured the γ = 1 bias of these
# weights at n = 10 000 and found it within its ± 0.005 standard error from 50 steps on, so 1/n_steps
# (0.01 at 100 steps) is a generous allowance on top of 4 standard errors. The start is the exact
# p_1(x | y) (VE's prior N(0, 50² I) ignores the class mean; the reverse SDE all but forgets it anyway).
@pytest.mark.parametrize("sde", [VESDE(0.01, 50.0), VPSDE()], ids=["VE", "VP"])
def test_guided_reverse_sde_at_gamma_1_samples_p_given_y(sde):
    lm, steps = overlapping_classes(F64), 100
    end = lm.marginal(sde, sde.t_min)
    x_T = lm.marginal(sde, 1.0).conditional(0).sample(N, torch.Generator().manual_seed(0))
    x = guided_sample(lm, sde, 0, 1.0, N, "reverse_sde", steps, x_T=x_T,
                      generator=torch.Generator().manual_seed(1)).x
    exact = tilted_density(end, 0, 1.0, n=GRID)
    _within(x, end, exact.weights, bias=1 / steps)
    _within(x, end, exact.class_weights, by_class=True, bias=1 / steps)


def test_guided_ode_and_pc_at_gamma_0_sample_p():
    """γ = 0 is unconditional sampling whatever the label; PC's step bias is O(1/n_steps) like the reverse
    SDE's."""
    sde = VESDE(0.01, 50.0)
    lm = overlapping_classes(F64)
    end = lm.marginal(sde, sde.t_min)
    x = guided_sample(lm, sde, 1, 0.0, N, "probability_flow", generator=torch.Generator().manual_seed(2)).x
    _within(x, end, lm.mixture.weights)
    x = guided_sample(lm, sde, 1, 0.0, 1000, "predictor_corrector", 100,
                      generator=torch.Generator().manual_seed(3)).x
    _within(x, end, lm.mixture.weights, bias=1 / 100)


def test_guided_diffusion_is_not_the_tilted_density_but_fixed_sigma_langevin_is():
    """At γ = 3 the reverse SDE with the guided score over-sharpens: started from the tilted density at t = 1
    it puts 0.713 ± 0.004 on class 0's outer component where π_3 ∝ p p(0 | x)³ has 0.570 (bench_guidance.py,
    n = 10 000), 9 standard errors at n = 1000. Langevin at fixed σ = 0.01 with the same guided score,
    started from p(x | y), reaches π_3."""
    lm, sde, n = overlapping_classes(F64), VESDE(0.01, 50.0), 1000
    end = lm.marginal(sde, sde.t_min)
    exact = tilted_density(end, 0, 3.0, n=GRID)
    m0, se = exact.weights[0].item(), math.sqrt(exact.weights[0].item() * (1 - exact.weights[0].item()) / n)
    x_T = tilted_prior_sample(lm, sde, 0, 3.0, n, torch.Generator().manual_seed(2), grid=GRID)
    x = guided_sample(lm, sde, 0, 3.0, n, "reverse_sde", 100, x_T=x_T,
                      generator=torch.Generator().manual_seed(3)).x
    assert end.mode_weights(x).weights[0].item() - m0 > 6 * se
    x0 = lm.conditional(0).sample(n, torch.Generator().manual_seed(4))
    x = guided_langevin(lm, 0, 3.0, sde.sigma_min, x0, 0.05, 600, generator=torch.Generator().manual_seed(5)
                        ).x
    # 600 steps of ε = 0.05 (time 30) from p(x | y): with n = 8000 the weights were within 0.005 of π_3
    # (ULA's O(ε) bias against unit-variance modes and the unfinished mixing together)
    _within(x, end, exact.weights, bias=0.01)


def test_guided_langevin_metropolis_keeps_the_tilted_density():
    lm = overlapping_classes(F64)
    exact = tilted_density(lm.perturb(0.1), 0, 3.0)
    x0 = exact.sample(1000, torch.Generator().manual_seed(6))
    out = guided_langevin(lm, 0, 3.0, 0.1, x0, 0.3, 100, generator=torch.Generator().manual_seed(7),
                          metropolis=True)
    assert 0.3 < out.acceptance.mean().item() < 1.0
    _within(out.x, lm.perturb(0.1), exact.weights)


# -- figures ---------------------------------------------------------------------------------------
def test_plot_helpers():
    import matplotlib.pyplot as plt

    from scoretutor.lecture import plotting as P

    lm = overlapping_classes(F64)
    td = tilted_density(lm, 0, 3.0, n=64)
    fig, (a, b) = plt.subplots(1, 2)
    im = P.plot_tilted(a, td, td.sample(50, torch.Generator().manual_seed(0)), title="γ = 3")
    assert im.get_array().shape == (64, 64)
    bars = P.plot_mode_weights(b, {"exact": (td.weights, None), "mc": (td.weights, 0.01 * torch.ones(4))},
                               labels=["A", "B", "C", "D"])
    assert len(bars) == 2 and [r.get_height() for r in bars[0]] == pytest.approx(td.weights.tolist())
    with pytest.raises(ValueError, match="labels must name the 4 modes"):
        P.plot_mode_weights(b, {"exact": (td.weights, None)}, labels=["A"])
    plt.close(fig)


# -- errors ----------------------------------------------------------------------------------------
def test_clear_errors():
    lm = overlapping_classes(F64)
    x = _points(5)
    with pytest.raises(ValueError, match=r"class index in 0 … 1, got 2"):
        lm.conditional_score(x, 2)
    with pytest.raises(ValueError, match=r"class index in 0 … 1, got -1"):
        lm.classifier_gradient(x, -1)
    with pytest.raises(ValueError, match=r"unknown classes \[5\]"):
        lm.guided_score(x, torch.tensor([0, 1, 5, 0, 1]), 2.0)
    with pytest.raises(ValueError, match=r"one per point, shape \(5,\)"):
        lm.guided_score(x, torch.tensor([0, 1]), 2.0)
    with pytest.raises(ValueError, match="y must be a class index"):
        lm.log_class_posterior(x, 0.5)
    with pytest.raises(ValueError, match="y must be a class index"):
        lm.log_class_posterior(x, True)
    with pytest.raises(ValueError, match="sigma must be a positive finite number, got -0.5"):
        lm.perturb(-0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        lm.marginal(VPSDE(), 1.5)
    with pytest.raises(ValueError, match="gamma must be a finite number, got nan"):
        lm.guided_score(x, 0, float("nan"))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        lm.score(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="classes must be 4 integers"):
        LabelledMixture(lm.mixture, [0, 1, 1])
    with pytest.raises(ValueError, match="every class 0 … C − 1"):
        LabelledMixture(lm.mixture, [0, 0, 2, 2])
    zero = GaussianMixture(lm.mixture.means, 1.0, torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=F64))
    with pytest.raises(ValueError, match=r"p\(y\) > 0"):
        LabelledMixture(zero, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="sampler must be one of"):
        guided_sample(lm, VPSDE(), 0, 1.0, 10, "ddim")
    with pytest.raises(ValueError, match=r"x_T must be a tensor of shape \(10, 2\)"):
        guided_sample(lm, VPSDE(), 0, 1.0, 10, x_T=torch.zeros(5, 2, dtype=F64))
    with pytest.raises(ValueError, match="cond and uncond must be tensors of the same shape"):
        classifier_free_guidance(x, x[:2], 1.0)
    with pytest.raises(ValueError, match="w must be a finite number"):
        classifier_free_guidance(x, x, "two")
    with pytest.raises(ValueError, match="2-D LabelledMixture"):
        tilted_density(LabelledMixture(GaussianMixture(torch.zeros(1, 3), 1.0)), 0, 1.0)
