"""Notebook 05's checkers accept right answers and name the usual slips; its explorer renders and caches."""

from __future__ import annotations

import math

import numpy as np
import torch

from scoretutor import mnist
from scoretutor.lecture.exercises.mnist import check_denoise, check_log_uniform
from scoretutor.lecture.plotting import image_grid
from scoretutor.lecture.widgets.mnist import MNISTSamplerExplorer
from scoretutor.mnist.unet import ScoreUNet


def log_uniform(n, lo, hi, g):
    u = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def test_log_uniform_checker(capsys):
    assert check_log_uniform(log_uniform)
    other = lambda n, lo, hi, g: log_uniform(n, lo, hi, torch.Generator().manual_seed(5))  # other draws
    assert check_log_uniform(other) and "in distribution" in capsys.readouterr().out
    uniform = lambda n, lo, hi, g: lo + (hi - lo) * torch.rand(n, generator=g)
    assert not check_log_uniform(uniform) and "uniform on [σ_min, σ_max]" in capsys.readouterr().out
    assert not check_log_uniform(lambda n, lo, hi, g: torch.full((n,), 20.0))
    assert not check_log_uniform(lambda n, lo, hi, g: torch.ones(n - 1))


def test_denoise_checker(capsys):
    assert check_denoise(lambda s, x, sigma: x + sigma**2 * s(x, sigma))
    assert not check_denoise(lambda s, x, sigma: x + sigma * s(x, sigma))
    assert "σ², not σ" in capsys.readouterr().out
    assert not check_denoise(lambda s, x, sigma: x - sigma**2 * s(x, sigma))
    assert not check_denoise(lambda s, x, sigma: sigma**2 * s(x, sigma))

    def untouched(s, x, sigma):
        raise NotImplementedError

    assert not check_denoise(untouched) and "Not attempted" in capsys.readouterr().out


def test_image_grid_layout():
    x = torch.arange(5.0).reshape(5, 1, 1, 1).expand(5, 1, 2, 3)
    grid = image_grid(x, cols=2)
    assert grid.shape == (3 * 2, 2 * 3)
    assert grid[0, 0] == 0 and grid[0, 3] == 1 and grid[2, 0] == 2 and grid[4, 0] == 4 and grid[4, 3] == 0


def test_explorer_renders_and_caches():
    torch.manual_seed(0)
    model = ScoreUNet(channels=(4, 8, 8), blocks=(0, 1, 1), embed_dim=8, groups=2)
    card = {"sigma_max": 15.0, "sigma_min": 0.01}
    ex = MNISTSamplerExplorer(model, card, n=2, n_levels=3, prefetch=False)
    first = ex.png
    assert first.startswith(b"\x89PNG") and "network calls" in ex.status_text
    ex.update(factor=1.0, T=1)
    assert len(ex.cache) == 2 and "T = 1" in ex.status_text
    ex.update(factor=mnist.STEP_SIZE_FACTOR, T=mnist.DEFAULT_STEPS_EACH)
    assert len(ex.cache) == 2  # served from the cache


def test_explorer_prefetches_every_setting_nearest_first():
    torch.manual_seed(0)
    model = ScoreUNet(channels=(4, 8, 8), blocks=(0, 1, 1), embed_dim=8, groups=2)
    card = {"sigma_max": 15.0, "sigma_min": 0.01}
    ex = MNISTSamplerExplorer(model, card, n=2, n_levels=3, factor=1.0, T=2, max_T=3)
    grid = ex.settings_grid()
    assert len(grid) == len(set(grid)) == 15 * 3  # 2^-2 … 2^5 in half steps, T = 1 … 3
    assert grid[0] == (1.0, 2) and set(grid[1:5]) == {(1.0, 1), (1.0, 3), (round(2**0.5, 6), 2),
                                                      (round(2**-0.5, 6), 2)}
    ex.prefetch_thread.join(timeout=120)
    assert not ex.prefetch_thread.is_alive() and set(ex.cache) == set(grid)
    # a slider move now only swaps the image: the frame is the one computed in the background
    ex.sliders["factor"].value = 2.0**3
    assert ex.image_artist.get_array().shape == (28, 56)
    np.testing.assert_array_equal(ex.image_artist.get_array(), ex.cache[(8.0, 2)][0])
    # the same frame as computed in the foreground (same seed)
    fresh = MNISTSamplerExplorer(model, card, n=2, n_levels=3, factor=8.0, T=2, max_T=3, prefetch=False)
    np.testing.assert_array_equal(fresh.cache[(8.0, 2)][0], ex.cache[(8.0, 2)][0])


def test_levels_prediction_checker_accepts_the_rule_and_names_the_slips(capsys):
    from scoretutor.lecture.exercises.mnist import check_levels_prediction
    from scoretutor.schedules import ncsnv2_gamma, num_levels

    sigma_max = 25.0
    base, actual = (num_levels(sigma_max, 0.01, ncsnv2_gamma(d)) for d in (784, 4 * 784))
    assert 1.8 < actual / base < 2.2  # L ∝ √D, independently of the checker's wording
    assert check_levels_prediction(actual, sigma_max)
    assert not check_levels_prediction(4 * base, sigma_max)
    assert "scaled L with D" in capsys.readouterr().out
    assert not check_levels_prediction(base, sigma_max)
    assert "does change" in capsys.readouterr().out
    assert not check_levels_prediction(..., sigma_max) and "Not attempted" in capsys.readouterr().out
    assert not check_levels_prediction("many", sigma_max) and "positive number" in capsys.readouterr().out
