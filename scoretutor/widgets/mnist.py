"""Notebook 05's explorer: annealed Langevin on MNIST with sliders for the step size ε and T.

``MNISTSamplerExplorer(model, card)`` samples a small batch (same seed for every setting, so only
ε and T change the picture) on a geometric grid of ``n_levels`` levels between the checkpoint's
σ_max and σ_min, with the final denoising step. ε is set as a multiple of NCSNv2's Technique-4 step
size for that grid and T. Results are cached per setting, so moving back to a setting is instant;
the status line reports the network calls and the compute time of the frame.
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from scoretutor import mnist
from scoretutor.plotting import image_grid
from scoretutor.sampling import LangevinDivergenceError
from scoretutor.widgets.base import Explorer, new_figure


class MNISTSamplerExplorer(Explorer):
    """Sliders: ``factor`` (ε as a multiple of the NCSNv2 step size, log scale) and ``T``."""

    def __init__(self, model: nn.Module, card: dict, n: int = 8, n_levels: int = 20, seed: int = 0,
                 factor: float = mnist.STEP_SIZE_FACTOR, T: int = mnist.DEFAULT_STEPS_EACH, max_T: int = 4):
        self.model, self.card, self.n, self.n_levels, self.seed = model, card, n, n_levels, seed
        self.cache: dict[tuple[float, int], tuple[np.ndarray, str]] = {}
        self.cols = min(n, 8)
        self.fig, (ax,) = new_figure(1, size=2.2)
        self.fig.set_size_inches(0.55 * self.cols + 0.2, 0.55 * -(-n // self.cols) + 0.2)
        self.image_artist = ax.imshow(np.zeros((28 * -(-n // self.cols), 28 * self.cols)), cmap="gray",
                                      vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        super().__init__({
            "factor": widgets.FloatLogSlider(value=factor, base=2, min=-2, max=5, step=0.5,
                                             description="ε / ε_NCSNv2", continuous_update=False),
            "T": widgets.IntSlider(value=T, min=1, max=max_T, description="T", continuous_update=False),
        })

    def draw(self, factor: float, T: int) -> str:
        key = (round(float(factor), 6), int(T))
        if key not in self.cache:
            settings = mnist.default_settings(self.card, n_steps_each=int(T), step_size_factor=float(factor),
                                              n_levels=self.n_levels)
            t0 = time.perf_counter()
            try:
                x = mnist.sample(self.model, self.n, settings, seed=self.seed, progress=False)
                note = ""
            except LangevinDivergenceError:
                x, note = torch.zeros(self.n, 1, 28, 28), " — diverged (ε too large)"
            dt = time.perf_counter() - t0
            self.cache[key] = (image_grid(x, self.cols), f"ε = {settings.step_size:.2g}, T = {T}, "
                               f"L = {settings.n_levels}: {settings.n_score_evals} network calls, "
                               f"{dt * 1e3:.0f} ms{note}")
        grid, text = self.cache[key]
        self.image_artist.set_data(grid)
        return text
