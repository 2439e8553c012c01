"""Controllable generation with a score model: conditioning and guidance, exactly, in 2-D (notebook 08).

Bayes' rule in score form (Song's 2021 essay): for a label y,

    ∇ₓ log p_t(x | y) = ∇ₓ log p_t(x) + ∇ₓ log p_t(y | x),

because log p_t(x | y) = log p_t(x) + log p_t(y | x) − log p(y) and p(y) does not depend on x: it drops
out of the score exactly as the normaliser Z did. An unconditional score model plus a classifier of
*noisy* inputs is a conditional score model. **Guidance** with scale γ uses

    s_γ(x, t) = ∇ₓ log p_t(x) + γ ∇ₓ log p_t(y | x),

the score of the *tilted* density π_{γ,t}(x) = p_t(x) p_t(y | x)^γ / Z_t(γ); it is the score of
p_t(x | y) only at γ = 1 (γ = 0: the unconditional p_t). **Classifier-free guidance** (Ho & Salimans
2022) writes the same score with a conditional and an unconditional model, since
∇ log p_t(y | x) = s(x, y) − s(x, ∅):

    s_γ = (1 + w) s(x, y) − w s(x, ∅),        w = γ − 1.

Everything here is exact for a Gaussian mixture whose components are grouped into classes
(:class:`LabelledMixture`): p(x, y) = Σ_{k: c_k = y} w_k N(x; μ_k, Σ_k). Its noisy marginals are again
labelled mixtures — VE: x_σ = x + σz gives N(μ_k, Σ_k + σ²I) (:meth:`LabelledMixture.perturb`); an SDE
with x_t = α_t x + σ_t z gives N(α_t μ_k, α_t² Σ_k + σ_t² I) (:meth:`LabelledMixture.marginal`) — so
p_t(y | x), its gradient and every score above have closed forms.

A caution that the tests and ``benchmarks/bench_guidance.py`` make concrete: the tilted family
{π_{γ,t}} is *not* the diffusion of its own t = 0 member for γ ∉ {0, 1} (p_t(y | x)^γ is not the noisy
version of p_0(y | x)^γ), so reverse-time sampling with s_γ does not, in general, end at
π_{γ,0} ∝ p_0(x) p_0(y | x)^γ; Langevin dynamics at one fixed small noise level does target π_{γ,σ}.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import NamedTuple

import torch

from scoretutor.checks import count, positive
from scoretutor.densities import GaussianMixture
from scoretutor.device import generator_device
from scoretutor.diffusion.samplers import predictor_corrector, probability_flow, reverse_sde
from scoretutor.diffusion.sde import SDE, check_time, marginal_mixture
from scoretutor.sampling import SamplerOutput, langevin, mala

Tensor = torch.Tensor
ScoreFn = Callable[[Tensor, Tensor], Tensor]

__all__ = [
    "LabelledMixture", "overlapping_classes", "classifier_free_guidance", "guided_score_fn",
    "conditional_score_fn", "classifier_free_score_fn", "TiltedDensity", "tilted_density", "ModeWeights",
    "tilted_prior_sample", "guided_sample", "guided_langevin", "SAMPLERS",
]

SAMPLERS = ("reverse_sde", "predictor_corrector", "probability_flow")


class ModeWeights(NamedTuple):
    """Mode weights E[r_k(x)] (or per class E[p(y | x)]) estimated from samples, with standard errors."""

    weights: Tensor
    stderr: Tensor
    n: int

    def __str__(self) -> str:
        pairs = zip(self.weights.tolist(), self.stderr.tolist(), strict=True)
        parts = [f"{m:.3f} ± {s:.3f}" for m, s in pairs]
        return f"mode weights [{', '.join(parts)}] (n = {self.n})"


def _normalise(log_terms: Tensor) -> Tensor:
    """exp(log_terms − logsumexp): a softmax over the last axis (torch.softmax is far slower on (N, 4) tensors
    on a busy CPU, as in ``sde.mixture_score_fn``); entries at −inf get 0."""
    return (log_terms - torch.logsumexp(log_terms, -1, keepdim=True)).exp()


def _weighted(coef: Tensor, g: Tensor) -> Tensor:
    """Σ_k coef_k g_k for coef (..., K) and g (..., K, d)."""
    return (coef.unsqueeze(-2) @ g).squeeze(-2)


def _number(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, RuntimeError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


class LabelledMixture:
    """A Gaussian mixture whose components are grouped into classes: p(x, y) = Σ_{k: c_k = y} w_k N_k(x).

    Args:
        mixture: the :class:`~scoretutor.densities.GaussianMixture` p(x) = Σ_k w_k N(x; μ_k, Σ_k).
        classes: (K,) integer class c_k of each component, using every class 0 … C − 1 at least once;
            None: each component is its own class (c_k = k), e.g. for ``ncsn_mixture()``.

    Then p(y) = Σ_{c_k = y} w_k, p(x | y) = Σ_{c_k = y} (w_k/p(y)) N_k(x) and the class posterior is the
    sum of the class's component responsibilities, p(y | x) = Σ_{c_k = y} r_k(x). Labels y are a class
    index (one class for the whole batch) or an integer tensor of shape x.shape[:-1] (one per point).
    """

    def __init__(self, mixture: GaussianMixture, classes=None):
        if not isinstance(mixture, GaussianMixture):
            raise ValueError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        K = mixture.n_components
        device = mixture.means.device
        if classes is None:
            classes = torch.arange(K, device=device)
        c = torch.as_tensor(classes, device=device)
        if c.shape != (K,) or c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
            raise ValueError(f"classes must be {K} integers (one class per component), got "
                             f"{c.tolist() if c.numel() <= 16 else tuple(c.shape)}")
        c = c.long()
        C = int(c.max()) + 1 if K else 0
        if (c < 0).any() or set(c.tolist()) != set(range(C)):
            raise ValueError(f"classes must use every class 0 … C − 1 (no gaps, none negative), "
                             f"got {c.tolist()}")
        prior = torch.zeros(C, dtype=mixture.weights.dtype, device=device).index_add_(0, c, mixture.weights)
        if (prior <= 0).any():
            raise ValueError(f"every class needs prior probability p(y) > 0, got p(y) = {prior.tolist()}")
        self.mixture, self.classes, self.n_classes, self._prior = mixture, c, C, prior
        # per component: log(w_k |2πΣ_k|^{-1/2}) and Σ_k⁻¹, for log(w_k N_k(x)) and g_k = −Σ_k⁻¹(x − μ_k)
        self._precision = torch.linalg.inv(mixture.covs)
        self._log_coef = (mixture.weights.log() - 0.5 * torch.logdet(mixture.covs)
                          - 0.5 * mixture.dim * math.log(2 * math.pi))
        self._conditionals: dict[int, GaussianMixture] = {}

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.mixture.dim

    @property
    def n_components(self) -> int:
        return self.mixture.n_components

    def __repr__(self) -> str:
        return f"LabelledMixture(K={self.n_components}, classes={self.classes.tolist()}, d={self.dim})"

    def class_prior(self) -> Tensor:
        """p(y) = Σ_{c_k = y} w_k, shape (C,)."""
        return self._prior.clone()

    def perturb(self, sigma: float) -> LabelledMixture:
        """The same classes on p_σ = p ∗ N(0, σ²I) (VE: x_σ = x + σz); σ > 0."""
        return LabelledMixture(self.mixture.perturb(sigma), self.classes)

    def marginal(self, sde: SDE, t: float) -> LabelledMixture:
        """The same classes on the SDE's marginal p_t = Σ w_k N(α_t μ_k, α_t² Σ_k + σ_t² I), t ∈ [0, 1]."""
        if not isinstance(sde, SDE):
            raise ValueError(f"sde must be a VESDE or VPSDE, got {type(sde).__name__}")
        tv = check_time(t, 1).item()
        return LabelledMixture(marginal_mixture(self.mixture, sde, tv), self.classes)

    def _check_x(self, x) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor of shape (..., {self.dim}), got "
                             f"{type(x).__name__ if not isinstance(x, Tensor) else x.dtype}")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {tuple(x.shape)}")
        return x

    def check_label(self, y, batch_shape: tuple[int, ...] | None = None) -> int | Tensor:
        """A class index 0 … C − 1 (int), or an integer tensor of such indices of shape ``batch_shape``."""
        allowed = f"a class index in 0 … {self.n_classes - 1}"
        if isinstance(y, Tensor) and y.ndim > 0:
            if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                raise ValueError(f"y must be {allowed} or an integer tensor of them, got dtype {y.dtype}")
            if batch_shape is not None and tuple(y.shape) != tuple(batch_shape):
                raise ValueError(f"y must be one label or one per point, shape {tuple(batch_shape)}, "
                                 f"got shape {tuple(y.shape)}")
            if ((y < 0) | (y >= self.n_classes)).any():
                bad = sorted(set(y[(y < 0) | (y >= self.n_classes)].tolist()))
                raise ValueError(f"y must be {allowed}, got unknown classes {bad[:8]}")
            return y.long()
        try:
            if isinstance(y, bool) or (isinstance(y, Tensor) and (y.is_floating_point()
                                                                   or y.dtype == torch.bool)):
                raise TypeError
            v = operator.index(y)
        except TypeError:
            raise ValueError(f"y must be {allowed}, got {y!r}") from None
        if not 0 <= v < self.n_classes:
            raise ValueError(f"y must be {allowed}, got {v}")
        return v

    def _mask(self, y: int | Tensor, x: Tensor) -> Tensor:
        """1[c_k = y], shape (K,) for one label or (..., K) for one per point."""
        classes = self.classes.to(x.device)
        return classes == (y[..., None].to(x.device) if isinstance(y, Tensor) else y)

    def _terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """log(w_k N_k(x)), shape (..., K), and the component scores g_k = −Σ_k⁻¹(x − μ_k), (..., K, d)."""
        means, prec, log_coef = (v.to(x.device, x.dtype) for v in (self.mixture.means, self._precision,
                                                                    self._log_coef))
        diff = x[..., None, :] - means
        g = -(prec @ diff[..., None]).squeeze(-1)
        return log_coef + 0.5 * (diff.unsqueeze(-2) @ g.unsqueeze(-1))[..., 0, 0], g

    # -- densities and the class posterior --------------------------------------------------
    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x), shape x.shape[:-1]."""
        return self.mixture.log_prob(self._check_x(x))

    def score(self, x: Tensor) -> Tensor:
        """∇ₓ log p(x) = Σ_k r_k(x) g_k(x), the unconditional score (s(x, ∅) in classifier-free terms)."""
        return self.mixture.score(self._check_x(x))

    def conditional(self, y: int) -> GaussianMixture:
        """p(x | y) = Σ_{c_k = y} (w_k / p(y)) N(μ_k, Σ_k): the class's own sub-mixture."""
        y = self.check_label(y)
        if not isinstance(y, int):
            raise ValueError(f"conditional needs one class index, got a tensor of shape {tuple(y.shape)}")
        if y not in self._conditionals:
            keep = self.classes == y
            m = self.mixture
            self._conditionals[y] = GaussianMixture(m.means[keep], m.covs[keep],
                                                    m.weights[keep] / self._prior[y])
        return self._conditionals[y]

    def _per_class(self, x: Tensor, y, fn: Callable[[GaussianMixture, Tensor], Tensor], trailing: tuple
                   ) -> Tensor:
        """fn(p(x | c), x) for the points whose label is c, for one label or one per point."""
        x = self._check_x(x)
        y = self.check_label(y, x.shape[:-1])
        if isinstance(y, int):
            return fn(self.conditional(y), x)
        y = y.to(x.device)
        out = x.new_empty(*x.shape[:-1], *trailing)
        for c in torch.unique(y).tolist():
            rows = y == c
            out[rows] = fn(self.conditional(c), x[rows])
        return out

    def conditional_log_prob(self, x: Tensor, y) -> Tensor:
        """log p(x | y), shape x.shape[:-1]."""
        return self._per_class(x, y, lambda m, xs: m.log_prob(xs), ())

    def conditional_score(self, x: Tensor, y) -> Tensor:
        """∇ₓ log p(x | y): the score of the class's sub-mixture (s(x, y) in classifier-free terms)."""
        return self._per_class(x, y, lambda m, xs: m.score(xs), (self.dim,))

    def class_posterior(self, x: Tensor) -> Tensor:
        """p(y | x) = Σ_{c_k = y} r_k(x) for every class, shape (..., C) (rows sum to 1)."""
        log_terms, _ = self._terms(self._check_x(x))
        r = _normalise(log_terms)
        return torch.zeros(*r.shape[:-1], self.n_classes, dtype=r.dtype, device=r.device).index_add_(
            -1, self.classes.to(r.device), r)

    def log_class_posterior(self, x: Tensor, y) -> Tensor:
        """log p(y | x) = logsumexp_{c_k = y} log(w_k N_k(x)) − logsumexp_k log(w_k N_k(x)), in log space
        (no underflow far from the class), shape x.shape[:-1]."""
        x = self._check_x(x)
        y = self.check_label(y, x.shape[:-1])
        log_terms, _ = self._terms(x)
        inside = log_terms.masked_fill(~self._mask(y, x), -math.inf)
        return torch.logsumexp(inside, -1) - torch.logsumexp(log_terms, -1)

    def classifier_gradient(self, x: Tensor, y) -> Tensor:
        """∇ₓ log p(y | x) = Σ_k (r_k(x | y) − r_k(x)) g_k(x), in closed form (no autograd).

        r_k(x) are the responsibilities of the whole mixture, r_k(x | y) = 1[c_k = y] r_k(x)/p(y | x) those
        within class y, g_k = −Σ_k⁻¹(x − μ_k). With one isotropic covariance v I for all components this is
        (E[μ_k | x, y] − E[μ_k | x])/v: it points from the mixture's posterior mean of the centres to the
        class's.
        """
        x = self._check_x(x)
        y = self.check_label(y, x.shape[:-1])
        log_terms, g = self._terms(x)
        r = _normalise(log_terms)
        r_y = _normalise(log_terms.masked_fill(~self._mask(y, x), -math.inf))
        return _weighted(r_y - r, g)

    def _scale(self, gamma, x: Tensor, name: str = "gamma") -> Tensor | float:
        if isinstance(gamma, Tensor) and gamma.ndim > 0:
            if gamma.shape != x.shape[:-1]:
                raise ValueError(f"{name} must be a number or one per point, shape {tuple(x.shape[:-1])}, "
                                 f"got shape {tuple(gamma.shape)}")
            if not torch.isfinite(gamma).all():
                raise ValueError(f"{name} must be finite, got non-finite values")
            return gamma.to(x.device, x.dtype)[..., None]
        return _number(gamma, name)

    def guided_score(self, x: Tensor, y, gamma) -> Tensor:
        """s_γ(x) = ∇ log p(x) + γ ∇ log p(y | x) = Σ_k ((1 − γ) r_k(x) + γ r_k(x | y)) g_k(x).

        The score of the tilted density p(x) p(y | x)^γ / Z(γ); γ = 0 is the unconditional score, γ = 1
        the conditional ∇ log p(x | y). ``gamma``: a number or one per point (shape x.shape[:-1]).
        """
        x = self._check_x(x)
        y = self.check_label(y, x.shape[:-1])
        gamma = self._scale(gamma, x)
        log_terms, g = self._terms(x)
        r = _normalise(log_terms)
        r_y = _normalise(log_terms.masked_fill(~self._mask(y, x), -math.inf))
        return _weighted((1 - gamma) * r + gamma * r_y, g)

    def log_tilted(self, x: Tensor, y, gamma) -> Tensor:
        """log p(x) + γ log p(y | x) = log π_γ(x) + log Z(γ): the tilted density, *unnormalised*."""
        x = self._check_x(x)
        gamma = self._scale(gamma, x)
        gamma = gamma.squeeze(-1) if isinstance(gamma, Tensor) else gamma
        return self.log_prob(x) + gamma * self.log_class_posterior(x, y)

    # -- mode weights of samples ------------------------------------------------------------
    def mode_weights(self, x: Tensor, by_class: bool = False) -> ModeWeights:
        """m_k = mean over the samples of the responsibility r_k(x) (``by_class``: of p(y | x)), with the
        standard error sd/√n of that mean (at most the binomial √(m(1 − m)/n), since 0 ≤ r ≤ 1).

        Soft weights rather than nearest-mode counts: for exact draws of p itself E[r_k] = w_k, the mixture
        weights, even where components overlap, and the grid value E_π[r_k] is a smooth integral. For
        another law π the m_k say how much of π's mass this mixture attributes to each component (or
        class); compare with :attr:`TiltedDensity.weights` (``class_weights``) computed from the same
        mixture.
        """
        x = self._check_x(x)
        pts = x.reshape(-1, self.dim)
        if pts.shape[0] < 2:
            raise ValueError(f"mode_weights needs at least 2 samples, got {pts.shape[0]}")
        r = self.class_posterior(pts) if by_class else _normalise(self._terms(pts)[0])
        n = pts.shape[0]
        return ModeWeights(r.mean(0), r.std(0) / math.sqrt(n), n)


def overlapping_classes(dtype: torch.dtype | None = None, device=None) -> LabelledMixture:
    """Notebook 08's example: two classes that overlap, so p(y | x) is soft and guidance visibly sharpens.

    Four unit-variance Gaussians, weight ¼ each: class 0 has components at (−3, 0) and (0, 1), class 1
    at (3, 0) and (0, −1). The two inner components, one of each class, sit 2 apart in the middle, where
    p(y | x) is close to ½; the outer ones are each their class's confident region.
    """
    means = torch.tensor([[-3.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, -1.0]], dtype=dtype, device=device)
    weights = torch.full((4,), 0.25, dtype=means.dtype, device=device)
    return LabelledMixture(GaussianMixture(means, 1.0, weights), torch.tensor([0, 0, 1, 1], device=device))


def classifier_free_guidance(cond: Tensor, uncond: Tensor, w) -> Tensor:
    """(1 + w) s(x, y) − w s(x, ∅): classifier-free guidance, = s(x, ∅) + γ (s(x, y) − s(x, ∅)), γ = 1 + w.

    With exact scores s(x, y) − s(x, ∅) = ∇ log p(y | x), so this is the classifier-guided score with scale
    γ = 1 + w; w = 0 is plain conditional sampling. ``w``: a number, or a tensor that broadcasts.
    """
    if not (isinstance(cond, Tensor) and isinstance(uncond, Tensor)) or cond.shape != uncond.shape:
        got = [tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for v in (cond, uncond)]
        raise ValueError(f"cond and uncond must be tensors of the same shape, got {got[0]} and {got[1]}")
    if not (isinstance(w, Tensor) and w.ndim > 0):
        w = _number(w, "w")
    return (1 + w) * cond - w * uncond


# -- score functions for the samplers -------------------------------------------------------------
def _time_cached(labelled: LabelledMixture, sde: SDE, y,
                 one: Callable[[LabelledMixture, Tensor, object], Tensor]) -> ScoreFn:
    """score_fn(x, t) = one(labelled.marginal(sde, t), x, y), the marginal cached per time."""
    if not isinstance(labelled, LabelledMixture):
        raise ValueError(f"labelled must be a LabelledMixture, got {type(labelled).__name__}")
    if not isinstance(sde, SDE):
        raise ValueError(f"sde must be a VESDE or VPSDE, got {type(sde).__name__}")
    if not (isinstance(y, Tensor) and y.ndim > 0):
        y = labelled.check_label(y)
    cache: dict[float, LabelledMixture] = {}

    def at(tv: float) -> LabelledMixture:
        if tv not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[tv] = labelled.marginal(sde, tv)
        return cache[tv]

    def score_fn(x: Tensor, t: Tensor) -> Tensor:
        t = check_time(t, x.shape[0], torch.float64, "cpu")
        if bool((t == t[0]).all()):
            return one(at(t[0].item()), x, y)
        out = torch.empty_like(x)
        for tv in torch.unique(t).tolist():
            rows = (t == tv).to(x.device)
            out[rows] = one(at(tv), x[rows], y[rows] if isinstance(y, Tensor) and y.ndim > 0 else y)
        return out

    return score_fn


def guided_score_fn(labelled: LabelledMixture, sde: SDE, y, gamma: float = 1.0) -> ScoreFn:
    """score_fn(x, t) = ∇ log p_t(x) + γ ∇ log p_t(y | x) of the mixture's exact marginals, for the samplers.

    ``y``: a class index or one per sample (an (N,) tensor); γ = 1: the exact conditional score.
    """
    gamma = _number(gamma, "gamma")
    return _time_cached(labelled, sde, y, lambda m, x, yy: m.guided_score(x, yy, gamma))


def conditional_score_fn(labelled: LabelledMixture, sde: SDE, y) -> ScoreFn:
    """score_fn(x, t) = ∇ log p_t(x | y): the exact score of the class's own noisy sub-mixture."""
    return _time_cached(labelled, sde, y, lambda m, x, yy: m.conditional_score(x, yy))


def classifier_free_score_fn(cond_fn: ScoreFn, uncond_fn: ScoreFn, w: float) -> ScoreFn:
    """score_fn(x, t) = (1 + w) cond_fn(x, t) − w uncond_fn(x, t), for any two score functions (networks
    too): the classifier-free form of guidance with scale γ = 1 + w."""
    w = _number(w, "w")
    return lambda x, t: classifier_free_guidance(cond_fn(x, t), uncond_fn(x, t), w)


# -- the exact tilted density on a grid -----------------------------------------------------------
class TiltedDensity(NamedTuple):
    """π_γ(x) = p(x) p(y | x)^γ / Z(γ) on the cell centres of an n×n grid over [−lim, lim]².

    ``log_prob``: log π_γ at ``points`` (shape (n·n,)), normalised so that Σ π_γ · ``cell_area`` = 1;
    ``log_normaliser``: log Z(γ) = log ∫ p(x) p(y | x)^γ dx by the same midpoint rule (log p(y) at
    γ = 1, 0 at γ = 0: checks of the grid); ``weights`` / ``class_weights``: the mode weights
    E_π[r_k(x)] / E_π[p(c | x)] (see :meth:`LabelledMixture.mode_weights`). For the smooth, fast-decaying
    integrands here the midpoint rule converges faster than any power of the cell size once the box holds
    the mass, so these are exact to far below any Monte-Carlo error.
    """

    points: Tensor
    log_prob: Tensor
    log_normaliser: float
    cell_area: float
    n: int
    lim: float
    weights: Tensor
    class_weights: Tensor

    def prob_grid(self) -> Tensor:
        """π_γ as an (n, n) image, rows along the second coordinate (``plotting.grid``'s layout)."""
        return self.log_prob.exp().reshape(self.n, self.n)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of π_γ (up to the grid): a cell with probability π_γ · area, then uniform within it."""
        n = count(n, "n", 1)
        device = generator_device(generator, self.points.device)
        p = (self.log_prob - self.log_prob.max()).exp().to(device)
        idx = torch.multinomial(p, n, replacement=True, generator=generator).to(self.points.device)
        h = math.sqrt(self.cell_area)
        u = torch.rand(n, self.points.shape[1], generator=generator, dtype=self.points.dtype, device=device)
        return self.points[idx] + (u.to(self.points.device) - 0.5) * h


@torch.no_grad()
def tilted_density(labelled: LabelledMixture, y: int, gamma: float, lim: float = 10.0, n: int = 400,
                   dtype: torch.dtype = torch.float64) -> TiltedDensity:
    """The exact tilted density π_γ ∝ p(x) p(y | x)^γ of ``labelled`` (2-D), normalised numerically.

    ``labelled`` is the density at the noise level wanted (e.g. ``lm.marginal(sde, sde.t_min)`` or
    ``lm.perturb(σ)``); γ = 1 gives p(x | y), γ = 0 gives p(x). The grid is n×n cell centres over
    [−lim, lim]²; the box must hold the mass (it is the caller's to choose; 10 holds the examples here).
    """
    if not isinstance(labelled, LabelledMixture) or labelled.dim != 2:
        raise ValueError(f"tilted_density needs a 2-D LabelledMixture, got {labelled!r}")
    y = labelled.check_label(y)
    if not isinstance(y, int):
        raise ValueError("tilted_density needs one class index y")
    gamma = _number(gamma, "gamma")
    lim = positive(lim, "lim")
    n = count(n, "n", 2)
    h = 2 * lim / n
    axis = -lim + h * (torch.arange(n, dtype=dtype) + 0.5)
    X, Y = torch.meshgrid(axis, axis, indexing="xy")
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], -1).to(labelled.mixture.means.device)
    log_un = labelled.log_tilted(pts, y, gamma)
    log_z = (torch.logsumexp(log_un, 0) + math.log(h * h)).item()
    log_prob = log_un - log_z
    mass = (log_prob.exp() * h * h)[:, None]
    r = _normalise(labelled._terms(pts)[0])
    return TiltedDensity(pts, log_prob, log_z, h * h, n, lim, (mass * r).sum(0),
                         (mass * labelled.class_posterior(pts)).sum(0))


# -- sampling ------------------------------------------------------------------------------------
def tilted_prior_sample(labelled: LabelledMixture, sde: SDE, y: int, gamma: float, n: int,
                        generator: torch.Generator | None = None, grid: int = 400) -> Tensor:
    """n draws of π_{γ,1} ∝ p_1(x) p_1(y | x)^γ, the tilted density at t = 1 (2-D, by :func:`tilted_density`
    on a ``grid``² grid whose box holds p_1: 8 of its largest standard deviations around its means).

    A start for :func:`guided_sample` that takes the prior's mismatch out of a comparison: at γ = 1 it is
    p_1(x | y), at γ = 0 the exact p_1.
    """
    top = labelled.marginal(sde, 1.0)
    spread = torch.linalg.eigvalsh(top.mixture.covs).max().sqrt().item()
    lim = top.mixture.means.abs().max().item() + 8 * spread
    return tilted_density(top, y, gamma, lim, grid).sample(n, generator)


def guided_sample(labelled: LabelledMixture, sde: SDE, y, gamma: float, n: int, sampler: str = "reverse_sde",
                  n_steps: int = 500, generator: torch.Generator | None = None, x_T: Tensor | None = None,
                  dtype: torch.dtype | None = None, **kwargs) -> SamplerOutput:
    """n samples by reverse-time sampling with the exact guided score s_γ (:func:`guided_score_fn`).

    ``sampler``: ``"reverse_sde"`` (Euler–Maruyama, ``n_steps``), ``"predictor_corrector"`` (``n_steps``;
    kwargs ``snr``, ``n_corrector``) or ``"probability_flow"`` (adaptive RK45; kwargs ``rtol``, ``atol``;
    ``n_steps`` unused). Samples end at t = ``sde.t_min``. ``x_T``: the (n, d) starting points at t = 1;
    None draws them from the SDE's prior N(0, σ_prior² I), which is what a sampler does in practice but is
    not p_1(x | y): VE's prior ignores the class's mean (KL ≈ ‖E[x | y]‖²/(2σ_max²)). The probability-flow
    ODE carries that mismatch to its samples (~0.01 in the mode weights here); the reverse SDE all but
    forgets its start. :func:`tilted_prior_sample` starts from π_{γ,1} instead.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    n = count(n, "n", 1)
    if isinstance(y, Tensor) and y.ndim > 0:
        labelled.check_label(y, (n,))
    dtype = dtype or labelled.mixture.means.dtype
    score = guided_score_fn(labelled, sde, y, gamma)
    if x_T is None:
        device = labelled.mixture.means.device
        x_T = sde.prior_sample((n, labelled.dim), generator, dtype=dtype, device=device)
    elif not isinstance(x_T, Tensor) or tuple(x_T.shape) != (n, labelled.dim):
        got = tuple(x_T.shape) if isinstance(x_T, Tensor) else type(x_T).__name__
        raise ValueError(f"x_T must be a tensor of shape ({n}, {labelled.dim}), got {got}")
    if sampler == "probability_flow":
        return probability_flow(score, sde, x_T, **kwargs)
    kwargs.setdefault("progress", False)
    run = reverse_sde if sampler == "reverse_sde" else predictor_corrector
    return run(score, sde, x_T, count(n_steps, "n_steps", 1), generator=generator, **kwargs)


def guided_langevin(labelled: LabelledMixture, y, gamma: float, sigma: float, x0: Tensor, step_size: float,
                    n_steps: int, generator: torch.Generator | None = None, metropolis: bool = False,
                    **kwargs) -> SamplerOutput:
    """Langevin dynamics at one fixed noise level σ with the guided score of p_σ = p ∗ N(0, σ²I):

        x ← x + ε (∇ log p_σ(x) + γ ∇ log p_σ(y | x)) + √(2ε) z,

    whose stationary law (as ε → 0, after enough steps to cross between modes) is the tilted
    π_{γ,σ} ∝ p_σ(x) p_σ(y | x)^γ; for small σ that is close to p(x) p(y | x)^γ. ``metropolis``: MALA
    with log π_{γ,σ} + log Z (:meth:`LabelledMixture.log_tilted`), which leaves π_{γ,σ} invariant at any ε.
    kwargs go to :func:`scoretutor.sampling.langevin` / ``mala`` (``return_trajectory``, ``progress``, …).
    """
    level = labelled.perturb(sigma)
    if isinstance(y, Tensor) and y.ndim > 0:
        level.check_label(y, tuple(x0.shape[:-1]))
    else:
        level.check_label(y)
    gamma = _number(gamma, "gamma")
    kwargs.setdefault("progress", False)
    score = lambda x: level.guided_score(x, y, gamma)  # noqa: E731
    if metropolis:
        return mala(lambda x: level.log_tilted(x, y, gamma), x0, step_size, n_steps, score_fn=score,
                    generator=generator, **kwargs)
    return langevin(score, x0, step_size, n_steps, generator=generator, **kwargs)
