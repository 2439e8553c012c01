"""Exact log-likelihoods of a score model through the probability-flow ODE (Song et al. 2021, §4.3).

The ODE dx/dt = f̃(x, t) = f(x, t) − ½ g(t)² s_θ(x, t) maps x₀ at t = 0 to x₁ at t = 1 and, by the
instantaneous change of variables (Chen et al. 2018, "Neural ODEs"), carries the density along:

    d log p_t(x_t)/dt = −∇ₓ · f̃(x_t, t)   ⇒   log p₀(x₀) = log p₁(x₁) + ∫₀¹ ∇ₓ · f̃(x_t, t) dt.

We integrate the pair (x_t, ∫ ∇·f̃) from t_min to 1 with scipy's ``solve_ivp`` (RK45, the choice of
score_sde_pytorch, see ``sampling.probability_flow``) and add the prior's log-density at x₁. The
divergence ∇·f̃ comes from ``losses.divergence``: exact (one backward pass per dimension, fine in
2-D) or Hutchinson's vᵀ(∇f̃)v with one probe v drawn once and kept fixed for the whole solve
(FFJORD, Grathwohl et al. 2019), which makes the integrand a smooth function of t and the estimate
unbiased: E_v[log p̂] = log p (up to the solver's error).

The answer is log p of the model's own density p₀^ODE, the law of the ODE's output when its input
is drawn from the prior. It equals the true log p_{σ_min} only if s_θ is the exact score *and* the
prior is the exact p₁; the Gaussian N(0, σ_max² I) instead leaves an error that shrinks as σ_max grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from scoretutor import checks, losses
from scoretutor.checks import positive
from scoretutor.diffusion.sde import SDE, check_time

Tensor = torch.Tensor

__all__ = ["log_likelihood", "bits_per_dim", "bits_per_dim_from_log_likelihood", "dequantize"]

TRACES = ("exact", "hutchinson")


def log_likelihood(score_fn: Callable[[Tensor, Tensor], Tensor], sde: SDE, x: Tensor, trace: str = "exact",
                   rtol: float = 1e-5, atol: float = 1e-5,
                   prior_log_prob: Callable[[Tensor], Tensor] | None = None,
                   generator: torch.Generator | None = None, probe: str = "rademacher",
                   return_nfev: bool = False) -> Tensor | tuple[Tensor, int]:
    """log p₀(x) in nats, shape (N,), by the instantaneous change of variables along the ODE.

    Args:
        score_fn: s_θ(x, t) with t of shape (N,).
        sde: a ``scoretutor.diffusion.sde.SDE``; integration runs from ``sde.t_min`` to 1.
        x: (N, ...) points; any shape with the batch first; the score is called on x's device.
        trace: ``"exact"`` (autograd, D backward passes per evaluation) or ``"hutchinson"``
            (one fixed probe per point, drawn from ``generator``, of kind ``probe``).
        rtol, atol: solve_ivp tolerances for the joint state (x_t, ∫ div).
        prior_log_prob: log p₁(x₁) per example; default ``sde.prior_log_prob`` (the Gaussian prior).
        return_nfev: also return the number of right-hand-side evaluations.
    """
    from scipy.integrate import solve_ivp

    x = checks.batch(x, "x")
    if not torch.isfinite(x).all():
        raise ValueError("x contains non-finite values (nan or inf)")
    if trace not in TRACES:
        raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
    rtol, atol = positive(rtol, "rtol"), positive(atol, "atol")
    prior = prior_log_prob if prior_log_prob is not None else sde.prior_log_prob
    n, shape, dtype, device = x.shape[0], x.shape, x.dtype, x.device
    size = x.numel()
    v = losses.probe_like(x, probe, generator) if trace == "hutchinson" else None
    method = "hutchinson" if trace == "hutchinson" else "exact"

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(y[:size]).to(device=device, dtype=dtype).reshape(shape)
        tt = check_time(torch.full((n,), t, dtype=dtype, device=device), n)
        drift = lambda z: sde.ode_drift(z, tt, score_fn(z, tt))
        dx, div = losses.divergence(drift, xt, method=method, v=v)
        if not (torch.isfinite(dx).all() and torch.isfinite(div).all()):
            raise FloatingPointError(f"log_likelihood: the ODE right-hand side became non-finite at "
                                     f"t={t:.4g}; check the score function")
        return np.concatenate([dx.reshape(-1).double().cpu().numpy(), div.double().cpu().numpy()])

    y0 = np.concatenate([x.detach().reshape(-1).double().cpu().numpy(), np.zeros(n)])
    sol = solve_ivp(rhs, (sde.t_min, 1.0), y0, method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise FloatingPointError(f"log_likelihood: the ODE solver failed: {sol.message}")
    x1 = torch.from_numpy(sol.y[:size, -1].copy()).to(device=device, dtype=dtype).reshape(shape)
    delta = torch.from_numpy(sol.y[size:, -1].copy()).to(device=device, dtype=dtype)
    with torch.no_grad():
        logp1 = prior(x1)
    if not isinstance(logp1, Tensor) or logp1.shape != (n,):
        raise ValueError(f"prior_log_prob must return one value per example, shape ({n},), "
                         f"got {tuple(logp1.shape) if isinstance(logp1, Tensor) else type(logp1).__name__}")
    out = logp1.to(dtype) + delta
    return (out, int(sol.nfev)) if return_nfev else out


def dequantize(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantization of 8-bit images: y = (x + u)/256 ∈ [0, 1), u ~ U[0, 1)^D.

    Any density q on [0, 1)^D then gives the discrete model P(x) = ∫_{cell(x)} q, and by Jensen
    log P(x) ≥ E_u[log q(y)] − D log 256 (Theis et al. 2016): the usual bits/dim bound.
    """
    if not isinstance(images, Tensor) or images.ndim < 2 or images.numel() == 0:
        raise ValueError(f"images must be a tensor of shape (N, ...), got "
                         f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
    vals = images.double()
    if not (torch.all(vals == vals.round()) and vals.min() >= 0 and vals.max() <= 255):
        raise ValueError("images must hold 8-bit integer values 0 … 255 (as uint8 or integral floats), got "
                         f"range [{vals.min().item():.3g}, {vals.max().item():.3g}]")
    device = generator.device if generator is not None else images.device
    u = torch.rand(images.shape, generator=generator, dtype=torch.float64, device=device).to(images.device)
    return ((vals + u) / 256.0).float()


def bits_per_dim_from_log_likelihood(log_p: Tensor, n_dims: int, data_range: tuple[float, float] = (0.0, 1.0)
                                     ) -> Tensor:
    """bits/dim = −(log q(y) − D log 256)/(D log 2) for a density on dequantized data.

    ``log_p`` is the model's log-density in nats of the dequantized image *as the model sees it*,
    y' = lo + (hi − lo)·y with y ∈ [0, 1) (``data_range`` = (lo, hi), e.g. (−1, 1)). Undoing that
    affine map adds D log(hi − lo); the discrete 8-bit likelihood adds −D log 256. So
        bpd = −log p(y')/(D ln 2) − log₂(hi − lo) + 8,
    e.g. offset 8 for [0, 1] data and 7 for [−1, 1] data (score_sde_pytorch's ``7 − inverse_scaler(−1)``).
    A uniform density on the data range gives exactly 8.
    """
    lo, hi = (float(v) for v in data_range)
    if not hi > lo:
        raise ValueError(f"data_range must be (lo, hi) with lo < hi, got {data_range}")
    if int(n_dims) != n_dims or n_dims < 1:
        raise ValueError(f"n_dims must be a positive integer, got {n_dims!r}")
    return -log_p / (n_dims * math.log(2)) - math.log2(hi - lo) + 8.0


def bits_per_dim(score_fn: Callable[[Tensor, Tensor], Tensor], sde: SDE, images: Tensor,
                 data_range: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | None = None,
                 device=None, **kwargs) -> Tensor:
    """Bits per dimension of 8-bit ``images`` (N, C, H, W) under the score model, shape (N,).

    Dequantize (y = (x + u)/256), map to the model's ``data_range``, compute ``log_likelihood``
    (``kwargs`` go there, e.g. ``trace="hutchinson"``), and convert with
    :func:`bits_per_dim_from_log_likelihood`. One dequantization draw per image (average several
    calls for a tighter estimate of the bound).
    """
    lo, hi = (float(v) for v in data_range)
    y = dequantize(images, generator)
    y = (lo + (hi - lo) * y).to(device if device is not None else images.device)
    log_p = log_likelihood(score_fn, sde, y, generator=generator, **kwargs)
    return bits_per_dim_from_log_likelihood(log_p, y[0].numel(), (lo, hi))
