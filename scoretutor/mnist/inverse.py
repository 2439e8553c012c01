"""Inverse problems with the unconditional MNIST score model: denoising and super-resolution (notebook 08).

A measurement y = A x + σ_y ε of a digit x (ε ~ N(0, I)) and the prior p(x) that the score model learned
define the posterior p(x | y) ∝ p(x) p(y | x). Two linear operators A, both with orthogonal rows of
equal norm, A Aᵀ = c² I:

- denoising, A = I (c = 1): y = x + σ_y ε;
- super-resolution, A = :class:`AveragePooling` (f × f block means, 28 → 28/f pixels a side, c = 1/f).

The VE forward process x_σ = x + σ z links them to the model: A x_σ = A x + cσ (z's component), so a
measurement with noise σ_y **is** the measured component of x_{σ*} at the level σ* = σ_y / c. Below σ*
everything is exact; above it we must approximate (see :func:`posterior_sample`, which both use).

- :func:`tweedie_denoise`: E[x | y] = y + σ_y² s(y, σ_y), the posterior mean (MMSE) in one network call.
- :func:`denoise_posterior`: posterior samples for denoising (exact up to the score's error and the
  discretisation: the sampler starts from x_{σ_y} = y).
- :func:`super_resolve`: posterior samples from block means (the replacement method above σ*).
- :func:`posterior_sample`: the sampler behind both, for any :class:`AveragePooling` (``factor`` 1 = A = I).
- :func:`measure`, :func:`upsample`: the measurement and the naive reconstructions (nearest, bilinear).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scoretutor.checks import count, positive
from scoretutor.device import make_generator, model_device
from scoretutor.mnist.sampling import PC_CORRECTORS, PC_SNR, network, pc_steps

Tensor = torch.Tensor

SIZE = 28  # the model's images are (N, 1, 28, 28)
FACTORS = tuple(f for f in range(1, SIZE + 1) if SIZE % f == 0)  # 1, 2, 4, 7, 14, 28

__all__ = [
    "AveragePooling", "FACTORS", "denoise_posterior", "denoise_steps", "measure", "posterior_sample",
    "super_resolve", "tweedie_denoise", "upsample",
]


def _nonnegative(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return v


def _images(x, name: str, size: int | None = SIZE) -> Tensor:
    """An (N, 1, H, W) float tensor (H = W = ``size`` unless None)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, 1, H, W), got {type(x).__name__}")
    want = f"(N, 1, {size}, {size})" if size else "(N, 1, H, W)"
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[1] != 1 or (size and x.shape[2:] != (size, size)):
        raise ValueError(f"{name} must have shape {want} with N >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


@dataclass(frozen=True)
class AveragePooling:
    """A x = the means of the f × f blocks of x: (N, C, H, W) → (N, C, H/f, W/f), f = ``factor``.

    Each row of A holds f² entries 1/f², so the rows are orthogonal with A Aᵀ = c² I, c² = 1/f²
    (:attr:`gram`). Then Aᵀ y = nearest-neighbour upsampling of y divided by f² (:meth:`adjoint`), the
    pseudo-inverse A⁺ = Aᵀ (A Aᵀ)⁻¹ = f² Aᵀ is plain nearest-neighbour upsampling (:meth:`pinv`), and
    P = A⁺ A, which replaces each block by its mean, is the orthogonal projection onto the measured
    subspace (:meth:`project`; P² = P = Pᵀ). ``AveragePooling(1)`` is the identity (denoising).
    """

    factor: int

    def __post_init__(self):
        f = count(self.factor, "factor", 1)
        if f not in FACTORS:
            allowed = ", ".join(map(str, FACTORS))
            raise ValueError(f"factor must divide {SIZE} (one of {allowed}), got {self.factor!r}")
        object.__setattr__(self, "factor", f)

    @property
    def gram(self) -> float:
        """c² in A Aᵀ = c² I: 1/f²."""
        return 1.0 / self.factor**2

    def __call__(self, x: Tensor) -> Tensor:
        f = self.factor
        if x.ndim != 4 or x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"x must be (N, C, H, W) with H and W divisible by factor {f}, "
                             f"got {tuple(x.shape)}")
        return x if f == 1 else F.avg_pool2d(x, f)

    def pinv(self, y: Tensor) -> Tensor:
        """A⁺ y: each low-resolution pixel copied into its f × f block (nearest-neighbour upsampling)."""
        if y.ndim != 4:
            raise ValueError(f"y must be (N, C, h, w), got {tuple(y.shape)}")
        f = self.factor
        return y if f == 1 else y.repeat_interleave(f, -2).repeat_interleave(f, -1)

    def adjoint(self, y: Tensor) -> Tensor:
        """Aᵀ y = A⁺ y / f²."""
        return self.pinv(y) * self.gram

    def project(self, x: Tensor) -> Tensor:
        """P x = A⁺ A x: each block replaced by its mean."""
        return self.pinv(self(x))


def measure(x: Tensor, factor: int = 1, sigma_y: float = 0.0, seed: int = 0) -> Tensor:
    """y = A x + σ_y ε, ε ~ N(0, I) of y's shape, with A = :class:`AveragePooling` (``factor`` = 1: y = x +
    σ_y ε, the denoising problem). ε is drawn from a CPU generator seeded with ``seed``."""
    x = _images(x, "x", size=None)
    sigma_y = _nonnegative(sigma_y, "sigma_y")
    y = AveragePooling(factor)(x)
    if sigma_y:
        y = y + sigma_y * torch.randn(y.shape, generator=make_generator(seed, "cpu")).to(y)
    return y


def upsample(y: Tensor, mode: str = "nearest", size: int = SIZE) -> Tensor:
    """The naive reconstruction of a low-resolution y at ``size`` × ``size``: ``"nearest"`` (= A⁺ y,
    consistent: A x̂ = y) or ``"bilinear"`` (smoother, not consistent)."""
    y = _images(y, "y", size=None)
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
    if size % y.shape[-1] or y.shape[-1] != y.shape[-2]:
        raise ValueError(f"y must be square with a side that divides {size}, got {tuple(y.shape)}")
    if mode == "nearest":
        return AveragePooling(size // y.shape[-1]).pinv(y)
    return F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def tweedie_denoise(model: nn.Module, y: Tensor, sigma_y: float, clamp: bool = True,
                    precision: str | None = None) -> Tensor:
    """E[x | y] = y + σ_y² s_θ(y, σ_y) for y = x + σ_y ε: Tweedie's formula, the posterior mean (the
    minimum-mean-square-error estimate) in one network call, since p(y) is p_σ at σ = σ_y."""
    y = _images(y, "y")
    sigma_y = positive(sigma_y, "sigma_y")
    y = y.to(model_device(model))
    x = y + sigma_y**2 * network(model, precision)(y, sigma_y)
    return x.clamp(0, 1) if clamp else x


def _grid(sigma_start: float, sigma_min: float, n_steps: int) -> list[float]:
    """n_steps + 1 geometric levels from σ_start down to σ_min (the VE SDE's time grid)."""
    r = math.log(sigma_min / sigma_start) / n_steps
    return [sigma_start * math.exp(r * k) for k in range(n_steps)] + [sigma_min]


def denoise_steps(card: dict, sigma_y: float) -> int:
    """The predictor steps :func:`denoise_posterior` takes by default: the levels of the NCSNv2 grid of
    :func:`~scoretutor.mnist.sampling.pc_steps` (L levels, ratio γ) between σ_y and σ_min,
    ⌈log(σ_y/σ_min) / log γ⌉ (at least 1)."""
    L = pc_steps(card)
    log_gamma = math.log(card["sigma_max"] / card["sigma_min"]) / (L - 1)
    return max(1, math.ceil(math.log(positive(sigma_y, "sigma_y") / card["sigma_min"]) / log_gamma - 1e-9))


@torch.no_grad()
def posterior_sample(model: nn.Module, y: Tensor, op: AveragePooling, sigma_y: float, card: dict,
                     sigma_start: float | None = None, x_start: Tensor | None = None,
                     n_steps: int | None = None, n_corrector: int = PC_CORRECTORS, snr: float = PC_SNR,
                     seed: int = 0, clamp: bool = True, precision: str | None = None) -> Tensor:
    """Samples of p(x | y) for y = A x + σ_y ε by predictor–corrector sampling of the VE SDE
    (:func:`~scoretutor.mnist.sampling.sample_pc`'s steps), made conditional on y.

    With A Aᵀ = c² I and P = A⁺A (the projection onto the measured subspace), the forward process has
    A x_σ = A x + cσ ε', so y has the law of A x_{σ*} at **σ* = σ_y / c** (jointly with x). On the
    geometric grid σ_start = σ_0 > … > σ_n = σ_min:

    **Levels σ ≤ σ*: exact.** y = A x_σ + (an independent forward increment), so p_σ(y | x_σ) =
    N(y; A x_σ, (σ_y² − c²σ²) I) and the posterior score is s_θ(x, σ) + Aᵀ(y − A x)/(σ_y² − c²σ²). The
    correctors run Langevin on it (ε from the SNR rule, at most 2 r² (σ_y² − c²σ²)/c², the rule's value in
    the measured directions, whose variance is at most (σ_y² − c²σ²)/c²). The predictor
    x ← x + (σ² − σ'²) s_θ(x, σ) + √(σ² − σ'²) z keeps the *unconditional* score: the reverse process is
    Markov, x_{σ'} depends on y only through x_σ. Only the score and the step sizes are approximate.
    Denoising (A = I, σ* = σ_y) starts at σ_y from x = y itself and is entirely here.

    **Levels σ > σ*: the replacement method** (Song et al. 2021's imputation, ILVR;
    :func:`~scoretutor.mnist.sampling.inpaint` is the case of a pixel mask). Here p_σ(y | x_σ) would need
    p(x | x_σ): intractable. At each level the measured part is replaced, x ← x − P x + A⁺ y_σ with
    y_σ = y + √(c²σ² − σ_y²) ε (fresh ε), and the correctors move only the unmeasured part u = (I − P) x.
    y_σ has the exact law p(A x_σ | y); the approximation is that u is then steered by the unconditional
    score towards p_σ(u | A x_σ = y_σ) instead of p_σ(u | A x_σ, y). That is, the method **assumes
    p_σ(y | x_σ) = p_σ(y | A x_σ)**: the noisy image's unmeasured part tells nothing more about y. It also
    draws y_σ independently of u (wrong for σ_y > 0, when A x and (I − P) x are dependent given y). Exact
    when u and A x are independent under the prior (an isotropic Gaussian prior) and as σ → σ*. It fails
    where the unmeasured part is informative: the digit's layout is chosen at large σ from a very noisy
    y_σ, the small levels only refine it, and the final A x̂ = y is imposed on whatever was chosen (a
    consistent image of a possibly wrong digit). With a diagonal Gaussian prior whose pixel variances differ
    inside a block, the posterior mean puts a block's excess on its high-variance pixel; replacement spreads
    it (tests/test_inverse.py).

    If σ* < σ_min (e.g. σ_y = 0) the last predictor step is followed by x ← x + A⁺(y − A x), so A x̂ = y.
    ``x_start`` (default A⁺ y_{σ_start} + (I − P) σ_start z; y in the measured part if σ_start ≤ σ*) is the
    state at ``sigma_start`` (default the card's σ_max). ``n_steps`` predictor steps (default
    :func:`~scoretutor.mnist.sampling.pc_steps`), each after ``n_corrector`` Langevin steps (none at σ = σ*,
    where the measured part is pinned): n_steps · (1 + n_corrector) network calls per image. Noise comes
    from a CPU generator seeded with ``seed``.
    """
    y = _images(y, "y", size=SIZE // op.factor)
    sigma_y = _nonnegative(sigma_y, "sigma_y")
    sigma_min = positive(card["sigma_min"], "card['sigma_min']")
    sigma_start = positive(card["sigma_max"] if sigma_start is None else sigma_start, "sigma_start")
    if not sigma_start > sigma_min:
        raise ValueError(f"sigma_start must be > sigma_min = {sigma_min:g}, got {sigma_start!r}")
    n_steps = pc_steps(card) if n_steps is None else count(n_steps, "n_steps", 1)
    n_corrector = count(n_corrector, "n_corrector", 0)
    snr = positive(snr, "snr")
    device = model_device(model)
    net = network(model, precision)
    y = y.to(device, torch.float32)
    c2 = op.gram
    tol = 1e-6 * max(sigma_y**2, 1e-30)  # levels within rounding of σ* count as σ*
    g = make_generator(seed, "cpu")
    noise = lambda shape: torch.randn(shape, generator=g).to(device)
    shape = (y.shape[0], 1, SIZE, SIZE)
    d = SIZE * SIZE

    def replace(x: Tensor, sigma: float) -> Tensor:
        y_sigma = y + math.sqrt(max(c2 * sigma**2 - sigma_y**2, 0.0)) * noise(y.shape)
        return x - op.project(x) + op.pinv(y_sigma)

    if x_start is None:
        x = sigma_start * noise(shape)
        if c2 * sigma_start**2 > sigma_y**2 + tol:
            x = replace(x, sigma_start)
        else:  # σ_start <= σ*: the measured part is y itself
            x = x - op.project(x) + op.pinv(y)
    else:
        x = _images(x_start, "x_start").to(device, torch.float32)
    sigmas = _grid(sigma_start, sigma_min, n_steps)
    replaced = False
    for k in range(n_steps):
        sigma, nxt = sigmas[k], sigmas[k + 1]
        gap = sigma_y**2 - c2 * sigma**2  # the variance of y − A x_σ given x_σ (if >= 0)
        replaced = gap < -tol
        if replaced:
            x = replace(x, sigma)
        for _ in range(n_corrector if replaced or gap > tol else 0):
            s = net(x, sigma)
            if not replaced:
                s = s + op.adjoint(y - op(x)) / gap
            s_norm = s.reshape(s.shape[0], -1).norm(dim=-1).mean().item()
            eps = 2 * (snr * math.sqrt(d) / max(s_norm, 1e-30)) ** 2
            if not replaced:  # the likelihood's direction has variance <= gap/c²: the SNR rule's ε there
                eps = min(eps, 2 * snr**2 * gap / c2)
            step = eps * s + math.sqrt(2 * eps) * noise(shape)
            x = x + (step - op.project(step) if replaced else step)
        delta = sigma**2 - nxt**2
        x = x + delta * net(x, sigma)
        if k < n_steps - 1:  # the last step adds no noise (the denoising step)
            x = x + math.sqrt(delta) * noise(shape)
        if not torch.isfinite(x).all():
            raise FloatingPointError(f"posterior_sample: iterates became non-finite at step {k + 1} of "
                                     f"{n_steps} (σ = {sigma:.3g}); try more steps or a smaller snr "
                                     f"(now {snr:g})")
    if replaced:
        x = x + op.pinv(y - op(x))
    return x.clamp(0, 1) if clamp else x


def denoise_posterior(model: nn.Module, y: Tensor, sigma_y: float, card: dict, n_steps: int | None = None,
                      n_corrector: int = PC_CORRECTORS, snr: float = PC_SNR, seed: int = 0,
                      clamp: bool = True, precision: str | None = None) -> Tensor:
    """Samples of p(x | y) for y = x + σ_y ε: exact posterior sampling up to the score's error.

    Under the VE model y has the law of x_{σ_y} = x + σ_y z, the forward process at σ_y, so running the
    reverse SDE from x = y at σ = σ_y down to σ_min samples p(x | y) (:func:`posterior_sample` with A = I:
    predictor with the unconditional score, correctors with the conditional score s_θ(x, σ) + (y − x)/(σ_y²
    − σ²)). ``n_steps`` defaults to :func:`denoise_steps` (the NCSNv2 grid's levels below σ_y); σ_y must
    lie in the card's (σ_min, σ_max]. For k samples per image repeat y (e.g. ``y.repeat_interleave(k, 0)``).
    """
    y = _images(y, "y")
    sigma_y = positive(sigma_y, "sigma_y")
    if not card["sigma_min"] < sigma_y <= card["sigma_max"]:
        raise ValueError(f"sigma_y must lie in the model's range ({card['sigma_min']:g}, "
                         f"{card['sigma_max']:g}], got {sigma_y!r}")
    n_steps = denoise_steps(card, sigma_y) if n_steps is None else n_steps
    return posterior_sample(model, y, AveragePooling(1), sigma_y, card, sigma_start=sigma_y, x_start=y,
                            n_steps=n_steps, n_corrector=n_corrector, snr=snr, seed=seed, clamp=clamp,
                            precision=precision)


def super_resolve(model: nn.Module, y: Tensor, card: dict, sigma_y: float = 0.0, n_steps: int | None = None,
                  n_corrector: int = PC_CORRECTORS, snr: float = PC_SNR, seed: int = 0, clamp: bool = True,
                  precision: str | None = None) -> Tensor:
    """Samples of p(x | y) for y = A x + σ_y ε, y of shape (N, 1, 28/f, 28/f) (A: f × f block means, f
    read off y's side: 7 → f = 4, 14 → f = 2): :func:`posterior_sample` from σ_max, i.e. the replacement
    method above σ* = f σ_y (an approximation, see there) and exact conditional steps below.

    ``sigma_y`` is the measurement's noise (0: noiseless, then A x̂ = y exactly before clamping). Passing
    0 for a noisy y (ignoring its noise) copies the noise into the block means of every sample.
    """
    y = _images(y, "y", size=None)
    side = y.shape[-1]
    if y.shape[-2] != side or SIZE % side or side == SIZE:
        raise ValueError(f"y must be (N, 1, h, h) with h a proper divisor of {SIZE} (1, 2, 4, 7 or 14), "
                         f"got {tuple(y.shape)}")
    return posterior_sample(model, y, AveragePooling(SIZE // side), sigma_y, card, n_steps=n_steps,
                            n_corrector=n_corrector, snr=snr, seed=seed, clamp=clamp, precision=precision)
