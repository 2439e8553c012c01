"""Notebook 04's check-yourself exercise: write annealed Langevin dynamics (Song & Ermon 2019, Alg. 1).

The student writes ``my_annealed_langevin(score_fn, x0, sigmas, eps, T, noise)`` where
``noise(shape)`` returns a fresh z ~ N(0, I) each call; for each level in ``sigmas`` (the visiting
order: σ_L = σ_max first, σ_1 = σ_min last, numbered as in the deck, σ_1 < … < σ_L),
α_i = ε·σ_i²/σ_1², and T steps x ← x + α_i·s(x, σ_i) + √(2α_i)·z (no final denoising step).
The checker feeds the same noise stream to the student's function and to
:func:`scoretutor.sampling.annealed_langevin`, so a correct answer matches to rounding error. It says
what the particles did (the share of the small (−5,−5) mode) and recognises the common slips, alone or
together — the order of the levels, the step-size rule, the noise scale — naming one slip and counting
the rest, so that the notebook's **Debug.** exercise (a sampler with three slips, :data:`BROKEN_SAMPLER`)
can be fixed one slip at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.lecture.exercises import attempt, max_relative_error, shaped_like
from scoretutor.metrics import mode_fractions
from scoretutor.sampling import annealed_langevin
from scoretutor.schedules import geometric_sigmas

Tensor = torch.Tensor


def _noise_stream(seed: int) -> tuple[Callable[[torch.Size], Tensor], torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    return (lambda shape: torch.randn(tuple(shape), generator=g, dtype=torch.float64)), g


# How the levels are visited, the step-size rule α(ε, σ, σ_min, σ_max) and the noise factor f in √(f·α)·z:
# the right choice first, then the slips, each with the hint it triggers.
_ORDERS: dict[str, tuple[bool, str]] = {
    "largest first": (False, ""),
    "smallest first": (True, "you visit the levels from the smallest σ up: annealing starts at the largest "
                             "level σ_L = sigmas[0], where p_σ is one broad blob that reaches every "
                             "particle, and ends at σ_1 = sigmas[-1] (`sigmas` is in visiting order)"),
}
_RIGHT_STEP = "α_i = ε·σ_i²/σ_1²"
_STEPS: dict[str, tuple[Callable[[float, float, float, float], float], str]] = {
    "ε·σ²/σ_1²": (lambda e, s, lo, hi: e * s**2 / lo**2, ""),
    "ε": (lambda e, s, lo, hi: e,
          f"you used a constant step α_i = ε (the step must grow with the noise: {_RIGHT_STEP})"),
    "ε·σ/σ_1": (lambda e, s, lo, hi: e * s / lo,
                f"you used α_i = ε·σ_i/σ_1 (square the ratio: {_RIGHT_STEP})"),
    "ε·σ_1²/σ²": (lambda e, s, lo, hi: e * lo**2 / s**2,
                  f"you used α_i = ε·σ_1²/σ_i² (the ratio is upside down: {_RIGHT_STEP})"),
    "ε·σ²/σ_L²": (lambda e, s, lo, hi: e * s**2 / hi**2,
                  "you used α_i = ε·σ_i²/σ_L², divided by the largest level's σ²: in the deck's numbering "
                  "σ_1 is the smallest level, sigmas[-1], and the last level runs at α = ε (the 2019 paper "
                  "numbers the levels the other way round, so its σ_L is our σ_1)"),
}
_NOISES: dict[float, str] = {
    2.0: "",
    1.0: "the noise term is √(2α_i)·z, not √(α_i)·z",
    0.0: "the noise is missing: without √(2α_i)·z the particles slide to the modes of p_σ instead of "
         "sampling it",
}


def _variant(score_fn, x0, sigmas, eps, T, seed, alpha_rule, noise_factor=2.0, reverse=False) -> Tensor:
    """Annealed Langevin with a (possibly wrong) order, step-size rule and noise scale, to diagnose slips."""
    noise, _ = _noise_stream(seed)
    lo, hi = min(sigmas), max(sigmas)
    x = x0.clone()
    for s in (sigmas[::-1] if reverse else sigmas):
        a = alpha_rule(eps, s, lo, hi)
        for _ in range(T):
            x = x + a * score_fn(x, s) + math.sqrt(noise_factor * a) * noise(x.shape)
    return x


def _slips(got: Tensor, score_fn, x0, sigmas, eps, T, seed) -> list[str] | None:
    """The hints of the combination of slips that reproduces ``got``, or None if none does."""
    same = lambda y: torch.allclose(got.double(), y, rtol=1e-6, atol=1e-8)
    for n_wrong in (1, 2, 3):  # the fewest slips that explain the answer
        for (reverse, order_hint), (rule, step_hint), (factor, noise_hint) in itertools.product(
                _ORDERS.values(), _STEPS.values(), _NOISES.items()):
            hints = [h for h in (order_hint, step_hint, noise_hint) if h]
            if len(hints) == n_wrong and same(
                    _variant(score_fn, x0, sigmas, eps, T, seed, rule, factor, reverse)):
                return hints
    return None


BROKEN_SAMPLER = '''def my_annealed_langevin(score_fn, x0, sigmas, eps, T, noise):
    x = x0
    sigma_1 = sigmas[0]
    for sigma in sorted(sigmas):
        alpha = eps * (sigma / sigma_1) ** 2
        for _ in range(T):
            x = x + alpha * score_fn(x, sigma) + math.sqrt(alpha) * noise(x.shape)
    return x
'''
"""The Debug exercise's sampler, as notebook 04 shows it: three slips (order, step size, noise scale)."""


def check_annealed_langevin(student_fn: Callable, n: int = 200, seed: int = 0, rtol: float = 1e-6) -> bool:
    """Run the student's sampler on the NCSN mixture with exact scores; print a verdict.

    A wrong sampler gets what its particles did (the share of the (−5,−5) mode, weight 0.2) and, when
    it matches a combination of the usual slips, the number of slips and a hint for one of them."""
    p = ncsn_mixture(dtype=torch.float64)
    score_fn = p.noise_conditional_score()

    sigmas = geometric_sigmas(20.0, 1.0, 10, dtype=torch.float64).tolist()
    eps, T = 0.1, 20
    x0 = torch.rand(n, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * 16 - 8
    noise, _ = _noise_stream(seed)
    done, got = attempt(student_fn, score_fn, x0.clone(), sigmas, eps, T, noise, what="your sampler")
    if not (done and shaped_like(got, x0.shape, "Your function should return the final particles,")):
        return False
    _, g = _noise_stream(seed)
    expected = annealed_langevin(score_fn, x0, sigmas, eps, T, generator=g, denoise_last=False,
                                 progress=False).x
    err = max_relative_error(got, expected, 1.0)
    if err <= rtol:
        mf = mode_fractions(got, p)
        frac, se = mf.fractions[0].item(), mf.stderr[0].item()
        print(f"Correct! Matches the reference to {err:.1e}; {frac:.2f} ± {se:.2f} of your particles "
              "reached the (−5,−5) mode (weight 0.2).")
        return True
    got = got.detach()
    if torch.isfinite(got).all():
        frac, ref = (mode_fractions(x, p).fractions[0].item() for x in (got, expected))
        spread, ref_spread = got.std(0).mean().item(), expected.std(0).mean().item()
        did = (f"{frac:.2f} of your particles end nearer the (−5,−5) mode (weight 0.2; the reference "
               f"sampler: {ref:.2f}), with a spread of {spread:.1f} per axis (the reference: "
               f"{ref_spread:.1f}). ")
    else:
        did = "some of your particles became inf or nan. "
    hints = _slips(got, score_fn, x0, sigmas, eps, T, seed)
    if hints:
        remain = "One slip remains: " if len(hints) == 1 else f"{len(hints)} slips remain. One of them: "
        print(f"Not quite: {did}{remain}{hints[0]}.")
        return False
    i = int(((got.double() - expected).norm(dim=-1)).nan_to_num(math.inf).argmax())
    print(f"Not quite: {did}Particle {i} ends at {got[i].tolist()}, the reference at {expected[i].tolist()}. "
          "Check the loop order (the largest level σ_L first, as listed in sigmas, T steps each), "
          "α_i = ε·σ_i²/σ_1² with σ_1 = sigmas[-1] the smallest, and call noise(x.shape) exactly once "
          "per step.")
    return False
