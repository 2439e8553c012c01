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

from scoretutor import checks
from scoretutor.device import generator_device, randn_like

Tensor = torch.Tensor
ScoreFn = Callable[[Tensor], Tensor]

TRACE_KINDS = ("exact", "hutchinson")
PROBE_KINDS = ("rademacher", "gaussian")
WEIGHTINGS = ("sigma2", "uniform")


# -- the divergence tr(∇ₓ f), exact or by Hutchinson's estimator ---------------------------------
def probe_like(x: Tensor, kind: str = "rademacher", generator: torch.Generator | None = None) -> Tensor:
    """A random v shaped like x with E[v] = 0 and E[v vᵀ] = I: Rademacher (±1) or standard Gaussian."""
    if kind == "gaussian":
        return randn_like(x, generator)
    if kind == "rademacher":
        bits = torch.randint(0, 2, x.shape, generator=generator, device=generator_device(generator, x.device))
        return (2 * bits - 1).to(device=x.device, dtype=x.dtype)
    raise ValueError(f"probe must be one of {PROBE_KINDS}, got {kind!r}")


def divergence(fn: Callable[[Tensor], Tensor], x: Tensor, method: str = "exact", v: Tensor | None = None,
               n_probes: int = 1, probe: str = "rademacher", generator: torch.Generator | None = None,
               create_graph: bool = False, name: str = "fn") -> tuple[Tensor, Tensor]:
    """(fn(x), div) with div_n = tr(∇ₓ fn(x)_n) = Σ_i ∂fn_i/∂x_i per example, shape (N,).

    ``method="exact"``: one backward pass per coordinate (d = prod of x's trailing dims).
    ``method="hutchinson"``: tr(J) ≈ (1/M) Σ_m v_mᵀ J v_m with E[v vᵀ] = I (Hutchinson 1989), one
    vector-Jacobian product per probe whatever d is; M = ``n_probes`` fresh probes of kind ``probe``,
    or the single fixed probe ``v`` (shaped like x) if given.
    fn must map (N, ...) to (N, ...) with examples independent. Works under ``torch.no_grad()``
    (gradients are enabled locally); ``create_graph=True`` keeps the graph so div can be trained,
    otherwise both results are detached. ``name`` names fn in error messages.
    """
    x = checks.batch(x)
    if method not in TRACE_KINDS:
        raise ValueError(f"method must be one of {TRACE_KINDS}, got {method!r}")
    n_probes = checks.count(n_probes, "n_probes", 1)
    if probe not in PROBE_KINDS:
        raise ValueError(f"probe must be one of {PROBE_KINDS}, got {probe!r}")
    if v is not None and (not isinstance(v, Tensor) or v.shape != x.shape):
        got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(f"v must be a tensor shaped like x {tuple(x.shape)}, got {got}")
    if v is not None:
        v = v.to(device=x.device, dtype=x.dtype)
    with torch.enable_grad():
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        out = checks.call_score(fn, x, name=name)
        n = x.shape[0]

        if method == "exact":  # row i of the Jacobian by one backward pass, keep its diagonal entry
            flat = out.reshape(n, -1)
            row = lambda i: torch.autograd.grad(flat[:, i].sum(), x, create_graph=create_graph,
                                                retain_graph=True)[0].reshape(n, -1)
            div = sum(row(i)[:, i] for i in range(flat.shape[1]))
        else:
            probes = [v] if v is not None else [probe_like(x, probe, generator) for _ in range(n_probes)]
            div = sum(_quadratic_form(out, x, u, create_graph) for u in probes) / len(probes)
    return (out, div) if create_graph else (out.detach(), div.detach())


def _quadratic_form(out: Tensor, x: Tensor, v: Tensor, create_graph: bool) -> Tensor:
    """vᵀ (∇ₓ out) v per example by one vector-Jacobian product, shape (N,)."""
    (vj,) = torch.autograd.grad(out, x, v, create_graph=create_graph, retain_graph=True)
    return (vj * v).reshape(x.shape[0], -1).sum(-1)


# -- the objectives ------------------------------------------------------------------------------
def fisher_divergence(score_fn: ScoreFn, true_score_fn: ScoreFn, x: Tensor) -> Tensor:
    """½ E_p ‖s_θ(x) − ∇ₓ log p(x)‖², the objective we want but cannot compute from data alone."""
    x = checks.batch(x)
    s = checks.call_score(score_fn, x)
    with torch.no_grad():
        target = checks.call_score(true_score_fn, x, name="true_score_fn")
    return 0.5 * checks.sq_norm(s - target).mean()


def implicit_score_matching(score_fn: ScoreFn, x: Tensor, trace: str = "exact", n_probes: int = 1,
                            generator: torch.Generator | None = None, probe: str = "rademacher") -> Tensor:
    """E_p [tr(∇ₓ s_θ(x)) + ½ ‖s_θ(x)‖²] (Hyvärinen 2005), equal to the Fisher divergence − ½E‖∇log p‖².

    The trace is :func:`divergence`: ``trace="exact"`` takes d backward passes (cost grows with d);
    ``trace="hutchinson"`` averages vᵀ(∇ₓ s)v over ``n_probes`` random probes (E[v vᵀ] = I makes it
    unbiased), one backward pass per probe whatever d is.
    """
    if trace not in TRACE_KINDS:
        raise ValueError(f"trace must be one of {TRACE_KINDS}, got {trace!r}")
    keep_graph = torch.is_grad_enabled()
    s, tr = divergence(score_fn, x, trace, n_probes=n_probes, probe=probe, generator=generator,
                       create_graph=keep_graph, name="score_fn")
    return (tr + 0.5 * checks.sq_norm(s)).mean()


def sliced_score_matching(score_fn: ScoreFn, x: Tensor, n_projections: int = 1,
                          variance_reduction: bool = True, generator: torch.Generator | None = None,
                          probe: str = "gaussian") -> Tensor:
    """Sliced score matching (Song, Garg, Shi & Ermon 2019): project the score on random v.

    SSM:     E_p E_v [ vᵀ ∇ₓ s_θ(x) v + ½ (vᵀ s_θ(x))² ]
    SSM-VR:  E_p E_v [ vᵀ ∇ₓ s_θ(x) v ] + ½ E_p ‖s_θ(x)‖²   (``variance_reduction=True``)

    Both have expectation ISM(θ) since E[v vᵀ] = I; VR replaces the noisy (vᵀs)² by its mean ‖s‖².
    vᵀ∇s v is :func:`divergence`'s Hutchinson estimate, one vector-Jacobian product per probe.
    Probes are standard Gaussian as in the paper (``probe="rademacher"`` also allowed; with it,
    SSM-VR coincides with Hutchinson ISM).
    """
    n_projections = checks.count(n_projections, "n_projections", 1)
    keep_graph = torch.is_grad_enabled()
    if variance_reduction:
        s, tr = divergence(score_fn, x, "hutchinson", n_probes=n_projections, probe=probe,
                           generator=generator, create_graph=keep_graph, name="score_fn")
        return (tr + 0.5 * checks.sq_norm(s)).mean()
    total = 0.0
    for _ in range(n_projections):  # each term needs its own v twice: vᵀ(∇s)v and (vᵀs)²
        v = probe_like(checks.batch(x), probe, generator)
        s, quad = divergence(score_fn, x, "hutchinson", v=v, create_graph=keep_graph, name="score_fn")
        total = total + quad + 0.5 * (s * v).reshape(s.shape[0], -1).sum(-1) ** 2
    return (total / n_projections).mean()


def denoising_score_matching(score_fn: ScoreFn, x: Tensor, sigma: float | Tensor,
                             generator: torch.Generator | None = None) -> Tensor:
    """½ E_{x∼p, z∼N(0,I)} ‖s_θ(x̃) + (x̃ − x)/σ²‖² with x̃ = x + σz (Vincent 2011).

    −(x̃ − x)/σ² = ∇_x̃ log q_σ(x̃|x), so the minimiser is s*(x̃) = E[∇ log q_σ(x̃|x) | x̃] =
    ∇ log p_σ(x̃), the score of the *noisy* density p_σ = p ∗ N(0, σ²I), not of p.
    ``sigma``: a positive number, or an (N,) tensor with one noise level per example.
    """
    x = checks.batch(x)
    sigma = _broadcast(checks.sigma(sigma, x), x)
    x_noisy = x + sigma * randn_like(x, generator)
    s = checks.call_score(score_fn, x_noisy)
    return 0.5 * checks.sq_norm(s + (x_noisy - x) / sigma**2).mean()


def _broadcast(sigma: Tensor, x: Tensor) -> Tensor:
    """An (N,) σ as (N, 1, …, 1), broadcastable against x."""
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def unit_output_weighting(sigma_data: float) -> Callable[[Tensor], Tensor]:
    """λ(σ) = σ² (σ² + σ_d²)/σ_d² for a :class:`~scoretutor.models.ScoreUNet` with ``c_skip``.

    Its score is s = −x/(σ² + σ_d²) + σ_d/√(σ² + σ_d²) · F/σ, so λ(σ) · ½‖s − s*‖² = ½‖F − F*‖²:
    the network's own output is fitted with weight 1 at every σ (Karras et al. 2022), where λ = σ²
    would give the large-σ terms a weight σ_d²/(σ² + σ_d²) → 0.
    """
    sd2 = checks.positive(sigma_data, "sigma_data") ** 2
    return lambda sigma: sigma**2 * (sigma**2 + sd2) / sd2


def _weights(sigma: Tensor, weighting: str | Callable[[Tensor], Tensor]) -> Tensor:
    if callable(weighting):
        lam = torch.as_tensor(weighting(sigma), dtype=sigma.dtype, device=sigma.device)
        if lam.shape not in ((), sigma.shape):
            raise ValueError(f"weighting callable must return a scalar or shape {tuple(sigma.shape)}, "
                             f"got {tuple(lam.shape)}")
        return lam
    if weighting == "sigma2":
        return sigma**2
    if weighting == "uniform":
        return torch.ones_like(sigma)
    raise ValueError(f"weighting must be one of {WEIGHTINGS} or a callable σ -> λ(σ), got {weighting!r}")


def ncsn_loss(model: Callable[[Tensor, Tensor], Tensor], x: Tensor, sigmas: Sequence[float] | Tensor,
              weighting: str | Callable[[Tensor], Tensor] = "sigma2",
              generator: torch.Generator | None = None, levels: Tensor | None = None) -> Tensor:
    """NCSN objective (Song & Ermon 2019, eq. 6): Σ_i λ(σ_i) · DSM_{σ_i}, estimated per example.

    Each example n gets a level i_n ∼ Uniform{1..L} (or ``levels[n]``), x̃ = x + σ_{i_n} z, and
    loss_n = λ(σ_{i_n}) · ½ ‖s_θ(x̃, σ_{i_n}) + (x̃ − x)/σ_{i_n}²‖²; the batch mean is returned
    (an unbiased estimate of (1/L) Σ_i λ(σ_i) DSM_{σ_i}). λ(σ) = σ² (``"sigma2"``, the paper's
    choice, which makes every term O(1)), 1 (``"uniform"``), or any callable σ → λ(σ).
    ``sigmas``: the levels, conventionally σ_max first; the loss does not depend on their order
    (``levels`` index into it as given).
    """
    x = checks.batch(x)
    sig_all = torch.as_tensor(checks.sigmas(sigmas, decreasing=False), dtype=x.dtype, device=x.device)
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
    sigma = sig_all[levels]  # (N,)
    sigma_b = _broadcast(sigma, x)
    x_noisy = x + sigma_b * randn_like(x, generator)
    s = checks.call_score(model, x_noisy, sigma, name="model")
    per_example = 0.5 * checks.sq_norm(s + (x_noisy - x) / sigma_b**2)
    return (_weights(sigma, weighting) * per_example).mean()


# =============================================================================================
# Continuous noise levels (issue 9): σ ~ log-uniform on [σ_min, σ_max]
# =============================================================================================
def log_uniform_sigmas(n: int, sigma_min: float, sigma_max: float,
                       generator: torch.Generator | None = None, device=None,
                       dtype: torch.dtype | None = None) -> Tensor:
    """n draws of σ = exp(U), U ~ Uniform[log σ_min, log σ_max] (density ∝ 1/σ on [σ_min, σ_max]).

    Drawn on the generator's device and moved to ``device``.
    """
    n = checks.count(n, "n", 1)
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
    x = checks.batch(x)
    sig = log_uniform_sigmas(x.shape[0], sigma_min, sigma_max, generator, device=x.device, dtype=x.dtype)
    return ncsn_loss(model, x, sig, weighting=weighting, generator=generator,
                     levels=torch.arange(x.shape[0], device=x.device))
