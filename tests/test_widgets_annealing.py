"""Notebook 04's explorers: the maths behind them, and that they update headlessly."""

import pytest
import torch
from torch import nn

from scoretutor.densities import ncsn_mixture
from scoretutor.models import NoiseConditionalScoreMLP
from scoretutor.widgets.annealing import (
    AnnealingExplorer,
    NoiseTradeoffExplorer,
    StackedScoreMLP,
)


def test_stacked_models_are_independent():
    model = StackedScoreMLP([0.5, 1.0, 2.0], hidden=8)
    x = torch.randn(10, 2)
    out = model(x)
    assert out.shape == (3, 10, 2)
    out[1].sum().backward()  # a loss on model 1 only must not touch models 0 and 2
    for w in model.weights:
        assert w.grad[0].abs().sum() == 0 and w.grad[2].abs().sum() == 0 and w.grad[1].abs().sum() > 0
    with pytest.raises(ValueError, match="sigmas must be"):
        StackedScoreMLP([])


@pytest.fixture(scope="module")
def tradeoff():
    return NoiseTradeoffExplorer(sigmas=(0.1, 1.0, 10.0), n_steps=300, grid_n=40, quiver_n=9)


def test_tradeoff_small_sigma_is_accurate_only_where_the_data_is(tradeoff):
    small, _, large = tradeoff.frames
    # σ = 0.1: training only sees points near the modes, so the unweighted box-average error is
    # much larger than the Fisher error (the p_σ-weighted one); σ = 10: accurate all over the box.
    assert small["box_average"] > 10 * small["fisher"]
    assert small["accurate"] < 0.5 < large["accurate"]
    assert large["box_average"] < 0.1


def test_tradeoff_updates_headlessly(tradeoff):
    first = tradeoff.png
    tradeoff.sliders["sigma"].value = 10.0
    assert tradeoff.png != first and "σ = 10" in tradeoff.status_text
    tradeoff.update(sigma=0.1)
    assert "σ = 0.1" in tradeoff.status_text
    bundle = tradeoff._repr_mimebundle_()
    assert "image/png" in bundle and "text/plain" in bundle
    with pytest.raises(ValueError, match="unknown slider"):
        tradeoff.update(eps=1.0)


class _ExactScore(nn.Module):
    """s(x, σ) = ∇log p_σ(x) of a mixture, in closed form (a stand-in for a perfect model)."""

    def __init__(self, mixture):
        super().__init__()
        self.mixture, self.cache = mixture, {}

    def forward(self, x, sigma):
        sigma = float(sigma)
        if sigma not in self.cache:
            self.cache[sigma] = self.mixture.perturb(sigma)
        return self.cache[sigma].score(x)


def test_annealing_explorer_readouts_with_exact_scores():
    # With exact scores and the paper's settings (T = 100), the (−5,−5) share is 0.2 ± 0.05
    # (binomial se √(0.16/1280) = 0.011) and the readout is ½Σ|f − w| computed from the samples.
    p = ncsn_mixture()
    ex = AnnealingExplorer(_ExactScore(p), n_particles=1280, T=100)
    x = ex.samples
    nearest = torch.cdist(x, p.means).argmin(1)
    f = torch.stack([(nearest == k).double().mean() for k in range(2)])
    assert ex.quality["mode_weight_error"] == pytest.approx(0.5 * (f - p.weights.double()).abs().sum().item())
    assert ex.quality["mode_weight_error"] < 0.05
    assert ex.quality["sliced_wasserstein"] < 1.0  # samples on the data (≈ 0.1 – 0.5 here)


def test_annealing_explorer_updates_and_reports_bad_settings():
    torch.manual_seed(0)
    ex = AnnealingExplorer(NoiseConditionalScoreMLP(hidden=16, embed_dim=8), n_particles=50, T=2, L=3)
    before = ex.png
    ex.sliders["T"].value = 3
    assert ex.png != before and "T=3" in ex.status_text
    ex.update(sigma_1=0.5, sigma_L=1.0)
    assert "must be below" in ex.status_text
    ex.update(sigma_1=20.0, sigma_L=0.01, eps=1.0)  # α_1 = 4·10⁶: the chain blows up
    assert "diverged" in ex.status_text
    ex.update(sigma_1=2.0, sigma_L=0.5, eps=0.01, L=1)
    assert "L=1" in ex.status_text and "σ_L unused" in ex.status_text
