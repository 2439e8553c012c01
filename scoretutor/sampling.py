"""Langevin samplers: unadjusted Langevin (ULA), Metropolis-adjusted Langevin (MALA), annealed Langevin.

Given only the score s(x) = ∇ₓ log p(x), Langevin dynamics

    x_{i+1} = x_i + ε·s(x_i) + √(2ε)·z_i,        z_i ~ N(0, I),        i = 0, 1, …, K − 1,

turns any starting point x_0 ~ π into (approximately) a sample of p: exactly only as ε → 0 and
K → ∞. At finite ε the unadjusted chain is biased (for a Gaussian target N(0, s²) its stationary
variance is 2ε / (1 − (1 − ε/s²)²) instead of s², see tests/test_sampling.py); a Metropolis
correction (MALA) removes that bias when log p is known up to a constant.

Annealed Langevin (Song & Ermon 2019, Alg. 1) runs T = ``n_steps_each`` steps at each noise level
σ_1 > … > σ_L with the step size α_i = ε·σ_i²/σ_L² and the noise-conditional score s(x, σ_i).

Every sampler works on any tensor shape (2-D points (N, d) and images (N, C, H, W) alike), on the
device of x_0, under ``torch.no_grad()``. A score function that needs autograd internally (an
energy model, s = −∇f) must open its own ``torch.enable_grad()`` block, which works inside.

Iterates that become non-finite raise :class:`LangevinDivergenceError` (a ``FloatingPointError``)
naming the step: no silent NaN plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from scoretutor.checks import count, positive
from scoretutor.config import show_progress
from scoretutor.device import generator_device, randn_like

Tensor = torch.Tensor

__all__ = [
    "LangevinDivergenceError",
    "langevin",
    "annealed_langevin",
    "mala",
    "step_sizes",
]


class LangevinDivergenceError(FloatingPointError):
    """The Langevin iterates became non-finite (usually: step size ε too large for the score)."""


# -- input checks ------------------------------------------------------------------------------


def _check_x0(x0) -> Tensor:
    if not isinstance(x0, Tensor):
        raise ValueError(f"x0 must be a torch.Tensor, got {type(x0).__name__}")
    if not x0.is_floating_point():
        raise ValueError(f"x0 must be a floating-point tensor, got dtype {x0.dtype}")
    if x0.ndim < 1 or x0.numel() == 0:
        raise ValueError(f"x0 must be a non-empty tensor with a batch dimension, got shape {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains non-finite values (nan or inf)")
    return x0


def _check_sigmas(sigmas) -> list[float]:
    s = torch.as_tensor(sigmas, dtype=torch.float64).flatten().tolist() if not isinstance(
        sigmas, Sequence) else [float(v) for v in sigmas]
    if len(s) == 0:
        raise ValueError("sigmas must contain at least one noise level")
    if not all(v > 0 and math.isfinite(v) for v in s):
        raise ValueError(f"sigmas must be positive and finite, got {s}")
    if any(b >= a for a, b in zip(s, s[1:], strict=False)):
        raise ValueError(f"sigmas must be strictly decreasing (σ_1 > … > σ_L), got {s}")
    return s


def _call_score(score_fn: Callable, x: Tensor, *args) -> Tensor:
    s = score_fn(x, *args)
    if not isinstance(s, Tensor) or s.shape != x.shape:
        shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(f"score_fn must return a tensor shaped like x {tuple(x.shape)}, got {shape}")
    return s.detach().to(x.dtype)


def _check_finite(x: Tensor, where: str, eps: float) -> None:
    """Raise LangevinDivergenceError if x has nan/inf; ``eps`` is the user's step size ε."""
    if not torch.isfinite(x).all():
        raise LangevinDivergenceError(
            f"Langevin iterates became non-finite {where}; the chain diverged. "
            f"Try a smaller step size ε (now {eps:.3g}, e.g. {eps / 10:.3g}) or check the score function."
        )


class _Trajectory:
    """Keeps x_0 and every k-th iterate (and always the last), stacked along a new first dim."""

    def __init__(self, enabled: bool, every: int):
        self.enabled, self.every, self.items, self.last_saved = enabled, every, [], -1

    def add(self, step: int, x: Tensor, force: bool = False) -> None:
        if self.enabled and (force or step % self.every == 0) and step != self.last_saved:
            self.items.append(x.clone())
            self.last_saved = step

    def stack(self) -> Tensor:
        return torch.stack(self.items)


# -- samplers ----------------------------------------------------------------------------------
@torch.no_grad()
def langevin(score_fn: Callable[[Tensor], Tensor], x0: Tensor, step_size: float, n_steps: int,
             generator: torch.Generator | None = None, return_trajectory: bool = False,
             trajectory_every: int = 1, callback: Callable[[int, Tensor], None] | None = None,
             progress: bool | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Unadjusted Langevin: x_{i+1} = x_i + ε·s(x_i) + √(2ε)·z_i for i = 0 … n_steps − 1.

    Args:
        score_fn: s(x), returns a tensor shaped like x.
        x0: starting points, any shape with the batch first; the result lives on x0's device.
        step_size: ε > 0.
        n_steps: K >= 0.
        generator: for the noise z_i (reproducibility); may live on another device than x0.
        return_trajectory: also return the iterates x_0, x_k, x_2k, … and always x_K, stacked to
            shape (n_saved, *x0.shape), with k = ``trajectory_every``.
        callback: called as ``callback(i, x)`` after each step with the step number i = 1 … K.
        progress: show a tqdm bar (None: on unless fast mode or CI).

    Raises:
        LangevinDivergenceError: (a FloatingPointError) when an iterate becomes non-finite.
    """
    x = _check_x0(x0).clone()
    eps = positive(step_size, "step_size")
    n_steps = count(n_steps, "n_steps", 0)
    every = count(trajectory_every, "trajectory_every", 1)
    traj = _Trajectory(return_trajectory, every)
    traj.add(0, x)
    noise_scale = math.sqrt(2 * eps)
    for i in tqdm(range(1, n_steps + 1), desc="Langevin", disable=not show_progress(progress)):
        x = x + eps * _call_score(score_fn, x) + noise_scale * randn_like(x, generator)
        _check_finite(x, f"at step {i} of {n_steps}", eps)
        traj.add(i, x)
        if callback is not None:
            callback(i, x)
    traj.add(n_steps, x, force=True)
    return (x, traj.stack()) if return_trajectory else x


def step_sizes(sigmas: Sequence[float] | Tensor, step_size: float) -> list[float]:
    """The annealed schedule α_i = ε·σ_i²/σ_L² (so the last level uses α_L = ε)."""
    s = _check_sigmas(sigmas)
    eps = positive(step_size, "step_size")
    return [eps * si**2 / s[-1] ** 2 for si in s]


@torch.no_grad()
def annealed_langevin(score_fn: Callable[[Tensor, float], Tensor], x0: Tensor,
                      sigmas: Sequence[float] | Tensor, step_size: float, n_steps_each: int,
                      generator: torch.Generator | None = None, denoise_last: bool = True,
                      return_trajectory: bool = False, trajectory_every: int = 1,
                      callback: Callable[[int, int, Tensor, float, float], None] | None = None,
                      progress: bool | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For i = 1 … L (σ_1 > … > σ_L) with α_i = ε·σ_i²/σ_L², run T = ``n_steps_each`` steps

        x ← x + α_i·s(x, σ_i) + √(2α_i)·z,

    then, if ``denoise_last``, one noise-free step x ← x + σ_L²·s(x, σ_L) (Tweedie's formula:
    the posterior mean E[x_clean | x] for x ~ p_{σ_L}).

    Args:
        score_fn: s(x, σ) with σ a Python float, returns a tensor shaped like x.
        sigmas: the noise levels, strictly decreasing and positive.
        step_size: ε > 0, the step size at the last (smallest) level.
        n_steps_each: T >= 0 steps per level.
        return_trajectory: also return x_0 and every k-th iterate (global step count over all
            levels) and always the final result, stacked to (n_saved, *x0.shape).
        callback: ``callback(level, t, x, sigma, alpha)`` after each step, level = 0 … L − 1,
            t = 1 … T (the final denoising step is reported as t = T + 1 with alpha = σ_L²).
        progress: show a tqdm bar (None: on unless fast mode or CI).

    Raises:
        LangevinDivergenceError: (a FloatingPointError) when an iterate becomes non-finite.
    """
    x = _check_x0(x0).clone()
    sig = _check_sigmas(sigmas)
    alphas = step_sizes(sig, step_size)
    T = count(n_steps_each, "n_steps_each", 0)
    every = count(trajectory_every, "trajectory_every", 1)
    traj = _Trajectory(return_trajectory, every)
    traj.add(0, x)
    step, L = 0, len(sig)
    bar = tqdm(total=L * T, desc="annealed Langevin", disable=not show_progress(progress))
    for level, (sigma, alpha) in enumerate(zip(sig, alphas, strict=True)):
        noise_scale = math.sqrt(2 * alpha)
        for t in range(1, T + 1):
            x = x + alpha * _call_score(score_fn, x, sigma) + noise_scale * randn_like(x, generator)
            step += 1
            _check_finite(x, f"at level {level + 1} of {L} (σ={sigma:.3g}, α={alpha:.3g}), step {t} of {T}",
                          alphas[-1])
            traj.add(step, x)
            if callback is not None:
                callback(level, t, x, sigma, alpha)
            bar.update()
    bar.close()
    if denoise_last:
        x = x + sig[-1] ** 2 * _call_score(score_fn, x, sig[-1])
        step += 1
        _check_finite(x, f"in the final denoising step (σ_L={sig[-1]:.3g})", alphas[-1])
        if callback is not None:
            callback(L - 1, T + 1, x, sig[-1], sig[-1] ** 2)
    traj.add(step, x, force=True)
    return (x, traj.stack()) if return_trajectory else x


def _flat_sq_norm(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1).pow(2).sum(-1)


def _grad_log_prob(log_prob: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        lp = log_prob(xr)
        (g,) = torch.autograd.grad(lp.sum(), xr)
    return lp.detach(), g.detach()


@torch.no_grad()
def mala(log_prob: Callable[[Tensor], Tensor], x0: Tensor, step_size: float, n_steps: int,
         score_fn: Callable[[Tensor], Tensor] | None = None, generator: torch.Generator | None = None,
         return_trajectory: bool = False, trajectory_every: int = 1,
         callback: Callable[[int, Tensor], None] | None = None, return_acceptance: bool = False,
         progress: bool | None = None):
    """Metropolis-adjusted Langevin: a Langevin proposal plus an accept/reject step.

    Proposal y = x + ε·s(x) + √(2ε)·z, i.e. q(y | x) = N(y; x + ε·s(x), 2ε·I). Accept with
    probability min(1, p(y) q(x | y) / (p(x) q(y | x))), where
    log q(y | x) = −‖y − x − ε·s(x)‖² / (4ε) + const. The chain then leaves p exactly invariant
    at any ε (the bias of the unadjusted chain is gone); large ε only lowers the acceptance rate.

    Args:
        log_prob: log p(x) up to an additive constant, one value per batch element (shape (N,)).
        score_fn: s(x) = ∇ log p(x); by default computed from ``log_prob`` with autograd.
        return_acceptance: also return the fraction of accepted proposals per chain, shape (N,).
        (other arguments as in :func:`langevin`)

    Returns x, then the trajectory if requested, then the acceptance rates if requested.
    """
    x = _check_x0(x0).clone()
    eps = positive(step_size, "step_size")
    n_steps = count(n_steps, "n_steps", 0)
    every = count(trajectory_every, "trajectory_every", 1)
    N = x.shape[0]

    def evaluate(v: Tensor) -> tuple[Tensor, Tensor]:
        if score_fn is None:
            lp, s = _grad_log_prob(log_prob, v)
        else:
            lp, s = log_prob(v).detach(), _call_score(score_fn, v)
        if lp.shape != (N,):
            raise ValueError(f"log_prob must return one value per batch element, shape ({N},), "
                             f"got {tuple(lp.shape)}")
        return lp, s

    lp_x, s_x = evaluate(x)
    accepted = torch.zeros(N, device=x.device, dtype=x.dtype)
    traj = _Trajectory(return_trajectory, every)
    traj.add(0, x)
    noise_scale = math.sqrt(2 * eps)
    shape = (N,) + (1,) * (x.ndim - 1)
    for i in tqdm(range(1, n_steps + 1), desc="MALA", disable=not show_progress(progress)):
        y = x + eps * s_x + noise_scale * randn_like(x, generator)
        _check_finite(y, f"at step {i} of {n_steps} (proposal)", eps)
        lp_y, s_y = evaluate(y)
        log_q_y_given_x = -_flat_sq_norm(y - x - eps * s_x) / (4 * eps)
        log_q_x_given_y = -_flat_sq_norm(x - y - eps * s_y) / (4 * eps)
        log_ratio = lp_y + log_q_x_given_y - lp_x - log_q_y_given_x
        u = torch.rand(N, generator=generator, dtype=x.dtype, device=generator_device(generator, x.device))
        u = u.to(x.device)
        # NaN log-ratios (proposal in a region where log p is undefined) are rejected.
        accept = torch.log(u) < torch.nan_to_num(log_ratio, nan=-math.inf)
        x = torch.where(accept.view(shape), y, x)
        s_x = torch.where(accept.view(shape), s_y, s_x)
        lp_x = torch.where(accept, lp_y, lp_x)
        accepted += accept.to(x.dtype)
        _check_finite(x, f"at step {i} of {n_steps}", eps)
        traj.add(i, x)
        if callback is not None:
            callback(i, x)
    traj.add(n_steps, x, force=True)
    out: list[Tensor] = [x]
    if return_trajectory:
        out.append(traj.stack())
    if return_acceptance:
        out.append(accepted / max(n_steps, 1))
    return out[0] if len(out) == 1 else tuple(out)
