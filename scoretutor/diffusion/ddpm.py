"""The DDPM view (Ho, Jain & Abbeel 2020): a forward noising chain, ε-prediction, and its ELBO.

Forward chain with betas β_1 … β_N: q(x_i | x_{i−1}) = N(√(1 − β_i) x_{i−1}, β_i I), hence
q(x_i | x_0) = N(√ᾱ_i x_0, (1 − ᾱ_i) I) with ᾱ_i = Π_{j<=i} (1 − β_j): the VP SDE's marginal at t_i.

The ELBO's term i >= 2 is L_{i−1} = KL(q(x_{i−1} | x_i, x_0) ‖ p_θ(x_{i−1} | x_i)), with the Gaussian
posterior q(x_{i−1} | x_i, x_0) = N(μ̃_i, β̃_i I),
    μ̃_i = √ᾱ_{i−1} β_i/(1 − ᾱ_i) x_0 + √(1 − β_i)(1 − ᾱ_{i−1})/(1 − ᾱ_i) x_i,
    β̃_i = (1 − ᾱ_{i−1}) β_i/(1 − ᾱ_i),
and the model p_θ(x_{i−1} | x_i) = N(μ_θ, σ_i² I) with μ_θ = (x_i − β_i/√(1 − ᾱ_i) ε_θ)/√(1 − β_i).
The KL's mean term is then (Ho et al. eq. 12)
    ‖μ̃_i − μ_θ‖²/(2σ_i²) = β_i² / (2σ_i² (1 − β_i)(1 − ᾱ_i)) ‖ε − ε_θ(x_i, i)‖²,
and since ε = −√(1 − ᾱ_i) ∇ log q(x_i | x_0) and ε_θ = −√(1 − ᾱ_i) s_θ, with σ_i² = β_i it is
    λ_i · ½ ‖s_θ(x_i, i) − ∇_{x_i} log q(x_i | x_0)‖²,   λ_i = β_i/(1 − β_i):
denoising score matching with weight λ_i in the suite's convention (λ multiplies ½‖·‖², as in
``losses.ncsn_loss``), and λ_i ≈ β_i = g(t_i)² Δt for the VP SDE — level t weighted by g(t)², the
"likelihood weighting" λ = g² of Song, Durkan, Murray & Ermon (2021). That is the deck's table row
"training objective: score matching ↔ ELBO".
"""

from __future__ import annotations

import torch

from scoretutor.device import randn_like

Tensor = torch.Tensor

__all__ = ["alpha_bars", "forward_chain", "posterior", "elbo_term", "dsm_weight"]


def _check_betas(betas) -> Tensor:
    b = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if b.numel() < 2 or not ((b > 0).all() and (b < 1).all()):
        raise ValueError(f"betas must be >= 2 values in (0, 1), got {b.tolist() if b.numel() <= 8 else b}")
    return b


def _check_index(i: int, n: int, lowest: int = 1) -> int:
    if int(i) != i or not lowest <= i <= n:
        raise ValueError(f"i must be an integer in [{lowest}, {n}], got {i!r}")
    return int(i)


def alpha_bars(betas) -> Tensor:
    """ᾱ_i = Π_{j<=i} (1 − β_j), i = 1 … N (float64)."""
    return torch.cumprod(1 - _check_betas(betas), 0)


def forward_chain(x0: Tensor, betas, generator: torch.Generator | None = None) -> Tensor:
    """Run x_i = √(1 − β_i) x_{i−1} + √β_i z_i; returns the chain x_0 … x_N stacked, (N + 1, *x0.shape)."""
    b = _check_betas(betas)
    xs = [x0]
    for beta in b.tolist():
        xs.append((1 - beta) ** 0.5 * xs[-1] + beta**0.5 * randn_like(x0, generator))
    return torch.stack(xs)


def posterior(x0: Tensor, xi: Tensor, betas, i: int) -> tuple[Tensor, float]:
    """(μ̃_i, β̃_i) of q(x_{i−1} | x_i, x_0) for i = 2 … N (see the module docstring)."""
    b = _check_betas(betas)
    i = _check_index(i, b.numel(), 2)
    ab = alpha_bars(b)
    beta, ab_i, ab_prev = b[i - 1].item(), ab[i - 1].item(), ab[i - 2].item()
    mean = ab_prev**0.5 * beta / (1 - ab_i) * x0 + (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab_i) * xi
    return mean, (1 - ab_prev) * beta / (1 - ab_i)


def elbo_term(x0: Tensor, xi: Tensor, eps_pred: Tensor, betas, i: int) -> Tensor:
    """KL(q(x_{i−1} | x_i, x_0) ‖ N(μ_θ, β_i I)) per example in nats, by the Gaussian KL formula

        KL = ½ [D β̃/σ² + ‖μ̃ − μ_θ‖²/σ² − D + D log(σ²/β̃)],   σ² = β_i,
        μ_θ = (x_i − β_i/√(1 − ᾱ_i) ε_θ)/√(1 − β_i).
    """
    b = _check_betas(betas)
    i = _check_index(i, b.numel(), 2)
    mean_q, var_q = posterior(x0, xi, b, i)
    beta, ab_i = b[i - 1].item(), alpha_bars(b)[i - 1].item()
    mean_p = (xi - beta / (1 - ab_i) ** 0.5 * eps_pred) / (1 - beta) ** 0.5
    d = x0[0].numel()
    sq = (mean_q - mean_p).reshape(x0.shape[0], -1).pow(2).sum(-1)
    log_ratio = torch.log(torch.tensor(beta / var_q, dtype=torch.float64)).item()
    return 0.5 * (d * var_q / beta + sq / beta - d + d * log_ratio)


def dsm_weight(betas, i: int) -> float:
    """λ_i = β_i/(1 − β_i): L_{i−1} = λ_i · ½ ‖s_θ − ∇ log q(x_i | x_0)‖² + (a constant in θ).

    λ multiplies ½‖·‖², as everywhere in the suite (``losses.ncsn_loss``); λ_i ≈ β_i = g(t_i)² Δt.
    """
    b = _check_betas(betas)
    i = _check_index(i, b.numel(), 2)
    beta = b[i - 1].item()
    return beta / (1 - beta)
