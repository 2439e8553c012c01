"""Generative stochastic networks (Bengio, Yao, Alain & Vincent 2013): sampling with a denoiser.

A GSN alternates a fixed corruption C(x̃ | x) with a learned reconstruction P_θ(x | x̃):

    x̃_k ~ C(· | x_k) = N(x_k, σ² I),     x_{k+1} ~ P_θ(· | x̃_k).

If P_θ(x | x̃) is the true posterior p(x | x̃) ∝ p(x) N(x̃; x, σ² I), this is a Gibbs sampler of
the joint p(x) C(x̃ | x), so p is exactly stationary (Bengio et al. 2013, Thm. 1) — at *any* σ,
and larger σ mixes faster between modes. A denoising autoencoder trained on (x, x̃) pairs learns
that posterior; its mean is Tweedie's formula E[x | x̃] = x̃ + σ² ∇ log p_σ(x̃): the score of the
noisy data again. With only that mean and a Gaussian guess for the spread, the chain's stationary
law is close to p only for small σ (then it is a Langevin-like step).

For a Gaussian mixture p = Σ w_k N(μ_k, Σ_k) the posterior is exact: component k with probability
r_k(x̃) (the responsibilities of p_σ), then N(m_k, V_k) with V_k = (Σ_k⁻¹ + I/σ²)⁻¹ and
m_k = V_k (Σ_k⁻¹ μ_k + x̃/σ²).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoretutor.checks import count, positive
from scoretutor.densities import GaussianMixture
from scoretutor.device import generator_device, randn_like

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, torch.Generator | None], Tensor]

__all__ = ["exact_posterior_denoiser", "tweedie_denoiser", "gsn_chain"]


def exact_posterior_denoiser(mixture: GaussianMixture, sigma: float) -> Denoiser:
    """x ~ p(x | x̃) for p a Gaussian mixture and x̃ = x + σz (see the module docstring)."""
    sigma = positive(sigma, "sigma")
    d = mixture.dim
    eye = torch.eye(d, dtype=mixture.covs.dtype, device=mixture.covs.device)
    prec = torch.linalg.inv(mixture.covs)  # Σ_k⁻¹
    V = torch.linalg.inv(prec + eye / sigma**2)  # (K, d, d)
    chol_V = torch.linalg.cholesky(V)
    prec_mu = torch.einsum("kij,kj->ki", prec, mixture.means)
    noisy = mixture.perturb(sigma)

    def sample(x_noisy: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r = noisy.responsibilities(x_noisy)  # (N, K)
        dev = generator_device(generator, x_noisy.device)
        k = torch.multinomial(r.to(dev), 1, generator=generator).squeeze(-1).to(x_noisy.device)
        rhs = prec_mu[k].to(x_noisy.dtype) + x_noisy / sigma**2  # Σ_k⁻¹ μ_k + x̃/σ²
        m = torch.einsum("nij,nj->ni", V[k].to(x_noisy.dtype), rhs)
        z = randn_like(x_noisy, generator)
        return m + torch.einsum("nij,nj->ni", chol_V[k].to(x_noisy.dtype), z)

    return sample


def tweedie_denoiser(score_fn: Callable[[Tensor, float], Tensor], sigma: float, spread: float) -> Denoiser:
    """x ~ N(x̃ + σ² s(x̃, σ), spread² I): Tweedie's posterior mean with a fixed Gaussian spread.

    ``score_fn(x, σ)`` is a noise-conditional score (exact or learned); this is the kind of
    reconstruction a denoising autoencoder with a Gaussian output gives.
    """
    sigma, spread = positive(sigma, "sigma"), positive(spread, "spread")

    def sample(x_noisy: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mean = x_noisy + sigma**2 * score_fn(x_noisy, sigma)
        return mean + spread * randn_like(x_noisy, generator)

    return sample


@torch.no_grad()
def gsn_chain(denoiser: Denoiser, x0: Tensor, sigma: float, n_steps: int,
              generator: torch.Generator | None = None, return_trajectory: bool = False):
    """Run the GSN chain x̃ = x + σz, x ← denoiser(x̃) for ``n_steps``; returns x (and the trajectory)."""
    sigma = positive(sigma, "sigma")
    n_steps = count(n_steps, "n_steps", 0)
    x = x0.clone()
    traj = [x]
    for _ in range(n_steps):
        x = denoiser(x + sigma * randn_like(x, generator), generator)
        if not torch.isfinite(x).all():
            raise FloatingPointError("gsn_chain: the chain became non-finite; check the denoiser")
        if return_trajectory:
            traj.append(x)
    return (x, torch.stack(traj)) if return_trajectory else x
