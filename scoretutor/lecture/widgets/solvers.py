"""Notebook 07's explorer: an ODE solver and its number of network calls, paths drawn over the density.

Sliders: the solver (Euler in t, DDIM, Heun on Karras's grid, DPM-Solver++(2M)) and the number of network
calls N. Every frame solves the VP probability-flow ODE with the **exact** score of the 2-D mixture from the
same starting points x_1 ~ p_1, so all that changes between frames is the solver's discretisation: the
status line gives the (−5, −5) mode's share and the median distance of the endpoints to a very fine solve
from the same starts (DPM-Solver++(2M) with 1,024 calls).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.diffusion.sde import VPSDE, marginal_mixture, mixture_score_fn
from scoretutor.diffusion.solvers import SOLVERS, run_solver
from scoretutor.lecture.plotting import SAMPLE_COLOR, plot_density, style_axes
from scoretutor.lecture.widgets.base import Explorer, new_figure
from scoretutor.lecture.widgets.langevin import TRAJECTORY_COLORS
from scoretutor.metrics import mode_fractions

ODE_SOLVERS = [name for name, (kind, _, _) in SOLVERS.items() if kind == "ode"]
CALLS = [2, 4, 8, 16, 32, 64, 128]
REFERENCE_CALLS = 1024


class SolverExplorer(Explorer):
    """Solver × network-calls explorer for the probability-flow ODE on the 2-D mixture (exact score).

    Args:
        n_points: starting points x_1 ~ p_1 (all solved every frame; a few hundred keep a frame fast).
        n_trajectories: how many of them have their path drawn.
        solver, n_calls: initial slider values.
        seed: fixes the starting points.
    """

    def __init__(self, n_points: int = 400, n_trajectories: int = 8, solver: str = "DDIM", n_calls: int = 8,
                 seed: int = 0, lim: float = 9.0, size: float = 4.2, dpi: float = 80):
        if solver not in ODE_SOLVERS or n_calls not in CALLS:
            raise ValueError(f"solver must be one of {ODE_SOLVERS} and n_calls one of {CALLS}, "
                             f"got {solver!r}, {n_calls!r}")
        if not 0 <= n_trajectories <= min(len(TRAJECTORY_COLORS), n_points):
            raise ValueError(f"n_trajectories must be in [0, {min(len(TRAJECTORY_COLORS), n_points)}], "
                             f"got {n_trajectories}")
        self.mix, self.sde = ncsn_mixture(dtype=torch.float64), VPSDE(beta_min=0.1, beta_max=20.0)
        self.score = mixture_score_fn(self.mix, self.sde)
        g = torch.Generator().manual_seed(seed)
        self.x1 = marginal_mixture(self.mix, self.sde, 1.0).sample(n_points, g)
        self.reference = run_solver("DPM-Solver++(2M)", self.score, self.sde, self.x1, REFERENCE_CALLS).x
        self.n_trajectories, self.lim = n_trajectories, float(lim)
        self.samples = self.x1

        self.fig, (ax,) = new_figure(1, size=size)
        plot_density(ax, self.mix.log_prob, self.lim, 150)
        self.points = ax.scatter(np.zeros(0), np.zeros(0), s=5, c=SAMPLE_COLOR, alpha=0.8, linewidths=0)
        self.paths = [ax.plot([], [], ".-", lw=0.9, ms=3, color=c, alpha=0.9)[0]
                      for c in TRAJECTORY_COLORS[:n_trajectories]]
        style_axes(ax, self.lim, "probability-flow ODE paths, exact score")
        sliders = {
            "solver": widgets.SelectionSlider(options=ODE_SOLVERS, value=solver, description="solver",
                                              continuous_update=False,
                                              layout=widgets.Layout(width="420px")),
            "n_calls": widgets.SelectionSlider(options=CALLS, value=n_calls, description="calls N",
                                               continuous_update=False),
        }
        super().__init__(sliders, dpi=dpi)

    def draw(self, solver: str, n_calls: int) -> str:
        out = run_solver(solver, self.score, self.sde, self.x1, n_calls, return_trajectory=True)
        self.samples = out.x
        self.points.set_offsets(out.x.float().numpy())
        path = out.trajectory.float().numpy()  # (steps + 1, n, 2): one dot per step
        for j, line in enumerate(self.paths):
            line.set_data(path[:, j, 0], path[:, j, 1])
        share = mode_fractions(out.x, self.mix)
        error = (out.x - self.reference).norm(dim=-1).median().item()
        return (f"{solver}, {out.n_score_evals} calls · (−5,−5) share {share.fractions[0]:.2f} ± "
                f"{share.stderr[0]:.2f} (target 0.20) · median distance to a {REFERENCE_CALLS}-call solve "
                f"{error:.2g}")
