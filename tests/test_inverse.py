"""Inverse problems on MNIST (scoretutor.mnist.inverse): the pooling operator, the exact Gaussian-prior
posteriors that the samplers must reproduce (denoising and isotropic super-resolution), the Gaussian prior
where the replacement method is provably biased, measurement consistency, seeding and the errors.

The Gaussian checks compare the samplers' Monte-Carlo moments with two independent closed forms: the
exact posterior, and the predictor-only sampler's own law (a linear-Gaussian recursion written out below,
which also gives its discretisation error). Tolerances are 5 Monte-Carlo standard errors."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch

from scoretutor.mnist import PC_SNR, inverse
from scoretutor.mnist.inverse import AveragePooling
from scoretutor.mnist.unet import ScoreUNet

CARD = {"sigma_min": 0.01, "sigma_max": 15.0}
F64 = torch.float64


class DiagonalGaussian(torch.nn.Module):
    """The exact perturbed score of x ~ N(μ, diag(τ²)) (τ² one value or a (28, 28) map):
    s(x, σ) = −(x − μ)/(τ² + σ²)."""

    def __init__(self, mu: float, tau2):
        super().__init__()
        self.mu = mu
        self.register_buffer("tau2", torch.as_tensor(tau2, dtype=torch.float32).expand(28, 28).clone())
        self.unused = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)
        return -(x - self.mu) / (self.tau2 + sigma**2)


def geometric(s0: float, s1: float, n: int) -> list[float]:
    return [s0 * (s1 / s0) ** (k / n) for k in range(n)] + [s1]


def block_law(tau2, mu, y, f, sigma_y, sigmas, start=None):
    """(mean, covariance) of one f × f block after ``posterior_sample(..., n_corrector=0)`` under the prior
    N(μ, diag(τ²)) with the constant measurement y: the algorithm's linear-Gaussian recursion in float64.
    Replacement x ← (I − P)x + 1·y_σ (y_σ of variance c²σ² − σ_y²) at levels with c²σ² > σ_y², then the
    predictor x ← μ + (I − Δ D)(x − μ) + √Δ z, D = diag(1/(τ² + σ²)); ``start``: x = start at σ_0
    (denoising)."""
    d = f * f
    eye, ones = torch.eye(d, dtype=F64), torch.ones(d, dtype=F64)
    Q, J, c2 = eye - 1 / d, torch.ones(d, d, dtype=F64), 1 / d
    tau2 = torch.as_tensor(tau2, dtype=F64).expand(d)
    if start is None:  # x = σ_0 z, then the measured part set to y (+ noise above σ*)
        m = y * ones
        S = Q @ (sigmas[0] ** 2 * eye) @ Q + max(c2 * sigmas[0] ** 2 - sigma_y**2, 0) * J
    else:
        m, S = start * ones, torch.zeros(d, d, dtype=F64)
    n, replaced = len(sigmas) - 1, False
    for k in range(n):
        s, s_next = sigmas[k], sigmas[k + 1]
        replaced = c2 * s**2 > sigma_y**2 * (1 + 1e-6)
        if replaced:
            m, S = Q @ m + y * ones, Q @ S @ Q + (c2 * s**2 - sigma_y**2) * J
        delta = s**2 - s_next**2
        M = eye - delta * torch.diag(1 / (tau2 + s**2))
        m, S = mu + M @ (m - mu), M @ S @ M.T + (delta * eye if k < n - 1 else 0)
    if replaced:
        m, S = Q @ m + y * ones, Q @ S @ Q
    return m, S


def exact_posterior(tau2, mu, y, f, sigma_y):
    """(mean, covariance) of one f × f block of x ~ N(μ, diag(τ²)) given its mean + σ_y ε = y."""
    d = f * f
    w = torch.full((d,), 1 / d, dtype=F64)
    D = torch.diag(torch.as_tensor(tau2, dtype=F64).expand(d))
    Dw = D @ w
    v = w @ Dw + sigma_y**2
    return mu + Dw * (y - mu) / v, D - torch.outer(Dw, Dw) / v


def blocks(x: torch.Tensor, f: int) -> torch.Tensor:
    """(N, 1, 28, 28) → (N · (28/f)², f²): every f × f block as a row, pixels in row-major order."""
    n = x.shape[0]
    return x.reshape(n, 28 // f, f, 28 // f, f).permute(0, 1, 3, 2, 4).reshape(-1, f * f).double()


def assert_moments(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, k: float = 5.0):
    """Per-coordinate sample mean and variance of iid rows within k standard errors of (mean, diag cov)."""
    m = samples.shape[0]
    var = cov.diagonal()
    se_mean, se_var = (var / m).sqrt(), var * math.sqrt(2 / (m - 1))
    assert ((samples.mean(0) - mean).abs() < k * se_mean).all(), (samples.mean(0), mean, se_mean)
    assert ((samples.var(0) - var).abs() < k * se_var).all(), (samples.var(0), var, se_var)


def tiny(seed: int = 0) -> ScoreUNet:
    torch.manual_seed(seed)
    model = ScoreUNet(channels=(4, 8, 8), blocks=(0, 1, 1), embed_dim=8, groups=2)
    for p in model.parameters():  # the zero-initialised output layers would make every output 0
        p.data.add_(0.05 * torch.randn_like(p))
    return model


def digits(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# -- the operator ---------------------------------------------------------------------------------
@pytest.mark.parametrize("f", [1, 2, 4, 7, 14])
def test_average_pooling_its_adjoint_pseudo_inverse_and_projection(f):
    A, x = AveragePooling(f), digits(3).double()
    y = torch.randn(3, 1, 28 // f, 28 // f, dtype=F64, generator=torch.Generator().manual_seed(1))
    means = x.reshape(3, 1, 28 // f, f, 28 // f, f).mean((3, 5))  # block means, computed independently
    torch.testing.assert_close(A(x), means)
    torch.testing.assert_close((A(x) * y).sum(), (x * A.adjoint(y)).sum())  # ⟨Ax, y⟩ = ⟨x, Aᵀy⟩
    torch.testing.assert_close(A(A.adjoint(y)), y / f**2)  # A Aᵀ = I/f²
    assert A.gram == 1 / f**2
    torch.testing.assert_close(A(A.pinv(y)), y)  # A A⁺ = I
    P = A.project
    torch.testing.assert_close(P(P(x)), P(x))  # idempotent
    z = digits(3, seed=2).double()
    torch.testing.assert_close((P(x) * z).sum(), (x * P(z)).sum())  # symmetric: an orthogonal projection
    torch.testing.assert_close(A(x - P(x)), torch.zeros_like(y), atol=1e-12, rtol=0)  # (I − P)x: unmeasured


def test_pooling_measure_and_upsample_refuse_bad_input():
    for bad in (3, 5, 0, -4, 2.5, True, 56):
        with pytest.raises(ValueError, match="factor"):
            AveragePooling(bad)
    with pytest.raises(ValueError, match="divisible by factor 4"):
        AveragePooling(4)(torch.zeros(1, 1, 30, 30))
    with pytest.raises(ValueError, match="sigma_y must be a non-negative"):
        inverse.measure(digits(1), 4, sigma_y=-0.1)
    with pytest.raises(ValueError, match="factor must divide 28"):
        inverse.measure(digits(1), 3)
    with pytest.raises(ValueError, match="mode"):
        inverse.upsample(torch.zeros(1, 1, 7, 7), mode="cubic")
    with pytest.raises(ValueError, match="divides 28"):
        inverse.upsample(torch.zeros(1, 1, 9, 9))


def test_measure_and_the_naive_reconstructions():
    x = digits(4)
    y = inverse.measure(x, 4, sigma_y=0.2, seed=3)
    assert y.shape == (4, 1, 7, 7)
    torch.testing.assert_close(inverse.measure(x, 4, sigma_y=0.2, seed=3), y, rtol=0, atol=0)
    assert not torch.equal(inverse.measure(x, 4, sigma_y=0.2, seed=4), y)
    torch.testing.assert_close(inverse.measure(x, 4), AveragePooling(4)(x))
    noise = inverse.measure(torch.zeros(400, 1, 28, 28), 1, sigma_y=0.3, seed=0)  # 313,600 draws
    assert abs(noise.std().item() - 0.3) < 5 * 0.3 / math.sqrt(2 * noise.numel())
    y = AveragePooling(4)(x)
    torch.testing.assert_close(AveragePooling(4)(inverse.upsample(y)), y)  # nearest is consistent
    torch.testing.assert_close(inverse.upsample(torch.full((1, 1, 7, 7), 0.3), "bilinear"),
                               torch.full((1, 1, 28, 28), 0.3))


# -- denoising: exact against a Gaussian prior ---------------------------------------------------------
def test_tweedie_is_the_exact_posterior_mean_for_a_gaussian_prior():
    mu, tau2, sigma_y = 0.5, 0.8, 0.6
    y = digits(2) * 3 - 1
    got = inverse.tweedie_denoise(DiagonalGaussian(mu, tau2), y, sigma_y, clamp=False)
    torch.testing.assert_close(got, mu + tau2 / (tau2 + sigma_y**2) * (y - mu))


@pytest.mark.parametrize("n_corrector", [0, 2])
def test_denoising_samples_the_exact_gaussian_posterior(n_corrector):
    # Prior N(0.5, 1) per pixel, y = 1.2 everywhere, σ_y = 0.5: the posterior is N(1.06, 0.2) for every pixel.
    mu, tau2, y0, sigma_y, n_steps = 0.5, 1.0, 1.2, 0.5, 200
    mean, cov = exact_posterior(tau2, mu, y0, 1, sigma_y)
    law_mean, law_cov = block_law(tau2, mu, y0, 1, sigma_y, geometric(sigma_y, 0.01, n_steps), start=y0)
    # the predictor's discretisation error at 200 steps, from its exact law: far below the MC resolution
    assert abs(law_mean - mean).item() < 1e-3 and abs(law_cov / cov - 1).item() < 0.005
    y = torch.full((20, 1, 28, 28), y0)
    x = inverse.denoise_posterior(DiagonalGaussian(mu, tau2), y, sigma_y, CARD, n_steps=n_steps,
                                  n_corrector=n_corrector, seed=0, clamp=False)
    pixels = x.reshape(-1, 1).double()  # 15,680 iid draws
    if n_corrector == 0:
        assert_moments(pixels, law_mean, law_cov)
    else:
        # Langevin with ε = 2 (r √D/‖s‖)² ≈ 2 r² v on the conditional N(m, v) keeps at most the variance
        # v/(1 − r²) (the ULA bias; sample_pc's test): the variance must lie in [v, v/(1 − r²)] ± 5 SE.
        # Had the corrector used the unconditional score, it would drift towards the prior's 1 + σ².
        se = cov.item() * math.sqrt(2 / pixels.shape[0])
        assert abs(pixels.mean().item() - mean.item()) < 5 * math.sqrt(cov.item() / pixels.shape[0])
        assert cov.item() - 5 * se < pixels.var().item() < cov.item() / (1 - PC_SNR**2) + 5 * se


# -- super-resolution: exact for an isotropic prior, biased otherwise -----------------------------------
def test_replacement_is_exact_for_an_isotropic_gaussian_prior():
    # Prior N(0.5, 0.25 I): the measured and unmeasured parts are independent, so replacing the block
    # means loses nothing; every 2 × 2 block given its mean 0.7 is N(0.7, 0.25 (I − 11ᵀ/4)).
    mu, tau2, y0, f, n_steps = 0.5, 0.25, 0.7, 2, 300
    mean, cov = exact_posterior(tau2, mu, y0, f, 0.0)
    law_mean, law_cov = block_law(tau2, mu, y0, f, 0.0, geometric(15.0, 0.01, n_steps))
    assert (law_mean - mean).abs().max() < 1e-6  # the sampler's own law: exact up to 3 % from the steps
    assert (law_cov.diagonal() / cov.diagonal() - 1).abs().max() < 0.03
    y = torch.full((20, 1, 14, 14), y0)
    x = inverse.super_resolve(DiagonalGaussian(mu, tau2), y, CARD, n_steps=n_steps, n_corrector=0, seed=0,
                              clamp=False)
    torch.testing.assert_close(AveragePooling(f)(x), y)  # consistent: A x̂ = y
    assert_moments(blocks(x, f), law_mean, law_cov)  # 3,920 blocks


class ZeroScore(torch.nn.Module):
    """s = 0: the predictor adds only its noise, so what the measured part holds is what was put there."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, sigma):
        return torch.zeros_like(x)


def test_replacement_draws_the_measured_part_at_its_exact_noise_level():
    # f = 2 (c² = 1/4), σ_y = 0.1, so σ* = 0.2; 3 steps on 15 > σ_1 ≈ 1.31 > σ_2 ≈ 0.11 > 0.01: the last
    # replacement is at σ_1 (y_σ = y + √(c²σ_1² − σ_y²) ε), then one noisy predictor step (c²(σ_1² − σ_2²) in
    # the measured part) and an exact step with no final replacement: A x − y ~ N(0, c²(2σ_1² − σ_2²) − σ_y²).
    f, sigma_y = 2, 0.1
    s = geometric(15.0, 0.01, 3)
    var = (2 * s[1] ** 2 - s[2] ** 2) / f**2 - sigma_y**2
    y = torch.full((50, 1, 14, 14), 0.5)
    x = inverse.super_resolve(ZeroScore(), y, CARD, sigma_y=sigma_y, n_steps=3, n_corrector=0, seed=0,
                              clamp=False)
    r = (AveragePooling(f)(x) - y).reshape(-1, 1).double()  # 9,800 draws
    assert_moments(r, torch.zeros(1, dtype=F64), torch.full((1, 1), var, dtype=F64))


@pytest.mark.parametrize("n_corrector", [0, 2])
def test_noisy_super_resolution_is_exact_for_an_isotropic_prior(n_corrector):
    # y = block mean + 0.1 ε: replacement above σ* = f σ_y = 0.2, conditional steps below. The block mean
    # given y is N(μ + k (y − μ), k σ_y²), k = (τ²/f²)/(τ²/f² + σ_y²).
    mu, tau2, y0, f, sigma_y = 0.5, 0.25, 0.7, 2, 0.1
    mean, cov = exact_posterior(tau2, mu, y0, f, sigma_y)
    law_mean, law_cov = block_law(tau2, mu, y0, f, sigma_y, geometric(15.0, 0.01, 300))
    w = torch.full((f * f,), 1 / f**2, dtype=F64)
    m_mean, m_var, law_var = (w @ mean).item(), (w @ cov @ w).item(), (w @ law_cov @ w).item()
    assert abs((w @ law_mean).item() - m_mean) < 1e-3 and abs(law_var / m_var - 1) < 0.05  # 300 steps
    y = torch.full((40, 1, 14, 14), y0)
    x = inverse.super_resolve(DiagonalGaussian(mu, tau2), y, CARD, sigma_y=sigma_y, n_steps=300,
                              n_corrector=n_corrector, seed=1, clamp=False)
    m = AveragePooling(f)(x).reshape(-1).double()  # 7,840 block means
    assert not torch.allclose(m, torch.full_like(m, y0))  # y's noise is not copied in
    se = max(m_var, law_var) * math.sqrt(2 / m.numel())
    assert abs(m.mean().item() - m_mean) < 5 * math.sqrt(max(m_var, law_var) / m.numel())
    if n_corrector == 0:  # the sampler's own law
        assert abs(m.var().item() - law_var) < 5 * se
    else:  # between the exact and the sampler's law, and at most the corrector's ULA bias 1/(1 − r²) above
        low, high = min(m_var, law_var), max(m_var, law_var) / (1 - PC_SNR**2)
        assert low - 5 * se < m.var().item() < high + 5 * se


def test_replacement_is_biased_when_the_unmeasured_part_is_informative():
    # Prior N(0.5, diag(τ²)) with one loud pixel per 2 × 2 block (τ² = 0.5) and three quiet ones (0.01):
    # given the block mean 0.7 the loud pixel should carry almost all the excess (mean 1.25). Replacement
    # steers the unmeasured part by the noised mean y_σ, which is uninformative when it matters, and ends
    # up spreading the excess: the sampler's exact law (the recursion) and its samples both say ≈ 1.0.
    mu, y0, f, n_steps = 0.5, 0.7, 2, 200
    tau2_block = torch.tensor([[0.5, 0.01], [0.01, 0.01]])
    mean, cov = exact_posterior(tau2_block.reshape(-1), mu, y0, f, 0.0)
    law_mean, law_cov = block_law(tau2_block.reshape(-1), mu, y0, f, 0.0, geometric(15.0, 0.01, n_steps))
    assert mean[0] > 1.2 and law_mean[0] < 1.05 and law_cov[0, 0] > 3 * cov[0, 0]  # the bias, in closed form
    y = torch.full((20, 1, 14, 14), y0)
    prior = DiagonalGaussian(mu, tau2_block.repeat(14, 14))
    x = inverse.super_resolve(prior, y, CARD, n_steps=n_steps, n_corrector=0, seed=0, clamp=False)
    assert_moments(blocks(x, f), law_mean, law_cov)  # the implementation has exactly this law
    se = math.sqrt(law_cov[0, 0].item() / blocks(x, f).shape[0])
    assert mean[0].item() - blocks(x, f)[:, 0].mean().item() > 20 * se  # ... which is not the posterior


# -- the samplers on a network: consistency, seeding, errors -------------------------------------------------
def test_super_resolution_is_consistent_and_seeded():
    model, y = tiny(), AveragePooling(4)(digits(3))
    x = inverse.super_resolve(model, y, CARD, n_steps=4, n_corrector=1, seed=5, clamp=False)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32
    rounding = 16 * torch.finfo(torch.float32).eps * x.abs().max().item()  # a mean of 16 float32 pixels
    torch.testing.assert_close(AveragePooling(4)(x), y, atol=rounding, rtol=0)  # A x̂ = y up to rounding
    torch.testing.assert_close(inverse.super_resolve(model, y, CARD, n_steps=4, n_corrector=1, seed=5,
                                                     clamp=False), x, rtol=0, atol=0)
    other = inverse.super_resolve(model, y, CARD, n_steps=4, n_corrector=1, seed=6, clamp=False)
    assert not torch.equal(other, x)
    clamped = inverse.super_resolve(model, y, CARD, n_steps=4, n_corrector=1, seed=5)
    assert 0 <= clamped.min() and clamped.max() <= 1
    noisy = inverse.super_resolve(model, y, CARD, sigma_y=0.05, n_steps=6, n_corrector=1, seed=5, clamp=False)
    assert (AveragePooling(4)(noisy) - y).abs().max() > 1e-3  # y's noise is not forced onto the sample


def test_denoising_is_seeded_and_starts_from_y():
    model, x = tiny(), digits(2)
    y = inverse.measure(x, 1, 0.5, seed=0)
    run = lambda seed: inverse.denoise_posterior(model, y, 0.5, CARD, n_steps=3, n_corrector=1, seed=seed)
    a = run(1)
    torch.testing.assert_close(run(1), a, rtol=0, atol=0)
    assert not torch.equal(run(2), a)
    # one noise-free step from y is Tweedie's formula at σ_y (down to σ_min)
    one = inverse.denoise_posterior(model, y, 0.5, CARD, n_steps=1, n_corrector=0, clamp=False)
    tweedie = inverse.tweedie_denoise(model, y, 0.5, clamp=False)
    torch.testing.assert_close(one, y + (1 - 0.01**2 / 0.5**2) * (tweedie - y))
    assert inverse.denoise_steps({"sigma_min": 0.01, "sigma_max": 15.830389978391201}, 0.5) == 50


def test_inverse_samplers_refuse_bad_input():
    model = tiny()
    y = torch.zeros(2, 1, 28, 28)
    for bad in (0, -0.5, float("nan"), 20.0):
        with pytest.raises(ValueError, match="sigma_y"):
            inverse.denoise_posterior(model, y, bad, CARD)
    with pytest.raises(ValueError, match="sigma_y must be a positive"):
        inverse.tweedie_denoise(model, y, 0.0)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        inverse.denoise_posterior(model, torch.zeros(2, 1, 14, 14), 0.5, CARD)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        inverse.tweedie_denoise(model, torch.zeros(28, 28), 0.5)
    for shape in ((2, 1, 28, 28), (2, 1, 9, 9), (2, 1, 7, 14), (2, 3, 7, 7)):
        with pytest.raises(ValueError, match="y must"):
            inverse.super_resolve(model, torch.zeros(shape), CARD)
    with pytest.raises(ValueError, match="sigma_y must be a non-negative"):
        inverse.super_resolve(model, torch.zeros(2, 1, 7, 7), CARD, sigma_y=-1)
    with pytest.raises(ValueError, match="n_steps"):
        inverse.super_resolve(model, torch.zeros(2, 1, 7, 7), CARD, n_steps=0)
    with pytest.raises(ValueError, match="sigma_start must be > sigma_min"):
        inverse.posterior_sample(model, torch.zeros(2, 1, 7, 7), AveragePooling(4), 0.0, CARD,
                                 sigma_start=0.01)
    with pytest.raises(ValueError, match="must be a floating-point"):
        inverse.super_resolve(model, torch.zeros(2, 1, 7, 7, dtype=torch.long), CARD)


def test_the_shipped_model_super_resolves_a_few_digits():
    from scoretutor.mnist import load_pretrained
    from scoretutor.mnist.data import load_shipped_mnist

    model, card = load_pretrained()
    x = load_shipped_mnist("test")[0][:2]
    y = AveragePooling(2)(x)
    out = inverse.super_resolve(model, y, card, n_steps=4, n_corrector=0, seed=0, clamp=False)
    torch.testing.assert_close(AveragePooling(2)(out), y, atol=1e-5, rtol=0)
    assert torch.isfinite(out).all()


def test_plot_inverse_problem():
    from scoretutor.lecture.plotting import plot_inverse_problem

    truth = digits(3)
    y = AveragePooling(4)(truth)
    samples = torch.stack([digits(3, seed=s) for s in range(4)], 1)  # (N, k, 1, 28, 28)
    fig, ax = plt.subplots()
    plot_inverse_problem(ax, truth, y, samples, samples.mean(1), n_show=2)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["truth", "measured", "sample 1", "sample 2", "mean of 4"]
    assert ax.images[0].get_array().shape == (3 * 28 + 2 * 2, 5 * 28 + 4 * 2)
    plot_inverse_problem(ax, truth, y, samples, samples.mean(1), n_show=9, mean_label="Tweedie")
    assert [t.get_text() for t in ax.get_xticklabels()][-2:] == ["sample 4", "Tweedie"]  # at most k samples
    with pytest.raises(ValueError, match="samples"):
        plot_inverse_problem(ax, truth, y, samples[:2])
    plt.close(fig)
