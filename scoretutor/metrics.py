"""Sample-quality metrics for comparing a sampler's output with a reference sample.

- ``sliced_wasserstein``: SW₂(x, y)² = E_θ W₂²(θᵀx, θᵀy), θ uniform on the unit sphere; each 1-D
  W₂ between empirical distributions is exact (sorted samples, quantile functions matched on the
  merged grid of breakpoints), the expectation over θ is a Monte Carlo average.
- ``mode_fractions``: the fraction of points nearest to each mode, with binomial standard errors
  √(f(1 − f)/n).

All accept samples of shape (N, ...) (flattened to (N, D)) on any device.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from scoretutor import checks
from scoretutor.checks import count
from scoretutor.device import generator_device

Tensor = torch.Tensor

__all__ = ["sliced_wasserstein", "mode_fractions", "ModeFractions"]


def _flat(x, name: str) -> Tensor:
    """(N, ...) → (N, D), finite, integer tensors promoted to the default float dtype."""
    if isinstance(x, Tensor) and not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    x = checks.batch(x, name, min_ndim=1)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x.reshape(x.shape[0], -1)


def _pair(x, y) -> tuple[Tensor, Tensor]:
    x, y = _flat(x, "x"), _flat(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features, got {x.shape[1]} and {y.shape[1]}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(device=x.device, dtype=dtype)


# -- sliced Wasserstein ---------------------------------------------------------------------------
def _w2_squared_1d(a: Tensor, b: Tensor) -> Tensor:
    """Exact W₂² between the empirical distributions of the columns of a (n, P) and b (m, P).

    W₂² = ∫₀¹ (F_a⁻¹(u) − F_b⁻¹(u))² du; both quantile functions are step functions with jumps at
    k/n and k/m, so the integral is an exact sum over the merged breakpoints.
    """
    a, b = a.sort(0).values, b.sort(0).values
    n, m = a.shape[0], b.shape[0]
    if n == m:
        return ((a - b) ** 2).mean(0)
    u = torch.cat([torch.arange(1, n + 1, device=a.device, dtype=a.dtype) / n,
                   torch.arange(1, m + 1, device=a.device, dtype=a.dtype) / m]).sort().values
    lengths = torch.diff(u, prepend=u.new_zeros(1))
    mid = u - lengths / 2
    ia = (mid * n).long().clamp_(0, n - 1)
    ib = (mid * m).long().clamp_(0, m - 1)
    return (lengths[:, None] * (a[ia] - b[ib]) ** 2).sum(0)


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None, return_std: bool = False
                       ) -> float | tuple[float, float]:
    """SW₂(x, y) = (E_θ W₂²(θᵀx, θᵀy))^{1/2} with θ uniform on the unit sphere of R^D.

    The expectation is a Monte Carlo average over ``n_projections`` random directions; with
    ``return_std`` the standard error of SW₂ from that average is returned too (delta method:
    se(√m) = se(m)/(2√m)). It does not include the sampling error of x and y themselves.
    """
    x, y = _pair(x, y)
    n_projections = count(n_projections, "n_projections", 1)
    D = x.shape[1]
    gdev = generator_device(generator, x.device)
    theta = torch.randn(D, n_projections, generator=generator, dtype=x.dtype, device=gdev).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    w2 = _w2_squared_1d(x @ theta, y @ theta)  # (P,)
    mean = w2.mean().clamp_min(0)
    value = mean.sqrt().item()
    if not return_std:
        return value
    se_mean = (w2.std() / math.sqrt(w2.numel())).item() if w2.numel() > 1 else float("nan")
    return value, (se_mean / (2 * value) if value > 0 else 0.0)


# -- mode fractions -------------------------------------------------------------------------------
class ModeFractions(NamedTuple):
    """Fraction of points nearest to each mode, its binomial standard error and the raw counts."""

    fractions: Tensor
    stderr: Tensor
    counts: Tensor

    def __str__(self) -> str:
        pairs = zip(self.fractions.tolist(), self.stderr.tolist(), strict=True)
        parts = [f"{f:.3f} ± {s:.3f}" for f, s in pairs]
        return f"mode fractions [{', '.join(parts)}] (n = {int(self.counts.sum())})"


def mode_fractions(x: Tensor, modes) -> ModeFractions:
    """f_k = #{i : argmin_j ‖x_i − μ_j‖ = k} / n with standard error √(f_k(1 − f_k)/n).

    ``modes``: a (K, D) tensor of mode locations or anything with a ``.means`` attribute (e.g. a
    :class:`~scoretutor.densities.GaussianMixture`). Assignment is to the nearest mode in Euclidean
    distance, which does not depend on the mixture weights.
    """
    x = _flat(x, "x")
    means = getattr(modes, "means", modes)
    if not isinstance(means, Tensor):
        means = torch.as_tensor(means)
    means = means.reshape(means.shape[0], -1) if means.ndim >= 1 else means
    if means.ndim != 2 or means.shape[1] != x.shape[1] or means.shape[0] < 1:
        raise ValueError(f"modes must be (K, {x.shape[1]}) locations or a mixture with such means, "
                         f"got shape {tuple(means.shape)}")
    means = means.to(device=x.device, dtype=x.dtype)
    nearest = torch.cdist(x, means).argmin(1)
    counts = torch.bincount(nearest, minlength=means.shape[0])
    n = x.shape[0]
    f = counts.to(x.dtype) / n
    return ModeFractions(f, (f * (1 - f) / n).sqrt(), counts)


# ==================================================================================================
# Image-sample quality (issue 9): classifier confidence, label entropy, Fréchet distance between
# Gaussian fits of features, nearest-neighbour distances (memorisation). The MNIST protocol that
# combines them with the shipped classifier and the test-set split is in scoretutor.mnist.quality.
# ==================================================================================================
def confident_fraction(probs: Tensor, threshold: float = 0.9) -> float:
    """#{i : max_k p_i(k) > threshold} / N for class probabilities ``probs`` of shape (N, K)."""
    if not isinstance(probs, Tensor) or probs.ndim != 2 or probs.shape[0] < 1:
        raise ValueError(f"probs must be a (N, K) tensor of class probabilities, got {probs!r:.60}")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    return (probs.max(1).values > threshold).float().mean().item()


def label_entropy(labels: Tensor, n_classes: int = 10) -> float:
    """H(h) / log K of the histogram h of integer labels in 0..K−1: 1 when every class is equally
    frequent, 0 when all labels are the same (H(h) = −Σ_k h_k log h_k, with 0 log 0 = 0)."""
    n_classes = count(n_classes, "n_classes", 2)
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.numel() < 1 \
            or labels.is_floating_point():
        raise ValueError(f"labels must be a 1-D integer tensor with at least one entry, got {labels!r:.60}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got range "
                         f"{int(labels.min())}..{int(labels.max())}")
    h = torch.bincount(labels.long(), minlength=n_classes).double() / labels.numel()
    h = h[h > 0]
    return (-(h * h.log()).sum() / math.log(n_classes)).item()


def gaussian_fit(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance (divisor N − 1) of features (N, D), in float64."""
    f = _flat(features, "features").double()
    if f.shape[0] < 2:
        raise ValueError(f"a Gaussian fit needs at least 2 points, got {f.shape[0]}")
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _sqrtm_psd(a: Tensor) -> Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance_gaussians(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂), as in FID:

        d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}.

    tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} = tr (Σ₁Σ₂)^{1/2} (same eigenvalues), computed from the
    eigenvalues of the symmetric PSD matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}, in float64.
    """
    mu1, mu2, cov1, cov2 = (t.detach().double().cpu() for t in (mu1, mu2, cov1, cov2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"need means (D,) and covariances (D, D) of one D, got {tuple(mu1.shape)}, "
                         f"{tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    s1 = _sqrtm_psd(cov1)
    m = s1 @ cov2 @ s1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * tr_sqrt
    return max(value.item(), 0.0)


def frechet_distance(x: Tensor, y: Tensor) -> float:
    """Squared Fréchet distance between Gaussian fits of two feature samples (N, D) and (M, D).

    The estimate is biased upwards at finite N (it is > 0 even for two samples of one
    distribution), so compare only figures computed at the same sample sizes.
    """
    x, y = _pair(x, y)
    return frechet_distance_gaussians(*gaussian_fit(x), *gaussian_fit(y))


def nearest_distances(x: Tensor, reference: Tensor, chunk: int = 512) -> Tensor:
    """min_j ‖x_i − r_j‖ (Euclidean, over flattened points) for each row of x, computed in chunks.

    The nearest r_j is found with ‖a − b‖² = ‖a‖² − 2a·b + ‖b‖² (one matrix product per chunk);
    its distance is then recomputed directly as ‖x_i − r_j‖, so an exact copy gives exactly 0
    (the expansion alone loses ~1e-7·‖a‖² to cancellation).
    """
    x, reference = _pair(x, reference)
    ref_sq = reference.pow(2).sum(1)
    out = []
    for start in range(0, x.shape[0], chunk):
        xs = x[start:start + chunk]
        nearest = (ref_sq - 2 * xs @ reference.T).argmin(1)  # ‖x_i‖² is the same for every j
        out.append((xs - reference[nearest]).norm(dim=1))
    return torch.cat(out)

__all__ += ["confident_fraction", "label_entropy", "gaussian_fit", "frechet_distance",
            "frechet_distance_gaussians", "nearest_distances"]
