import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.lecture import plotting


def test_grid_and_evaluate_on_grid():
    X, Y, pts = plotting.grid(2.0, 5)
    assert X.shape == (5, 5) and pts.shape == (25, 2)
    vals = plotting.evaluate_on_grid(lambda p: p[:, 0] + 10 * p[:, 1], 2.0, 5)
    np.testing.assert_allclose(vals, X + 10 * Y, rtol=1e-6)  # row = y, column = x (imshow order)
    with pytest.raises(ValueError, match="n >= 2"):
        plotting.grid(1.0, 1)


def test_plot_helpers_draw_what_they_are_given():
    mix = ncsn_mixture()
    fig, axes = plotting.figure_row(3)
    im = plotting.plot_density(axes[0], mix.log_prob, lim=8, n=50)
    expected = np.exp(plotting.evaluate_on_grid(mix.log_prob, 8, 50))
    np.testing.assert_allclose(im.get_array(), expected, rtol=1e-6)
    q = plotting.plot_score_field(axes[1], mix.score, lim=8, n=10)
    norms = np.hypot(q.U, q.V)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)  # normalised arrows
    sc = plotting.plot_samples(axes[2], mix.sample(100))
    assert sc.get_offsets().shape == (100, 2)
    # the contour set spans exactly the energy's range on the grid (low energy = the modes)
    f = plotting.evaluate_on_grid(mix.energy, 8, 30)
    cs = plotting.plot_energy(axes[2], mix.energy, lim=8, n=30, levels=12)
    assert cs.filled and cs.zmin == pytest.approx(f.min()) and cs.zmax == pytest.approx(f.max())
    assert cs.levels[0] <= f.min() and cs.levels[-1] >= f.max() and len(cs.levels) >= 10
    lines = plotting.plot_energy(axes[1], mix.energy, lim=8, n=30, filled=False)
    assert not lines.filled
    with pytest.raises(ValueError, match="shape \\(n, 2\\)"):
        plotting.plot_samples(axes[2], torch.zeros(3, 3))
    plt.close(fig)
