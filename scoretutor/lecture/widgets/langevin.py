"""Notebook 03's explorer: Langevin particles and a few trajectories over the target density.

Sliders: step size ε (``step_size``, log scale), number of steps K and number of particles. Each
update shows x_{i+1} = x_i + ε·∇log p(x_i) + √(2ε)·z_i from the same starting points with the same
noise seed (so moving a slider changes the picture smoothly, not by resampling), and updates the
scatter and trajectory lines in place. A diverging chain is reported in the status line instead of
plotted. Runs are cached and prefetched (:mod:`scoretutor.lecture.widgets.chains`), so a slider move
usually costs only the redraw, also at notebook 03's 1000 particles and K = 400–1000.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import torch

from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.lecture.plotting import SAMPLE_COLOR, plot_density, style_axes
from scoretutor.lecture.widgets.base import Explorer, new_figure
from scoretutor.lecture.widgets.chains import ChainCache, LangevinChain
from scoretutor.metrics import mode_fractions

Tensor = torch.Tensor
TRAJECTORY_COLORS = ["#ffffff", "#7fffd4", "#ffd166", "#ef476f", "#06d6a0", "#a0c4ff", "#ffadad", "#caffbf"]


class LangevinExplorer(Explorer):
    """ε / K / n-particles explorer for Langevin dynamics with a known (or learned) score.

    Args:
        density: the target; its ``log_prob`` draws the background and, if ``score_fn`` is None,
            its ``score`` drives the particles. Defaults to ``ncsn_mixture()``.
        score_fn: the score to sample with (e.g. a trained network); defaults to ``density.score``.
        lim: half-width of the square view [−lim, lim]².
        init: "uniform" (over the view, as in Song & Ermon 2019 Fig. 3) or "gaussian" (N(0, (lim/2)²I)).
        step_size, n_steps, n_particles: initial slider values (step_size is ε);
            ``max_steps``/``max_particles`` their ranges.
        n_trajectories: how many particles have their path drawn.
        seed: fixes the starting points and the Langevin noise.
    """

    def __init__(self, density: GaussianMixture | None = None,
                 score_fn: Callable[[Tensor], Tensor] | None = None, lim: float = 8.0, init: str = "uniform",
                 step_size: float = 0.05, n_steps: int = 100, n_particles: int = 500, max_steps: int = 1000,
                 max_particles: int = 2000, n_trajectories: int = 6, seed: int = 0, grid_n: int = 150,
                 size: float = 4.2, dpi: float = 80):
        if init not in ("uniform", "gaussian"):
            raise ValueError(f"init must be 'uniform' or 'gaussian', got {init!r}")
        if not (0 < n_particles <= max_particles) or not (0 <= n_steps <= max_steps):
            raise ValueError(f"need 0 < n_particles={n_particles} <= max_particles={max_particles} and "
                             f"0 <= n_steps={n_steps} <= max_steps={max_steps}")
        if not 0 <= n_trajectories <= len(TRAJECTORY_COLORS):
            raise ValueError(f"n_trajectories must be in [0, {len(TRAJECTORY_COLORS)}], got {n_trajectories}")
        self.density = density if density is not None else ncsn_mixture()
        self.score_fn = score_fn if score_fn is not None else self.density.score
        self.lim, self.seed, self.n_trajectories = float(lim), seed, n_trajectories
        g = torch.Generator().manual_seed(seed)
        if init == "uniform":
            self.x0 = (2 * torch.rand(max_particles, 2, generator=g) - 1) * self.lim
        else:
            self.x0 = torch.randn(max_particles, 2, generator=g) * self.lim / 2
        self.x0 = self.x0.to(self.density.means.device, self.density.means.dtype)
        self.samples: Tensor = self.x0[:n_particles]

        self.fig, (ax,) = new_figure(1, size=size)
        plot_density(ax, self.density.log_prob, self.lim, grid_n)
        self.points = ax.scatter(np.zeros(0), np.zeros(0), s=4, c=SAMPLE_COLOR, alpha=0.7, linewidths=0)
        self.paths = [ax.plot([], [], "-", lw=0.8, color=c, alpha=0.9)[0]
                      for c in TRAJECTORY_COLORS[:n_trajectories]]
        self.starts = ax.scatter(np.zeros(0), np.zeros(0), s=14, marker="o", facecolors="none",
                                 edgecolors="white", linewidths=0.8)
        style_axes(ax, self.lim, "Langevin particles over p(x)")
        self.ax = ax
        sliders = {
            "step_size": widgets.FloatLogSlider(value=step_size, base=10, min=-3, max=0.5, step=0.05,
                                                description="ε", readout_format=".3g",
                                                continuous_update=False),
            "n_steps": widgets.IntSlider(value=n_steps, min=0, max=max_steps, step=10, description="K",
                                         continuous_update=False),
            "n_particles": widgets.IntSlider(value=n_particles, min=50, max=max_particles, step=50,
                                             description="particles", continuous_update=False),
        }
        self._cache = ChainCache(self._chain)
        super().__init__(sliders, dpi=dpi)

    def _chain(self, step_size: float, n: int) -> LangevinChain:
        return LangevinChain(self.score_fn, self.x0, step_size, n, seed=self.seed + 1,
                             n_paths=self.n_trajectories,
                             every=self.sliders["n_steps"].step if hasattr(self, "sliders") else 10)

    def _neighbours(self, step_size: float) -> list[float]:
        """The ε values one slider step below and above (what a key press or a short drag asks next)."""
        s = self.sliders["step_size"]
        e = math.log(step_size, s.base)
        return [s.base ** v for v in (e - s.step, e + s.step) if s.min <= v <= s.max]

    def draw(self, step_size: float, n_steps: int, n_particles: int) -> str:
        # Runs are cached by ε (see scoretutor.lecture.widgets.chains): moving K extends or replays a cached
        # run, fewer particles slice it, and the runs for the neighbouring ε are prefetched.
        chain = self._cache.get(step_size, n_particles)
        x = self._cache.run(chain, n_steps)
        if hasattr(self, "sliders"):  # likely next moves: ε ± one slider step, then more particles
            more = self.sliders["n_particles"]
            jobs = [(e, chain.n) for e in self._neighbours(step_size)]
            if chain.n < more.max:
                jobs.append((step_size, min(chain.n + more.step, more.max)))
            self._cache.prefetch(jobs, n_steps)
        if x is None:
            self.points.set_offsets(np.zeros((0, 2)))
            for line in self.paths:
                line.set_data([], [])
            self.starts.set_offsets(np.zeros((0, 2)))
            return f"diverged at step {chain.diverged_at} of {n_steps} with ε = {step_size:.3g} — reduce ε"
        x = x[:n_particles]
        self.samples = x
        xs = x.detach().float().cpu().numpy()
        self.points.set_offsets(xs)
        trail = chain.trajectories(n_steps).float().cpu().numpy()  # (K + 1, k, 2)
        for j, line in enumerate(self.paths):
            line.set_data(trail[:, j, 0], trail[:, j, 1])
        self.starts.set_offsets(trail[0])
        outside = float((np.abs(xs) > self.lim).any(1).mean())
        text = f"ε = {step_size:.3g}, K = {n_steps}, {n_particles} particles"
        if self.density.n_components <= 4:
            mf = mode_fractions(x, self.density)
            text += " · nearest-mode fractions " + ", ".join(
                f"{f:.2f} ± {s:.2f}" for f, s in zip(mf.fractions.tolist(), mf.stderr.tolist(), strict=True))
            text += " (target " + ", ".join(f"{w:.2f}" for w in self.density.weights.tolist()) + ")"
        if outside > 0:
            text += f" · {outside:.0%} outside the view"
        return text
