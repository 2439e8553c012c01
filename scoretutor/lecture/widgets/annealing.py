"""Explorers for notebook 04 (noise to the rescue): the σ trade-off and annealed Langevin.

- :class:`NoiseTradeoffExplorer` (σ slider): the perturbed density p_σ = p ∗ N(0, σ²I) in closed
  form with its score field, next to the error of a score model trained by denoising score
  matching at that single σ, unweighted ‖s_θ − ∇log p_σ‖² and weighted by p_σ (the integrand of the
  Fisher divergence that training actually minimises). Small σ: accurate only where the data is;
  large σ: accurate everywhere, but p_σ has lost the shape of p.
- :class:`AnnealingExplorer` (σ_max, σ_min, L, ε, T sliders): annealed Langevin on a learned
  noise-conditional model, with the samples and their quality (mode weights against the true
  weights, sliced Wasserstein distance to data).

Both precompute what they can, so a slider move only recomputes what it must (see ``benchmarks/
bench_annealed_langevin.py`` for the update latency).
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from torch import nn

from scoretutor import checks
from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.device import make_generator, model_device
from scoretutor.lecture.plotting import DENSITY_CMAP, ERROR_CMAP, SAMPLE_COLOR, grid, style_axes
from scoretutor.lecture.widgets.base import Explorer, new_figure
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.models import StackedScoreMLP
from scoretutor.sampling import LangevinDivergenceError, annealed_langevin
from scoretutor.schedules import geometric_sigmas
from scoretutor.training import cache_path, train_single_sigma_models

Tensor = torch.Tensor

__all__ = [
    "NoiseTradeoffExplorer",
    "AnnealingExplorer",
]


# -- explorer 1: the σ trade-off -----------------------------------------------------------------
class NoiseTradeoffExplorer(Explorer):
    """σ slider: p_σ and its score, and where a model trained at that single σ is accurate.

    Everything is precomputed for the σ values in ``sigmas`` (one DSM-trained model each), so a
    slider move only swaps image data. Readouts per σ: the Fisher divergence E_{p_σ}‖s_θ − ∇log p_σ‖²
    (what training minimises), the unweighted box average of the same error, and the share of the
    box where the model is "accurate" (‖s_θ − ∇log p_σ‖² below 10 % of E_{p_σ}‖∇log p_σ‖²).
    ``cache=True`` (default mixture only) keeps the trained models in :func:`cache_path`, so a
    re-run in class loads them instead of training again.
    """

    def __init__(self, mixture: GaussianMixture | None = None,
                 sigmas: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
                 n_steps: int = 1500, lim: float = 10.0, grid_n: int = 100, quiver_n: int = 17,
                 hidden: int = 64, seed: int = 0, models: StackedScoreMLP | None = None,
                 cache: bool = False):
        self.mixture = mixture if mixture is not None else ncsn_mixture()
        self.sigma_values = checks.sigmas(sigmas, decreasing=False)  # slider order
        self.lim = float(lim)
        path = None
        if cache and mixture is None:  # the default mixture: key the cached run by its settings
            path = cache_path("single-sigma-models", sigmas=self.sigma_values, n_steps=n_steps,
                              hidden=hidden, seed=seed)
        self.models = models if models is not None else train_single_sigma_models(
            self.mixture.sample, self.sigma_values, n_steps, dim=self.mixture.dim, hidden=hidden, seed=seed,
            checkpoint_path=path)
        self._precompute(grid_n, quiver_n)
        self._build_figure()
        start = self.sigma_values[len(self.sigma_values) // 2]
        slider = widgets.SelectionSlider(options=self.sigma_values, value=start, description="σ",
                                         continuous_update=True, layout=widgets.Layout(width="420px"))
        super().__init__({"sigma": slider})

    @torch.no_grad()
    def _precompute(self, grid_n: int, quiver_n: int) -> None:
        _, _, pts = grid(self.lim, grid_n)
        Xq, Yq, qpts = grid(self.lim, quiver_n)
        self.quiver_xy = (Xq, Yq)
        p_sigmas = [self.mixture.perturb(sigma) for sigma in self.sigma_values]
        xs_all = [p.sample(4000, generator=make_generator(k)) for k, p in enumerate(p_sigmas)]
        model_scores = self.models(pts)  # (K, n², 2): model k on the grid
        model_xs = self.models(torch.stack(xs_all))  # (K, 4000, 2): model k on samples of its own p_σk
        area = (2 * self.lim) ** 2
        self.frames = []
        for k, (p_sigma, xs) in enumerate(zip(p_sigmas, xs_all, strict=True)):
            density = p_sigma.log_prob(pts).exp()
            true_xs = p_sigma.score(xs)
            unit = (true_xs**2).sum(-1).mean()  # E_{p_σ}‖∇log p_σ‖², the natural scale
            # errors in that unit; the weighted map p_σ·area·err averages over the box to ≈ the Fisher error
            err = ((model_scores[k] - p_sigma.score(pts)) ** 2).sum(-1) / unit
            weighted = density * area * err
            fisher = ((model_xs[k] - true_xs) ** 2).sum(-1).mean() / unit
            q = p_sigma.score(qpts)
            q = q / (q.norm(dim=-1, keepdim=True) + 1e-12)
            self.frames.append({
                "density": density.reshape(grid_n, grid_n).numpy(),
                "error": err.clamp_min(1e-12).reshape(grid_n, grid_n).numpy(),
                "weighted": weighted.clamp_min(1e-12).reshape(grid_n, grid_n).numpy(),
                "quiver": q.reshape(quiver_n, quiver_n, 2).numpy(),
                "fisher": fisher.item(),
                "box_average": err.mean().item(),
                "accurate": (err < 0.1).double().mean().item(),
            })

    def _build_figure(self) -> None:
        self.fig, axes = new_figure(3, size=3.3)
        ext = (-self.lim, self.lim, -self.lim, self.lim)
        f0 = self.frames[0]
        self.im_density = axes[0].imshow(f0["density"], origin="lower", extent=ext, cmap=DENSITY_CMAP,
                                         interpolation="nearest")
        Xq, Yq = self.quiver_xy
        self.quiver = axes[0].quiver(Xq, Yq, f0["quiver"][..., 0], f0["quiver"][..., 1], color="#f4f4f4",
                                     angles="xy", pivot="mid", scale=25, width=0.005)
        norm = LogNorm(1e-4, 1e2, clip=True)  # errors in units of E_pσ‖∇log p_σ‖²
        self.im_error = axes[1].imshow(f0["error"], origin="lower", extent=ext, cmap=ERROR_CMAP, norm=norm,
                                       interpolation="nearest")
        self.im_weighted = axes[2].imshow(f0["weighted"], origin="lower", extent=ext, cmap=ERROR_CMAP,
                                          norm=norm, interpolation="nearest")
        modes = self.mixture.means.numpy()
        for ax in axes[1:]:
            ax.scatter(modes[:, 0], modes[:, 1], marker="+", c="#2a9df4", s=60, linewidths=1.5)
        cbar = self.fig.colorbar(self.im_weighted, ax=axes[2], fraction=0.046, pad=0.02,
                                 ticks=[1e-4, 1e-2, 1, 1e2])
        cbar.ax.minorticks_off()  # dozens of log-scale minor ticks would double the render time
        titles = ["p_σ and its score", "error ‖s_θ − ∇log p_σ‖²", "weighted by p_σ"]
        for ax, t in zip(axes, titles, strict=True):
            style_axes(ax, self.lim)
            ax.set_title(t, fontsize=9)
        self.axes = axes

    def draw(self, sigma: float) -> str:
        f = self.frames[self.sigma_values.index(sigma)]
        self.im_density.set_data(f["density"])
        self.im_density.set_clim(0, f["density"].max())
        self.quiver.set_UVC(f["quiver"][..., 0], f["quiver"][..., 1])
        self.im_error.set_data(f["error"])
        self.im_weighted.set_data(f["weighted"])
        self.axes[0].set_title(f"p_σ and its score, σ = {sigma:g}", fontsize=9)
        self.axes[1].set_title(f"error: box average {f['box_average']:.3g}", fontsize=9)
        self.axes[2].set_title(f"weighted by p_σ: Fisher {f['fisher']:.3g}", fontsize=9)
        return (f"σ = {sigma:g}: Fisher error E_pσ‖s_θ − ∇log p_σ‖² = {f['fisher']:.3g}, box average "
                f"{f['box_average']:.3g} (units of E_pσ‖∇log p_σ‖²); accurate (error < 0.1) on "
                f"{100 * f['accurate']:.0f}% of the box")


# -- explorer 2: annealed Langevin on the learned model --------------------------------------------
class AnnealingExplorer(Explorer):
    """Sliders σ_max, σ_min, L, ε (``step_size``), T: annealed Langevin on a model.

    ``n_particles`` start from U[−8, 8]² (Song & Ermon's toy) with a fixed seed, so moving a slider
    changes the schedule, not the randomness. The right panel compares the fraction of samples
    nearest each mode (± binomial standard error) with the true weights; the status line gives the
    total-variation mode-weight error ½Σ_k|f_k − w_k| and the sliced Wasserstein distance SW₂ to data.
    """

    def __init__(self, model: nn.Module, mixture: GaussianMixture | None = None, n_particles: int = 300,
                 sigma_max: float = 20.0, sigma_min: float = 1.0, L: int = 10, step_size: float = 0.1,
                 T: int = 10, lim: float = 10.0, seed: int = 0, n_data: int | None = None,
                 n_projections: int = 64, dpi: float = 72):
        self.mixture = mixture if mixture is not None else ncsn_mixture()
        self.score_fn = model.frozen_score() if hasattr(model, "frozen_score") else model
        self.lim, self.seed, self.n_projections = float(lim), int(seed), int(n_projections)
        g = make_generator(seed)
        self.x0 = torch.rand(int(n_particles), self.mixture.dim, generator=g) * 16 - 8
        # sample on the model's device (e.g. a model trained by fit on CUDA); plot and score on the CPU
        self.device = model_device(model)
        # as many data points as particles: SW₂ between equal-size sets is a plain sort (fastest path)
        self.data = self.mixture.sample(int(n_data or n_particles), generator=g)
        self.samples = self.x0
        self.quality: dict[str, float] = {}
        self._build_figure()
        log = lambda v, lo, hi, desc, step=0.05: widgets.FloatLogSlider(
            value=v, base=10, min=lo, max=hi, step=step, description=desc, readout_format=".3g")
        super().__init__({
            "sigma_max": log(sigma_max, -1, 2, "σ_max"),
            "sigma_min": log(sigma_min, -2, 1, "σ_min"),
            "L": widgets.IntSlider(value=L, min=1, max=30, description="L"),
            "step_size": log(step_size, -3, 0, "ε"),
            "T": widgets.IntSlider(value=T, min=1, max=200, description="T"),
        }, dpi=dpi)

    def _build_figure(self) -> None:
        self.fig, (ax, axq) = new_figure(2, size=3.4)
        n = 80
        _, _, pts = grid(self.lim, n)
        with torch.no_grad():
            dens = self.mixture.log_prob(pts).exp().reshape(n, n).numpy()
        ax.imshow(dens, origin="lower", extent=(-self.lim, self.lim, -self.lim, self.lim), cmap="Greys",
                  alpha=0.6, interpolation="nearest")
        self.scatter = ax.scatter(self.x0[:, 0], self.x0[:, 1], s=4, c=SAMPLE_COLOR, alpha=0.7, linewidths=0)
        style_axes(ax, self.lim)
        self.sample_title = ax.set_title("", fontsize=9)
        # quality panel: bars = fraction of samples nearest each mode (± 2 se), black ticks = true weights
        K = self.mixture.n_components
        idx = np.arange(K)
        self.bars = axq.bar(idx, np.zeros(K), width=0.6, color=SAMPLE_COLOR)
        axq.scatter(idx, self.mixture.weights.numpy(), marker="_", s=900, c="k", linewidths=2, zorder=3)
        self.errbars = LineCollection([], colors="k", linewidths=1.2)
        axq.add_collection(self.errbars)
        labels = ([f"({', '.join(f'{v:g}' for v in m)})" for m in self.mixture.means.tolist()]
                  if K <= 4 else [str(i) if i % max(K // 6, 1) == 0 else "" for i in idx])
        axq.set_xticks(idx, labels, fontsize=8)
        axq.set_yticks([0, 0.5, 1])
        axq.set_ylim(0, 1)
        axq.set_xlim(-0.6, K - 0.4)
        self.quality_title = axq.set_title("", fontsize=9)
        self.axes = (ax, axq)

    def draw(self, sigma_max: float, sigma_min: float, L: int, step_size: float, T: int) -> str:
        if not sigma_min < sigma_max:
            return (f"σ_min = {sigma_min:.3g} must be below σ_max = {sigma_max:.3g}: move one of them "
                    "(frame unchanged)")
        sigmas = geometric_sigmas(sigma_max, sigma_min, L)
        try:
            x = annealed_langevin(self.score_fn, self.x0.to(self.device), sigmas, step_size, T,
                                  generator=make_generator(self.seed), progress=False).x.cpu()
        except LangevinDivergenceError:
            x = None
        if x is None or x.abs().max() > 1e3 * self.lim:  # non-finite, or finite but flung far away
            alpha_1 = step_size * (sigmas[0] / sigmas[-1]).item() ** 2
            return (f"diverged with ε = {step_size:.3g} (largest step ε·σ_max²/σ_min² = {alpha_1:.3g}): "
                    "lower ε (frame unchanged)")
        self.samples = x
        self.scatter.set_offsets(x.clamp(-self.lim, self.lim).numpy())
        mf = mode_fractions(x, self.mixture)
        f, se = mf.fractions.numpy(), mf.stderr.numpy()
        for bar, h in zip(self.bars, f, strict=True):
            bar.set_height(h)
        self.errbars.set_segments([[(i, fi - 2 * si), (i, fi + 2 * si)]
                                   for i, (fi, si) in enumerate(zip(f, se, strict=True))])
        tv = 0.5 * float(np.abs(f - self.mixture.weights.numpy()).sum())
        sw = sliced_wasserstein(x, self.data, n_projections=self.n_projections, generator=make_generator(1))
        self.quality = {"mode_weight_error": tv, "sliced_wasserstein": sw}
        if L == 1:  # geometric_sigmas gives the single level σ_max; the σ_min slider has no effect
            schedule = f"a single level σ = {sigma_max:.3g} (σ_min unused)"
            self.sample_title.set_text(f"L=1, σ = {sigma_max:.3g}, ε={step_size:.3g}, T={T}")
        else:
            gamma = (sigma_max / sigma_min) ** (1 / (L - 1))
            schedule = f"σ {sigma_max:.3g}→{sigma_min:.3g} (γ = {gamma:.3f})"
            self.sample_title.set_text(f"L={L}, σ {sigma_max:.3g}→{sigma_min:.3g}, ε={step_size:.3g}, T={T}")
        self.quality_title.set_text(f"mode weights: error {tv:.3f}, SW to data {sw:.2f}")
        weights = ", ".join(f"{v:.3f}±{s:.3f}" for v, s in zip(f, se, strict=True))
        truth = ", ".join(f"{w:.2f}" for w in self.mixture.weights.tolist())
        return (f"L={L} levels, {schedule}, ε={step_size:.3g}, T={T}: "
                f"mode weights {weights} (truth {truth}); "
                f"½Σ|f−w| = {tv:.3f}; SW₂ = {sw:.2f}")
