"""Analytic densities in torch: Gaussian mixtures with closed-form score and perturbation.

A mixture p(x) = Σ_k w_k N(x; μ_k, Σ_k) is the lecture's workhorse: its log-density, its score
∇ₓ log p(x) = Σ_k r_k(x) (−Σ_k⁻¹(x − μ_k)) with responsibilities r_k(x) = w_k N_k(x) / p(x),
and its noise-perturbed version p_σ = p ∗ N(0, σ²I) = Σ_k w_k N(μ_k, Σ_k + σ²I) are all exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from scoretutor.checks import count, positive
from scoretutor.device import generator_device

Tensor = torch.Tensor


def _as_tensor(value, name: str, dtype=None, device=None) -> Tensor:
    t = torch.as_tensor(value, dtype=dtype, device=device)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t


class GaussianMixture:
    """p(x) = Σ_k w_k N(x; μ_k, Σ_k), batched over x of shape (..., d).

    Args:
        means: (K, d) component means.
        covs_or_stds: the spread of each component, in one of four forms:
            a positive scalar (same isotropic std for all), (K,) isotropic stds,
            (K, d) per-axis stds (diagonal covariance), or (K, d, d) full covariances.
        weights: (K,) non-negative mixture weights summing to 1 (uniform if None).

    The energy is f(x) = −log Σ_k w_k |Σ_k|^{-1/2} exp(−½ (x−μ_k)ᵀ Σ_k⁻¹ (x−μ_k)), so that
    p(x) = e^{−f(x)} / Z with Z = (2π)^{d/2}.
    """

    def __init__(self, means, covs_or_stds, weights=None):
        means = _as_tensor(means, "means")
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, d) with K, d >= 1, got {tuple(means.shape)}")
        K, d = means.shape
        dtype, device = means.dtype, means.device
        spread = _as_tensor(covs_or_stds, "covs_or_stds", dtype=dtype, device=device)
        if spread.ndim == 0 or spread.shape == (K,) or spread.shape == (K, d):
            if (spread <= 0).any():
                raise ValueError(f"stds must be positive, got {spread.tolist()}")
            stds = spread.expand(K) if spread.ndim == 0 else spread
            var = stds**2
            if var.ndim == 1:
                var = var[:, None].expand(K, d)
            covs = torch.diag_embed(var)
        elif spread.shape == (K, d, d):
            covs = spread
            if not torch.allclose(covs, covs.transpose(-1, -2), atol=1e-6):
                raise ValueError("covariances must be symmetric")
            eig = torch.linalg.eigvalsh(covs)
            if (eig <= 0).any():
                raise ValueError(
                    "covariances must be positive definite; smallest eigenvalues "
                    f"{eig.min(-1).values.tolist()}"
                )
        else:
            raise ValueError(
                f"covs_or_stds must be a scalar or have shape ({K},), ({K}, {d}) or ({K}, {d}, {d}) "
                f"for {K} components in {d}-D, got {tuple(spread.shape)}"
            )
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=dtype, device=device)
        weights = _as_tensor(weights, "weights", dtype=dtype, device=device)
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape ({K},), got {tuple(weights.shape)}")
        if (weights < 0).any():
            raise ValueError(f"weights must be non-negative, got {weights.tolist()}")
        if abs(weights.sum().item() - 1.0) > 1e-5:
            raise ValueError(
                f"weights must sum to 1, got sum {weights.sum().item():.6g} ({weights.tolist()})"
            )
        self.means = means
        self.covs = covs
        self.weights = weights
        self._chol = torch.linalg.cholesky(covs)
        eye = torch.eye(d, dtype=dtype, device=device).expand(K, d, d)
        self._chol_inv = torch.linalg.solve_triangular(self._chol, eye, upper=False)  # L_k⁻¹
        self._precision = self._chol_inv.transpose(-1, -2) @ self._chol_inv  # Σ_k⁻¹ = L⁻ᵀL⁻¹
        half_logdet = torch.log(torch.diagonal(self._chol, dim1=-2, dim2=-1)).sum(-1)  # ½ log|Σ_k|
        self._log_coef = torch.log(weights) - half_logdet  # log(w_k |Σ_k|^{-1/2}), fixed per mixture

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def to(self, device=None, dtype=None) -> GaussianMixture:
        """A copy on another device and/or dtype."""
        return GaussianMixture(
            self.means.to(device=device, dtype=dtype),
            self.covs.to(device=device, dtype=dtype),
            self.weights.to(device=device, dtype=dtype),
        )

    def __repr__(self) -> str:
        w = [round(v, 4) for v in self.weights.tolist()]
        w_text = str(w) if len(w) <= 6 else f"[{w[0]}, {w[1]}, ..., {w[-1]}]"
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, weights={w_text})"

    def _check_x(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x, dtype=self.means.dtype, device=self.means.device)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {tuple(x.shape)}")
        return x

    def _like(self, x: Tensor, *tensors: Tensor) -> list[Tensor]:
        return [t.to(x.device, x.dtype) for t in tensors]

    # -- the maths ---------------------------------------------------------------------------
    def _component_terms(self, x: Tensor):
        """Per-component log(w_k N_k(x)) without the (2π)^{d/2}, and the whitened offsets."""
        means, chol_inv, log_coef = self._like(x, self.means, self._chol_inv, self._log_coef)
        diff = x[..., None, :] - means  # (..., K, d)
        # y = L_k⁻¹ (x − μ_k), so ‖y‖² is the Mahalanobis term (x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k).
        # (a broadcast matmul, not einsum: einsum's batched path is ~10-250× slower for these small
        # matrices on a busy multi-threaded CPU, which made every Langevin step of the explorers slow)
        y = (chol_inv @ diff[..., None]).squeeze(-1)
        log_terms = log_coef - 0.5 * (y**2).sum(-1)
        return log_terms, diff

    def energy(self, x: Tensor) -> Tensor:
        """f(x) = −log of the unnormalised density, with p = e^{−f}/Z and Z = (2π)^{d/2}."""
        log_terms, _ = self._component_terms(self._check_x(x))
        return -torch.logsumexp(log_terms, dim=-1)

    def log_normaliser(self) -> float:
        """log Z = (d/2) log 2π for the energy above."""
        return 0.5 * self.dim * math.log(2 * math.pi)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = log Σ_k w_k N(x; μ_k, Σ_k), shape x.shape[:-1]."""
        return -self.energy(x) - self.log_normaliser()

    def prob(self, x: Tensor) -> Tensor:
        return self.log_prob(x).exp()

    def responsibilities(self, x: Tensor) -> Tensor:
        """r_k(x) = w_k N_k(x) / p(x), shape (..., K)."""
        log_terms, _ = self._component_terms(self._check_x(x))
        return torch.softmax(log_terms, dim=-1)

    def score(self, x: Tensor) -> Tensor:
        """∇ₓ log p(x) = Σ_k r_k(x) · (−Σ_k⁻¹ (x − μ_k)), closed form (no autograd)."""
        x = self._check_x(x)
        log_terms, diff = self._component_terms(x)
        r = torch.softmax(log_terms, dim=-1)  # (..., K)
        (precision,) = self._like(x, self._precision)
        prec_diff = (precision @ diff[..., None]).squeeze(-1)  # Σ_k⁻¹ (x − μ_k)
        return -(r[..., None] * prec_diff).sum(-2)

    def perturb(self, sigma: float) -> GaussianMixture:
        """p_σ = p ∗ N(0, σ²I) = Σ_k w_k N(μ_k, Σ_k + σ²I), the density of x + σz."""
        sigma = positive(sigma, "sigma")
        eye = torch.eye(self.dim, dtype=self.covs.dtype, device=self.covs.device)
        return GaussianMixture(self.means, self.covs + sigma**2 * eye, self.weights)

    def noise_conditional_score(self) -> Callable[[Tensor, float], Tensor]:
        """The exact s(x, σ) = ∇ₓ log p_σ(x) as a function of (x, σ), caching p_σ per σ.

        The exact counterpart of a trained noise-conditional model, for ``annealed_langevin``.
        """
        cache: dict[float, GaussianMixture] = {}

        def score(x: Tensor, sigma: float) -> Tensor:
            key = float(sigma)
            if key not in cache:
                cache[key] = self.perturb(key)
            return cache[key].score(x)

        return score

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n i.i.d. samples, shape (n, d): pick k ~ Categorical(w), then μ_k + L_k z."""
        n = count(n, "n")
        device = generator_device(generator, self.means.device)  # draw there, return on the mixture's
        k = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.long, device=device)
        z = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype, device=device)
        k, z = k.to(self.means.device), z.to(self.means.device)
        return self.means[k] + (self._chol[k] @ z[..., None]).squeeze(-1)

    def component_of(self, x: Tensor) -> Tensor:
        """Index of the most responsible component for each point (mode assignment)."""
        return self.responsibilities(x).argmax(-1)


def ncsn_mixture(dtype: torch.dtype | None = None, device=None) -> GaussianMixture:
    """Song & Ermon 2019 §3.2.2: p = 1/5·N((−5,−5), I) + 4/5·N((5,5), I)."""
    means = torch.tensor([[-5.0, -5.0], [5.0, 5.0]], dtype=dtype, device=device)
    return GaussianMixture(means, 1.0, torch.tensor([0.2, 0.8], dtype=means.dtype, device=device))


def eight_gaussians(radius: float = 4.0, std: float = 0.4, dtype=None, device=None) -> GaussianMixture:
    """Eight equally weighted Gaussians on a circle of the given radius."""
    if radius <= 0 or std <= 0:
        raise ValueError(f"radius and std must be positive, got radius={radius}, std={std}")
    angles = torch.arange(8, dtype=dtype or torch.get_default_dtype(), device=device) * (2 * math.pi / 8)
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=-1)
    return GaussianMixture(means, std)


def rings(radii=(2.0, 5.0), std: float = 0.25, per_unit_length: float = 2.0, dtype=None, device=None
          ) -> GaussianMixture:
    """Concentric rings, each a chain of small Gaussians along a circle (so the score is exact).

    Components are spaced about 1/``per_unit_length`` apart; each ring's weight is proportional to
    its circumference, so the density is uniform along every ring.
    """
    radii = [float(r) for r in radii]
    if not radii or min(radii) <= 0 or std <= 0 or per_unit_length <= 0:
        raise ValueError(
            f"radii, std and per_unit_length must be positive, got radii={radii}, std={std}, "
            f"per_unit_length={per_unit_length}"
        )
    dtype = dtype or torch.get_default_dtype()
    means = []
    for r in radii:
        m = max(8, int(round(2 * math.pi * r * per_unit_length)))
        a = torch.arange(m, dtype=dtype) * (2 * math.pi / m)
        means.append(r * torch.stack([a.cos(), a.sin()], dim=-1))
    means_t = torch.cat(means).to(device)
    n = means_t.shape[0]
    return GaussianMixture(means_t, std, torch.full((n,), 1.0 / n, dtype=dtype, device=device))


def gaussian_score(mean: Tensor | float, var: Tensor | float) -> Callable[[Tensor], Tensor]:
    """The score of N(μ, v I): s(x) = −(x − μ)/v (a linear score model with parameters μ, v)."""
    if isinstance(var, int | float):
        positive(var, "var")
    return lambda x: -(x - torch.as_tensor(mean, dtype=x.dtype, device=x.device)) / torch.as_tensor(
        var, dtype=x.dtype, device=x.device)


class UniformCircle:
    """Data on a 1-D manifold in 2-D: the uniform distribution on the circle ‖x‖ = R.

    It has no density in 2-D, hence no score: ∇ₓ log p is undefined on the circle and off it
    (Song & Ermon 2019, §3.1, the manifold hypothesis). Its perturbation p_σ = p ∗ N(0, σ²I)
    (:meth:`perturb`) has a smooth density and score everywhere.
    """

    dim = 2

    def __init__(self, radius: float = 1.0):
        self.radius = positive(radius, "radius")

    def __repr__(self) -> str:
        return f"UniformCircle(radius={self.radius:g})"

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
               ) -> Tensor:
        """n points R·(cos θ, sin θ) with θ ~ U[0, 2π), shape (n, 2)."""
        n = count(n, "n")
        device = generator_device(generator, None)
        theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=dtype, device=device)
        return self.radius * torch.stack([theta.cos(), theta.sin()], dim=-1)

    def project(self, x: Tensor) -> Tensor:
        """The nearest point of the circle, R·x/‖x‖ (undefined at x = 0)."""
        return self.radius * x / x.norm(dim=-1, keepdim=True)

    def perturb(self, sigma: float) -> NoisyCircle:
        """p_σ = p ∗ N(0, σ²I), the density of x + σz for x on the circle."""
        return NoisyCircle(self.radius, sigma)

    def noise_conditional_score(self) -> Callable[[Tensor, float], Tensor]:
        """The exact s(x, σ) = ∇ₓ log p_σ(x), for ``annealed_langevin``."""
        return lambda x, sigma: NoisyCircle(self.radius, float(sigma)).score(x)


class NoisyCircle:
    """p_σ for data uniform on the circle ‖x‖ = R: with r = ‖x‖ and κ = rR/σ²,

    p_σ(x) = (2π)⁻¹∫ N(x; R(cos θ, sin θ), σ²I) dθ = e^{−(r² + R²)/(2σ²)} I₀(κ) / (2πσ²),
    ∇ₓ log p_σ(x) = (R·I₁(κ)/I₀(κ) − r)·x̂/σ²   (x̂ = x/r; 0 at x = 0).

    As σ → 0, I₁/I₀(κ) = 1 − 1/(2κ) + O(κ⁻²), so −σ²∇log p_σ(x) = x − proj(x) + O(σ²): the score
    points back to the circle with magnitude distance/σ², infinite in the limit.
    """

    dim = 2

    def __init__(self, radius: float, sigma: float):
        self.radius, self.sigma = positive(radius, "radius"), positive(sigma, "sigma")

    def __repr__(self) -> str:
        return f"NoisyCircle(radius={self.radius:g}, sigma={self.sigma:g})"

    def _kappa(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim < 1 or x.shape[-1] != 2:
            raise ValueError(f"x must have shape (..., 2), got {tuple(x.shape)}")
        r = x.norm(dim=-1)
        return r, r * self.radius / self.sigma**2

    def log_prob(self, x: Tensor) -> Tensor:
        """log p_σ(x), with the exponentially scaled Bessel function i0e(κ) = e^{−κ}I₀(κ) (no overflow)."""
        r, kappa = self._kappa(x)
        R, s2 = self.radius, self.sigma**2
        return -(r - R) ** 2 / (2 * s2) + torch.log(torch.special.i0e(kappa)) - math.log(2 * math.pi * s2)

    def prob(self, x: Tensor) -> Tensor:
        return self.log_prob(x).exp()

    def score(self, x: Tensor) -> Tensor:
        """∇ₓ log p_σ(x) = (R²/σ²·A(κ)/κ − 1)·x/σ² with A = I₁/I₀ (A(κ)/κ → ½ as κ → 0, no 0/0)."""
        _, kappa = self._kappa(x)
        tiny = kappa < 1e-6
        safe = torch.where(tiny, torch.ones_like(kappa), kappa)
        a_over_k = torch.where(tiny, torch.full_like(kappa, 0.5),
                               torch.special.i1e(safe) / torch.special.i0e(safe) / safe)
        s2 = self.sigma**2
        return (self.radius**2 / s2 * a_over_k - 1)[..., None] * x / s2

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
               ) -> Tensor:
        """n samples x + σz, x uniform on the circle, shape (n, 2)."""
        x = UniformCircle(self.radius).sample(n, generator, dtype)
        return x + self.sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
