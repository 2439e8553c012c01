"""Notebook 03's check-yourself exercises: one Langevin step, and the bias of the unadjusted chain.

1. ``check_langevin_step(step)``: ``step(x, score_fn, eps, z)`` should return
   x + ε·s(x) + √(2ε)·z (the noise z ~ N(0, I) is passed in, so the answer is deterministic).
2. ``check_stationary_variance(fn)``: ``fn(eps, s2)`` should return the variance that unadjusted
   Langevin settles at for the target N(0, s²): 2ε / (1 − (1 − ε/s²)²)
   (:func:`scoretutor.sampling.ula_stationary_variance`).
3. ``check_variance_prediction(guess, eps, tau2)``: predict, then check. The student writes down the
   variance the unadjusted chain settles at for N(0, τ²) before deriving it; the checker runs the
   chain (started from exact samples, until it has forgotten the start) and says what happened.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.densities import GaussianMixture
from scoretutor.lecture.exercises import attempt, max_relative_error, shaped_like
from scoretutor.sampling import langevin, ula_stationary_variance

Tensor = torch.Tensor

# Wrong versions that students often write, each with the hint it triggers.
_STEP_MISTAKES: list[tuple[str, Callable]] = [
    ("the noise is missing: without √(2ε)·z this is gradient ascent on log p, which collapses onto the "
     "modes instead of sampling", lambda x, s, e, z: x + e * s),
    ("the noise scale should be √(2ε), not √ε", lambda x, s, e, z: x + e * s + math.sqrt(e) * z),
    ("the noise scale should be √(2ε), not 2ε or ε", lambda x, s, e, z: x + e * s + 2 * e * z),
    ("the noise scale should be √(2ε), not ε", lambda x, s, e, z: x + e * s + e * z),
    ("the drift should be +ε·s(x): the score points uphill in log p, and the particles should move "
     "towards high density", lambda x, s, e, z: x - e * s + math.sqrt(2 * e) * z),
    ("the drift is ε·s(x), not (ε/2)·s(x) (that convention goes with noise √ε·z)",
     lambda x, s, e, z: x + e / 2 * s + math.sqrt(2 * e) * z),
]


def _test_mixture() -> GaussianMixture:
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=torch.float64)
    return GaussianMixture(means, torch.tensor([0.7, 1.0, 0.5], dtype=torch.float64),
                           torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


def check_langevin_step(student_step: Callable[[Tensor, Callable[[Tensor], Tensor], float, Tensor], Tensor],
                        n: int = 128, seed: int = 0, rtol: float = 1e-6) -> bool:
    """Compare ``student_step(x, score_fn, eps, z)`` with x + ε·s(x) + √(2ε)·z; print a verdict."""
    mix = _test_mixture()
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for eps in (0.01, 0.3):
        x = 3 * torch.randn(n, 2, generator=g, dtype=torch.float64)
        z = torch.randn(n, 2, generator=g, dtype=torch.float64)
        expected = x + eps * mix.score(x) + math.sqrt(2 * eps) * z
        done, got = attempt(student_step, x.clone(), mix.score, eps, z.clone(), what="your update")
        if not (done and shaped_like(got, x.shape, "Your step should return")):
            return False
        err = max_relative_error(got, expected, 1e-8)
        if err > rtol:
            s = mix.score(x)
            for hint, wrong in _STEP_MISTAKES:
                if torch.allclose(got.double(), wrong(x, s, eps, z), rtol=1e-6, atol=1e-9):
                    print(f"Not quite (ε = {eps}): {hint}.")
                    return False
            i = int((got.double() - expected).norm(dim=-1).argmax())
            r = lambda t, k=4, i=i: [round(v, k) for v in t[i].tolist()]
            print(f"Not quite (ε = {eps}): at x = {r(x, 3)} with z = {r(z, 3)} you give {r(got)}, "
                  f"expected {r(expected)}. "
                  "Hint: x_{i+1} = x_i + ε·s(x_i) + √(2ε)·z_i.")
            return False
        worst = max(worst, err)
    print(f"Correct! Max relative error {worst:.1e} over {2 * n} points and two step sizes.")
    return True


def check_stationary_variance(student_fn: Callable[[float, float], float], rtol: float = 1e-6) -> bool:
    """Compare ``student_fn(eps, tau2)`` with ULA's stationary variance for N(0, τ²); print a verdict."""
    cases = [(0.01, 1.0), (0.5, 1.0), (1.5, 1.0), (0.2, 0.5), (3.0, 4.0)]
    for eps, s2 in cases:
        expected = ula_stationary_variance(eps, math.sqrt(s2))
        done, got = attempt(student_fn, eps, s2, what="your formula")
        if not done:
            return False
        got = float(got)
        if not math.isclose(got, expected, rel_tol=rtol):
            if math.isclose(got, s2, rel_tol=1e-9):
                hint = ("that is the target's variance τ²; the unadjusted chain overshoots it. Write one "
                        "step as x' = a·x + √(2ε)·z with a = 1 − ε/τ² and solve v = a²·v + 2ε")
            else:
                hint = ("take variances of x' = a·x + √(2ε)·z (a = 1 − ε/τ², z independent of x) and "
                        "look for the fixed point v = a²·v + 2ε")
            print(f"Not quite: for ε = {eps}, τ² = {s2} you give {got:.6g}, expected {expected:.6g}. "
                  f"Hint: {hint}.")
            return False
    print("Correct! Note how the stationary variance exceeds τ² by the factor 1/(1 − ε/(2τ²)): "
          "the O(ε) bias that a Metropolis correction (MALA) removes.")
    return True


def check_variance_prediction(guess: float | None, eps: float = 0.5, tau2: float = 1.0, n: int = 20000,
                              seed: int = 0) -> bool:
    """Run unadjusted Langevin on N(0, τ²) from exact samples and compare its stationary variance with
    ``guess``; print what happened. True when the guess is within 4 standard errors of the measurement
    (a sample variance of n points has relative standard error √(2/n))."""
    if guess is None:
        print("Not attempted yet: replace `None` with your prediction, a number.")
        return False
    try:
        guess = float(guess)
    except (TypeError, ValueError):
        print(f"Write your prediction as a number (a variance), got {guess!r}.")
        return False
    a = abs(1 - eps / tau2)
    if not a < 1:
        print(f"With ε = {eps} ≥ 2τ² the chain has no stationary variance: it diverges. "
              f"Try 0 < ε < {2 * tau2:g}.")
        return False
    steps = max(1, math.ceil(math.log(1e-6) / (2 * math.log(a)))) if a > 0 else 1  # a^{2K} ≤ 1e-6
    g = torch.Generator().manual_seed(seed)
    x0 = math.sqrt(tau2) * torch.randn(n, 1, generator=g, dtype=torch.float64)
    v = langevin(lambda x: -x / tau2, x0, eps, steps, generator=g, progress=False).x.var().item()
    se = v * math.sqrt(2 / n)
    ran = (f"{n:,} chains started from exact samples of N(0, {tau2:g}) settle, after {steps} "
           f"step{'s' * (steps > 1)} of "
           f"ε = {eps:g}, at variance {v:.3f} ± {se:.3f}")
    if abs(guess - v) <= 4 * se:
        print(f"Well predicted: {ran}; you said {guess:.3g}. The chain is wider than its target by the "
              f"factor {v / tau2:.2f}: now derive why.")
        return True
    if abs(guess - tau2) <= 4 * se:
        why = ("you predicted the target's variance τ², what an exact sampler gives; the unadjusted chain "
               "overshoots it at a finite step")
    elif guess < tau2:
        why = ("the chain is wider than its target, not narrower: each step shrinks the variance by "
               "(1 − ε/τ²)² but adds 2ε of fresh noise")
    else:
        more, off = ("less", "high") if guess > v else ("more", "low")
        why = (f"the chain is wider than its target, by {more} than you thought "
               f"({abs(guess / v - 1):.0%} {off})")
    print(f"Not what happened: {ran}; you said {guess:.3g}: {why}. Derive it next.")
    return False
