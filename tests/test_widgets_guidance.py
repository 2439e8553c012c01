"""Notebook 08's digit explorer driven headlessly: each frame is sample_guided's digits for its setting."""

from __future__ import annotations

import numpy as np
import torch

from scoretutor.lecture.plotting import image_grid
from scoretutor.lecture.widgets.guidance import DigitGuidanceExplorer
from scoretutor.mnist import make_model
from scoretutor.mnist.guidance import sample_guided

CARD = {"sigma_max": 15.0, "sigma_min": 0.01}


def tiny_conditional():
    torch.manual_seed(0)
    model = make_model(n_classes=10, channels=(4, 8, 8), blocks=(0, 1, 1), embed_dim=8).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_frames_are_the_guided_samples_and_are_cached():
    model = tiny_conditional()
    ex = DigitGuidanceExplorer(model, CARD, n=2, n_calls=4, digit=3, guidance=2.0, prefetch=False)
    assert ex.png.startswith(b"\x89PNG") and "read as 3" in ex.status_text
    expected = image_grid(sample_guided(model, CARD, [3, 3], 2.0, n_calls=4), 2)
    np.testing.assert_array_equal(ex.image_artist.get_array(), expected)
    before = ex.png
    ex.update(digit=7, guidance=0.0)
    assert ex.png != before and "y = 7, γ = 0" in ex.status_text and len(ex.cache) == 2
    ex.update(digit=3, guidance=2.0)
    assert len(ex.cache) == 2 and ex.png == before  # served from the cache, same frame


def test_prefetch_covers_every_setting_current_class_first():
    ex = DigitGuidanceExplorer(tiny_conditional(), CARD, n=1, n_calls=2, digit=4, guidance=1.0,
                               max_guidance=1.0)
    grid = ex.settings_grid()
    assert len(grid) == len(set(grid)) == 10 * 3  # γ = 0, 0.5, 1 for every digit
    assert grid[0] == (4, 1.0) and {k[0] for k in grid[:3]} == {4}
    ex.prefetch_thread.join(timeout=120)
    assert not ex.prefetch_thread.is_alive() and set(ex.cache) == set(grid)
