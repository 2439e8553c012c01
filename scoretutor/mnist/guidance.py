"""Class-conditional digits (notebook 08): guidance turns a score model into a sampler of p(x | y).

Bayes' rule for scores: ∇ₓ log p_σ(x | y) = ∇ₓ log p_σ(x) + ∇ₓ log p_σ(y | x); p(y) drops out as Z did.
A guidance scale γ on the second term gives the score of the tilted density p_σ(x) p_σ(y | x)^γ: γ = 0 is
the unconditional model, γ = 1 the conditional one, γ > 1 sharper (and less diverse) digits. Two ways to get
the term:

- ``guide="classifier"``: a noise-conditional classifier p_σ(y | x̃)
  (:mod:`~scoretutor.mnist.noisy_classifier`) differentiated by autograd, added to the shipped unconditional
  score (Dhariwal & Nichol 2021):
  s_γ = s(x, σ) + γ ∇ₓ log p_σ(y | x).
- ``guide="free"``: one class-conditional network s(x, σ, y) trained with labels dropped to ∅ (the shipped
  ``conditional_model``), whose difference s(x, σ, y) − s(x, σ, ∅) is the classifier's gradient
  (Ho & Salimans 2022): s_γ = γ s(x, σ, y) − (γ − 1) s(x, σ, ∅); their w is γ − 1.

:class:`GuidedScore` wraps either as a model ``forward(x, σ)``, so every sampler of
:mod:`~scoretutor.mnist.sampling` draws guided digits unchanged; :func:`sample_guided` is the front door.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from scoretutor.checks import count
from scoretutor.device import model_device
from scoretutor.errors import UsageError
from scoretutor.mnist.data import SHIPPED_DIR

Tensor = torch.Tensor

GUIDES = ("free", "classifier")
GUIDANCE = {"free": 2.0, "classifier": 10.0}  # default γ per guide: see docs/mnist-model.md, "Guidance"
SAMPLERS = ("ode", "pc")
CONDITIONAL_DIR = "conditional_model"  # the shipped class-conditional checkpoint, in shipped/


def conditional_checkpoint_dir() -> Path:
    """The folder of the shipped class-conditional score model (classifier-free guidance)."""
    return SHIPPED_DIR / CONDITIONAL_DIR


def load_conditional(directory: str | os.PathLike | None = None, device=None) -> tuple[nn.Module, dict]:
    """(model, card) of a class-conditional checkpoint (default: the shipped one)."""
    from scoretutor.mnist.training import load_pretrained

    folder = directory if directory is not None else conditional_checkpoint_dir()
    model, card = load_pretrained(folder, device)
    if not getattr(model, "n_classes", 0):
        raise UsageError(f"{directory or conditional_checkpoint_dir()} holds an unconditional model; "
                         "classifier-free guidance needs one trained with --conditional")
    return model, card


def check_labels(labels, n: int) -> Tensor:
    """(n,) int64 digit classes from an int or a sequence; each must lie in 0..9."""
    y = torch.as_tensor(labels).long().flatten()
    if y.numel() == 1:
        y = y.expand(n)
    if y.shape != (n,):
        raise UsageError(f"need one class or {n} classes, got {y.numel()}")
    if y.numel() and (y.min() < 0 or y.max() > 9):
        raise UsageError(f"classes must be digits 0..9, got {y.min().item()}..{y.max().item()}")
    return y.clone()


def check_guidance(guidance: float) -> float:
    """γ, a finite number ≥ 0 (0: no guidance, 1: the conditional score, > 1: sharpened)."""
    g = float(guidance)
    if not (math.isfinite(g) and g >= 0):
        raise UsageError(f"guidance must be a finite number >= 0, got {guidance}")
    return g


class GuidedScore(nn.Module):
    """s_γ(x, σ) for a batch of n images with fixed classes ``labels`` (n,), as a model ``forward(x, σ)``.

    ``guide="free"``: ``model`` is class-conditional; s_γ = γ s(x, σ, y) − (γ − 1) s(x, σ, ∅), computed in one
    call on the stacked batch [x; x] (one call when γ is 0 or 1).
    ``guide="classifier"``: ``model`` is unconditional and ``classifier`` noise-conditional;
    s_γ = s(x, σ) + γ ∇ₓ log p_σ(y | x) (the gradient by autograd, in fp32).
    """

    def __init__(self, model: nn.Module, labels: Tensor, guidance: float, guide: str = "free",
                 classifier: nn.Module | None = None):
        super().__init__()
        if guide not in GUIDES:
            raise UsageError(f"guide must be one of {GUIDES}, got {guide!r}")
        conditional = bool(getattr(model, "n_classes", 0))
        if guide == "free" and not conditional:
            raise UsageError("classifier-free guidance needs a class-conditional model (n_classes > 0)")
        if guide == "classifier" and (classifier is None or conditional):
            raise UsageError("classifier guidance needs an unconditional score model and a noise-conditional "
                             "classifier")
        self.model, self.classifier, self.guide = model, classifier, guide
        self.guidance = check_guidance(guidance)
        flat = torch.as_tensor(labels).flatten()
        self.labels = check_labels(flat, flat.numel()).to(model_device(model))

    def forward(self, x: Tensor, sigma) -> Tensor:
        g, y = self.guidance, self.labels
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"GuidedScore holds {y.shape[0]} labels, got {x.shape[0]} images")
        if self.guide == "classifier":
            from scoretutor.mnist.noisy_classifier import classifier_log_prob_grad

            s = self.model(x, sigma)
            return s if g == 0 else s + g * classifier_log_prob_grad(self.classifier, x, sigma, y).to(s.dtype)
        null = torch.full_like(y, self.model.n_classes)
        if g in (0.0, 1.0):
            return self.model(x, sigma, null if g == 0 else y)
        sigma2 = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).expand(x.shape[0])
        both = self.model(torch.cat([x, x]), torch.cat([sigma2, sigma2]), torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return g * cond - (g - 1) * uncond


def sample_guided(model: nn.Module, card: dict, labels, guidance: float | None = None, guide: str = "free",
                  classifier: nn.Module | None = None, sampler: str = "ode", n_calls: int | None = None,
                  seed: int = 0, precision: str | None = None) -> Tensor:
    """Digits of the given classes (one per label), guided with scale γ = ``guidance`` (default
    :data:`GUIDANCE`), by ``sampler``: ``"ode"`` (Heun with churn,
    :func:`~scoretutor.mnist.sampling.sample_ode`, ``n_calls`` network calls, default 50) or ``"pc"``
    (predictor–corrector, 285 calls). A guided call costs two network evaluations (classifier-free: a batch
    of 2n; classifier: the score and the classifier's gradient)."""
    from scoretutor.mnist.sampling import sample_ode, sample_pc

    if sampler not in SAMPLERS:
        raise UsageError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    guidance = GUIDANCE.get(guide, 1.0) if guidance is None else guidance
    net = GuidedScore(model, labels, guidance, guide, classifier)  # checks the labels
    n = count(net.labels.numel(), "number of labels", 1)
    if sampler == "pc":
        return sample_pc(net, n, card, seed=seed, precision=precision)
    calls = ODE_GUIDED_CALLS if n_calls is None else count(n_calls, "n_calls", 2)
    return sample_ode(net, n, card, n_calls=calls, solver="Heun (Karras)", churn=ODE_GUIDED_CHURN, seed=seed,
                      precision=precision)


ODE_GUIDED_CALLS = 50
ODE_GUIDED_CHURN = 10.0
