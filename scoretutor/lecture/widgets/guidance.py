"""Notebook 08's explorers: guidance on MNIST digits, class × guidance scale.

``DigitGuidanceExplorer(model, card)`` draws ``n`` digits of the chosen class with classifier-free guidance of
scale γ (the shipped class-conditional model; same seed for every setting, so only the class and γ change the
picture) and reads them with the shipped judge. Frames are cached per setting and, with ``prefetch=True``,
computed in a background thread while the lecturer talks
(:class:`~scoretutor.lecture.widgets.base.PrefetchFrames`).
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np
from torch import nn

from scoretutor.lecture.plotting import image_grid
from scoretutor.lecture.widgets.base import Explorer, PrefetchFrames, new_figure
from scoretutor.mnist.classifier import classify, load_classifier
from scoretutor.mnist.guidance import sample_guided


class DigitGuidanceExplorer(PrefetchFrames, Explorer):
    """Sliders: ``digit`` (the class asked for) and ``guidance`` γ (0: unconditional, 1: conditional,
    > 1: sharper)."""

    def __init__(self, model: nn.Module, card: dict, n: int = 16, n_calls: int = 30, seed: int = 0,
                 digit: int = 3, guidance: float = 2.0, max_guidance: float = 4.0, prefetch: bool = True):
        self.model, self.card, self.n, self.n_calls, self.seed = model, card, n, n_calls, seed
        self.judge = load_classifier(device="cpu")
        self._init_frames()
        self.cols = min(n, 8)
        rows = -(-n // self.cols)
        self.fig, (ax,) = new_figure(1, size=2.2)
        self.fig.set_size_inches(0.55 * self.cols + 0.2, 0.55 * rows + 0.2)
        self.image_artist = ax.imshow(np.zeros((28 * rows, 28 * self.cols)), cmap="gray", vmin=0, vmax=1,
                                      interpolation="nearest")
        ax.set_axis_off()
        super().__init__({
            "digit": widgets.IntSlider(value=digit, min=0, max=9, description="digit y",
                                       continuous_update=False),
            "guidance": widgets.FloatSlider(value=guidance, min=0.0, max=max_guidance, step=0.5,
                                            description="guidance γ", continuous_update=False),
        })
        if prefetch:
            self._start_prefetch("guidance-explorer-prefetch")

    @staticmethod
    def _key(digit: int, guidance: float) -> tuple[int, float]:
        return int(digit), round(float(guidance), 6)

    def settings_grid(self) -> list[tuple[int, float]]:
        """Every (digit, γ) the sliders can show, nearest to the current setting first."""
        g = self.sliders["guidance"]
        gammas = np.arange(g.min, g.max + g.step / 2, g.step)
        keys = [self._key(d, w) for d in range(10) for w in gammas]
        here = self._key(self.sliders["digit"].value, g.value)
        return sorted(keys, key=lambda k: (k[0] != here[0], abs(k[0] - here[0]), abs(k[1] - here[1])))

    def _compute(self, digit: int, guidance: float) -> tuple[np.ndarray, str]:
        t0 = time.perf_counter()
        x = sample_guided(self.model, self.card, [digit] * self.n, guidance, "free", n_calls=self.n_calls,
                          seed=self.seed).cpu()
        dt = time.perf_counter() - t0
        probs, _ = classify(self.judge, x)
        read = int((probs.argmax(1) == digit).sum())
        spread = (x.flatten(1) - x.flatten(1).mean(0)).norm(dim=1).mean().item()
        text = (f"y = {digit}, γ = {guidance:g}: {read}/{self.n} read as {digit} by the judge · "
                f"spread {spread:.1f} · {self.n_calls} calls, {dt:.1f} s")
        return image_grid(x, self.cols), text

    def draw(self, digit: int, guidance: float) -> str:
        grid, text = self._frame(self._key(digit, guidance))
        self.image_artist.set_data(grid)
        return text
