"""Notebook 06's check-yourself exercises: a reverse-SDE step, ODE vs SDE, and ε-prediction ↔ score.

1. ``reverse_sde_step(x, f, g, s, dt, z)``: one Euler–Maruyama step of the reverse SDE
   dx = [f − g² s] dt + g dw̄ going from t to t − dt:  x − (f − g² s)·dt + g·√dt·z.
   ``f`` is f(x, t) (shaped like x), ``g`` is g(t) shaped (N, 1), ``s`` the score at (x, t).
   As a **Debug** exercise (``debug=True``) the student starts from :func:`colleagues_reverse_sde_step`
   (time run forwards); while it is unchanged the checker shows its symptom, not the slip.
2. **Predict, then check** (:func:`check_ode_vs_sde`): the probability-flow ODE and the reverse SDE
   start from the same x_1 ~ p_1 — do their outputs share a law, and how often does a pair end in the
   same mode? The checker runs both (exact score) and compares with the prediction.
3. ``score_from_eps(eps, sigma_t)`` and ``eps_from_score(score, sigma_t)`` with x_t = α_t x₀ + σ_t ε:
   s = −ε/σ_t and ε = −σ_t s (``sigma_t`` shaped (N, 1)).

The checkers of 1 and 3 compare with the package's implementation (``scoretutor.diffusion.sde``) on
random inputs for the VE and VP SDEs, so a correct answer matches to rounding; common slips are named.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.diffusion.samplers import ode_sde_marginals
from scoretutor.diffusion.sde import (
    VESDE,
    VPSDE,
    eps_from_score,
    marginal_mixture,
    mixture_score_fn,
    score_from_eps,
)

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


def colleagues_reverse_sde_step(x, f, g, s, dt, z):
    """The Debug exercise's broken step: it runs time forwards, x + (f − g² s)·dt + g·√dt·z."""
    return x + (f - g**2 * s) * dt + g * math.sqrt(dt) * z


def _symptom(student_fn: Callable, n: int = 1000, n_steps: int = 200) -> float:
    """The spread (std per coordinate) of samples from ``student_fn`` run from N(0, 20² I) down the VE
    SDE with the exact score of notebook 06's mixture (whose own spread is √17 ≈ 4.1)."""
    sde, mix = VESDE(0.1, 20.0), ncsn_mixture(dtype=torch.float64)
    score = mixture_score_fn(mix, sde)
    g = torch.Generator().manual_seed(3)
    x = sde.prior_sample((n, 2), g, dtype=torch.float64)
    for k in range(n_steps):
        t = 1 - k / n_steps
        f, gt = sde.sde(x, t)
        x = student_fn(x, f, gt[:, None], score(x, torch.full((n,), t, dtype=x.dtype)), 1 / n_steps,
                       torch.randn(x.shape, generator=g, dtype=x.dtype))
    return x.std(0).mean().item()


def check_reverse_sde_step(student_fn: Callable, debug: bool = False) -> bool:
    """Check ``student_fn(x, f, g, s, dt, z)`` against x − (f − g² s)·dt + g·√dt·z; print a verdict.

    ``debug``: the student started from :func:`colleagues_reverse_sde_step`; while the answer is still
    that step, say what it does to samples (their spread) rather than name the slip.
    """
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
        if debug and _close(got, colleagues_reverse_sde_step(x, f, g, s, dt, z)):
            spread = _symptom(student_fn)
            print("Still the colleague's step. Run from N(0, 20²) down to t = 0 on the mixture with the "
                  f"exact score, its samples end with a spread of {spread:.3g} per coordinate (the data's: "
                  "4.1). Which way must the step move in time, and which way must the score pull?")
            return False
        for hint, wrong in slips.items():
            if _close(got, wrong):
                print(f"Not quite ({sde!r}): {hint}.")
                return False
        print(f"Not quite ({sde!r}): your step differs from x − (f − g² s)·dt + g·√dt·z; check each term.")
        return False
    print("Correct! Your reverse-SDE step matches the package's on the VE and VP SDEs.")
    return True


@functools.lru_cache(maxsize=1)
def ode_vs_sde_experiment(n: int = 2000, n_steps: int = 200) -> dict[str, float]:
    """The experiment behind :func:`check_ode_vs_sde`: notebook 06's mixture on VESDE(0.1, 50), exact
    score, the same n starts x_1 ~ p_1 (exact) for the probability-flow ODE and the reverse SDE.

    Returns the (−5,−5) share of each (``ode``, ``sde``) with its standard error ``se``, and the fraction
    of starts whose two samples end in the same mode (``same_mode``, standard error ``se_same``).
    """
    mix, sde = ncsn_mixture(dtype=torch.float64), VESDE(0.1, 50.0)
    x1 = marginal_mixture(mix, sde, 1.0).sample(n, torch.Generator().manual_seed(0))
    ode, rev = ode_sde_marginals(mixture_score_fn(mix, sde), sde, x1, [0.0], n_steps=n_steps,
                                 generator=torch.Generator().manual_seed(1), rtol=1e-5, atol=1e-5)
    far_ode, far_sde = ode[0].sum(1) < 0, rev[0].sum(1) < 0  # nearer (−5,−5) than (5,5)
    same = (far_ode == far_sde).double().mean().item()
    return {"ode": far_ode.double().mean().item(), "sde": far_sde.double().mean().item(),
            "se": math.sqrt(0.16 / n), "same_mode": same, "se_same": math.sqrt(same * (1 - same) / n)}


def check_ode_vs_sde(same_law, same_mode_fraction, tol: float = 0.1) -> bool:
    """Predict, then check: ``same_law`` (True/False) — do the ODE's and the reverse SDE's samples, started
    from the same x_1 ~ p_1, have the same distribution? ``same_mode_fraction`` (a number in [0, 1]) — for
    what fraction of starts do the two samples land in the same mode? Runs the experiment, prints what
    happened and whether the prediction holds (the fraction within ``tol``)."""
    if same_law is None or same_mode_fraction is None:
        print("Not attempted yet: write down both predictions (replace the two `None`s), then run the cell.")
        return False
    if not isinstance(same_law, bool) or not 0 <= float(same_mode_fraction) <= 1:
        print("same_law must be True or False, and same_mode_fraction a number between 0 and 1.")
        return False
    r = ode_vs_sde_experiment()
    print(f"What happened: (−5,−5) share ODE {r['ode']:.3f}, reverse SDE {r['sde']:.3f} "
          f"(± {r['se']:.3f} each), and {r['same_mode']:.2f} ± {r['se_same']:.2f} of the pairs land in the "
          "same mode.")
    law_ok = same_law is True
    frac_ok = abs(float(same_mode_fraction) - r["same_mode"]) <= tol
    print(("✓ " if law_ok else "✗ ") + "Same law: yes. Both carry p_1 to p_0 — the Fokker–Planck equation of "
          "the SDE is a continuity equation for the ODE's velocity f − ½g²∇log p_t.")
    print(("✓ " if frac_ok else "✗ ") + f"Same points: no. Two *independent* draws would share a mode "
          f"0.2² + 0.8² = 0.68 of the time, and a pair does so {r['same_mode']:.2f} of the time: the SDE's "
          "fresh noise has forgotten almost all of where it started (a pair shares a mode a shade more often "
          "than independent draws), while the ODE is a fixed map of x_1.")
    return law_ok and frac_ok


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
