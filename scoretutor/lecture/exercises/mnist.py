"""Notebook 05's check-yourself exercises.

1. ``my_log_uniform(n, sigma_min, sigma_max, generator)``: n noise levels σ with log σ uniform on
   [log σ_min, log σ_max] (how the MNIST model draws its training levels). Checked against
   :func:`scoretutor.losses.log_uniform_sigmas` on the same generator, else by the distribution of
   log σ (its mean and standard deviation, within Monte Carlo error).
2. ``my_denoise(score_fn, x, sigma)``: the final denoising step x + σ² s(x, σ) (Tweedie's formula,
   E[x₀ | x] for x ~ p_σ). Checked on Gaussian data N(μ, s²I), where p_σ = N(μ, (s² + σ²)I) and the
   posterior mean μ + s²/(s² + σ²)(x − μ) is known in closed form; common slips are named.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.lecture.exercises import attempt, shaped_like
from scoretutor.losses import log_uniform_sigmas

Tensor = torch.Tensor


def check_log_uniform(student_fn: Callable, n: int = 20_000) -> bool:
    """Check a log-uniform σ sampler; print a verdict and return True if right."""
    lo, hi = 0.01, 16.0
    done, got = attempt(student_fn, n, lo, hi, torch.Generator().manual_seed(0), what="your sampler")
    if not done or not shaped_like(got, (n,)):
        return False
    got = got.double()
    if not torch.isfinite(got).all() or got.min() < lo * (1 - 1e-6) or got.max() > hi * (1 + 1e-6):
        print(f"Every σ must lie in [{lo}, {hi}]; yours range over [{got.min():.3g}, {got.max():.3g}].")
        return False
    same = log_uniform_sigmas(n, lo, hi, torch.Generator().manual_seed(0), dtype=torch.float64)
    if torch.allclose(got, same, rtol=1e-5):
        print("Correct! Same draws as scoretutor.losses.log_uniform_sigmas.")
        return True
    # log σ ~ U[a, b]: mean (a + b)/2 with standard error (b − a)/√(12n); sd (b − a)/√12, whose
    # estimate has standard error sd·√((κ − 1)/(4n)) = sd·√(0.8/(4n)) < sd/√(2n) (κ = 1.8 for a
    # uniform). Allow 5 standard errors for each.
    a, b = math.log(lo), math.log(hi)
    logs = got.log()
    mean_ok = abs(logs.mean().item() - (a + b) / 2) < 5 * (b - a) / math.sqrt(12 * n)
    sd = (b - a) / math.sqrt(12)
    sd_ok = abs(logs.std().item() - sd) < 5 * sd / math.sqrt(2 * n)
    if mean_ok and sd_ok:
        print("Correct in distribution (log σ has the mean and spread of a uniform on "
              "[log σ_min, log σ_max]).")
        return True
    if abs(got.mean().item() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * n):
        print("These σ are uniform on [σ_min, σ_max]: almost all are large. Draw log σ uniformly instead.")
    else:
        print(f"Not quite: mean of log σ is {logs.mean().item():.3f} (expected {(a + b) / 2:.3f}), "
              f"its sd {logs.std().item():.3f} (expected {sd:.3f}).")
    return False


def check_denoise(student_fn: Callable) -> bool:
    """Check a final denoising step against the closed-form posterior mean of Gaussian data."""
    mu, s2 = 0.3, 0.04  # data N(μ, s² I): p_σ = N(μ, (s² + σ²) I)
    g = torch.Generator().manual_seed(1)
    for sigma in (0.05, 0.5, 3.0):
        score = lambda x, sig: -(x - mu) / (s2 + sig**2)
        x = mu + math.sqrt(s2 + sigma**2) * torch.randn(8, 1, 4, 4, generator=g, dtype=torch.float64)
        done, got = attempt(student_fn, score, x.clone(), sigma, what="your denoising step")
        if not done or not shaped_like(got, tuple(x.shape)):
            return False
        expected = mu + s2 / (s2 + sigma**2) * (x - mu)  # E[x₀ | x], independent of the score formula
        if torch.allclose(got.double(), expected, rtol=1e-6, atol=1e-9):
            continue
        slips = {"multiply the score by σ², not σ": x + sigma * score(x, sigma),
                 "the step goes along the score (+), towards higher density": x - sigma**2 * score(x, sigma),
                 "add σ² s(x, σ) to x: the denoised image is x + σ² s(x, σ), not σ² s(x, σ)":
                     sigma**2 * score(x, sigma)}
        for hint, value in slips.items():
            if torch.allclose(got.double(), value, rtol=1e-6, atol=1e-9):
                print(f"[σ = {sigma}] not quite. Hint: {hint}.")
                return False
        print(f"[σ = {sigma}] not quite: the posterior mean of Gaussian data is μ + s²/(s² + σ²)(x − μ); "
              "recall x + σ² s(x, σ).")
        return False
    print("Correct! Your step equals the posterior mean E[x₀ | x] of Gaussian data at three noise levels.")
    return True
