"""The Langevin explorer (and the explorer base) driven headlessly, as nbmake/CI would."""

import base64

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.layout_engine import ConstrainedLayoutEngine

from scoretutor.densities import GaussianMixture
from scoretutor.lecture.widgets import Explorer, new_figure
from scoretutor.lecture.widgets.langevin import LangevinExplorer
from scoretutor.sampling import langevin

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explorer():
    return LangevinExplorer(n_particles=100, n_steps=20, max_particles=300, max_steps=200, grid_n=40,
                            size=2.5, dpi=50)


def test_first_frame_and_static_fallback(explorer):
    assert explorer.png.startswith(PNG_SIGNATURE) and explorer.n_updates == 1
    bundle = explorer._repr_mimebundle_()
    assert {"text/plain", "image/png", "application/vnd.jupyter.widget-view+json"} <= set(bundle)
    assert base64.b64decode(bundle["image/png"]) == explorer.png
    assert "LangevinExplorer(step_size=0.05, n_steps=20, n_particles=100)" in bundle["text/plain"]
    assert explorer.last_update_s > 0 and set(explorer.last_timings) == {"compute", "encode"}


def test_update_recomputes_the_same_chain_as_the_sampler(explorer):
    explorer.update(step_size=0.1, n_steps=30, n_particles=150)
    # every particle's noise is drawn as for the full max_particles run (so the particles slider
    # slices one run): the first 150 particles of that run
    expected = langevin(explorer.score_fn, explorer.x0, 0.1, 30,
                        generator=torch.Generator().manual_seed(explorer.seed + 1)).x[:150]
    torch.testing.assert_close(explorer.samples, expected)
    np.testing.assert_allclose(explorer.points.get_offsets(), expected.numpy(), rtol=1e-6)
    # trajectories: K + 1 points per drawn path, starting at x0 and ending at the sample
    xdata, ydata = explorer.paths[0].get_data()
    assert len(xdata) == 31
    assert np.allclose([xdata[0], ydata[0]], explorer.x0[0].numpy())
    assert np.allclose([xdata[-1], ydata[-1]], expected[0].numpy())
    assert "nearest-mode fractions" in explorer.status_text


def test_moving_a_slider_rerenders(explorer):
    before, n = explorer.png, explorer.n_updates
    explorer.sliders["n_steps"].value = 60
    assert explorer.n_updates == n + 1 and explorer.png != before
    assert len(explorer.paths[0].get_data()[0]) == 61
    explorer.update(n_steps=60, step_size=0.2)  # several sliders at once: one render
    assert explorer.n_updates == n + 2


def test_divergence_is_reported_not_plotted(explorer):
    explorer.update(step_size=3.0, n_steps=200)  # ε > 2σ² = 2: the chain explodes
    assert "diverged at step" in explorer.status_text and "reduce ε" in explorer.status_text
    assert "ε = 3 " in explorer.status_text  # read from the error's step_size attribute
    assert len(explorer.points.get_offsets()) == 0
    explorer.update(step_size=0.05, n_steps=20)
    assert "diverged" not in explorer.status_text


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown slider"):
        LangevinExplorer(n_particles=50, n_steps=0, max_particles=50, grid_n=20, dpi=30).update(sigma=1.0)
    with pytest.raises(ValueError, match="init"):
        LangevinExplorer(init="corners")


def test_custom_score_and_density():
    mix = GaussianMixture(torch.tensor([[0.0, 0.0]]), 1.0)
    # the particles follow the given score (−2x, the score of N(0, I/2)), not the density's own (−x)
    ex = LangevinExplorer(mix, score_fn=lambda x: -2 * x, lim=4, init="gaussian", n_particles=50,
                          max_particles=50, n_steps=10, grid_n=20, dpi=30)
    assert ex.samples.shape == (50, 2) and ex.png.startswith(PNG_SIGNATURE)
    run = lambda score: langevin(score, ex.x0[:50], 0.05, 10, generator=torch.Generator().manual_seed(1)).x
    torch.testing.assert_close(ex.samples, run(lambda x: -2 * x))
    assert not torch.allclose(ex.samples, run(mix.score))


def test_explorer_base_contract():
    class Counter(Explorer):
        def __init__(self):
            self.fig, (ax,) = new_figure(1, size=1.5)
            self.line = ax.plot([0, 1], [0, 0])[0]
            ax.set_ylim(-1, 1)
            super().__init__({"a": widgets.FloatSlider(value=0.0, min=-1, max=1)}, dpi=30)

        def draw(self, a):
            self.line.set_ydata([0, a])
            return f"a={a:.2f}"

    c = Counter()
    # the first frame's constrained layout is frozen, so later frames skip the layout pass
    assert not isinstance(c.fig.get_layout_engine(), ConstrainedLayoutEngine)
    first = c.png
    c.update(a=0.5)
    assert c.png != first and c.status_text == "a=0.50" and "a=0.50" in c.status.value
    assert list(c.line.get_ydata()) == [0, 0.5]
    with pytest.raises(ValueError, match="at least one slider"):
        Explorer({}, figure=new_figure()[0])
    with pytest.raises(ValueError, match="Figure"):
        Explorer({"a": widgets.FloatSlider()})
    with pytest.raises(NotImplementedError):
        Explorer({"a": widgets.FloatSlider()}, figure=new_figure()[0])


def test_mode_fractions_stay_put_as_k_grows():
    # notebook 03 §6: "raise K and watch the mode fractions in the status line stay put". Uniform starts on
    # [−8, 8]² split about half and half between the basins, and no particle crosses the 23–25-nat barrier
    # (e^24 time units ≈ 10^11 steps at ε = 0.1), so the (−5,−5) share stays ≈ 0.5, not the true 0.2,
    # at K = 200 and at K = 1000 alike (1000 particles: standard error 0.016).
    from scoretutor.densities import ncsn_mixture
    from scoretutor.metrics import mode_fractions

    mix = ncsn_mixture()
    ex = LangevinExplorer(mix, lim=8.0, init="uniform", step_size=0.1, n_steps=200, n_particles=1000,
                          grid_n=20, dpi=30)
    shares = {}
    for k in (200, 1000):
        ex.update(n_steps=k)
        shares[k] = mode_fractions(ex.samples, mix).fractions[0].item()
        assert "nearest-mode fractions" in ex.status_text and "target 0.20, 0.80" in ex.status_text
    assert all(s > 0.35 for s in shares.values()), shares
    assert abs(shares[1000] - shares[200]) < 0.03, shares  # the same particles, each kept in its basin
