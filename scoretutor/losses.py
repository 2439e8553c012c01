"""Score-matching objectives: learn s_θ(x) ≈ ∇ₓ log p(x) from samples of p alone.

Convention: every objective carries the factor ½ on the squared norm, so that

    Fisher(θ)  = ½ E_p ‖s_θ(x) − ∇ₓ log p(x)‖²
    ISM(θ)     = E_p [ tr(∇ₓ s_θ(x)) + ½ ‖s_θ(x)‖² ]                      (Hyvärinen 2005)
    Fisher(θ)  = ISM(θ) + ½ E_p ‖∇ₓ log p(x)‖²       exactly (integration by parts)
    DSM_σ(θ)   = ½ E_{p(x)} E_{z∼N(0,I)} ‖s_θ(x + σz) + z/σ‖²                (Vincent 2011)
               = ½ E_{p_σ} ‖s_θ(x̃) − ∇ log p_σ(x̃)‖² + const(σ)

Each function takes ``score_fn(x) -> tensor shaped like x`` (a model or any callable, e.g.
``EnergyMLP.score``) and a batch ``x`` of shape (N, ...); trailing dimensions are flattened where
a vector is needed (d = prod(...)), and the scalar batch mean is returned. Losses keep the graph
(``create_graph=True``) whenever gradients are enabled, so they can be minimised by autograd;
under ``torch.no_grad()`` they still evaluate (the x-derivatives are taken locally) and return a
detached value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from scoretutor.checks import count
from scoretutor.device import generator_device, randn_like

Tensor = torch.Tensor
ScoreFn = Callable[[Tensor], Tensor]

TRACE_KINDS = ("exact", "hutchinson")
PROBE_KINDS = ("rademacher", "gaussian")
WEIGHTINGS = ("sigma2", "uniform")


# -- helpers -------------------------------------------------------------------------------------
def _check_batch(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (N, ...) with N >= 1 and features, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got dtype {x.dtype}")
    return x


def _call_score(score_fn: Callable[..., Tensor], x: Tensor, *args, name: str = "score_fn") -> Tensor:
    s = score_fn(x, *args)
    if not isinstance(s, Tensor) or s.shape != x.shape:
        got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(f"{name} must return a tensor shaped like x {tuple(x.shape)}, got {got}")
    return s


def _quadratic_form(s: Tensor, x: Tensor, v: Tensor, create_graph: bool) -> Tensor:
    """vᵀ (∇ₓ s) v per example by one vector-Jacobian product, shape (N,)."""
    (vj,) = torch.autograd.grad((s * v).sum(), x, create_graph=create_graph, retain_graph=True)
    return (vj * v).reshape(x.shape[0], -1).sum(-1)


def _probe(like: Tensor, kind: str, generator: torch.Generator | None) -> Tensor:
    """A random vector v with E[v] = 0 and E[v vᵀ] = I: Rademacher (±1) or standard Gaussian."""
    if kind == "gaussian":
        return randn_like(like, generator)
    if kind == "rademacher":
        device = like.device if generator is None else generator.device
        bits = torch.randint(0, 2, like.shape, generator=generator, device=device)
        return (2 * bits - 1).to(device=like.device, dtype=like.dtype)
    raise ValueError(f"probe must be one of {PROBE_KINDS}, got {kind!r}")


def _sq_norm(t: Tensor) -> Tensor:
    """‖t_n‖² per example, shape (N,)."""
    return t.reshape(t.shape[0], -1).pow(2).sum(-1)


def _sigma_per_example(sigma: float | Tensor, x: Tensor) -> Tensor:
    """σ as an (N, 1, ..., 1) tensor broadcastable against x; must be positive and finite."""
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 0:
        s = s.reshape(1)
    if s.ndim != 1 or s.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"sigma must be a positive number or a ({x.shape[0]},) tensor, got shape {tuple(s.shape)}"
        )
    if not (torch.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"sigma must be positive and finite, got {s.tolist() if s.numel() < 8 else s}")
    return s.reshape(-1, *([1] * (x.ndim - 1)))


# -- the objectives ------------------------------------------------------------------------------
def fisher_divergence(score_fn: ScoreFn, true_score_fn: ScoreFn, x: Tensor) -> Tensor:
    """½ E_p ‖s_θ(x) − ∇ₓ log p(x)‖², the objective we want but cannot compute from data alone."""
    x = _check_batch(x)
    s = _call_score(score_fn, x)
    with torch.no_grad():
        target = _call_score(true_score_fn, x, name="true_score_fn")
    return 0.5 * _sq_norm(s - target).mean()


def implicit_score_matching(score_fn: ScoreFn, x: Tensor, trace: str = "exact", n_probes: int = 1,
                            generator: torch.Generator | None = None, probe: str = "rademacher") -> Tensor:
    """E_p [tr(∇ₓ s_θ(x)) + ½ ‖s_θ(x)‖²] (Hyvärinen 2005), equal to the Fisher divergence − ½E‖∇log p‖².

    ``trace="exact"``: tr(∇ₓ s) = Σ_i ∂s_i/∂x_i by d backward passes (cost grows with d).
    ``trace="hutchinson"``: tr(J) ≈ (1/M) Σ_m v_mᵀ J v_m with M = ``n_probes`` random probes
    (E[v vᵀ] = I makes it unbiased); one backward pass per probe whatever d is.
    """
    x = _check_batch(x)
    if trace not in TRACE_KINDS:
        raise ValueError(f"trace must be one of {TRACE_KINDS}, got {trace!r}")
    n_probes = count(n_probes, "n_probes", 1)
    if probe not in PROBE_KINDS:
        raise ValueError(f"probe must be one of {PROBE_KINDS}, got {probe!r}")
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = _call_score(score_fn, x)
        n = x.shape[0]
        s_flat = s.reshape(n, -1)
        d = s_flat.shape[1]
        if trace == "exact":
            tr = torch.zeros(n, dtype=s.dtype, device=s.device)
            for i in range(d):
                (g,) = torch.autograd.grad(s_flat[:, i].sum(), x, create_graph=keep_graph, retain_graph=True)
                tr = tr + g.reshape(n, -1)[:, i]
        else:
            tr = torch.zeros(n, dtype=s.dtype, device=s.device)
            for _ in range(n_probes):
                tr = tr + _quadratic_form(s, x, _probe(x, probe, generator), keep_graph)
            tr = tr / n_probes
        loss = (tr + 0.5 * _sq_norm(s)).mean()
    return loss if keep_graph else loss.detach()


def sliced_score_matching(score_fn: ScoreFn, x: Tensor, n_projections: int = 1,
                          variance_reduction: bool = True, generator: torch.Generator | None = None,
                          probe: str = "gaussian") -> Tensor:
    """Sliced score matching (Song, Garg, Shi & Ermon 2019): project the score on random v.

    SSM:     E_p E_v [ vᵀ ∇ₓ s_θ(x) v + ½ (vᵀ s_θ(x))² ]
    SSM-VR:  E_p E_v [ vᵀ ∇ₓ s_θ(x) v ] + ½ E_p ‖s_θ(x)‖²   (``variance_reduction=True``)

    Both have expectation ISM(θ) since E[v vᵀ] = I; VR replaces the noisy (vᵀs)² by its mean ‖s‖².
    vᵀ∇s v is one vector-Jacobian product, so the cost does not grow with d. Probes v are
    standard Gaussian as in the paper (``probe="rademacher"`` also allowed; with it, SSM-VR
    coincides with Hutchinson ISM).
    """
    x = _check_batch(x)
    n_projections = count(n_projections, "n_projections", 1)
    if probe not in PROBE_KINDS:
        raise ValueError(f"probe must be one of {PROBE_KINDS}, got {probe!r}")
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = _call_score(score_fn, x)
        n = x.shape[0]
        total = torch.zeros(n, dtype=s.dtype, device=s.device)
        for _ in range(n_projections):
            v = _probe(x, probe, generator)
            total = total + _quadratic_form(s, x, v, keep_graph)  # vᵀ (∇ₓ s) v
            if not variance_reduction:
                total = total + 0.5 * (s * v).reshape(n, -1).sum(-1) ** 2  # ½ (vᵀ s)²
        per_example = total / n_projections
        if variance_reduction:
            per_example = per_example + 0.5 * _sq_norm(s)
        loss = per_example.mean()
    return loss if keep_graph else loss.detach()


def denoising_score_matching(score_fn: ScoreFn, x: Tensor, sigma: float | Tensor,
                             generator: torch.Generator | None = None) -> Tensor:
    """½ E_{x∼p, z∼N(0,I)} ‖s_θ(x̃) + (x̃ − x)/σ²‖² with x̃ = x + σz (Vincent 2011).

    −(x̃ − x)/σ² = ∇_x̃ log q_σ(x̃|x), so the minimiser is s*(x̃) = E[∇ log q_σ(x̃|x) | x̃] =
    ∇ log p_σ(x̃), the score of the *noisy* density p_σ = p ∗ N(0, σ²I), not of p.
    ``sigma``: a positive number, or an (N,) tensor with one noise level per example.
    """
    x = _check_batch(x)
    s_ = _sigma_per_example(sigma, x)
    z = randn_like(x, generator)
    x_noisy = x + s_ * z
    s = _call_score(score_fn, x_noisy)
    return 0.5 * _sq_norm(s + (x_noisy - x) / s_**2).mean()


def _weights(sig: Tensor, weighting: str | Callable[[Tensor], Tensor]) -> Tensor:
    if callable(weighting):
        lam = torch.as_tensor(weighting(sig), dtype=sig.dtype, device=sig.device)
        if lam.shape not in ((), sig.shape):
            raise ValueError(f"weighting callable must return a scalar or shape {tuple(sig.shape)}, "
                             f"got {tuple(lam.shape)}")
        return lam
    if weighting == "sigma2":
        return sig**2
    if weighting == "uniform":
        return torch.ones_like(sig)
    raise ValueError(f"weighting must be one of {WEIGHTINGS} or a callable σ -> λ(σ), got {weighting!r}")


def ncsn_loss(model: Callable[[Tensor, Tensor], Tensor], x: Tensor, sigmas: Sequence[float] | Tensor,
              weighting: str | Callable[[Tensor], Tensor] = "sigma2",
              generator: torch.Generator | None = None, levels: Tensor | None = None) -> Tensor:
    """NCSN objective (Song & Ermon 2019, eq. 6): Σ_i λ(σ_i) · DSM_{σ_i}, estimated per example.

    Each example n gets a level i_n ∼ Uniform{1..L} (or ``levels[n]``), x̃ = x + σ_{i_n} z, and
    loss_n = λ(σ_{i_n}) · ½ ‖s_θ(x̃, σ_{i_n}) + (x̃ − x)/σ_{i_n}²‖²; the batch mean is returned
    (an unbiased estimate of (1/L) Σ_i λ(σ_i) DSM_{σ_i}). λ(σ) = σ² (``"sigma2"``, the paper's
    choice, which makes every term O(1)), 1 (``"uniform"``), or any callable σ → λ(σ).
    """
    x = _check_batch(x)
    sig_all = torch.as_tensor(sigmas, dtype=x.dtype, device=x.device)
    if sig_all.ndim != 1 or sig_all.numel() < 1:
        raise ValueError(f"sigmas must be a non-empty 1-D sequence, got shape {tuple(sig_all.shape)}")
    if not (torch.isfinite(sig_all).all() and (sig_all > 0).all()):
        raise ValueError(f"sigmas must be positive and finite, got {sig_all.tolist()}")
    n, L = x.shape[0], sig_all.numel()
    if levels is None:
        levels = torch.randint(0, L, (n,), generator=generator, device=generator_device(generator, x.device))
        levels = levels.to(x.device)
    else:
        levels = torch.as_tensor(levels, device=x.device)
        if levels.dtype not in (torch.int64, torch.int32) or levels.shape != (n,):
            raise ValueError(f"levels must be an integer tensor of shape ({n},), "
                             f"got dtype {levels.dtype} shape {tuple(levels.shape)}")
        if (levels < 0).any() or (levels >= L).any():
            raise ValueError(f"levels must index into {L} sigmas (0..{L - 1}), got range "
                             f"{levels.min().item()}..{levels.max().item()}")
        levels = levels.long()
    sig = sig_all[levels]  # (N,)
    sig_b = sig.reshape(-1, *([1] * (x.ndim - 1)))
    z = randn_like(x, generator)
    x_noisy = x + sig_b * z
    s = _call_score(model, x_noisy, sig, name="model")
    per_example = 0.5 * _sq_norm(s + (x_noisy - x) / sig_b**2)
    return (_weights(sig, weighting) * per_example).mean()


def gaussian_score(mean: Tensor | float, var: Tensor | float) -> ScoreFn:
    """The score of N(μ, v I): s(x) = −(x − μ)/v (a linear score model with parameters μ, v)."""
    if isinstance(var, int | float) and not (var > 0 and math.isfinite(var)):
        raise ValueError(f"var must be positive and finite, got {var}")
    return lambda x: -(x - torch.as_tensor(mean, dtype=x.dtype, device=x.device)) / torch.as_tensor(
        var, dtype=x.dtype, device=x.device)


# =============================================================================================
# Continuous noise levels (issue 9): σ ~ log-uniform on [σ_min, σ_max]
# =============================================================================================
def log_uniform_sigmas(n: int, sigma_min: float, sigma_max: float,
                       generator: torch.Generator | None = None, device=None,
                       dtype: torch.dtype | None = None) -> Tensor:
    """n draws of σ = exp(U), U ~ Uniform[log σ_min, log σ_max] (density ∝ 1/σ on [σ_min, σ_max]).

    Drawn on the generator's device and moved to ``device``.
    """
    n = count(n, "n", 1)
    if not (0 < sigma_min < sigma_max and math.isfinite(sigma_max)):
        raise ValueError(f"need 0 < sigma_min < sigma_max < inf, got sigma_min={sigma_min}, "
                         f"sigma_max={sigma_max}")
    u = torch.rand(n, generator=generator, device=generator_device(generator, device),
                   dtype=dtype or torch.get_default_dtype())
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return torch.exp(lo + (hi - lo) * u).to(device if device is not None else u.device)


def continuous_ncsn_loss(model: Callable[[Tensor, Tensor], Tensor], x: Tensor, sigma_min: float,
                         sigma_max: float, weighting: str | Callable[[Tensor], Tensor] = "sigma2",
                         generator: torch.Generator | None = None) -> Tensor:
    """The NCSN objective with σ drawn continuously: E_{σ ∼ logU[σ_min, σ_max]} λ(σ) DSM_σ.

    One σ_n per example (:func:`log_uniform_sigmas`), then :func:`ncsn_loss` with those levels;
    the same model then serves any geometric grid inside [σ_min, σ_max] and the VE-SDE samplers.
    """
    x = _check_batch(x)
    sig = log_uniform_sigmas(x.shape[0], sigma_min, sigma_max, generator, device=x.device, dtype=x.dtype)
    return ncsn_loss(model, x, sig, weighting=weighting, generator=generator,
                     levels=torch.arange(x.shape[0], device=x.device))
