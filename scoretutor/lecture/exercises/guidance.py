"""Notebook 08's check-yourself exercise: classifier-free guidance from two score models.

**Derive** (:func:`check_guided_score`): a network gives the conditional score s(x, y) ≈ ∇log p_t(x | y)
and, with the label dropped, the unconditional s(x, ∅) ≈ ∇log p_t(x). Write the guided score with scale
γ on the classifier term, ∇log p_t(x) + γ ∇log p_t(y | x), using only these two. Bayes' rule for scores
gives ∇log p_t(y | x) = s(x, y) − s(x, ∅), so the answer is s(x, ∅) + γ (s(x, y) − s(x, ∅)) — which is
Ho & Salimans' (1 + w) s(x, y) − w s(x, ∅) with w = γ − 1. The checker uses the exact scores of
notebook 08's labelled mixture and compares with the classifier form, computed from the closed-form
classifier gradient; the usual slips (their w and γ confused, a sign, s(x, ∅) dropped or not
subtracted, the weights swapped) are named.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoretutor.diffusion.guidance import overlapping_classes
from scoretutor.lecture.exercises import attempt, shaped_like

Tensor = torch.Tensor


def _cases():
    """Points, labels and scales (γ, shape (N, 1), in [1.5, 4] so that no slip coincides with the answer)
    on the labelled mixture at σ = 0.5; the exact s(x, y), s(x, ∅) and the classifier form of the answer."""
    g = torch.Generator().manual_seed(8)
    lm = overlapping_classes(torch.float64).perturb(0.5)
    n = 64
    x = 3 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=g)
    gamma = 1.5 + 2.5 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    want = lm.score(x) + gamma * lm.classifier_gradient(x, y)  # the classifier form, closed-form gradient
    return lm.conditional_score(x, y), lm.score(x), gamma, want


def _close(a, b) -> bool:
    ok = isinstance(a, Tensor) and a.shape == b.shape
    return ok and torch.allclose(a.double(), b, rtol=1e-6, atol=1e-9)


def check_guided_score(student_fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Check ``student_fn(cond, uncond, gamma)`` (γ shaped (N, 1)) against ∇log p_t(x) + γ ∇log p_t(y | x)
    = s(x, ∅) + γ (s(x, y) − s(x, ∅)); print a verdict and return True if right."""
    s_c, s_u, g, want = _cases()
    ok, got = attempt(student_fn, s_c.clone(), s_u.clone(), g.clone(), what="your guided score")
    if not ok or not shaped_like(got, tuple(want.shape)):
        return False
    if _close(got, want):
        print("Correct! s(x, ∅) + γ (s(x, y) − s(x, ∅)) = ∇log p_t(x) + γ ∇log p_t(y | x), the score of "
              "p_t(x) p_t(y | x)^γ / Z: classifier guidance without a classifier. In Ho & Salimans' "
              "notation it is (1 + w) s(x, y) − w s(x, ∅) with w = γ − 1, so their w = 0 is plain "
              "conditional sampling.")
        return True
    slips = {
        "that is (1 + γ) s(x, y) − γ s(x, ∅), guidance with scale 1 + γ: Ho & Salimans' formula with their w "
        "set to γ, but their w is γ − 1. Check γ = 1: the guided score must be the conditional s(x, y)":
            (1 + g) * s_c - g * s_u,
        "the sign of the classifier term: ∇log p_t(y | x) = s(x, y) − s(x, ∅) is added to s(x, ∅)":
            s_u - g * (s_c - s_u),
        "the two weights are swapped: at γ = 1 you must get s(x, y), at γ = 0 s(x, ∅)":
            (1 - g) * s_c + g * s_u,
        "γ·s(x, y) drops the unconditional score: s_γ = ∇log p_t(x) + γ ∇log p_t(y | x) has both terms":
            g * s_c,
        "∇log p_t(y | x) is not s(x, y): by Bayes' rule it is s(x, y) − s(x, ∅) (p(y) drops out)":
            s_u + g * s_c,
        "that is only γ ∇log p_t(y | x), the classifier term: add the unconditional score s(x, ∅)":
            g * (s_c - s_u),
    }
    for hint, wrong in slips.items():
        if _close(got, wrong):
            print(f"Not quite: {hint}.")
            return False
    print("Not quite. Start from ∇log p_t(x) + γ ∇log p_t(y | x) and use Bayes' rule for scores: "
          "∇log p_t(x | y) = ∇log p_t(x) + ∇log p_t(y | x), i.e. s(x, y) = s(x, ∅) + ∇log p_t(y | x).")
    return False
