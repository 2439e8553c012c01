"""Langevin samplers: unadjusted Langevin (ULA), Metropolis-adjusted Langevin (MALA), annealed Langevin.

Given only the score s(x) = ∇ₓ log p(x), Langevin dynamics

    x_{i+1} = x_i + ε·s(x_i) + √(2ε)·z_i,        z_i ~ N(0, I),        i = 0, 1, …, K − 1,

turns any starting point x_0 ~ π into (approximately) a sample of p: exactly only as ε → 0 and
K → ∞. At finite ε the unadjusted chain is biased (for a Gaussian target N(0, σ²) its stationary
variance is 2ε / (1 − (1 − ε/σ²)²) instead of σ², :func:`ula_stationary_variance`); a Metropolis
correction (MALA) removes that bias when log p is known up to a constant.

Annealed Langevin (Song & Ermon 2019, Alg. 1) runs T = ``n_steps_each`` steps at each noise level,
from the largest to the smallest, with the noise-conditional score s(x, σ_i) and the step size
α_i = ε·σ_i²/σ_1². Numbering as in the lecture deck: σ_1 < … < σ_L, so σ_1 = σ_min (the last level,
where α = ε) and σ_L = σ_max (the first); the 2019 paper numbers them the other way round. In code,
``sigmas`` lists the levels in the order the sampler visits them, largest first.

Every sampler returns a :class:`SamplerOutput` (x, trajectory, acceptance, n_score_evals) and works
on any tensor shape (2-D points (N, d) and images (N, C, H, W) alike), on the
device of x_0, under ``torch.no_grad()``. A score function that needs autograd internally (an
energy model, s = −∇f) must open its own ``torch.enable_grad()`` block, which works inside.

Iterates that become non-finite raise :class:`LangevinDivergenceError` (a ``FloatingPointError``)
naming the step: no silent NaN plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from scoretutor import checks
from scoretutor.checks import count, positive
from scoretutor.config import show_progress
from scoretutor.device import generator_device, randn_like

Tensor = torch.Tensor

__all__ = [
    "SamplerDivergenceError",
    "LangevinDivergenceError",
    "SamplerOutput",
    "langevin",
    "annealed_langevin",
    "mala",
    "step_sizes",
    "ula_stationary_variance",
]


class SamplerOutput(NamedTuple):
    """What every sampler returns.

    x: the final samples, shaped like x0. trajectory: x_0, every k-th iterate and the last,
    stacked to (n_saved, *x0.shape), or None unless requested. acceptance: MALA's fraction of
    accepted proposals per chain, shape (N,) (None for the other samplers). n_score_evals: score
    evaluations per particle, the final denoising step included (MALA: one per proposal plus x_0).
    """

    x: Tensor
    trajectory: Tensor | None
    acceptance: Tensor | None
    n_score_evals: int


class SamplerDivergenceError(FloatingPointError):
    """A sampler's iterates became non-finite (usually: a step too large for the score).

    Attributes: ``step`` (the step that failed: 1 … K, or 1 … T within an annealed level, T + 1
    for the final denoising step), ``level`` (the annealed level index 0 … L − 1, None for the
    other samplers) and ``step_size`` (the step size of the failing update: ε, or α_i annealed).
    """

    def __init__(self, message: str, step: int | None = None, level: int | None = None,
                 step_size: float | None = None):
        super().__init__(message)
        self.step, self.level, self.step_size = step, level, step_size


class LangevinDivergenceError(SamplerDivergenceError):
    """The Langevin iterates became non-finite (usually: step size ε too large for the score)."""


def ula_stationary_variance(step_size: float, sigma: float) -> float:
    """ULA's stationary variance for the target N(0, σ²): 2ε / (1 − (1 − ε/σ²)²) = σ² / (1 − ε/(2σ²)).

    One step x' = a·x + √(2ε)·z with a = 1 − ε/σ² maps the variance v to a²v + 2ε, whose fixed
    point is v* = 2ε/(1 − a²): above σ² by the factor 1/(1 − ε/(2σ²)), the O(ε) bias that MALA
    removes. The chain is stable only for 0 < ε < 2σ².
    """
    step_size, s2 = positive(step_size, "step_size"), positive(sigma, "sigma") ** 2
    if not step_size < 2 * s2:
        raise ValueError(f"the chain is stable only for 0 < step_size < 2σ² = {2 * s2:.4g}, got {step_size}")
    a = 1 - step_size / s2
    return 2 * step_size / (1 - a * a)


# -- input checks ------------------------------------------------------------------------------
def _check_x0(x0) -> Tensor:
    x0 = checks.batch(x0, "x0", min_ndim=1)
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains non-finite values (nan or inf)")
    return x0


def _score(score_fn: Callable, x: Tensor, *args) -> Tensor:
    return checks.call_score(score_fn, x, *args).detach().to(x.dtype)


def _check_finite(x: Tensor, where: str, step: int, level: int | None, step_size: float,
                  user_step_size: float) -> None:
    """Raise LangevinDivergenceError if x has nan/inf; ``user_step_size`` is the ε the caller passed."""
    if not torch.isfinite(x).all():
        eps = user_step_size
        raise LangevinDivergenceError(
            f"Langevin iterates became non-finite {where}; the chain diverged. "
            f"Try a smaller step size ε (now {eps:.3g}, e.g. {eps / 10:.3g}) or check the score function.",
            step, level, step_size)


class _Trajectory:
    """Keeps x_0 and every k-th iterate (and always the last), stacked along a new first dim."""

    def __init__(self, enabled: bool, every: int):
        self.enabled, self.every, self.items, self.last_saved = enabled, every, [], -1

    def add(self, step: int, x: Tensor, force: bool = False) -> None:
        if self.enabled and (force or step % self.every == 0) and step != self.last_saved:
            self.items.append(x.clone())
            self.last_saved = step

    def stack(self) -> Tensor | None:
        return torch.stack(self.items) if self.enabled else None


# -- samplers ----------------------------------------------------------------------------------
@torch.no_grad()
def langevin(score_fn: Callable[[Tensor], Tensor], x0: Tensor, step_size: float, n_steps: int,
             generator: torch.Generator | None = None, return_trajectory: bool = False,
             trajectory_every: int = 1, callback: Callable[[int, Tensor], None] | None = None,
             progress: bool | None = None) -> SamplerOutput:
    """Unadjusted Langevin: x_{i+1} = x_i + ε·s(x_i) + √(2ε)·z_i for i = 0 … n_steps − 1.

    Args:
        score_fn: s(x), returns a tensor shaped like x.
        x0: starting points, any shape with the batch first; the result lives on x0's device.
        step_size: ε > 0.
        n_steps: K >= 0.
        generator: for the noise z_i (reproducibility); may live on another device than x0.
        return_trajectory: keep the iterates x_0, x_k, x_2k, … and always x_K, stacked to
            shape (n_saved, *x0.shape), with k = ``trajectory_every``.
        callback: called as ``callback(i, x)`` after each step with the step number i = 1 … K.
        progress: show a tqdm bar (None: on unless fast mode or CI).

    Returns:
        SamplerOutput(x, trajectory or None, None, n_score_evals=K).

    Raises:
        LangevinDivergenceError: (a FloatingPointError) when an iterate becomes non-finite.
    """
    x = _check_x0(x0).clone()
    step_size = positive(step_size, "step_size")
    n_steps = count(n_steps, "n_steps", 0)
    every = count(trajectory_every, "trajectory_every", 1)
    traj = _Trajectory(return_trajectory, every)
    traj.add(0, x)
    noise_scale = math.sqrt(2 * step_size)
    for i in tqdm(range(1, n_steps + 1), desc="Langevin", disable=not show_progress(progress)):
        x = x + step_size * _score(score_fn, x) + noise_scale * randn_like(x, generator)
        _check_finite(x, f"at step {i} of {n_steps}", i, None, step_size, step_size)
        traj.add(i, x)
        if callback is not None:
            callback(i, x)
    traj.add(n_steps, x, force=True)
    return SamplerOutput(x, traj.stack(), None, n_steps)


def step_sizes(sigmas: Sequence[float] | Tensor, step_size: float) -> list[float]:
    """The annealed schedule α_i = ε·σ_i²/σ_1², σ_1 the smallest level (``sigmas[-1]``, which uses α = ε)."""
    sigmas = checks.sigmas(sigmas)
    step_size = positive(step_size, "step_size")
    return [step_size * sigma**2 / sigmas[-1] ** 2 for sigma in sigmas]


@torch.no_grad()
def annealed_langevin(score_fn: Callable[[Tensor, float], Tensor], x0: Tensor,
                      sigmas: Sequence[float] | Tensor, step_size: float, n_steps_each: int,
                      generator: torch.Generator | None = None, denoise_last: bool = True,
                      return_trajectory: bool = False, trajectory_every: int = 1,
                      callback: Callable[[int, int, Tensor, float, float], None] | None = None,
                      progress: bool | None = None) -> SamplerOutput:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For i = L, L − 1, …, 1 (the deck's numbering σ_1 < … < σ_L: largest level first) with
    α_i = ε·σ_i²/σ_1², run T = ``n_steps_each`` steps

        x ← x + α_i·s(x, σ_i) + √(2α_i)·z,

    then, if ``denoise_last``, one noise-free step x ← x + σ_1²·s(x, σ_1) (Tweedie's formula:
    the posterior mean E[x_clean | x] for x ~ p_{σ_1}).

    Args:
        score_fn: s(x, σ) with σ a Python float, returns a tensor shaped like x.
        sigmas: the noise levels in visiting order, σ_L = σ_max first: strictly decreasing and positive.
        step_size: ε > 0, the step size at the last (smallest) level.
        n_steps_each: T >= 0 steps per level.
        return_trajectory: keep x_0 and every k-th iterate (global step count over all
            levels) and always the final result, stacked to (n_saved, *x0.shape).
        callback: ``callback(level, t, x, sigma, alpha)`` after each step, level = 0 … L − 1,
            t = 1 … T (the final denoising step is reported as t = T + 1 with alpha = σ_1²).
        progress: show a tqdm bar (None: on unless fast mode or CI).

    Returns:
        SamplerOutput(x, trajectory or None, None, n_score_evals = L·T (+1 with ``denoise_last``)).

    Raises:
        LangevinDivergenceError: (a FloatingPointError) when an iterate becomes non-finite; its
            ``level`` and ``step`` say where, its ``step_size`` is that level's α_i.
    """
    x = _check_x0(x0).clone()
    sig = checks.sigmas(sigmas)
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
            x = x + alpha * _score(score_fn, x, sigma) + noise_scale * randn_like(x, generator)
            step += 1
            _check_finite(x, f"at level {level + 1} of {L} (σ={sigma:.3g}, α={alpha:.3g}), step {t} of {T}",
                          t, level, alpha, alphas[-1])
            traj.add(step, x)
            if callback is not None:
                callback(level, t, x, sigma, alpha)
            bar.update()
    bar.close()
    if denoise_last:
        x = x + sig[-1] ** 2 * _score(score_fn, x, sig[-1])
        step += 1
        _check_finite(x, f"in the final denoising step (σ_min={sig[-1]:.3g})", T + 1, L - 1, sig[-1] ** 2,
                      alphas[-1])
        if callback is not None:
            callback(L - 1, T + 1, x, sig[-1], sig[-1] ** 2)
    traj.add(step, x, force=True)
    return SamplerOutput(x, traj.stack(), None, L * T + int(denoise_last))


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
         callback: Callable[[int, Tensor], None] | None = None, progress: bool | None = None
         ) -> SamplerOutput:
    """Metropolis-adjusted Langevin: a Langevin proposal plus an accept/reject step.

    Proposal y = x + ε·s(x) + √(2ε)·z, i.e. q(y | x) = N(y; x + ε·s(x), 2ε·I). Accept with
    probability min(1, p(y) q(x | y) / (p(x) q(y | x))), where
    log q(y | x) = −‖y − x − ε·s(x)‖² / (4ε) + const. The chain then leaves p exactly invariant
    at any ε (the bias of the unadjusted chain is gone); large ε only lowers the acceptance rate.

    Args:
        log_prob: log p(x) up to an additive constant, one value per batch element (shape (N,)).
        score_fn: s(x) = ∇ log p(x); by default computed from ``log_prob`` with autograd.
        (other arguments as in :func:`langevin`)

    Returns:
        SamplerOutput(x, trajectory or None, acceptance = the fraction of accepted proposals per
        chain, shape (N,), n_score_evals = K + 1).
    """
    x = _check_x0(x0).clone()
    step_size = positive(step_size, "step_size")
    n_steps = count(n_steps, "n_steps", 0)
    every = count(trajectory_every, "trajectory_every", 1)
    N = x.shape[0]

    def evaluate(v: Tensor) -> tuple[Tensor, Tensor]:
        if score_fn is None:
            lp, s = _grad_log_prob(log_prob, v)
        else:
            lp, s = log_prob(v).detach(), _score(score_fn, v)
        if lp.shape != (N,):
            raise ValueError(f"log_prob must return one value per batch element, shape ({N},), "
                             f"got {tuple(lp.shape)}")
        return lp, s

    lp_x, s_x = evaluate(x)
    accepted = torch.zeros(N, device=x.device, dtype=x.dtype)
    traj = _Trajectory(return_trajectory, every)
    traj.add(0, x)
    noise_scale = math.sqrt(2 * step_size)
    shape = (N,) + (1,) * (x.ndim - 1)
    for i in tqdm(range(1, n_steps + 1), desc="MALA", disable=not show_progress(progress)):
        y = x + step_size * s_x + noise_scale * randn_like(x, generator)
        _check_finite(y, f"at step {i} of {n_steps} (proposal)", i, None, step_size, step_size)
        lp_y, s_y = evaluate(y)
        log_q_y_given_x = -checks.sq_norm(y - x - step_size * s_x) / (4 * step_size)
        log_q_x_given_y = -checks.sq_norm(x - y - step_size * s_y) / (4 * step_size)
        log_ratio = lp_y + log_q_x_given_y - lp_x - log_q_y_given_x
        u = torch.rand(N, generator=generator, dtype=x.dtype, device=generator_device(generator, x.device))
        u = u.to(x.device)
        # NaN log-ratios (proposal in a region where log p is undefined) are rejected.
        accept = torch.log(u) < torch.nan_to_num(log_ratio, nan=-math.inf)
        x = torch.where(accept.view(shape), y, x)
        s_x = torch.where(accept.view(shape), s_y, s_x)
        lp_x = torch.where(accept, lp_y, lp_x)
        accepted += accept.to(x.dtype)
        _check_finite(x, f"at step {i} of {n_steps}", i, None, step_size, step_size)
        traj.add(i, x)
        if callback is not None:
            callback(i, x)
    traj.add(n_steps, x, force=True)
    return SamplerOutput(x, traj.stack(), accepted / max(n_steps, 1), n_steps + 1)
