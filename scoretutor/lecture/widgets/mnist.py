"""Notebook 05's explorer: annealed Langevin on MNIST with sliders for the step size ε and T.

``MNISTSamplerExplorer(model, card)`` samples a small batch (same seed for every setting, so only
ε and T change the picture) on a geometric grid of ``n_levels`` levels between the checkpoint's
σ_max and σ_min, with the final denoising step. ε is set as a multiple of NCSNv2's Technique-4 step
size for that grid and T. Results are cached per setting, and with ``prefetch=True`` (the default)
a background thread computes every slider setting, nearest to the start first, while the lecturer
talks: after that (60 frames, under a minute on a 2-core CPU) every slider move only swaps an image. The
status line reports the network calls and the compute time of the frame.
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from scoretutor import mnist
from scoretutor.lecture.plotting import image_grid
from scoretutor.lecture.widgets.base import Explorer, PrefetchFrames, new_figure
from scoretutor.sampling import LangevinDivergenceError


class MNISTSamplerExplorer(PrefetchFrames, Explorer):
    """Sliders: ``factor`` (ε as a multiple of the NCSNv2 step size, log scale) and ``T``."""

    def __init__(self, model: nn.Module, card: dict, n: int = 8, n_levels: int = 20, seed: int = 0,
                 factor: float = mnist.STEP_SIZE_FACTOR, T: int = mnist.DEFAULT_STEPS_EACH, max_T: int = 4,
                 prefetch: bool = True):
        self.model, self.card, self.n, self.n_levels, self.seed = model, card, n, n_levels, seed
        self._init_frames()
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
        if prefetch:
            self._start_prefetch("mnist-explorer-prefetch")

    @staticmethod
    def _key(factor: float, T: int) -> tuple[float, int]:
        return round(float(factor), 6), int(T)

    def settings_grid(self) -> list[tuple[float, int]]:
        """Every (factor, T) the sliders can show, nearest to the current setting first."""
        f, t = self.sliders["factor"], self.sliders["T"]
        exps = np.arange(f.min, f.max + f.step / 2, f.step)
        keys = [self._key(f.base ** e, T) for e in exps for T in range(t.min, t.max + 1)]
        exponent = lambda value: np.log(value) / np.log(f.base)
        here = (exponent(f.value), t.value)
        return sorted(keys, key=lambda k: abs(exponent(k[0]) - here[0]) / f.step + abs(k[1] - here[1]))

    def _compute(self, factor: float, T: int) -> tuple[np.ndarray, str]:
        settings = mnist.default_settings(self.card, n_steps_each=T, step_size_factor=factor,
                                          n_levels=self.n_levels)
        t0 = time.perf_counter()
        try:
            x = mnist.sample(self.model, self.n, settings, seed=self.seed, progress=False)
            note = ""
        except LangevinDivergenceError:
            x, note = torch.zeros(self.n, 1, 28, 28), " — diverged (ε too large)"
        dt = time.perf_counter() - t0
        return image_grid(x, self.cols), (f"ε = {settings.step_size:.2g}, T = {T}, L = {settings.n_levels}: "
                                          f"{settings.n_score_evals} network calls, {dt * 1e3:.0f} ms{note}")

    def draw(self, factor: float, T: int) -> str:
        grid, text = self._frame(self._key(factor, T))
        self.image_artist.set_data(grid)
        return text
