"""Notebook 05's check-yourself exercises.

1. ``my_log_uniform(n, sigma_min, sigma_max, generator)``: n noise levels σ with log σ uniform on
   [log σ_min, log σ_max] (how the MNIST model draws its training levels). Checked against
   :func:`scoretutor.losses.log_uniform_sigmas` on the same generator, else by the distribution of
   log σ (its mean and standard deviation, within Monte Carlo error).
2. ``my_denoise(score_fn, x, sigma)``: the final denoising step x + σ² s(x, σ) (Tweedie's formula,
   E[x₀ | x] for x ~ p_σ). Checked on Gaussian data N(μ, s²I), where p_σ = N(μ, (s² + σ²)I) and the
   posterior mean μ + s²/(s² + σ²)(x − μ) is known in closed form; common slips are named.
3. Predict, then check: how many noise levels L Technique 2 asks for when the images have ``factor``
   times as many pixels (same σ_max and σ_min). :func:`check_levels_prediction` computes L with
   :func:`scoretutor.schedules.ncsnv2_gamma` and says which way a wrong guess went.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.lecture.exercises import attempt, shaped_like
from scoretutor.losses import log_uniform_sigmas
from scoretutor.schedules import ncsnv2_gamma, num_levels

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


def check_levels_prediction(prediction: float | None, sigma_max: float, sigma_min: float = 0.01,
                            dim: int = 28 * 28, factor: int = 4, rel_tol: float = 0.15) -> bool:
    """Compare a predicted number of levels for ``factor`` × ``dim`` pixels with Technique 2's L.

    Technique 2 sets γ − 1 ≈ c/√(2D) (the 3-std shells of adjacent levels must overlap by half), and
    L ≈ log(σ_max/σ_min)/log γ, so L grows like √D: ``factor`` times the pixels needs about √factor
    times the levels. A prediction within ``rel_tol`` of the computed L counts as right."""
    base = num_levels(sigma_max, sigma_min, ncsnv2_gamma(dim))
    actual = num_levels(sigma_max, sigma_min, ncsnv2_gamma(dim * factor))
    if prediction is None or prediction is Ellipsis:
        print("Not attempted yet: write your prediction as a number first, then run the cell.")
        return False
    if not isinstance(prediction, int | float) or not math.isfinite(prediction) or prediction <= 0:
        print(f"A prediction is a positive number of levels, got {prediction!r}.")
        return False
    verdict = f"Technique 2 gives L = {actual} for D = {factor} × {dim} (L = {base} for D = {dim}): "
    why = (f"×{actual / base:.2f}, close to √{factor} = {math.sqrt(factor):.2f}. Adjacent shells "
           f"√D·σ ± 3σ/√2 must overlap, so γ − 1 shrinks like 1/√D and L grows like √D.")
    if abs(prediction - actual) <= rel_tol * actual:
        print("Right. " + verdict + why)
        return True
    if abs(prediction - base * factor) <= rel_tol * base * factor:
        print(f"Not quite: you scaled L with D (×{factor}). " + verdict + why)
    elif abs(prediction - base) <= rel_tol * base:
        print("Not quite: L does change with D. " + verdict + why)
    else:
        print(f"Not quite ({prediction:g}). " + verdict + why)
    return False
