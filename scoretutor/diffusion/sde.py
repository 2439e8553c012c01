"""Score models as stochastic differential equations (Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole
2021).

Perturbing data with ever more noise is a forward SDE on t ∈ [0, 1],

    dx = f(x, t) dt + g(t) dw,

whose marginals p_t go from (nearly) the data, p_0, to a simple prior, p_1. Anderson (1982): the
same marginals are produced backwards in time by the **reverse SDE**

    dx = [f(x, t) − g(t)² ∇ₓ log p_t(x)] dt + g(t) dw̄        (t from 1 to 0),

and, deterministically, by the **probability-flow ODE**

    dx/dt = f(x, t) − ½ g(t)² ∇ₓ log p_t(x).

Both need only the score ∇ₓ log p_t, i.e. a noise-conditional score model. Two SDEs cover the
lecture:

- ``VESDE`` (variance exploding, the continuous limit of NCSN's geometric σ's):
  f = 0, g(t) = σ(t)·√(2 log(σ_max/σ_min)), σ(t) = σ_min (σ_max/σ_min)^t; x_t = x_data + σ(t) z.
- ``VPSDE`` (variance preserving, the continuous limit of DDPM's β's):
  f = −½ β(t) x, g(t) = √β(t), β(t) = β_min + t (β_max − β_min);
  x_t = α_t x_data + σ_t z with α_t = exp(−½ ∫₀ᵗ β(s) ds), σ_t² = 1 − α_t².

Conventions: t is a Python number or a tensor of shape (N,) (one time per example); score
functions are called as ``score_fn(x, t)`` with t of shape (N,). ``marginal(t)`` returns (α_t, σ_t)
as (N,) tensors. For the VE SDE, p_0 = p_data ∗ N(0, σ_min² I): the SDE starts from data already
perturbed by σ_min, so its marginal at t is exactly p_data ∗ N(0, σ(t)² I) (score_sde_pytorch's
convention). Noise levels are named so they cannot be misread: ``sigma_min`` < ``sigma_max``
whatever order a paper numbers them in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor import checks
from scoretutor.checks import positive
from scoretutor.densities import GaussianMixture
from scoretutor.device import generator_device, randn_like
from scoretutor.losses import continuous_ncsn_loss, ncsn_loss

Tensor = torch.Tensor
ScoreFn = Callable[[Tensor, Tensor], Tensor]

__all__ = [
    "SDE", "VESDE", "VPSDE", "check_time", "sigma_model_score_fn", "eps_model_score_fn",
    "score_from_eps", "eps_from_score", "marginal_mixture", "mixture_score_fn", "mixture_prior_log_prob",
    "marginal_ks_distance",
]


def _expand(v: Tensor, x: Tensor) -> Tensor:
    """An (N,) tensor shaped (N, 1, …, 1) to broadcast against x."""
    return v.reshape(-1, *([1] * (x.ndim - 1)))


def check_time(t, n: int | None = None, dtype=None, device=None, name: str = "t") -> Tensor:
    """t ∈ [0, 1] as a 1-D tensor: a number (repeated n times if n is given) or an (N,) tensor."""
    if dtype is None:  # numbers in float64, tensors keep their dtype
        dtype = t.dtype if isinstance(t, Tensor) and t.is_floating_point() else torch.float64
    tt = torch.as_tensor(t, dtype=dtype, device=device)
    if tt.ndim == 0:
        tt = tt.reshape(1).expand(n if n is not None else 1)
    if tt.ndim != 1 or (n is not None and tt.shape[0] != n):
        want = f"({n},)" if n is not None else "(N,)"
        raise ValueError(f"{name} must be a number or a tensor of shape {want}, got shape {tuple(tt.shape)}")
    if not (torch.isfinite(tt).all() and (tt >= 0).all() and (tt <= 1).all()):
        shown = tt.tolist() if tt.numel() <= 8 else f"range [{tt.min().item():.3g}, {tt.max().item():.3g}]"
        raise ValueError(f"{name} must lie in [0, 1], got {shown}")
    return tt


def _check_x(x) -> Tensor:
    return checks.batch(x, "x")


class SDE:
    """A linear forward SDE dx = f(x, t) dt + g(t) dw on t ∈ [0, 1] with Gaussian perturbation kernels.

    Subclasses define ``drift_coef(t)`` (f(x, t) = drift_coef(t)·x), ``diffusion(t)`` (g(t)),
    ``marginal(t)`` (α_t, σ_t), ``prior_sample`` and ``prior_log_prob``. ``t_min`` is the smallest
    time samplers and likelihoods go down to (where σ_t > 0).
    """

    t_min: float = 0.0

    # -- to be defined by each SDE -------------------------------------------------------------
    def drift_coef(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def diffusion(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def prior_std(self) -> float:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------
    def sde(self, x: Tensor, t) -> tuple[Tensor, Tensor]:
        """(f(x, t), g(t)): the drift, shaped like x, and the diffusion coefficient, shape (N,)."""
        x = _check_x(x)
        t = check_time(t, x.shape[0], x.dtype, x.device)
        return _expand(self.drift_coef(t), x) * x, self.diffusion(t)

    def reverse_drift(self, x: Tensor, t, score: Tensor) -> Tensor:
        """f(x, t) − g(t)² s: the drift of the reverse SDE dx = [f − g² ∇log p_t] dt + g dw̄."""
        f, g = self.sde(x, t)
        return f - _expand(g**2, x) * score

    def ode_drift(self, x: Tensor, t, score: Tensor) -> Tensor:
        """f(x, t) − ½ g(t)² s: the right-hand side of the probability-flow ODE."""
        f, g = self.sde(x, t)
        return f - 0.5 * _expand(g**2, x) * score

    def transition(self, t_from, t_to) -> tuple[Tensor, Tensor]:
        """(a, G) of the exact forward step x_{t_to} = a·x_{t_from} + G·z for t_from < t_to.

        From the marginals: a = α_{t_to}/α_{t_from} and G² = σ_{t_to}² − a² σ_{t_from}². For VE,
        a = 1, G² = σ(t_to)² − σ(t_from)²; for VP, G² = 1 − a² (DDPM's β_i). The reverse-diffusion
        predictor inverts this step (see ``sampling.predictor_corrector``).
        """
        a_from, s_from = self.marginal(t_from)
        a_to, s_to = self.marginal(t_to)
        if (torch.as_tensor(t_from) > torch.as_tensor(t_to)).any():
            raise ValueError(f"need t_from <= t_to, got t_from={t_from}, t_to={t_to}")
        a = a_to / a_from
        return a, (s_to**2 - a**2 * s_from**2).clamp_min(0).sqrt()

    def prior_sample(self, shape, generator: torch.Generator | None = None, dtype=None,
                     device=None) -> Tensor:
        """x_1 ~ N(0, σ_prior² I), the prior the samplers start from, of the given shape."""
        shape = tuple(shape)
        if len(shape) < 2 or any(int(s) != s or s < 1 for s in shape):
            raise ValueError(f"shape must be (N, ...) with positive sizes, got {shape}")
        z = randn_like(torch.empty(shape, dtype=dtype or torch.get_default_dtype(), device=device), generator)
        return self.prior_std() * z

    def prior_log_prob(self, x: Tensor) -> Tensor:
        """log N(x; 0, σ_prior² I) per example, shape (N,): −‖x‖²/(2σ²) − (D/2) log(2πσ²)."""
        x = _check_x(x)
        s2 = self.prior_std() ** 2
        d = x[0].numel()
        return -x.reshape(x.shape[0], -1).pow(2).sum(-1) / (2 * s2) - 0.5 * d * math.log(2 * math.pi * s2)


class VESDE(SDE):
    """Variance-exploding SDE: dx = √(d[σ²(t)]/dt) dw with σ(t) = σ_min (σ_max/σ_min)^t.

    g(t) = σ(t) √(2 log(σ_max/σ_min)), f = 0; x_t = x_data + σ(t) z, so α_t = 1, σ_t = σ(t).
    Prior N(0, σ_max² I): it ignores the data (mean and spread) and is accurate only if σ_max is
    much larger than the data's extent (NCSNv2's Technique 1).
    NCSN's geometric σ's are this σ(t) at equally spaced times: ``sigma(times(L))`` with
    ``times(L) = linspace(1, 0, L)`` equals ``geometric_sigmas(sigma_max, sigma_min, L)``.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        self.sigma_min = positive(sigma_min, "sigma_min")
        self.sigma_max = positive(sigma_max, "sigma_max")
        if not self.sigma_min < self.sigma_max:
            raise ValueError(f"need sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)

    def __repr__(self) -> str:
        return f"VESDE(sigma_min={self.sigma_min:g}, sigma_max={self.sigma_max:g})"

    def sigma(self, t) -> Tensor:
        """σ(t) = σ_min (σ_max/σ_min)^t."""
        t = check_time(t, device=t.device if isinstance(t, Tensor) else None)
        return self.sigma_min * torch.exp(t * self.log_ratio)

    def t_from_sigma(self, sigma) -> Tensor:
        """The VE time of a noise level: t = log(σ/σ_min) / log(σ_max/σ_min), σ ∈ [σ_min, σ_max]."""
        s = torch.as_tensor(sigma, dtype=sigma.dtype if isinstance(sigma, Tensor) else torch.float64)
        lo, hi = self.sigma_min * (1 - 1e-6), self.sigma_max * (1 + 1e-6)  # rounding of σ(t) at the ends
        if not (torch.isfinite(s).all() and (s >= lo).all() and (s <= hi).all()):
            raise ValueError(f"sigma must lie in [sigma_min, sigma_max] = "
                             f"[{self.sigma_min:g}, {self.sigma_max:g}], "
                             f"got {s.tolist() if s.numel() <= 8 else s}")
        return (torch.log(s / self.sigma_min) / self.log_ratio).clamp(0, 1)

    @classmethod
    def from_sigmas(cls, sigmas) -> VESDE:
        """The VE SDE through NCSN's schedule σ_max = σ_1 > … > σ_L = σ_min (first and last level)."""
        s = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if s.numel() < 2 or not (s[1:] < s[:-1]).all() or not (s > 0).all():
            raise ValueError(f"sigmas must be >= 2 positive levels in decreasing order (σ_max first), "
                             f"got {s.tolist()}")
        return cls(sigma_min=float(s[-1]), sigma_max=float(s[0]))

    @staticmethod
    def times(n: int, dtype=None) -> Tensor:
        """n equally spaced times from 1 to 0: where NCSN's n geometric levels sit on the VE SDE."""
        if int(n) != n or n < 2:
            raise ValueError(f"n must be an integer >= 2, got {n!r}")
        return torch.linspace(1.0, 0.0, int(n), dtype=dtype or torch.float64)

    def drift_coef(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def diffusion(self, t: Tensor) -> Tensor:
        """g(t) = σ(t) √(2 log(σ_max/σ_min)), so that g² = d[σ²]/dt."""
        return self.sigma(t) * math.sqrt(2 * self.log_ratio)

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        """(α_t, σ_t) = (1, σ(t)): x_t = x_data + σ(t) z."""
        s = self.sigma(t)
        return torch.ones_like(s), s

    def prior_std(self) -> float:
        return self.sigma_max


class VPSDE(SDE):
    """Variance-preserving SDE: dx = −½ β(t) x dt + √β(t) dw, β(t) = β_min + t (β_max − β_min).

    x_t = α_t x_data + σ_t z with α_t = exp(−½ B(t)), B(t) = ∫₀ᵗ β = β_min t + ½ (β_max − β_min) t²,
    σ_t² = 1 − α_t². Prior N(0, I). DDPM's discrete β_1 < … < β_N (Ho et al. 2020) are
    β_i = β((i − 1)/(N − 1))/N, i.e. ``ddpm_betas(N)``; ``from_ddpm_betas`` inverts it.
    σ_0 = 0, so samplers and likelihoods stop at ``t_min = 1e-3`` (as score_sde_pytorch does).
    """

    t_min = 1e-3

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min = positive(beta_min, "beta_min")
        self.beta_max = positive(beta_max, "beta_max")
        if not self.beta_min <= self.beta_max:
            raise ValueError(f"need beta_min <= beta_max, got beta_min={beta_min}, beta_max={beta_max}")

    def __repr__(self) -> str:
        return f"VPSDE(beta_min={self.beta_min:g}, beta_max={self.beta_max:g})"

    def beta(self, t) -> Tensor:
        t = check_time(t, device=t.device if isinstance(t, Tensor) else None)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t) -> Tensor:
        """B(t) = ∫₀ᵗ β(s) ds = β_min t + ½ (β_max − β_min) t²."""
        t = check_time(t, device=t.device if isinstance(t, Tensor) else None)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def ddpm_betas(self, n: int, dtype=None) -> Tensor:
        """DDPM's N discrete betas: β_i = (β_min + (i−1)/(N−1) (β_max − β_min)) / N, i = 1 … N."""
        if int(n) != n or n < 2:
            raise ValueError(f"n must be an integer >= 2, got {n!r}")
        return torch.linspace(self.beta_min / n, self.beta_max / n, int(n), dtype=dtype or torch.float64)

    @classmethod
    def from_ddpm_betas(cls, betas) -> VPSDE:
        """The VP SDE whose ``ddpm_betas(N)`` are these N linear betas (β_min = N β_1, β_max = N β_N)."""
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        n = b.numel()
        if n < 2 or not ((b > 0).all() and (b < 1).all()):
            raise ValueError(f"betas must be >= 2 values in (0, 1), got {b.tolist() if n <= 8 else b}")
        line = torch.linspace(float(b[0]), float(b[-1]), n, dtype=torch.float64)
        if not torch.allclose(b, line, rtol=1e-6, atol=1e-12):
            raise ValueError("betas must be linearly spaced (DDPM's linear schedule) to define a VP SDE")
        return cls(beta_min=float(b[0]) * n, beta_max=float(b[-1]) * n)

    def drift_coef(self, t: Tensor) -> Tensor:
        return -0.5 * self.beta(t)

    def diffusion(self, t: Tensor) -> Tensor:
        return self.beta(t).sqrt()

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        """(α_t, σ_t) = (exp(−½B(t)), √(1 − exp(−B(t))))."""
        b = self.integrated_beta(t)
        return torch.exp(-0.5 * b), (-torch.expm1(-b)).sqrt()

    def prior_std(self) -> float:
        return 1.0


# -- models and conversions ----------------------------------------------------------------------
def score_from_eps(eps: Tensor, sigma_t) -> Tensor:
    """s = −ε/σ_t: an ε-prediction (x_t = α_t x₀ + σ_t ε) is a rescaled score, since
    ∇ log N(x_t; α_t x₀, σ_t² I) = −ε/σ_t and the best ε-predictor is E[ε | x_t]."""
    s = torch.as_tensor(sigma_t, dtype=eps.dtype, device=eps.device)
    return -eps / (_expand(s, eps) if s.ndim == 1 else s)


def eps_from_score(score: Tensor, sigma_t) -> Tensor:
    """ε = −σ_t s, the inverse of :func:`score_from_eps`."""
    s = torch.as_tensor(sigma_t, dtype=score.dtype, device=score.device)
    return -score * (_expand(s, score) if s.ndim == 1 else s)


def sigma_model_score_fn(model: Callable[[Tensor, Tensor], Tensor], sde: VESDE) -> ScoreFn:
    """score_fn(x, t) = model(x, σ(t)): a σ-conditioned NCSN model (``model(x, sigma)``) on the VE SDE."""
    if not isinstance(sde, VESDE):
        raise ValueError(f"a σ-conditioned model is a VE-SDE score; sde must be a VESDE, got {sde!r}")

    def score_fn(x: Tensor, t: Tensor) -> Tensor:
        t = check_time(t, x.shape[0], x.dtype, x.device)
        return model(x, sde.sigma(t))

    return score_fn


def eps_model_score_fn(eps_model: Callable[[Tensor, Tensor], Tensor], sde: SDE) -> ScoreFn:
    """score_fn(x, t) = −eps_model(x, σ_t)/σ_t for an ε-prediction model conditioned on σ_t.

    σ_t is monotone in t, so conditioning on σ_t is conditioning on t (and lets the same
    ``NoiseConditionalScoreMLP`` serve as an ε-network with ``scale_by_sigma=False``).
    """

    def score_fn(x: Tensor, t: Tensor) -> Tensor:
        t = check_time(t, x.shape[0], x.dtype, x.device)
        _, sigma_t = sde.marginal(t)
        return score_from_eps(eps_model(x, sigma_t), sigma_t)

    return score_fn


# -- exact marginals of a Gaussian mixture -------------------------------------------------------
def marginal_mixture(mixture: GaussianMixture, sde: SDE, t: float) -> GaussianMixture:
    """p_t for data p = Σ w_k N(μ_k, Σ_k): Σ w_k N(α_t μ_k, α_t² Σ_k + σ_t² I), exact."""
    a, s = (v.item() for v in sde.marginal(torch.tensor([float(t)], dtype=torch.float64)))
    eye = torch.eye(mixture.dim, dtype=mixture.covs.dtype, device=mixture.covs.device)
    return GaussianMixture(a * mixture.means, a**2 * mixture.covs + s**2 * eye, mixture.weights)


def mixture_score_fn(mixture: GaussianMixture, sde: SDE) -> ScoreFn:
    """The exact score_fn(x, t) = ∇ₓ log p_t(x) of a Gaussian mixture's marginals.

    p_t = Σ w_k N(m_k, C_k) with m_k = α_t μ_k, C_k = α_t² Σ_k + σ_t² I, so
    ∇ log p_t(x) = −Σ_k r_k(x) C_k⁻¹ (x − m_k), r_k ∝ w_k N(x; m_k, C_k). The (m_k, C_k⁻¹, log w_k −
    ½ log|C_k|) of each time are cached, which makes this cheap enough for thousands of solver steps.
    """
    cache: dict[float, tuple[Tensor, Tensor, Tensor]] = {}
    eye = torch.eye(mixture.dim, dtype=torch.float64)
    means, covs = mixture.means.double().cpu(), mixture.covs.double().cpu()
    log_w = mixture.weights.double().cpu().log()

    def terms(tv: float, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if tv not in cache:
            if len(cache) > 4096:
                cache.clear()
            a, s = (v.item() for v in sde.marginal(torch.tensor([tv], dtype=torch.float64)))
            c = a**2 * covs + s**2 * eye
            cache[tv] = (a * means, torch.linalg.inv(c), log_w - 0.5 * torch.logdet(c))
        return tuple(v.to(like.device, like.dtype) for v in cache[tv])

    def one_time(x: Tensor, tv: float) -> Tensor:
        m, prec, log_coef = terms(tv, x)
        diff = x[:, None, :] - m  # (N, K, d)
        pd = torch.einsum("kij,nkj->nki", prec, diff)  # C_k⁻¹ (x − m_k)
        log_r = log_coef - 0.5 * (diff * pd).sum(-1)  # (N, K)
        # normalised by logsumexp: torch.softmax on a (N, 2) tensor is ~100× slower on a busy 2-core CPU
        r = (log_r - torch.logsumexp(log_r, dim=-1, keepdim=True)).exp()
        return -(r[..., None] * pd).sum(1)

    def score_fn(x: Tensor, t: Tensor) -> Tensor:
        t = check_time(t, x.shape[0], torch.float64, "cpu")
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != mixture.dim:
            raise ValueError(f"x must hold {mixture.dim} numbers per example, got shape {tuple(x.shape)}")
        if bool((t == t[0]).all()):
            return one_time(flat, t[0].item()).reshape(x.shape)
        out = torch.empty_like(flat)
        for tv in torch.unique(t).tolist():
            rows = (t == tv).to(x.device)
            out[rows] = one_time(flat[rows], tv)
        return out.reshape(x.shape)

    return score_fn


def mixture_prior_log_prob(mixture: GaussianMixture, sde: SDE, t: float = 1.0) -> Callable[[Tensor], Tensor]:
    """log p_t(x) of the mixture's exact marginal at time t (default 1): the *exact* prior."""
    p_t = marginal_mixture(mixture, sde, t)
    return lambda x: p_t.log_prob(x.reshape(x.shape[0], -1))


def marginal_ks_distance(x: Tensor, mixture: GaussianMixture, sde: SDE, t: float) -> float:
    """Kolmogorov–Smirnov distance sup_y |F_N(y) − F_t(y)| between 1-D samples x, shape (N,) or (N, 1),
    and the exact marginal p_t of a 1-D Gaussian mixture, F_t(y) = Σ w_k Φ((y − α_t μ_k)/√(α_t² v_k + σ_t²)).

    For N exact draws of p_t, √N·KS is asymptotically Kolmogorov-distributed: P(KS > 1.95/√N) ≈ 0.001.
    """
    if mixture.dim != 1:
        raise ValueError(f"marginal_ks_distance needs a 1-D mixture, got dim = {mixture.dim}")
    y = _check_x(x).reshape(x.shape[0], -1)
    if y.shape[1] != 1:
        raise ValueError(f"x must hold one number per example, got shape {tuple(x.shape)}")
    p_t = marginal_mixture(mixture, sde, t)
    y = torch.sort(y[:, 0].double().cpu()).values
    means, stds = p_t.means[:, 0].double().cpu(), p_t.covs[:, 0, 0].double().cpu().sqrt()
    cdf = (p_t.weights.double().cpu() * torch.special.ndtr((y[:, None] - means) / stds)).sum(-1)
    n = y.numel()
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - cdf
    below = cdf - torch.arange(n, dtype=torch.float64) / n
    return max(above.max().item(), below.max().item())


# -- training objectives in continuous time (both reuse ``losses.ncsn_loss``) ---------------------
def _uniform_times(n: int, t_min: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    u = torch.rand(n, generator=generator, dtype=like.dtype, device=generator_device(generator, like.device))
    return (t_min + (1 - t_min) * u).to(like.device)


def ve_loss(model: Callable[[Tensor, Tensor], Tensor], x: Tensor, sde: VESDE,
            generator: torch.Generator | None = None) -> Tensor:
    """NCSN's loss with σ drawn continuously: t ~ U[0, 1], σ = σ(t), λ(σ) = σ².

    = E_t ½ σ(t)² ‖s_θ(x + σ(t) z, σ(t)) + z/σ(t)‖², the continuous-time VE objective of
    score_sde_pytorch. σ(t) with t uniform is σ log-uniform on [σ_min, σ_max], so this is
    ``losses.continuous_ncsn_loss`` (``ncsn_loss`` with one level per example) on the SDE's range.
    """
    if not isinstance(sde, VESDE):
        raise ValueError(f"ve_loss needs a VESDE, got {sde!r}")
    return continuous_ncsn_loss(model, _check_x(x), sde.sigma_min, sde.sigma_max, generator=generator)


def vp_eps_loss(eps_model: Callable[[Tensor, Tensor], Tensor], x: Tensor, sde: VPSDE,
                generator: torch.Generator | None = None) -> Tensor:
    """DDPM's "simple" ε-prediction loss in continuous time: ½ E_t E ‖ε_θ(α_t x + σ_t ε, σ_t) − ε‖².

    With s_θ = −ε_θ/σ_t and λ = σ_t², NCSN's per-level term ½ λ ‖s_θ(x̃) + (x̃ − y)/σ_t²‖² with
    y = α_t x and x̃ = y + σ_t ε is exactly ½ ‖ε_θ − ε‖², so this is ``losses.ncsn_loss`` applied to
    the scaled data α_t x: denoising score matching and DDPM's objective are one loss
    (t ~ U[t_min, 1]).
    """
    if not isinstance(sde, VPSDE):
        raise ValueError(f"vp_eps_loss needs a VPSDE, got {sde!r}")
    x = _check_x(x)
    alpha, sigma = sde.marginal(_uniform_times(x.shape[0], sde.t_min, x, generator))
    levels = torch.arange(x.shape[0], device=x.device)
    as_score = lambda y, s: score_from_eps(eps_model(y, s), s)
    return ncsn_loss(as_score, _expand(alpha, x) * x, sigma, generator=generator, levels=levels)
