import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from scoretutor import data, plotting
from scoretutor.densities import ncsn_mixture


def test_checkerboard_points_lie_on_dark_squares():
    x = data.checkerboard(5000, squares=4, size=8.0, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5000, 2)
    assert (x.abs() <= 4).all()
    cell = ((x + 4) // 2).long()
    assert ((cell[:, 0] + cell[:, 1]) % 2 == 0).all()
    # All 8 dark squares are used, each about 1/8 of the time (4 binomial standard errors).
    counts = torch.bincount(cell[:, 0] * 4 + cell[:, 1], minlength=16).float() / 5000
    dark = counts[counts > 0]
    assert len(dark) == 8
    assert ((dark - 1 / 8).abs() < 4 * (1 / 8 * 7 / 8 / 5000) ** 0.5).all()


def test_two_moons_is_reproducible_and_balanced():
    a = data.two_moons(1000, generator=torch.Generator().manual_seed(1))
    b = data.two_moons(1000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (1000, 2)


@pytest.mark.parametrize("fn", [data.two_moons, data.checkerboard])
def test_data_validation(fn):
    with pytest.raises(ValueError, match="-3"):
        fn(-3)


def test_grid_and_evaluate_on_grid():
    X, Y, pts = plotting.grid(2.0, 5)
    assert X.shape == (5, 5) and pts.shape == (25, 2)
    vals = plotting.evaluate_on_grid(lambda p: p[:, 0] + 10 * p[:, 1], 2.0, 5)
    np.testing.assert_allclose(vals, X + 10 * Y, rtol=1e-6)  # row = y, column = x (imshow order)
    with pytest.raises(ValueError, match="n >= 2"):
        plotting.grid(1.0, 1)


def test_plot_density_shows_exp_log_prob():
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
    plotting.plot_energy(axes[2], mix.energy, lim=8, n=30)
    with pytest.raises(ValueError, match="shape \\(n, 2\\)"):
        plotting.plot_samples(axes[2], torch.zeros(3, 3))
    plt.close(fig)
