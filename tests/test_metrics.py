"""Metrics against cases with known answers: shifted/scaled copies for sliced Wasserstein
and binomial mode fractions."""

import math

import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.metrics import mode_fractions, sliced_wasserstein


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("D", [2, 5])
def test_sliced_wasserstein_of_a_shifted_copy(D):
    # y = x + m: every projection is shifted by θᵀm, so W₂(θ) = |θᵀm| exactly and
    # SW² = E_θ (θᵀm)² = ‖m‖²/D. Over P random directions (θᵀm)²/‖m‖² ~ Beta(1/2, (D−1)/2), whose
    # variance is 2(D−1)/(D²(D+2)); the Monte Carlo average has standard error √(var/P). Allow 4.
    x = torch.randn(500, D, generator=gen(0), dtype=torch.float64)
    m = torch.linspace(1.0, 2.0, D, dtype=torch.float64)
    P = 2000
    sw = sliced_wasserstein(x, x + m, n_projections=P, generator=gen(1))
    m2 = (m**2).sum().item()
    se = m2 * math.sqrt(2 * (D - 1) / (D * D * (D + 2)) / P)
    assert abs(sw**2 - m2 / D) < 4 * se
    assert sliced_wasserstein(x, x, generator=gen(2)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.slow
def test_sliced_wasserstein_returns_a_standard_error_that_matches_repeats():
    # The returned standard error covers the projection noise: compare with the spread over seeds.
    x = torch.randn(300, 2, generator=gen(3), dtype=torch.float64)
    y = x + torch.tensor([2.0, 0.0], dtype=torch.float64)
    runs = [sliced_wasserstein(x, y, n_projections=64, generator=gen(s), return_std=True) for s in range(200)]
    values = torch.tensor([v for v, _ in runs])
    mean_se = sum(s for _, s in runs) / len(runs)
    # spread of a 200-sample std is ≈ 1/√400 = 5 %: allow ±25 %
    assert 0.75 < values.std().item() / mean_se < 1.25


def test_sliced_wasserstein_in_1d_is_exact_for_scaled_copies_and_unequal_sizes():
    # In 1-D θ = ±1, so SW₂ = W₂. For y = a·x (a > 0) sorted order is kept: W₂² = (a − 1)² mean x².
    x = torch.randn(400, 1, generator=gen(4), dtype=torch.float64)
    sw = sliced_wasserstein(x, 3 * x, n_projections=5, generator=gen(5))
    assert sw == pytest.approx(2 * x.pow(2).mean().sqrt().item(), rel=1e-12)
    # Unequal sizes, by hand: x = {0, 1}, y = {0, 0, 3}. Quantile functions on (0, 1]:
    # x: 0 on (0, ½], 1 on (½, 1];  y: 0 on (0, ⅔], 3 on (⅔, 1].
    # W₂² = (⅔ − ½)·(1 − 0)² + (1 − ⅔)·(1 − 3)² = 1/6 + 4/3 = 3/2.
    a = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0], [0.0], [3.0]], dtype=torch.float64)
    assert sliced_wasserstein(a, b, n_projections=3) == pytest.approx(math.sqrt(1.5), rel=1e-12)
    # Repeating each sample (x three times, y twice) leaves both distributions unchanged and makes
    # the sizes equal, where the formula is the plain sorted difference.
    u = torch.randn(40, 1, generator=gen(6), dtype=torch.float64)
    v = 2 + torch.randn(60, 1, generator=gen(7), dtype=torch.float64)
    direct = sliced_wasserstein(u, v, n_projections=3)
    repeated = sliced_wasserstein(u.repeat(3, 1), v.repeat(2, 1), n_projections=3)
    assert direct == pytest.approx(repeated, rel=1e-10)


def test_mode_fractions_with_binomial_standard_errors():
    mix = ncsn_mixture(dtype=torch.float64)
    n = 5000
    x = mix.sample(n, generator=gen(13))
    mf = mode_fractions(x, mix)
    assert mf.counts.sum().item() == n
    # nearest-mode counts of an exact sample are Binomial(n, w_k) (the modes are 14 σ apart, so
    # misassignment has probability Φ(−7) ≈ 1e-12): within 4 standard errors of the weights.
    assert ((mf.fractions - mix.weights).abs() < 4 * (mix.weights * (1 - mix.weights) / n).sqrt()).all()
    torch.testing.assert_close(mf.stderr, (mf.fractions * (1 - mf.fractions) / n).sqrt())
    # the same from a plain (K, D) tensor of modes, and a hand-made case
    assert torch.equal(mode_fractions(x, mix.means).counts, mf.counts)
    pts = torch.tensor([[0.1, 0.0], [0.9, 1.0], [1.2, 0.8], [5.0, 5.0]])
    hand = mode_fractions(pts, torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert hand.counts.tolist() == [1, 3]
    assert hand.stderr[0].item() == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    assert "0.250 ± 0.217" in str(hand)


def test_metric_input_validation():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="same number of features"):
        sliced_wasserstein(x, torch.randn(10, 3))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(ValueError, match="non-finite"):
        sliced_wasserstein(x, torch.full((10, 2), float("nan")))
    with pytest.raises(ValueError, match="y must be a torch.Tensor"):
        sliced_wasserstein(x, [[0.0, 0.0]])
    with pytest.raises(ValueError, match="modes must be"):
        mode_fractions(x, torch.zeros(3, 5))
