"""Notebook 07's check-yourself exercises: the order of Heun's method, and a score from a velocity.

1. **Predict, then check** (:func:`check_heun_slope`): on a log–log plot of endpoint error against network
   calls, what slope will Heun's method (Karras et al. 2022) show? The checker runs the experiment (the
   exact score of the NCSN mixture on the VE SDE, 32 … 256 calls, error against a tight DOP853 solve from
   the same starts) and compares; a prediction of Euler's slope or a positive slope is named.
2. **Derive** (:func:`check_score_from_velocity`): on the linear path x_t = (1 − t) x₀ + t z, write the
   score ∇log p_t(x) in terms of the marginal velocity v(x, t) = E[z − x₀ | x_t = x]. The checker compares
   with the exact score of a Gaussian mixture; the usual slips (sign, t and 1 − t swapped) are named.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.diffusion import solvers
from scoretutor.diffusion.flow_matching import LinearPath, mixture_velocity_fn
from scoretutor.diffusion.samplers import probability_flow
from scoretutor.diffusion.sde import VESDE, marginal_mixture, mixture_score_fn

Tensor = torch.Tensor
CALLS = (32, 64, 128, 256)


@functools.lru_cache(maxsize=4)
def order_experiment(name: str = "Heun (Karras)", n: int = 300) -> dict[str, object]:
    """The experiment behind :func:`check_heun_slope`: median endpoint error of solver ``name`` at
    ``CALLS`` calls, VESDE(0.1, 50), exact score, n starts x_1 ~ p_1; the fitted order and its se."""
    mix, sde = ncsn_mixture(dtype=torch.float64), VESDE(0.1, 50.0)
    score = mixture_score_fn(mix, sde)
    x1 = marginal_mixture(mix, sde, 1.0).sample(n, torch.Generator().manual_seed(0))
    ref = probability_flow(score, sde, x1, rtol=1e-10, atol=1e-10, method="DOP853").x
    errors = [(solvers.run_solver(name, score, sde, x1, c).x - ref).norm(dim=1).median().item()
              for c in CALLS]
    order, se = solvers.convergence_order(CALLS, errors)
    return {"calls": list(CALLS), "errors": errors, "order": order, "se": se}


def check_heun_slope(predicted_slope, tol: float = 0.3) -> bool:
    """Predict, then check: the slope of log(error) against log(network calls) for Heun's method."""
    if predicted_slope is None:
        print("Not attempted yet: write down your predicted slope (replace the `None`), then run the cell.")
        return False
    try:
        guess = float(predicted_slope)
    except (TypeError, ValueError):
        print("predicted_slope must be a number, e.g. −0.5.")
        return False
    r = order_experiment()
    slope = -r["order"]
    errs = ", ".join(f"{c}: {e:.1e}" for c, e in zip(r["calls"], r["errors"], strict=True))
    print(f"What happened: median endpoint error at {errs} calls — a slope of {slope:.2f} ± {r['se']:.2f}.")
    if abs(guess - slope) <= tol:
        print("✓ Right: Heun's local error is O(h³), so N steps of size h ∝ 1/N leave a global error O(h²) = "
              "O(N⁻²); two calls per step change only the constant, not the slope.")
        return True
    if abs(guess + slope) <= tol:
        print("✗ The error *falls* as the calls grow: the slope is negative.")
    elif abs(guess - (slope + 1)) <= tol:
        print("✗ That is Euler's slope (−1, first order). Heun averages the slopes at both ends of the step, "
              "which cancels the O(h²) term of the local error: global error O(h²).")
    else:
        print("✗ Not quite. Count the order: local error O(h^{p+1}) per step, N ∝ 1/h steps, global O(h^p); "
              "the number of calls per step changes only the constant.")
    return False


def _cases():
    path, g = LinearPath(), torch.Generator().manual_seed(2)
    mix = GaussianMixture(torch.tensor([[-2.0, 1.0], [3.0, 0.5]], dtype=torch.float64), 0.8,
                          torch.tensor([0.3, 0.7], dtype=torch.float64))
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.9 + 0.05
    z = torch.randn(64, 2, generator=g, dtype=torch.float64)
    x = (1 - t[:, None]) * mix.sample(64, g) + t[:, None] * z
    v = mixture_velocity_fn(mix)(x, t)
    return x, t[:, None], v, mixture_score_fn(mix, path)(x, t)


def _close(a, b) -> bool:
    ok = isinstance(a, Tensor) and a.shape == b.shape
    return ok and torch.allclose(a.double(), b, rtol=1e-6, atol=1e-8)


def check_score_from_velocity(student_fn: Callable) -> bool:
    """Check ``student_fn(x, t, v)`` (t shaped (N, 1)) against ∇log p_t = −(x + (1 − t) v)/t; print a verdict.
    """
    x, t, v, want = _cases()
    try:
        got = student_fn(x.clone(), t.clone(), v.clone())
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` with your formula.")
        return False
    if _close(got, want):
        print("Correct! ∇log p_t(x) = −(x + (1 − t) v)/t matches the exact score of a Gaussian mixture.")
        return True
    slips = {
        "the sign: E[z | x_t] = −t ∇log p_t, so the score points *against* the predicted noise": -want,
        "t and 1 − t are swapped: x_t = (1 − t) x₀ + t z, so the noise carries the factor t":
            -(x + t * v) / (1 - t),
        "that is E[z | x_t = x] = x + (1 − t) v, the predicted noise; the score is −E[z | x_t]/t":
            x + (1 - t) * v,
        "divide by t once: ∇log p_t = −E[z | x_t]/σ_t with σ_t = t": -(x + (1 - t) * v) / t**2,
    }
    for hint, wrong in slips.items():
        if _close(got, wrong):
            print(f"Not quite: {hint}.")
            return False
    print("Not quite: start from x = E[x₀ | x] (1 − t) + t E[z | x] and v = E[z | x] − E[x₀ | x]; eliminate "
          "E[x₀ | x], then use E[z | x_t] = −t ∇log p_t (Tweedie).")
    return False
