"""Fixed-step samplers for the reverse SDE and the probability-flow ODE, on a grid of times (notebook 07).

Short functions in the style of k-diffusion and smalldiffusion. Every solver walks a decreasing grid
``ts`` = (t_0 = 1 > t_1 > … > t_N), made by :func:`time_grid`, and calls the model once or twice per
step; each returns a :class:`~scoretutor.sampling.SamplerOutput` whose ``n_score_evals`` counts the
model calls (the number on the x-axis of every cost plot).

All paths here are Gaussian, x_t = α_t x₀ + σ_t ε (``sde.marginal(t)``), so the model can be read three
ways, all the same information:

- the score s(x, t) ≈ ∇ log p_t(x);
- the **denoiser** D(x, t) = E[x₀ | x_t = x] = (x + σ_t² s)/α_t (Tweedie), :func:`denoiser_from_score`;
- the probability-flow ODE dx/dt = f(x, t) − ½ g(t)² s, :func:`pf_ode_drift`.

In the scaled variables x̄ = x/α_t and σ̄ = σ_t/α_t (Karras et al. 2022, "EDM"; for VE x̄ = x, σ̄ = σ)
the probability-flow ODE of *any* such path is the same simple ODE

    dx̄/dσ̄ = (x̄ − D)/σ̄ = ε̂,            ε̂ = (x − α_t D)/σ_t, the predicted noise,

and the solvers differ only in how they step it:

- ``ddim``: Euler in σ̄, x̄' = x̄ + (σ̄' − σ̄) ε̂ — equivalently x' = α' D + σ' ε̂ (Song, Meng & Ermon 2021)
  and the first-order exponential integrator in λ = log(α/σ) (DPM-Solver-1, :func:`exponential_euler_step`);
- ``heun``: Heun's second-order method in σ̄ (EDM's Algorithm 1 without churn) on Karras's σ-grid;
- ``dpm_solver_2m``: DPM-Solver++(2M) (Lu et al. 2022), second order, one call per step (a multistep
  method: it reuses the previous step's D);
- ``euler``: plain Euler in t on dx/dt = f − ½ g² s (first order, but a worse first order: it ignores
  the linear part f that DDIM integrates exactly);
- ``euler_maruyama``: the reverse SDE, ``ddpm_ancestral``: DDPM's ancestral sampler (stochastic).

Time grids (:func:`time_grid`): ``"karras"`` puts σ̄_i = (σ̄_max^{1/ρ} + i/N (σ̄_min^{1/ρ} − σ̄_max^{1/ρ}))^ρ,
ρ = 7 (EDM's schedule: small steps at small noise), ``"uniform"`` equally spaced t, ``"logsnr"`` equally
spaced λ = −log σ̄ (DPM-Solver's choice; ρ → ∞).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.checks import count, positive
from scoretutor.device import randn_like
from scoretutor.diffusion.sde import SDE, check_time
from scoretutor.sampling import SamplerOutput, _check_x0

Tensor = torch.Tensor
ScoreFn = Callable[[Tensor, Tensor], Tensor]
Denoiser = Callable[[Tensor, Tensor], Tensor]   # D(x, t) ≈ E[x₀ | x_t = x]
Drift = Callable[[Tensor, Tensor], Tensor]      # dx/dt at (x, t)

__all__ = [
    "sigma_bar", "time_of_sigma_bar", "karras_sigmas", "time_grid", "denoiser_from_score", "pf_ode_drift",
    "ddpm_ancestral", "euler_maruyama", "euler", "ddim", "exponential_euler_step", "heun", "dpm_solver_2m",
    "heun_t",
    "SOLVERS", "run_solver", "convergence_order",
]


# -- grids -------------------------------------------------------------------------------------------
def sigma_bar(sde: SDE, t) -> Tensor:
    """σ̄(t) = σ_t/α_t, the noise-to-signal ratio (= e^{−λ} with λ the half log-SNR); σ(t) for VE."""
    alpha, sigma = sde.marginal(check_time(t))
    return sigma / alpha


def time_of_sigma_bar(sde: SDE, sbar, iters: int = 100) -> Tensor:
    """The t with σ̄(t) = ``sbar`` (σ̄ increases with t), by bisection on [0, 1] in float64."""
    s = torch.as_tensor(sbar, dtype=torch.float64).flatten()
    lo, hi = torch.zeros_like(s), torch.ones_like(s)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = sigma_bar(sde, mid) < s
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def karras_sigmas(n_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """EDM's n_steps + 1 noise levels from σ_max down to σ_min, evenly spaced in σ^{1/ρ} (float64)."""
    n_steps = count(n_steps, "n_steps", 1)
    lo, hi, rho = positive(sigma_min, "sigma_min") ** (1 / rho), sigma_max ** (1 / rho), positive(rho, "rho")
    return (hi + torch.linspace(0, 1, n_steps + 1, dtype=torch.float64) * (lo - hi)) ** rho


def time_grid(sde: SDE, n_steps: int, schedule: str = "karras", rho: float = 7.0,
              t_max: float = 1.0, t_min: float | None = None) -> Tensor:
    """n_steps + 1 decreasing times from t_max to t_min (default ``sde.t_min``), float64.

    ``schedule``: ``"karras"`` (σ̄ evenly spaced in σ̄^{1/ρ}), ``"logsnr"`` (evenly spaced in log σ̄),
    ``"uniform"`` (evenly spaced in t).
    """
    n_steps = count(n_steps, "n_steps", 1)
    t_min = sde.t_min if t_min is None else t_min
    if schedule == "uniform":
        return torch.linspace(t_max, t_min, n_steps + 1, dtype=torch.float64)
    s_max, s_min = (sigma_bar(sde, t).item() for t in (t_max, t_min))
    if schedule == "karras":
        sbars = karras_sigmas(n_steps, s_min, s_max, rho)
    elif schedule == "logsnr":
        sbars = torch.logspace(math.log10(s_max), math.log10(s_min), n_steps + 1, dtype=torch.float64)
    else:
        raise ValueError(f"schedule must be 'karras', 'logsnr' or 'uniform', got {schedule!r}")
    ts = time_of_sigma_bar(sde, sbars)
    ts[0], ts[-1] = t_max, t_min  # exact ends
    return ts


# -- the model, three ways ---------------------------------------------------------------------------
def _full(x: Tensor, t: float) -> Tensor:
    return torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)


def _coef(sde: SDE, t: float) -> tuple[float, float]:
    a, s = sde.marginal(torch.tensor([float(t)], dtype=torch.float64))
    return a.item(), s.item()


def denoiser_from_score(score_fn: ScoreFn, sde: SDE) -> Denoiser:
    """D(x, t) = (x + σ_t² s(x, t))/α_t: Tweedie's formula, E[x₀ | x_t = x] for the exact score."""
    def denoise(x: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = sde.marginal(t)
        a, s = alpha.to(x.dtype).reshape(-1, 1), sigma.to(x.dtype).reshape(-1, 1)
        return (x + s**2 * score_fn(x, t)) / a
    return denoise


def pf_ode_drift(score_fn: ScoreFn, sde: SDE) -> Drift:
    """dx/dt = f(x, t) − ½ g(t)² s(x, t), the probability-flow ODE's right-hand side."""
    return lambda x, t: sde.ode_drift(x, t, score_fn(x, t))


def _steps(x_T: Tensor, ts) -> tuple[Tensor, list[float]]:
    x = _check_x0(x_T).clone()
    ts = check_time(ts, name="ts").tolist()
    if len(ts) < 2 or any(b >= a for a, b in zip(ts[:-1], ts[1:], strict=True)):
        raise ValueError("ts must hold at least two strictly decreasing times")
    return x, ts


def _out(x: Tensor, path: list[Tensor] | None, calls: int) -> SamplerOutput:
    if not torch.isfinite(x).all():
        raise FloatingPointError("the iterates became non-finite: take more steps or check the model")
    return SamplerOutput(x, torch.stack(path) if path is not None else None, None, calls)


# -- stochastic samplers -------------------------------------------------------------------------------
@torch.no_grad()
def ddpm_ancestral(score_fn: ScoreFn, sde: SDE, x_T: Tensor, ts, generator: torch.Generator | None = None,
                   return_trajectory: bool = False) -> SamplerOutput:
    """DDPM's ancestral sampler on any Gaussian path: x_s ~ q(x_s | x_t, x₀ = D(x_t, t)), s < t.

    With the exact step x_t = a x_s + G z (a = α_t/α_s, G² = σ_t² − a² σ_s²), the posterior is
    N((G² α_s x̂₀ + a σ_s² x_t)/σ_t², σ_s² G²/σ_t²): Ho et al.'s μ̃ and β̃ for VP, Song et al.'s
    (2021, App. F) ancestral sampler for VE. Noise on every step, so the output targets p_{t_min}.
    """
    x, ts = _steps(x_T, ts)
    path = [x] if return_trajectory else None
    denoise = denoiser_from_score(score_fn, sde)
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        (a_t, s_t), (a_s, s_s) = _coef(sde, t), _coef(sde, s)
        a = a_t / a_s
        G2 = s_t**2 - a**2 * s_s**2
        x0 = denoise(x, _full(x, t))
        noise = math.sqrt(s_s**2 * G2) / s_t * randn_like(x, generator)
        x = (G2 * a_s * x0 + a * s_s**2 * x) / s_t**2 + noise
        if path is not None:
            path.append(x)
    return _out(x, path, len(ts) - 1)


@torch.no_grad()
def euler_maruyama(score_fn: ScoreFn, sde: SDE, x_T: Tensor, ts, generator: torch.Generator | None = None,
                   return_trajectory: bool = False) -> SamplerOutput:
    """Euler–Maruyama on the reverse SDE: x ← x − [f − g² s](t, x)·Δ + g(t) √Δ z, Δ = t − s > 0."""
    x, ts = _steps(x_T, ts)
    path = [x] if return_trajectory else None
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        tt = _full(x, t)
        f, g = sde.sde(x, tt)
        dt = t - s
        g = g.reshape(-1, 1)
        x = x - (f - g**2 * score_fn(x, tt)) * dt + g * math.sqrt(dt) * randn_like(x, generator)
        if path is not None:
            path.append(x)
    return _out(x, path, len(ts) - 1)


# -- ODE solvers -------------------------------------------------------------------------------------
@torch.no_grad()
def euler(drift: Drift, x_T: Tensor, ts, return_trajectory: bool = False) -> SamplerOutput:
    """Euler in t: x ← x + (s − t)·drift(x, t). One call per step; first order."""
    x, ts = _steps(x_T, ts)
    path = [x] if return_trajectory else None
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        x = x + (s - t) * drift(x, _full(x, t))
        if path is not None:
            path.append(x)
    return _out(x, path, len(ts) - 1)


def exponential_euler_step(x: Tensor, eps: Tensor, sde: SDE, t: float, s: float) -> Tensor:
    """DPM-Solver-1 (Lu et al. 2022): the exact solution of dx/dλ-form with ε̂ held fixed over the step,

        x_s = (α_s/α_t) x_t − σ_s (e^{h} − 1) ε̂,   h = λ_s − λ_t,  λ = log(α/σ).

    The linear part of the ODE is integrated exactly; only ε̂ is frozen. Equal to DDIM's step.
    """
    (a_t, s_t), (a_s, s_s) = _coef(sde, t), _coef(sde, s)
    h = math.log(a_s / s_s) - math.log(a_t / s_t)
    return (a_s / a_t) * x - s_s * math.expm1(h) * eps


@torch.no_grad()
def ddim(denoiser: Denoiser, sde: SDE, x_T: Tensor, ts, return_trajectory: bool = False) -> SamplerOutput:
    """DDIM (η = 0): x_s = α_s D + σ_s ε̂ with ε̂ = (x_t − α_t D)/σ_t. One call per step; first order.

    In x̄ = x/α, σ̄ = σ/α this is Euler's step x̄_s = x̄_t + (σ̄_s − σ̄_t) ε̂ on dx̄/dσ̄ = ε̂.
    """
    x, ts = _steps(x_T, ts)
    path = [x] if return_trajectory else None
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        (a_t, s_t), (a_s, s_s) = _coef(sde, t), _coef(sde, s)
        x0 = denoiser(x, _full(x, t))
        x = a_s * x0 + s_s * (x - a_t * x0) / s_t
        if path is not None:
            path.append(x)
    return _out(x, path, len(ts) - 1)


@torch.no_grad()
def heun(denoiser: Denoiser, sde: SDE, x_T: Tensor, ts, return_trajectory: bool = False, churn: float = 0.0,
         generator: torch.Generator | None = None) -> SamplerOutput:
    """Heun's method in (x̄, σ̄) (Karras et al. 2022, Alg. 1; with ``churn`` > 0 their Alg. 2); two calls
    per step, second order:

        d = (x̄ − D(x, t))/σ̄_t,  x̄' = x̄ + (σ̄_s − σ̄_t) d,  d' = (x̄' − D(x', s))/σ̄_s,
        x̄_s = x̄ + (σ̄_s − σ̄_t)(d + d')/2.

    ``churn`` = S_churn: before each step, raise the noise to σ̂ = (1 + γ) σ̄_t, γ = min(S_churn/N, √2 − 1),
    by adding fresh noise √(σ̂² − σ̄_t²) z (capped at t = 1), then step from σ̂: a little Langevin-like
    noise that lets later steps correct earlier errors (Karras et al.'s stochastic sampler).
    """
    x, ts = _steps(x_T, ts)
    gamma = min(float(churn) / (len(ts) - 1), math.sqrt(2) - 1) if churn > 0 else 0.0
    path = [x] if return_trajectory else None
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        if gamma > 0:  # churn: move up to t̂ > t by adding noise in the scaled variables
            a_t, s_t = _coef(sde, t)
            t_hat = min(1.0, time_of_sigma_bar(sde, (1 + gamma) * s_t / a_t).item())
            a_h, s_h = _coef(sde, t_hat)
            extra = math.sqrt(max((s_h / a_h) ** 2 - (s_t / a_t) ** 2, 0.0))
            x, t = a_h * (x / a_t + extra * randn_like(x, generator)), t_hat
        (a_t, s_t), (a_s, s_s) = _coef(sde, t), _coef(sde, s)
        sb_t, sb_s, xb = s_t / a_t, s_s / a_s, x / a_t
        d = (xb - denoiser(x, _full(x, t))) / sb_t
        xb_e = xb + (sb_s - sb_t) * d
        d2 = (xb_e - denoiser(a_s * xb_e, _full(x, s))) / sb_s
        x = a_s * (xb + (sb_s - sb_t) * 0.5 * (d + d2))
        if path is not None:
            path.append(x)
    return _out(x, path, 2 * (len(ts) - 1))


@torch.no_grad()
def dpm_solver_2m(denoiser: Denoiser, sde: SDE, x_T: Tensor, ts, return_trajectory: bool = False
                  ) -> SamplerOutput:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): one call per step, second order.

    In x̄: x̄_s = (σ̄_s/σ̄_t) x̄_t + (1 − σ̄_s/σ̄_t) D', with D' = D_t on the first step and otherwise
    D' = (1 + 1/(2r)) D_t − 1/(2r) D_prev, r = h_prev/h (h = log σ̄_t − log σ̄_s, the step in λ).
    """
    x, ts = _steps(x_T, ts)
    path = [x] if return_trajectory else None
    prev, h_prev = None, None
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        (a_t, s_t), (a_s, s_s) = _coef(sde, t), _coef(sde, s)
        ratio = (s_s / a_s) / (s_t / a_t)
        h = -math.log(ratio)
        x0 = denoiser(x, _full(x, t))
        d = x0 if prev is None else (1 + h / (2 * h_prev)) * x0 - h / (2 * h_prev) * prev
        x = a_s * (ratio * x / a_t + (1 - ratio) * d)
        prev, h_prev = x0, h
        if path is not None:
            path.append(x)
    return _out(x, path, len(ts) - 1)


@torch.no_grad()
def heun_t(drift: Drift, x_T: Tensor, ts, return_trajectory: bool = False) -> SamplerOutput:
    """Heun's method in t: x' = x + Δ·drift(x, t), x ← x + Δ·(drift(x, t) + drift(x', s))/2, Δ = s − t.

    Two calls per step, second order; for a flow-matching velocity (dx/dt = v) this is the usual choice.
    """
    x, ts = _steps(x_T, ts)
    path = [x] if return_trajectory else None
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        d = drift(x, _full(x, t))
        d2 = drift(x + (s - t) * d, _full(x, s))
        x = x + (s - t) * 0.5 * (d + d2)
        if path is not None:
            path.append(x)
    return _out(x, path, 2 * (len(ts) - 1))


# -- one interface for the notebook's comparisons ------------------------------------------------------
SOLVERS = {  # name: (kind, calls per step, order on the ODE, or None for the stochastic ones)
    "DDPM ancestral": ("sde", 1, None),
    "Euler–Maruyama": ("sde", 1, None),
    "Euler (ODE in t)": ("ode", 1, 1),
    "DDIM": ("ode", 1, 1),
    "Heun (Karras)": ("ode", 2, 2),
    "DPM-Solver++(2M)": ("ode", 1, 2),
}


def run_solver(name: str, score_fn: ScoreFn, sde: SDE, x_T: Tensor, n_calls: int, schedule: str = "karras",
               generator: torch.Generator | None = None, return_trajectory: bool = False) -> SamplerOutput:
    """Run solver ``name`` (a key of :data:`SOLVERS`) with about ``n_calls`` model calls on ``time_grid``."""
    if name not in SOLVERS:
        raise ValueError(f"name must be one of {list(SOLVERS)}, got {name!r}")
    n_steps = max(1, count(n_calls, "n_calls", 1) // SOLVERS[name][1])
    ts = time_grid(sde, n_steps, schedule)
    kw = dict(return_trajectory=return_trajectory)
    if name == "DDPM ancestral":
        return ddpm_ancestral(score_fn, sde, x_T, ts, generator, **kw)
    if name == "Euler–Maruyama":
        return euler_maruyama(score_fn, sde, x_T, ts, generator, **kw)
    if name == "Euler (ODE in t)":
        return euler(pf_ode_drift(score_fn, sde), x_T, ts, **kw)
    step = {"DDIM": ddim, "Heun (Karras)": heun, "DPM-Solver++(2M)": dpm_solver_2m}[name]
    return step(denoiser_from_score(score_fn, sde), sde, x_T, ts, **kw)


def convergence_order(n_calls, errors) -> tuple[float, float]:
    """The order p of error ≈ C·N^{−p}: least squares of log error on log N; returns (p, its standard error).

    The standard error is the usual one of a regression slope, s/√Σ(u − ū)², with s² the residual
    variance on n − 2 degrees of freedom: it says how well a straight line fits, not how noisy the errors are.
    """
    u = torch.log(torch.as_tensor(n_calls, dtype=torch.float64))
    y = torch.log(torch.as_tensor(errors, dtype=torch.float64))
    if u.numel() < 3 or u.shape != y.shape or not torch.isfinite(y).all():
        raise ValueError("need at least three (n_calls, error) pairs with positive errors")
    uc = u - u.mean()
    slope = (uc * (y - y.mean())).sum() / (uc**2).sum()
    resid = y - y.mean() - slope * uc
    se = (resid.pow(2).sum() / (u.numel() - 2) / (uc**2).sum()).sqrt()
    return -slope.item(), se.item()
