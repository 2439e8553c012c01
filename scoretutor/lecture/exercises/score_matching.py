"""Notebook 02's check-yourself exercise: implement denoising score matching.

The student writes ``my_dsm(score_fn, x, sigma, generator)`` returning
½ · mean_n ‖s(x̃_n) + (x̃_n − x_n)/σ²‖² with x̃ = x + σz, z drawn as
``torch.randn(x.shape, generator=generator, dtype=x.dtype)``. ``check_dsm`` compares it with
``scoretutor.losses.denoising_score_matching`` on the same noise, recognises the usual slips
(a missing ½, the sign of the target, σ instead of σ², a sum instead of a mean) and, if the noise
was drawn some other way, falls back to comparing expectations over many batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.checks import sq_norm
from scoretutor.lecture.exercises import attempt
from scoretutor.losses import denoising_score_matching

Tensor = torch.Tensor
StudentDSM = Callable[[Callable[[Tensor], Tensor], Tensor, float, torch.Generator], Tensor]


def _cases() -> list[tuple[str, Callable[[Tensor], Tensor], Tensor, float]]:
    g = torch.Generator().manual_seed(0)
    x2 = torch.randn(64, 2, generator=g, dtype=torch.float64) * 2 + 1
    ximg = torch.randn(16, 1, 3, 3, generator=g, dtype=torch.float64)
    with torch.random.fork_rng():  # fixed weights without touching the student's global RNG
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    return [
        ("linear score −x on 2-D points, σ = 0.5", lambda y: -y, x2, 0.5),
        ("a small network on 2-D points, σ = 0.1", net, x2, 0.1),
        ("score −x/2 on (N, 1, 3, 3) images, σ = 2", lambda y: -y / 2, ximg, 2.0),
    ]


def _slips(score_fn, x: Tensor, sigma: float, seed: int) -> dict[str, Tensor]:
    """Losses with common mistakes, on the same noise the checker hands to the student."""
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    xt = x + sigma * z
    s = score_fn(xt)
    return {
        "you dropped the factor ½": sq_norm(s + z / sigma).mean(),
        "the target has the wrong sign: it is ∇ log q(x̃|x) = −(x̃ − x)/σ², so the loss has s + (x̃−x)/σ²":
            0.5 * sq_norm(s - z / sigma).mean(),
        "divide (x̃ − x) by σ², not σ": 0.5 * sq_norm(s + z).mean(),
        "average over the batch (mean), don't sum": 0.5 * sq_norm(s + z / sigma).sum(),
        "evaluate the score at the noisy point x̃, not at x": 0.5 * sq_norm(score_fn(x) + z / sigma).mean(),
        FRESH_NOISE: _debug_variants(score_fn, x, sigma, seed)[(True, False)],
    }


# -- Debug: a DSM loss with two slips -------------------------------------------------------------
FRESH_NOISE = ("the target uses a second, fresh draw of z: it must be the same z that made x̃ "
               "(with independent noise E[−z′/σ | x̃] = 0, so the best score is s ≡ 0)")
LAST_AXIS = ("the squared norm sums over the last axis only: for images (N, C, H, W) sum over all "
             "axes but the batch (reshape(len(x), −1).sum(−1)), else the loss is divided by C·H")


def _debug_variants(score_fn, x: Tensor, sigma: float, seed: int) -> dict[tuple[bool, bool], Tensor]:
    """The loss with or without each of the two slips (fresh noise, last-axis sum), on the seeded noise."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(x.shape, generator=g, dtype=x.dtype)
    z_fresh = torch.randn(x.shape, generator=g, dtype=x.dtype)  # what a second draw would give
    s = score_fn(x + sigma * z)
    out = {}
    for fresh in (False, True):
        residual = s + (z_fresh if fresh else z) / sigma
        out[(fresh, False)] = 0.5 * sq_norm(residual).mean()
        out[(fresh, True)] = 0.5 * residual.pow(2).sum(-1).mean()
    return out


def _scalar_loss(fn: StudentDSM, name: str, score_fn, x: Tensor, sigma: float, seed: int, what: str
                 ) -> Tensor | None:
    """The student's loss on one case (its noise from ``seed``), or None with a printed hint when it is not
    attempted yet or is not a scalar tensor."""
    done, got = attempt(fn, score_fn, x.clone(), sigma, torch.Generator().manual_seed(seed), what=what)
    if not done:
        return None
    if not isinstance(got, Tensor) or got.numel() != 1:
        print(f"[{name}] your function should return a scalar tensor, got {got!r:.80}")
        return None
    return got


def check_debugged_dsm(fixed_dsm: StudentDSM) -> bool:
    """Name the slips of the debugging exercise that remain in ``fixed_dsm`` (fresh noise in the target,
    a last-axis sum); once none is recognised, run :func:`check_dsm` on it."""
    slips = [False, False]
    for name, score_fn, x, sigma in _cases():
        seed = 1234
        got = _scalar_loss(fixed_dsm, name, score_fn, x, sigma, seed, "your fixed loss")
        if got is None:
            return False
        variants = _debug_variants(score_fn, x, sigma, seed)
        if x.ndim == 2:  # on points both sums agree: the last-axis slip shows only on images
            variants = {k: v for k, v in variants.items() if not k[1]}
        matches = [k for k, v in variants.items()
                   if torch.isclose(got.double().reshape(()), v.detach(), rtol=1e-6, atol=1e-9)]
        for k in matches[:1]:
            slips = [slips[0] or k[0], slips[1] or k[1]]
    named = [text for flag, text in zip(slips, (FRESH_NOISE, LAST_AXIS), strict=True) if flag]
    if named:
        print(f"{len(named)} slip{'s' * (len(named) > 1)} left:\n  - " + "\n  - ".join(named))
        return False
    return check_dsm(fixed_dsm)


def check_dsm(student_dsm: StudentDSM, n_mc: int = 200) -> bool:
    """Check a hand-written DSM loss against the package; print a verdict and return True if right."""
    cases = _cases()
    for name, score_fn, x, sigma in cases:
        seed = 1234
        got = _scalar_loss(student_dsm, name, score_fn, x, sigma, seed, "your loss")
        if got is None:
            return False
        expected = denoising_score_matching(score_fn, x, sigma, generator=torch.Generator().manual_seed(seed))
        if torch.isclose(got.double().reshape(()), expected.detach(), rtol=1e-6, atol=1e-9):
            continue
        for hint, value in _slips(score_fn, x, sigma, seed).items():
            if torch.isclose(got.double().reshape(()), value.detach(), rtol=1e-6, atol=1e-9):
                print(f"[{name}] not quite: you return {got.item():.6g}, expected {expected.item():.6g}. "
                      f"Hint: {hint}.")
                return False
        # Maybe the noise was drawn another way: compare expectations (mean over n_mc batches).
        vals = torch.tensor([float(student_dsm(score_fn, x, sigma, torch.Generator().manual_seed(k)))
                             for k in range(n_mc)], dtype=torch.float64)
        refs = torch.tensor([float(denoising_score_matching(score_fn, x, sigma,
                                                            generator=torch.Generator().manual_seed(k)))
                             for k in range(n_mc)], dtype=torch.float64)
        se = math.sqrt(vals.var().item() / n_mc + refs.var().item() / n_mc)
        if abs(vals.mean().item() - refs.mean().item()) < 4 * se:
            mine, ref = vals.mean().item(), refs.mean().item()
            print(f"[{name}] right on average ({mine:.4g} vs {ref:.4g} ± {se:.2g}), "
                  "but not on the same noise: draw z with torch.randn(x.shape, generator=generator, "
                  "dtype=x.dtype) so results are reproducible.")
            return False
        print(f"[{name}] not quite: you return {got.item():.6g}, expected {expected.item():.6g}. "
              "Recall x̃ = x + σz and ½·mean ‖s(x̃) + (x̃ − x)/σ²‖².")
        return False
    # Training needs gradients: the loss must be differentiable with respect to the model.
    _, net, x, sigma = cases[1]
    net.zero_grad()
    loss = student_dsm(net, x, sigma, torch.Generator().manual_seed(0))
    if not loss.requires_grad:
        print("Values are right, but the loss carries no gradient: don't detach or use .item() inside.")
        return False
    loss.backward()
    print(f"Correct! Your DSM matches the package on {len(cases)} cases (points and images) "
          "and is differentiable.")
    return True
