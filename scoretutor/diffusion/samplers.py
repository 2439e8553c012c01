"""SDE samplers (Song et al. 2021): reverse SDE, predictor–corrector, probability-flow ODE.

Song et al. 2021, "Score-Based Generative Modeling through Stochastic Differential Equations".
Each takes score_fn(x, t) with t of shape (N,) and a :class:`scoretutor.diffusion.sde.SDE`; x_T is
usually ``sde.prior_sample(shape, generator)``. Time runs from t = 1 down to ``sde.t_min`` on the grid
t_k = 1 − k (1 − t_min)/n_steps, k = 0 … n_steps. Every sampler returns a
:class:`~scoretutor.sampling.SamplerOutput`; non-finite iterates raise :class:`SDEDivergenceError`,
a failed ODE solve :class:`ODESolverError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from scoretutor.checks import count, positive
from scoretutor.config import show_progress
from scoretutor.device import randn_like
from scoretutor.diffusion.sde import check_time
from scoretutor.sampling import (
    SamplerDivergenceError,
    SamplerOutput,
    _check_x0,
    _score,
    _Trajectory,
    langevin,
)

Tensor = torch.Tensor


class SDEDivergenceError(SamplerDivergenceError):
    """The iterates of an SDE sampler became non-finite (too few steps, or a bad score)."""


class ODESolverError(RuntimeError):
    """The probability-flow ODE solver gave up (its message says why)."""


def _sde_grid(sde, n_steps: int) -> list[float]:
    return [1.0 - k * (1.0 - sde.t_min) / n_steps for k in range(n_steps + 1)]


def _sde_score(score_fn: Callable, x: Tensor, t: float) -> Tensor:
    return _score(score_fn, x, torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device))


def _sde_guard(x: Tensor, sampler: str, step: int, n_steps: int, t: float, dt: float) -> None:
    """Raise SDEDivergenceError (step, step_size = dt or the corrector's ε) if x has nan/inf."""
    if not torch.isfinite(x).all():
        raise SDEDivergenceError(
            f"{sampler}: iterates became non-finite at step {step} of {n_steps} (t={t:.4g}, step size "
            f"{dt:.3g}); try more steps (now {n_steps}) or check the score function.",
            step=step, step_size=dt)


@torch.no_grad()
def reverse_sde(score_fn: Callable[[Tensor, Tensor], Tensor], sde, x_T: Tensor, n_steps: int,
                generator: torch.Generator | None = None, denoise: bool = True,
                return_trajectory: bool = False, trajectory_every: int = 1,
                progress: bool | None = None) -> SamplerOutput:
    """Euler–Maruyama on the reverse SDE dx = [f − g² s_θ(x, t)] dt + g dw̄ from t = 1 to t_min:

        x ← x − [f(x, t_k) − g(t_k)² s_θ(x, t_k)]·Δt + g(t_k) √Δt z,    Δt = (1 − t_min)/n_steps.

    ``denoise``: the last step adds no noise (its mean, as score_sde_pytorch returns). One score
    evaluation per step: ``n_score_evals = n_steps``.
    """
    x = _check_x0(x_T).clone()
    n_steps = count(n_steps, "n_steps", 1)
    traj = _Trajectory(return_trajectory, count(trajectory_every, "trajectory_every", 1))
    traj.add(0, x)
    ts = _sde_grid(sde, n_steps)
    for k in tqdm(range(n_steps), desc="reverse SDE", disable=not show_progress(progress)):
        t, dt = ts[k], ts[k] - ts[k + 1]
        drift = sde.reverse_drift(x, t, _sde_score(score_fn, x, t))
        _, g = sde.sde(x, t)
        x = x - drift * dt
        if not (denoise and k == n_steps - 1):
            x = x + g.reshape(-1, *([1] * (x.ndim - 1))) * math.sqrt(dt) * randn_like(x, generator)
        _sde_guard(x, "reverse_sde", k + 1, n_steps, t, dt)
        traj.add(k + 1, x)
    traj.add(n_steps, x, force=True)
    return SamplerOutput(x, traj.stack(), None, n_steps)


@torch.no_grad()
def predictor_corrector(score_fn: Callable[[Tensor, Tensor], Tensor], sde, x_T: Tensor, n_steps: int,
                        snr: float = 0.16, n_corrector: int = 1, generator: torch.Generator | None = None,
                        denoise: bool = True, return_trajectory: bool = False, trajectory_every: int = 1,
                        progress: bool | None = None) -> SamplerOutput:
    """Predictor–corrector sampling (Song et al. 2021, Alg. 2–3): at each t_k, first
    ``n_corrector`` Langevin steps at the current level (corrector), then one reverse-diffusion step
    to t_{k+1} (predictor).

    Corrector: :func:`langevin`'s step x ← x + ε s + √(2ε) z with ε = 2 a² (snr · √D / ‖s‖)², ‖s‖
    the batch-mean score norm and √D the typical noise norm (score_sde_pytorch uses the norm of a
    drawn z, ≈ √D in high dimension); a = 1 for VE, √(1 − β_i) for VP.
    Predictor: invert the exact forward step x_{k} = a x_{k+1} + G z of ``sde.transition``:
    x ← x − (a − 1) x + G² s + G z (score_sde_pytorch's ReverseDiffusionPredictor).
    ``n_score_evals = n_steps · (1 + n_corrector)``.
    """
    x = _check_x0(x_T).clone()
    n_steps = count(n_steps, "n_steps", 1)
    n_corrector = count(n_corrector, "n_corrector", 0)
    snr = positive(snr, "snr")
    traj = _Trajectory(return_trajectory, count(trajectory_every, "trajectory_every", 1))
    traj.add(0, x)
    ts = _sde_grid(sde, n_steps)
    d = x[0].numel()
    for k in tqdm(range(n_steps), desc="predictor-corrector", disable=not show_progress(progress)):
        t, t_next = ts[k], ts[k + 1]
        a, G = (v.item() for v in sde.transition(t_next, t))
        for _ in range(n_corrector):
            s = _sde_score(score_fn, x, t)
            s_norm = s.reshape(s.shape[0], -1).norm(dim=-1).mean().item()
            eps = 2 * a**2 * (snr * math.sqrt(d) / max(s_norm, 1e-30)) ** 2
            if not (math.isfinite(s_norm) and eps > 0):  # a non-finite score: no step size to take
                _sde_guard(s, "predictor_corrector (corrector score)", k + 1, n_steps, t, eps)
            x = langevin(lambda _, s=s: s, x, eps, 1, generator=generator, progress=False).x
            _sde_guard(x, "predictor_corrector (corrector)", k + 1, n_steps, t, eps)
        s = _sde_score(score_fn, x, t)
        x = x - (a - 1) * x + G**2 * s
        if not (denoise and k == n_steps - 1):
            x = x + G * randn_like(x, generator)
        _sde_guard(x, "predictor_corrector (predictor)", k + 1, n_steps, t, t - t_next)
        traj.add(k + 1, x)
    traj.add(n_steps, x, force=True)
    return SamplerOutput(x, traj.stack(), None, n_steps * (1 + n_corrector))


@torch.no_grad()
def probability_flow(score_fn: Callable[[Tensor, Tensor], Tensor], sde, x_T: Tensor, rtol: float = 1e-5,
                     atol: float = 1e-5, method: str = "RK45", return_trajectory: bool = False,
                     t_eval: Sequence[float] | None = None) -> SamplerOutput:
    """Integrate the probability-flow ODE dx/dt = f(x, t) − ½ g(t)² s_θ(x, t) from t = 1 to t_min.

    Deterministic: the samples are a fixed function of x_T, and their law equals p_{t_min} only
    if x_T ~ p_1 exactly (no noise corrects a wrong prior). Solved by scipy's ``solve_ivp``
    (adaptive Runge–Kutta, RK45 by default, tolerances ``rtol``/``atol``), chosen over torchdiffeq
    because it is the solver score_sde_pytorch uses for sampling and likelihoods (so tolerances
    and evaluation counts compare with the paper's), it is a widely kept library with error
    control and an evaluation count, and it needs no extra autograd machinery. It integrates in
    float64 on the CPU and calls the score on x's device: one host copy of the state per
    evaluation, negligible next to a network call (torchdiffeq would avoid it on a GPU).
    ``n_score_evals`` is the solver's number of right-hand-side evaluations; the trajectory holds
    the accepted steps, or, with ``t_eval`` (times in [t_min, 1]), the states at those times from the
    solver's dense output (its interpolant, accurate to the tolerances).
    """
    from scipy.integrate import solve_ivp

    x = _check_x0(x_T)
    rtol, atol = positive(rtol, "rtol"), positive(atol, "atol")
    shape, dtype, device = x.shape, x.dtype, x.device

    def rhs(t: float, y):
        xt = torch.from_numpy(y).to(device=device, dtype=dtype).reshape(shape)
        dx = sde.ode_drift(xt, t, _sde_score(score_fn, xt, t))
        if not torch.isfinite(dx).all():
            raise SDEDivergenceError(f"probability_flow: the ODE right-hand side became non-finite at "
                                          f"t={t:.4g}; check the score function.")
        return dx.reshape(-1).double().cpu().numpy()

    y0 = x.reshape(-1).double().cpu().numpy()
    times = None if t_eval is None else check_time(t_eval, name="t_eval").tolist()
    if times is not None and min(times) < sde.t_min:
        raise ValueError(f"t_eval must lie in [t_min, 1] = [{sde.t_min:g}, 1], got {times}")
    sol = solve_ivp(rhs, (1.0, sde.t_min), y0, method=method, rtol=rtol, atol=atol,
                    dense_output=times is not None)
    if not sol.success:
        raise ODESolverError(f"probability_flow: the ODE solver failed: {sol.message}")
    out = torch.from_numpy(sol.y[:, -1].copy()).to(device=device, dtype=dtype).reshape(shape)
    traj = None
    if times is not None:
        states = sol.sol(times).T if len(times) else sol.y[:, :0].T
        traj = torch.from_numpy(states.copy()).to(device=device, dtype=dtype).reshape(-1, *shape)
    elif return_trajectory:
        traj = torch.from_numpy(sol.y.T.copy()).to(device=device, dtype=dtype).reshape(-1, *shape)
    return SamplerOutput(out, traj, None, int(sol.nfev))


def ode_sde_marginals(score_fn: Callable[[Tensor, Tensor], Tensor], sde, x_T: Tensor, times: Sequence[float],
                      n_steps: int = 1000, generator: torch.Generator | None = None, rtol: float = 1e-6,
                      atol: float = 1e-6) -> tuple[Tensor, Tensor]:
    """The probability-flow ODE and the reverse SDE, both from the same x_T, seen at ``times``.

    Why they should agree (Fokker–Planck): the marginals of dx = f dt + g dw obey
        ∂p_t/∂t = −∇·(f p_t) + ½ g² Δp_t = −∇·((f − ½ g² ∇log p_t) p_t),
    a continuity equation for the velocity f − ½ g² ∇log p_t, so the ODE dx/dt = f − ½ g² ∇log p_t
    moves p_t exactly as the SDE does; run backwards from x_T ~ p_1, both give p_t at every t (and so
    does the reverse SDE, whose drift f − g² ∇log p_t adds the noise's ½ g² Δp back). Their *paths*
    differ: the ODE is a fixed map of x_T, the SDE injects fresh noise.

    ``times`` in [t_min, 1] must lie on the reverse SDE's grid t_k = 1 − k (1 − t_min)/n_steps.
    Returns (ode, sde), each of shape (len(times), *x_T.shape): ``probability_flow`` (its dense output,
    tolerances ``rtol``/``atol``) and ``reverse_sde`` (Euler–Maruyama, ``n_steps``, noise on every
    step, ``generator``).
    """
    ts = check_time(times, name="times").tolist()
    n_steps = count(n_steps, "n_steps", 1)
    span = 1.0 - sde.t_min
    ks = [round((1.0 - t) / span * n_steps) for t in ts]
    for t, k in zip(ts, ks, strict=True):
        if abs(1.0 - k * span / n_steps - t) > 1e-9 or t < sde.t_min:
            raise ValueError(f"times must lie on the reverse SDE's grid 1 − k·{span:g}/{n_steps} "
                             f"(k = 0 … {n_steps}), got t = {t:g}")
    ode = probability_flow(score_fn, sde, x_T, rtol=rtol, atol=atol, t_eval=ts).trajectory
    every = math.gcd(*ks, n_steps)  # divides n_steps: the trajectory holds steps 0, every, 2·every, …
    path = reverse_sde(score_fn, sde, x_T, n_steps, generator=generator, denoise=False,
                       return_trajectory=True, trajectory_every=every, progress=False).trajectory
    return ode, path[[k // every for k in ks]]
