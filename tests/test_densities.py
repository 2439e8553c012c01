"""GaussianMixture against independent computations: autograd, finite differences, Monte Carlo."""

import math

import pytest
import torch

from scoretutor.densities import GaussianMixture, eight_gaussians, ncsn_mixture, rings
from scoretutor.device import available_devices


def random_mixture(seed: int, d: int = 2, K: int = 3, full: bool = True) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    means = 3 * torch.randn(K, d, generator=g, dtype=torch.float64)
    if full:
        A = torch.randn(K, d, d, generator=g, dtype=torch.float64)
        covs = A @ A.transpose(-1, -2) + 0.3 * torch.eye(d, dtype=torch.float64)
    else:
        covs = 0.5 + torch.rand(K, d, generator=g, dtype=torch.float64)  # per-axis stds
    w = torch.rand(K, generator=g, dtype=torch.float64) + 0.1
    return GaussianMixture(means, covs, w / w.sum())


MIXTURES = [random_mixture(s, d, K, full) for s, d, K, full in
            [(0, 2, 3, True), (1, 2, 4, False), (2, 5, 2, True), (3, 1, 3, True)]]
MIXTURES.append(ncsn_mixture(dtype=torch.float64))


@pytest.mark.parametrize("mix", MIXTURES, ids=repr)
def test_score_matches_autograd_and_finite_differences(mix):
    g = torch.Generator().manual_seed(10)
    x = 4 * torch.randn(50, mix.dim, generator=g, dtype=torch.float64)
    s = mix.score(x)
    xr = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(mix.log_prob(xr).sum(), xr)
    torch.testing.assert_close(s, auto, rtol=1e-9, atol=1e-9)
    # Central differences: error O(h²)·|∂³ log p| ~ 1e-10 for h = 1e-5 in float64.
    h = 1e-5
    fd = torch.stack([(mix.log_prob(x + h * e) - mix.log_prob(x - h * e)) / (2 * h)
                      for e in torch.eye(mix.dim, dtype=torch.float64)], dim=-1)
    torch.testing.assert_close(s, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mix", MIXTURES, ids=repr)
def test_log_prob_and_energy_match_torch_distributions(mix):
    # An independent implementation: log Σ_k w_k N(x; μ_k, Σ_k) with torch.distributions, and
    # p = e^{−f}/Z with Z = (2π)^{d/2} as the energy's docstring promises.
    components = torch.distributions.MultivariateNormal(mix.means, covariance_matrix=mix.covs)
    x = 3 * torch.randn(7, mix.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    reference = torch.logsumexp(components.log_prob(x[:, None, :]) + mix.weights.log(), dim=-1)
    torch.testing.assert_close(mix.log_prob(x), reference)
    torch.testing.assert_close(-mix.energy(x) - 0.5 * mix.dim * math.log(2 * math.pi), reference)


@pytest.mark.parametrize("mix", [MIXTURES[0], MIXTURES[1], ncsn_mixture(dtype=torch.float64),
                                 eight_gaussians(dtype=torch.float64), rings(dtype=torch.float64)],
                         ids=repr)
def test_log_prob_integrates_to_one_on_grid(mix):
    # Riemann sum on a grid of spacing h = σ_min/5: for Gaussians the error decays like
    # exp(-2π²σ²/h²) = exp(-50π²) (spectral accuracy), and the box reaches 12 std-units beyond every
    # mean, so the mass outside it is < 1e-30. 1e-6 leaves room only for float64 round-off.
    stds = torch.linalg.eigvalsh(mix.covs).sqrt()
    lim = mix.means.abs().max().item() + 12 * stds.max().item()
    n = int(2 * lim / (stds.min().item() / 5)) + 1
    xs = torch.linspace(-lim, lim, n, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], -1)
    h = (xs[1] - xs[0]).item()
    total = mix.log_prob(pts).exp().sum().item() * h * h
    assert abs(total - 1) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_perturb_matches_monte_carlo_convolution(sigma):
    # p_σ(x) = E_{y~p}[N(x; y, σ²I)]: a Monte Carlo mean with a computable standard error.
    mix = random_mixture(5, d=2, K=3)
    g = torch.Generator().manual_seed(1)
    y = mix.sample(400_000, generator=g)
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0], [3.0, 3.0]], dtype=torch.float64)
    kern = torch.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    mc = kern.mean(1)
    se = kern.std(1) / math.sqrt(y.shape[0])
    closed = mix.perturb(sigma).log_prob(x).exp()
    assert ((closed - mc).abs() < 4 * se + 1e-12).all(), (closed, mc, se)


@pytest.mark.slow
def test_perturbed_score_is_score_of_noisy_samples():
    # With x ~ p, z ~ N(0, I), x̃ = x + σz: ∇log p_σ(x̃) = E[−z/σ | x̃] (the DSM identity), so the
    # residual r = s_σ(x̃) + z/σ is orthogonal to every function of x̃: E[r] = 0 and E[r ⊙ x̃] = 0.
    # Each Monte Carlo mean is within 4 standard errors (sample std/√n) of 0 for the right σ; the
    # score of p_{1.3σ} must miss by far more, or the check could not tell levels apart.
    mix, sigma, n = MIXTURES[0], 1.5, 200_000
    g = torch.Generator().manual_seed(11)
    x = mix.sample(n, generator=g)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x_noisy = x + sigma * z

    def z_scores(score_sigma: float) -> torch.Tensor:
        r = mix.perturb(score_sigma).score(x_noisy) + z / sigma
        stats = torch.cat([r, r * x_noisy], dim=1)  # (n, 4)
        return stats.mean(0) / (stats.std(0) / math.sqrt(n))

    assert (z_scores(sigma).abs() < 4).all(), z_scores(sigma)
    assert z_scores(1.3 * sigma).abs().max() > 20


def test_sample_frequencies_and_moments():
    mix = ncsn_mixture(dtype=torch.float64)
    n = 20_000
    x = mix.sample(n, generator=torch.Generator().manual_seed(3))
    k = mix.component_of(x)
    for j, w in enumerate(mix.weights.tolist()):
        frac = (k == j).double().mean().item()
        assert abs(frac - w) < 4 * math.sqrt(w * (1 - w) / n)
    # Mean of the mixture: Σ w_k μ_k, per coordinate std ≤ sqrt(Var)/sqrt(n).
    mean = (mix.weights[:, None] * mix.means).sum(0)
    var = 1 + (mix.weights[:, None] * (mix.means - mean) ** 2).sum(0)
    assert ((x.mean(0) - mean).abs() < 4 * (var / n).sqrt()).all()


def test_full_covariance_samples_have_the_right_covariance():
    mix = GaussianMixture([[0.0, 0.0]], [[[2.0, 0.8], [0.8, 1.0]]])
    x = mix.sample(50_000, generator=torch.Generator().manual_seed(0)).double()
    cov = torch.cov(x.T)
    # Sample covariance entries have std ≈ sqrt((Σ_ii Σ_jj + Σ_ij²)/n) ≤ sqrt(4.64/5e4) ≈ 0.01.
    torch.testing.assert_close(cov, mix.covs[0].double(), atol=0.05, rtol=0)


def test_seeded_sampling_is_reproducible():
    mix = eight_gaussians()
    a = mix.sample(100, generator=torch.Generator().manual_seed(42))
    b = mix.sample(100, generator=torch.Generator().manual_seed(42))
    c = mix.sample(100, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_batch_shapes(dtype):
    mix = ncsn_mixture(dtype=dtype)
    x = torch.randn(4, 3, 2, dtype=dtype)
    assert mix.log_prob(x).shape == (4, 3) and mix.log_prob(x).dtype == dtype
    assert mix.score(x).shape == (4, 3, 2) and mix.score(x).dtype == dtype
    assert mix.sample(5).dtype == dtype
    # A float32 query against a float64 mixture is evaluated in the query's dtype.
    assert ncsn_mixture(dtype=torch.float64).score(x).dtype == dtype


def test_score_is_finite_far_from_the_modes():
    mix = ncsn_mixture()
    x = torch.tensor([[0.0, 0.0], [-40.0, 50.0], [200.0, 210.0]])
    s = mix.score(x)
    assert torch.isfinite(s).all()
    # Far out the nearer component's responsibility is 1 - e^{-Δ/2} with Δ ≈ 8000: its score
    # -(x - μ) is all that is left (naive exp() of the densities would give 0/0 there).
    assert torch.allclose(s[2], -(x[2] - mix.means[1]), rtol=1e-6)


@pytest.mark.parametrize(
    "args, match",
    [
        (([1.0, 2.0], 1.0), "shape \\(K, d\\)"),
        (([[0.0, 0.0]], -1.0), "positive"),
        (([[0.0, 0.0]], 0.0), "positive"),
        (([[0.0, 0.0], [1.0, 1.0]], [1.0, 2.0, 3.0]), "covs_or_stds"),
        (([[0.0, 0.0], [1.0, 1.0]], 1.0, [0.5, 0.6]), "sum to 1"),
        (([[0.0, 0.0], [1.0, 1.0]], 1.0, [1.5, -0.5]), "non-negative"),
        (([[0.0, 0.0]], 1.0, [0.5, 0.5]), "weights must have shape"),
        (([[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]]), "positive definite"),
        (([[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
        (([[float("nan"), 0.0]], 1.0), "finite"),
    ],
)
def test_constructor_validation(args, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(*args)


def test_method_validation_names_the_bad_value():
    mix = ncsn_mixture()
    with pytest.raises(ValueError, match="-0.5"):
        mix.perturb(-0.5)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        mix.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"n must be an integer >= 0, got -1"):
        mix.sample(-1)
    with pytest.raises(ValueError, match="positive"):
        eight_gaussians(std=0)
    with pytest.raises(ValueError, match="positive"):
        rings(radii=(1.0, -2.0))


@pytest.mark.parametrize("device", available_devices())
def test_to_moves_device_and_dtype(device):
    mix = ncsn_mixture()
    moved = mix.to(device=device, dtype=torch.float64)
    for t in (moved.means, moved.covs, moved.weights):
        assert t.device.type == device and t.dtype == torch.float64
    x = torch.randn(6, 2, dtype=torch.float64)
    lp = moved.log_prob(x.to(device))
    assert lp.device.type == device and lp.dtype == torch.float64
    torch.testing.assert_close(lp.cpu(), mix.log_prob(x.float()).double(), rtol=1e-5, atol=1e-5)


def test_noise_conditional_score_is_the_perturbed_score():
    mix = ncsn_mixture(dtype=torch.float64)
    score = mix.noise_conditional_score()
    x = 4 * torch.randn(30, 2, dtype=torch.float64)
    for sigma in (0.5, 3.0, 0.5):  # the repeated σ comes from the cache
        torch.testing.assert_close(score(x, sigma), mix.perturb(sigma).score(x))


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_sampling_draws_on_the_generator_device_and_returns_on_the_mixture_device(device):
    # A CPU generator gives the same draws whatever device the mixture lives on.
    mix = ncsn_mixture(device=device)
    a = mix.sample(50, generator=torch.Generator().manual_seed(5))
    assert a.device == mix.means.device
    torch.testing.assert_close(a.cpu(), ncsn_mixture().sample(50, generator=torch.Generator().manual_seed(5)))
