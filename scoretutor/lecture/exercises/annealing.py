"""Notebook 04's check-yourself exercise: write annealed Langevin dynamics (Song & Ermon 2019, Alg. 1).

The student writes ``my_annealed_langevin(score_fn, x0, sigmas, eps, T, noise)`` where
``noise(shape)`` returns a fresh z ~ N(0, I) each call; for each level in ``sigmas`` (the visiting
order: σ_L = σ_max first, σ_1 = σ_min last, numbered as in the deck, σ_1 < … < σ_L),
α_i = ε·σ_i²/σ_1², and T steps x ← x + α_i·s(x, σ_i) + √(2α_i)·z (no final denoising step).
The checker feeds the same noise stream to the student's function and to
:func:`scoretutor.sampling.annealed_langevin`, so a correct answer matches to rounding error; common
slips are recognised and named.
"""

from __future__ import annotations

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


def _variant(score_fn, x0, sigmas, eps, T, seed, alpha_rule, noise_factor=2.0) -> Tensor:
    """Annealed Langevin with a (possibly wrong) step-size rule, for diagnosing mistakes."""
    noise, _ = _noise_stream(seed)
    x = x0.clone()
    for s in sigmas:
        a = alpha_rule(s)
        for _ in range(T):
            x = x + a * score_fn(x, s) + math.sqrt(noise_factor * a) * noise(x.shape)
    return x


def check_annealed_langevin(student_fn: Callable, n: int = 200, seed: int = 0, rtol: float = 1e-6) -> bool:
    """Run the student's sampler on the NCSN mixture with exact scores; print a verdict."""
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
    slips = {
        "a constant step α_i = ε (the step must grow with the noise: α_i = ε·σ_i²/σ_1²)": lambda s: eps,
        "α_i = ε·σ_i/σ_1 (square the ratio: α_i = ε·σ_i²/σ_1²)": lambda s: eps * s / sigmas[-1],
        "α_i = ε·σ_1²/σ_i² (the ratio is upside down: α_i = ε·σ_i²/σ_1²)":
            lambda s: eps * sigmas[-1] ** 2 / s**2,
    }
    same = lambda y: torch.allclose(got.double(), y, rtol=1e-6, atol=1e-8)
    for hint, rule in slips.items():
        if same(_variant(score_fn, x0, sigmas, eps, T, seed, rule)):
            print(f"Not quite: you used {hint}.")
            return False
    alpha = lambda s: eps * s**2 / sigmas[-1] ** 2
    if same(_variant(score_fn, x0, sigmas, eps, T, seed, alpha, 1.0)):
        print("Not quite: the noise term is √(2α_i)·z, not √(α_i)·z.")
        return False
    i = int(((got.double() - expected).norm(dim=-1)).argmax())
    print(f"Not quite: particle {i} ends at {got[i].tolist()}, the reference at {expected[i].tolist()}. "
          "Check the loop order (the largest level σ_L first, as listed in sigmas, T steps each), "
          "α_i = ε·σ_i²/σ_1² with σ_1 = sigmas[-1] the smallest, and call noise(x.shape) exactly once "
          "per step.")
    return False
