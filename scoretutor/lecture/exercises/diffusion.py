"""Notebook 06's check-yourself exercises: one reverse-SDE step, and ε-prediction ↔ score.

1. ``reverse_sde_step(x, f, g, s, dt, z)``: one Euler–Maruyama step of the reverse SDE
   dx = [f − g² s] dt + g dw̄ going from t to t − dt:  x − (f − g² s)·dt + g·√dt·z.
   ``f`` is f(x, t) (shaped like x), ``g`` is g(t) shaped (N, 1), ``s`` the score at (x, t).
2. ``score_from_eps(eps, sigma_t)`` and ``eps_from_score(score, sigma_t)`` with x_t = α_t x₀ + σ_t ε:
   s = −ε/σ_t and ε = −σ_t s (``sigma_t`` shaped (N, 1)).

Each checker compares with the package's implementation (``scoretutor.diffusion.sde``) on random inputs
for the VE and VP SDEs, so a correct answer matches to rounding; common slips are named.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.diffusion.sde import VESDE, VPSDE, eps_from_score, score_from_eps

Tensor = torch.Tensor


def _cases(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for sde in (VESDE(0.01, 20.0), VPSDE()):
        n = 16
        x = 3 * torch.randn(n, 2, generator=g, dtype=torch.float64)
        t = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
        f, gt = sde.sde(x, t)
        s = torch.randn(n, 2, generator=g, dtype=torch.float64)
        z = torch.randn(n, 2, generator=g, dtype=torch.float64)
        yield sde, x, t, f, gt[:, None], s, 0.01, z


def _close(a, b) -> bool:
    ok = isinstance(a, Tensor) and a.shape == b.shape
    return ok and torch.allclose(a.double(), b, rtol=1e-6, atol=1e-9)


def check_reverse_sde_step(student_fn: Callable) -> bool:
    """Check ``student_fn(x, f, g, s, dt, z)`` against x − (f − g² s)·dt + g·√dt·z; print a verdict."""
    for sde, x, t, f, g, s, dt, z in _cases():
        try:
            got = student_fn(x.clone(), f, g, s, dt, z)
        except NotImplementedError:
            print("Not attempted yet: replace `raise NotImplementedError` with your step.")
            return False
        want = x - sde.reverse_drift(x, t, s) * dt + g * math.sqrt(dt) * z  # the package's drift f − g² s
        if _close(got, want):
            continue
        slips = {
            "the score term has the wrong sign: the reverse drift is f − g²·s, and we step *backwards* "
            "in time, x − (f − g² s)·dt": x - (f + g**2 * s) * dt + g * math.sqrt(dt) * z,
            "the noise is g·√dt·z, not g·dt·z (Brownian increments have variance dt)":
                x - (f - g**2 * s) * dt + g * dt * z,
            "that is the probability-flow ODE step (½g², no noise); the reverse SDE has g² and adds g·√dt·z":
                x - (f - 0.5 * g**2 * s) * dt,
            "time runs backwards: subtract the drift, x − (f − g² s)·dt, don't add it":
                x + (f - g**2 * s) * dt + g * math.sqrt(dt) * z,
            "g multiplies the score squared: g²·s, not g·s": x - (f - g * s) * dt + g * math.sqrt(dt) * z,
        }
        for hint, wrong in slips.items():
            if _close(got, wrong):
                print(f"Not quite ({sde!r}): {hint}.")
                return False
        print(f"Not quite ({sde!r}): your step differs from x − (f − g² s)·dt + g·√dt·z; check each term.")
        return False
    print("Correct! Your reverse-SDE step matches the package's on the VE and VP SDEs.")
    return True


def check_eps_score(score_from_eps_fn: Callable, eps_from_score_fn: Callable) -> bool:
    """Check the two conversions s = −ε/σ_t and ε = −σ_t s; print a verdict."""
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(16, 2, generator=g, dtype=torch.float64)
    sigma = torch.rand(16, 1, generator=g, dtype=torch.float64) * 0.9 + 0.05
    try:
        s = score_from_eps_fn(eps, sigma)
        e = eps_from_score_fn(score_from_eps(eps, sigma[:, 0]), sigma)
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` in both functions.")
        return False
    want_s, want_e = score_from_eps(eps, sigma[:, 0]), eps
    ok_s, ok_e = _close(s, want_s), _close(e, want_e)
    if ok_s and ok_e:
        back = eps_from_score(s, sigma[:, 0])
        print(f"Correct! s = −ε/σ_t and ε = −σ_t·s (round trip error {float((back - eps).abs().max()):.1e}).")
        return True
    for name, got, want in (("score_from_eps", s, want_s), ("eps_from_score", e, want_e)):
        if _close(got, want):
            continue
        if _close(got, -want):
            print(f"Not quite: {name} has the wrong sign — ∇ log N(x_t; α_t x₀, σ_t²) = −ε/σ_t.")
        elif name == "score_from_eps" and _close(got, -eps / sigma**2):
            print("Not quite: divide by σ_t, not σ_t² (x_t − α_t x₀ = σ_t ε, so −(x_t − α_t x₀)/σ_t² "
                  "= −ε/σ_t).")
        elif name == "score_from_eps" and _close(got, -eps * sigma):
            print("Not quite: score_from_eps should divide by σ_t, not multiply.")
        elif name == "eps_from_score" and _close(got, -score_from_eps(eps, sigma[:, 0]) / sigma):
            print("Not quite: eps_from_score should multiply by σ_t, not divide.")
        else:
            print(f"Not quite: {name} does not match; s = −ε/σ_t and ε = −σ_t·s.")
        return False
    return False
