"""The lecture-figure helpers draw what they are given (counts of artists, labels, data)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scoretutor.densities import ncsn_mixture  # noqa: E402
from scoretutor.lecture import plotting as P  # noqa: E402


def test_sample_panels_one_titled_scatter_per_entry():
    mix = ncsn_mixture()
    fig, axes = P.sample_panels({"a": mix.sample(50), "b": mix.sample(70)}, lim=9, background=mix.log_prob)
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    assert [ax.collections[0].get_offsets().shape[0] for ax in axes] == [50, 70]
    assert len(axes[0].images) == 1  # the density background
    plt.close(fig)


def test_plot_loss_draws_history_and_its_moving_average():
    fig, ax = plt.subplots()
    history = np.arange(100.0)
    P.plot_loss(ax, history, window=10)
    raw, smooth = ax.lines
    np.testing.assert_allclose(raw.get_ydata(), history)
    np.testing.assert_allclose(smooth.get_ydata(), history[9:] - 4.5)  # mean of 10 consecutive integers
    np.testing.assert_allclose(smooth.get_xdata(), np.arange(9, 100))
    assert ax.get_xlabel() == "step"
    plt.close(fig)


def test_plot_mean_se_bars_are_two_standard_errors():
    fig, ax = plt.subplots()
    P.plot_mean_se(ax, [1, 2], {"F": ([1.0, 2.0], [0.1, 0.2])}, reference=(1.5, "theory"), xlabel="v")
    (container,) = ax.containers
    segments = container.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], [0.4, 0.8])
    assert ax.get_xlabel() == "v" and ax.lines[-1].get_ydata()[0] == 1.5
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["theory", "F"]
    plt.close(fig)


def test_plot_error_vs_density_takes_medians_per_density_bin():
    fig, ax = plt.subplots()
    p = np.repeat([1e-8, 1e-4, 1e-1], 100)
    err = np.repeat([10.0, 1.0, 0.1], 100)
    P.plot_error_vs_density(ax, p, err)
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_ydata(), [10.0, 1.0, 0.1])  # decreasing in p, one point per bin
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_grid_cost_convergence_fractions_and_contours():
    fig, axes = plt.subplots(1, 4)
    P.plot_grid_cost(axes[0], max_dim=784, per_axis=(10, 20))
    assert axes[0].lines[1].get_ydata()[-1] == 784 * np.log10(20)
    curves = {"ULA": np.array([[0, 3.0], [10, 1.0]]), "MALA": np.array([[0, 3.0], [10, 0.5]])}
    P.plot_convergence(axes[1], curves, floor=(0.4, 0.05))
    assert len(axes[1].lines) == 2 and axes[1].lines[1].get_linestyle() == "--"
    bars = P.plot_fractions(axes[2], {"exact": (0.2, 0.01), "ULA": (0.5, 0.02)}, target=0.2)
    assert [b.get_height() for b in bars] == [0.2, 0.5]
    mix = ncsn_mixture()
    cs = P.plot_contours(axes[3], mix.prob, lim=9, n=60)
    assert list(cs.levels) == [1e-4, 1e-2]
    plt.close(fig)
