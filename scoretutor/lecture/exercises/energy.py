"""Notebook 01's check-yourself exercise: write the score of an energy by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoretutor.ebm import score_from_energy
from scoretutor.lecture.exercises import attempt, max_relative_error, shaped_like

Tensor = torch.Tensor


def mexican_hat_energy(x: Tensor) -> Tensor:
    """f(x) = (‖x‖² − 4)² / 4: low energy on the circle of radius 2."""
    return ((x**2).sum(-1) - 4.0) ** 2 / 4.0


def check_score(student_score: Callable[[Tensor], Tensor],
                energy: Callable[[Tensor], Tensor] = mexican_hat_energy,
                n: int = 256, seed: int = 0, rtol: float = 1e-4) -> bool:
    """Compare a hand-written score with −∇ₓf by autograd on random points; print a verdict."""
    x = 3 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    done, got = attempt(student_score, x.clone(), what="your formula")
    expected = score_from_energy(energy)(x)
    if not (done and shaped_like(got, expected.shape)):
        return False
    err = max_relative_error(got, expected, 1e-8)
    if err > rtol:
        i = int(((got.double() - expected).norm(dim=-1)).argmax())
        print(f"Not quite: at x = {x[i].tolist()} you give {got[i].tolist()}, "
              f"−∇f(x) = {expected[i].tolist()} (max relative error {err:.2e}). Hint: mind the sign.")
        return False
    print(f"Correct! Max relative error {err:.1e} over {n} random points.")
    return True


# -- Predict, then check: which changes of f change the density, which the score? -----------------
TRANSFORMS: dict[str, tuple[Callable[[Callable[[Tensor], Tensor]], Callable[[Tensor], Tensor]], str]] = {
    "f(x) + 3": (lambda f: lambda x: f(x) + 3.0,
                 "a constant is absorbed by Z (Z → e^{-3} Z); its x-gradient is 0"),
    "2 f(x)": (lambda f: lambda x: 2.0 * f(x),
               "p ∝ e^{-2f} = p² (renormalised): sharper modes; the score doubles, s → 2s"),
    "f(x − a), a = (1, 0)": (lambda f: lambda x: f(x - torch.tensor([1.0, 0.0], dtype=x.dtype)),
                             "the density moves by a; at a fixed x the score is the old one at x − a"),
    "f(x) + 0.5·x₁": (lambda f: lambda x: f(x) + 0.5 * x[..., 0],
                      "a linear tilt: the score changes by the constant −(0.5, 0), so the density changes "
                      "too (each Gaussian mode moves by −0.5 along x₁, and the weights change by "
                      "e^{−0.5 μ₁})"),
}
ASPECTS = ("density changes", "score changes")


def _grid(lim: float, n: int) -> tuple[Tensor, float]:
    h = 2 * lim / n
    axis = -lim + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1), h


def transformation_effects(energy: Callable[[Tensor], Tensor], lim: float = 14.0, n: int = 200
                           ) -> dict[str, dict[str, float]]:
    """For each transformation g of f: max |Δ p| (both normalised on a grid over [−lim, lim]², where
    p is above 1e-6 of its peak) and max ‖Δ s‖ (s = −∇ₓ by autograd) at the same points."""
    x, h = _grid(lim, n)

    def log_p(fn):
        logits = -fn(x)
        return logits - torch.logsumexp(logits, 0) - 2 * torch.log(torch.tensor(h, dtype=x.dtype))

    base_p = log_p(energy).exp()
    keep = base_p > 1e-6 * base_p.max()
    base_s = score_from_energy(energy)(x[keep])
    effects = {}
    for name, (transform, _) in TRANSFORMS.items():
        g = transform(energy)
        effects[name] = {"density changes": (log_p(g).exp() - base_p).abs().max().item(),
                         "score changes": (score_from_energy(g)(x[keep]) - base_s).norm(dim=-1).max().item()}
    return effects


def check_transformations(predictions: dict, energy: Callable[[Tensor], Tensor] | None = None,
                          tol: float = 1e-6) -> bool:
    """Compare predicted True (changes) / False (stays) with the measured change; print a verdict per row.

    ``predictions[name][aspect]`` for every name in :data:`TRANSFORMS` and aspect in :data:`ASPECTS`;
    ``energy`` defaults to notebook 01's mixture.
    """
    names = list(TRANSFORMS)
    if not isinstance(predictions, dict) or set(predictions) != set(names):
        print(f"Give a prediction for exactly these transformations: {names}.")
        return False
    answers = [predictions[n].get(a, ...) if isinstance(predictions[n], dict) else ...
               for n in names for a in ASPECTS]
    if any(v is ... for v in answers):
        print("Not attempted yet: replace every ... with True (it changes) or False (it stays the same).")
        return False
    if not all(isinstance(v, bool) for v in answers):
        print("Answer with True (it changes) or False (it stays the same), not numbers or strings.")
        return False
    if energy is None:
        from scoretutor.densities import ncsn_mixture

        energy = ncsn_mixture(dtype=torch.float64).energy
    effects = transformation_effects(energy)
    n_right = 0
    for name in names:
        for aspect in ASPECTS:
            measured, guess = effects[name][aspect], predictions[name][aspect]
            right = guess == (measured > tol)
            n_right += right
            verdict = "✓ right" if right else f"✗ you predicted {'changes' if guess else 'stays'}"
            print(f"{name:22s} {aspect:16s} max change {measured:9.2e}   {verdict}")
        if any(predictions[name][a] != (effects[name][a] > tol) for a in ASPECTS):
            print(f"{'':22s} why: {TRANSFORMS[name][1]}")
    total = len(names) * len(ASPECTS)
    print(f"{n_right} of {total} predictions right." + (" Well done!" if n_right == total else ""))
    return n_right == total
