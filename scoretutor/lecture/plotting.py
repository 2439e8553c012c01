"""Shared 2D figures: density heat maps, energy contours, score fields, sample scatters.

Every function draws on a given matplotlib ``Axes`` and returns the artist it made, so widgets
can later update that artist's data instead of rebuilding the figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

Tensor = torch.Tensor
Lim = float | tuple[float, float, float, float]

DENSITY_CMAP = "magma"
ENERGY_CMAP = "viridis"
ERROR_CMAP = "inferno"
SAMPLE_COLOR = "#2a9df4"
SCORE_COLOR = "#f4f4f4"


def _extent(lim: Lim) -> tuple[float, float, float, float]:
    if isinstance(lim, int | float):
        return (-float(lim), float(lim), -float(lim), float(lim))
    if len(lim) != 4:
        raise ValueError(f"lim must be a number or (xmin, xmax, ymin, ymax), got {lim}")
    return tuple(float(v) for v in lim)  # type: ignore[return-value]


def grid(lim: Lim = 8.0, n: int = 200, dtype: torch.dtype | None = None, device=None
         ) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """An n×n grid over the box: returns (X, Y) numpy meshes and the (n·n, 2) points tensor."""
    if n < 2:
        raise ValueError(f"grid needs n >= 2 points per axis, got {n}")
    x0, x1, y0, y1 = _extent(lim)
    xs = torch.linspace(x0, x1, n, dtype=dtype, device=device)
    ys = torch.linspace(y0, y1, n, dtype=dtype, device=device)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=-1)
    return X.cpu().numpy(), Y.cpu().numpy(), pts


@torch.no_grad()
def evaluate_on_grid(fn: Callable[[Tensor], Tensor], lim: Lim = 8.0, n: int = 200,
                     device=None) -> np.ndarray:
    """fn evaluated on an n×n grid, reshaped to (n, n) (or (n, n, k) for vector outputs)."""
    _, _, pts = grid(lim, n, device=device)
    out = fn(pts).detach().float().cpu().numpy()
    return out.reshape(n, n, *out.shape[1:])


def style_axes(ax: plt.Axes, lim: Lim = 8.0, title: str | None = None) -> plt.Axes:
    x0, x1, y0, y1 = _extent(lim)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=11)
    return ax


def plot_image(ax: plt.Axes, values: np.ndarray, lim: Lim = 8.0, cmap: str = DENSITY_CMAP,
               title: str | None = None, colorbar: bool = False, **kwargs):
    """A heat map of precomputed (n, n) values over the box."""
    kwargs.setdefault("interpolation", "bilinear")
    im = ax.imshow(values, origin="lower", extent=_extent(lim), cmap=cmap, aspect="equal", **kwargs)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    style_axes(ax, lim, title)
    return im


def plot_density(ax: plt.Axes, log_prob: Callable[[Tensor], Tensor], lim: Lim = 8.0, n: int = 200,
                 log_scale: bool = False, title: str | None = None, **kwargs):
    """Heat map of p(x) (or log p(x) with ``log_scale=True``) from a log-density function."""
    lp = evaluate_on_grid(log_prob, lim, n)
    return plot_image(ax, lp if log_scale else np.exp(lp), lim, DENSITY_CMAP, title, **kwargs)


def plot_energy(ax: plt.Axes, energy: Callable[[Tensor], Tensor], lim: Lim = 8.0, n: int = 200,
                levels: int = 20, title: str | None = None, filled: bool = True):
    """Contours of the energy f(x) (low energy = high density)."""
    X, Y, _ = grid(lim, n)
    f = evaluate_on_grid(energy, lim, n)
    draw = ax.contourf if filled else ax.contour
    cs = draw(X, Y, f, levels=levels, cmap=ENERGY_CMAP)
    style_axes(ax, lim, title)
    return cs


def plot_score_field(ax: plt.Axes, score: Callable[[Tensor], Tensor], lim: Lim = 8.0, n: int = 20,
                     normalize: bool = True, color: str = SCORE_COLOR, title: str | None = None,
                     **kwargs):
    """Quiver plot of the score ∇ₓ log p on an n×n grid (arrows normalised to show direction)."""
    X, Y, pts = grid(lim, n)
    with torch.no_grad():
        s = score(pts).detach().float().cpu().numpy().reshape(n, n, 2)
    if normalize:
        s = s / (np.linalg.norm(s, axis=-1, keepdims=True) + 1e-12)
    q = ax.quiver(X, Y, s[..., 0], s[..., 1], color=color, angles="xy", pivot="mid", **kwargs)
    style_axes(ax, lim, title)
    return q


def plot_samples(ax: plt.Axes, x: Tensor | np.ndarray, lim: Lim | None = 8.0, s: float = 3.0,
                 color: str = SAMPLE_COLOR, alpha: float = 0.6, title: str | None = None, **kwargs):
    """Scatter of 2D samples of shape (n, 2)."""
    x = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_samples needs points of shape (n, 2), got {x.shape}")
    sc = ax.scatter(x[:, 0], x[:, 1], s=s, c=color, alpha=alpha, linewidths=0, **kwargs)
    if lim is not None:
        style_axes(ax, lim, title)
    return sc


def figure_row(n: int, size: float = 3.6, titles: Sequence[str] | None = None):
    """A row of n square panels: returns (fig, axes) with axes always a list."""
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False, layout="constrained")
    axes = list(axes[0])
    for ax, t in zip(axes, titles or [], strict=False):
        ax.set_title(t, fontsize=11)
    return fig, axes


# -- lecture figures: the notebooks' recurring plots in one call each ----------------------------
def plot_contours(ax: plt.Axes, prob: Callable[[Tensor], Tensor], lim: Lim = 8.0, n: int = 120,
                  levels: Sequence[float] = (1e-4, 1e-2), color: str = "w", **kwargs):
    """Iso-density lines of p (default: p = 10⁻⁴ and 10⁻², "where the data live")."""
    X, Y, _ = grid(lim, n)
    kwargs.setdefault("linewidths", 0.7)
    return ax.contour(X, Y, evaluate_on_grid(prob, lim, n), levels=list(levels), colors=color, **kwargs)


def sample_panels(samples: dict[str, Tensor], lim: Lim = 8.0, size: float = 3.2, s: float = 2.0,
                  background: Callable[[Tensor], Tensor] | None = None):
    """One scatter panel per entry (title = key), optionally over the density ``background`` (log p)."""
    fig, axes = figure_row(len(samples), size=size)
    for ax, (title, x) in zip(axes, samples.items(), strict=True):
        if background is not None:
            plot_image(ax, np.exp(evaluate_on_grid(background, lim, 100)), lim, cmap="Greys", alpha=0.5)
        plot_samples(ax, x, lim, s=s, title=title)
    return fig, axes


def plot_loss(ax: plt.Axes, history: Sequence[float], window: int = 25, title: str = "training loss",
              ylabel: str = "loss"):
    """A loss history (faint) and its moving average over ``window`` steps."""
    h = np.asarray(history, dtype=float)
    ax.plot(h, lw=0.5, alpha=0.4, color="C0")
    w = max(1, min(int(window), len(h)))
    ax.plot(np.arange(w - 1, len(h)), np.convolve(h, np.ones(w) / w, mode="valid"), lw=1.5, color="C0")
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    return ax


def plot_mean_se(ax: plt.Axes, x, series: dict[str, tuple], reference: tuple[float, str] | None = None,
                 xlabel: str = "", ylabel: str = "", log: bool = False):
    """Curves with ±2 standard-error bars: ``series = {label: (means, standard_errors)}``.

    ``reference = (value, label)`` adds a dotted horizontal line (e.g. the value theory predicts).
    """
    for label, (mean, se) in series.items():
        ax.errorbar(x, mean, yerr=2 * np.asarray(se), marker="o", ms=4, capsize=3, label=label)
    if reference is not None:
        ax.axhline(reference[0], color="k", ls=":", label=reference[1])
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if log:
        ax.set(xscale="log", yscale="log")
    ax.legend(fontsize=8)
    return ax


def plot_error_vs_density(ax: plt.Axes, p_grid: np.ndarray, err_grid: np.ndarray, n_bins: int = 16,
                          min_count: int = 20):
    """Median score error in log-spaced bins of the density (bins with < ``min_count`` cells dropped)."""
    p, e = np.asarray(p_grid).ravel(), np.asarray(err_grid).ravel()
    bins = np.logspace(-10, np.log10(p.max()), n_bins)
    which = np.digitize(p, bins, right=True)  # bins[b-1] < p <= bins[b]: the densest cell is kept
    keep = [b for b in range(1, len(bins)) if (which == b).sum() >= min_count]
    centres = [math.sqrt(bins[b - 1] * bins[b]) for b in keep]
    ax.loglog(centres, [np.median(e[which == b]) for b in keep], "o-")
    ax.set(xlabel="p(x)", ylabel="median error ‖s_θ − ∇log p‖", title="error against density")
    return ax


def plot_grid_cost(ax: plt.Axes, max_dim: int = 784, per_axis: Sequence[int] = (10, 20, 100)):
    """log₁₀ of the number of grid points n^d needed to integrate over d dimensions."""
    dims = np.arange(1, max_dim + 1)
    for n in per_axis:
        ax.semilogx(dims, dims * math.log10(n), label=f"{n} points per axis")
    ax.axhline(80, color="gray", ls="--")
    ax.text(1.1, 110, "atoms in the universe ≈ 10^80", color="gray")
    ax.axvline(max_dim, color="k", ls=":")
    ax.set(xlabel="dimension d", ylabel="log10(grid points)", title="The cost of computing Z on a grid")
    ax.legend()
    return ax


def plot_convergence(ax: plt.Axes, curves: dict[str, np.ndarray], floor: tuple[float, float]):
    """Distance-to-target curves (rows of (step, distance)) on log axes, with the noise floor ±2 sd."""
    colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(curves) - 1, 1))).tolist() + ["#d62728"]
    for (name, c), color in zip(curves.items(), colors, strict=False):
        ax.plot(np.maximum(c[:, 0], 0.7), c[:, 1], marker="o", ms=3, color=color, label=name,
                ls="--" if name.startswith("MALA") else "-")
    mean, sd = floor
    ax.axhspan(mean - 2 * sd, mean + 2 * sd, color="0.8", label="exact samples (noise floor)")
    ax.set(xscale="log", yscale="log", xlabel="Langevin step (step 0 at 0.7)", ylabel="SW₂ to p")
    ax.legend(fontsize=8)
    return ax


def plot_fractions(ax: plt.Axes, fractions: dict[str, tuple[float, float]], target: float,
                   ylabel: str = "fraction in the small mode (±2 se)"):
    """Bars of measured fractions ``{name: (value, standard_error)}`` against a dotted target line."""
    names = list(fractions)
    vals, ses = zip(*fractions.values(), strict=True)
    colors = [f"C{i}" for i in range(len(names))]
    bars = ax.bar(names, vals, yerr=[2 * s for s in ses], capsize=4, color=colors)
    ax.axhline(target, color="k", ls=":", label=f"target {target:g}")
    ax.set(ylabel=ylabel, ylim=(0, max(0.65, 1.2 * max(vals))))
    ax.legend(fontsize=8)
    return bars


# =============================================================================================
# Images (issue 9): digits as one grid image
# =============================================================================================
def image_grid(x: Tensor, cols: int = 8) -> np.ndarray:
    """(N, 1, H, W) → one (rows·H, cols·W) array, row by row, empty cells padded with 0."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, 1, H, W), got {tuple(x.shape)}")
    n, _, h, w = x.shape
    cols = max(1, min(int(cols), n))
    rows = -(-n // cols)
    pad = torch.zeros(rows * cols - n, 1, h, w, dtype=x.dtype)
    full = torch.cat([x.detach().cpu(), pad]).reshape(rows, cols, h, w)
    return full.permute(0, 2, 1, 3).reshape(rows * h, cols * w).float().numpy()


def plot_digits(ax: plt.Axes, x: Tensor, cols: int = 8, title: str | None = None) -> plt.Axes:
    """Show (N, 1, H, W) images in [0, 1] as a grid, white on black, without axes."""
    ax.imshow(image_grid(x, cols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_sampler_comparison(ax: plt.Axes, table: dict, metric: str = "frechet", label: str | None = None
                            ) -> plt.Axes:
    """One metric of :func:`scoretutor.mnist.quality.sampler_comparison`: each sampler's figure for every
    seed (dots) and their mean ± sd (bar), over the real digits' mean ± sd (grey band) at the same n."""
    mean, sd = table["real"][metric]
    ax.axhspan(mean - sd, mean + sd, color="0.85", label=f"real test digits (± sd, n = {table['n']:,})")
    ax.axhline(mean, color="0.4", lw=1)
    for i, figures in enumerate(table["samplers"].values()):
        values = np.asarray(figures[metric], dtype=float)
        ax.plot(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, "o", color=f"C{i}",
                alpha=0.6)
        ax.errorbar(i + 0.22, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0, fmt="s",
                    color=f"C{i}", capsize=4)
    ax.set_xticks(range(len(table["samplers"])), list(table["samplers"]))
    ax.set_xlim(-0.6, len(table["samplers"]) - 0.4)
    ax.set_ylabel(label or metric)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_quality_curve(ax: plt.Axes, curve: dict, metric: str = "frechet", real: tuple | None = None,
                       reference: tuple[float, list[float], str] | None = None, label: str | None = None
                       ) -> plt.Axes:
    """Quality against network calls: ``curve`` maps solver → {calls: {metric: figure}} (one line each);
    ``real`` = (mean, sd) of real digits (grey band); ``reference`` = (calls, figures over seeds, name), a
    sampler drawn as its mean ± sd at its own number of calls."""
    if real is not None:
        ax.axhspan(real[0] - real[1], real[0] + real[1], color="0.85", label="real test digits (± sd)")
    for name, points in curve.items():
        calls = sorted(points, key=int)
        ax.plot([int(c) for c in calls], [points[c][metric] for c in calls], "o-", label=name)
    if reference is not None:
        calls, values, name = reference
        ax.errorbar([calls], [np.mean(values)], yerr=[np.std(values, ddof=1)], fmt="ks", capsize=4,
                    label=name)
    ax.set_xscale("log")
    ax.set_xlabel("network calls per digit")
    ax.set_ylabel(label or metric)
    ax.legend(fontsize=8)
    return ax


# =============================================================================================
# Inverse problems (notebook 08): truth | measurement | posterior samples | posterior mean
# =============================================================================================
def plot_inverse_problem(ax: plt.Axes, truth: Tensor, measurement: Tensor, samples: Tensor,
                         mean: Tensor | None = None, n_show: int = 3, gap: int = 2,
                         title: str | None = None, mean_label: str | None = None) -> plt.Axes:
    """One row per digit: the truth (N, 1, H, W), the measurement (N, 1, h, w with h | H, shown
    nearest-neighbour upsampled), the first ``n_show`` of the k posterior samples (N, k, 1, H, W) and,
    if given, a posterior mean (N, 1, H, W), labelled ``mean_label`` (default "mean of k"; e.g. "Tweedie");
    white on black in [0, 1], columns separated by ``gap`` grey pixels."""
    if truth.ndim != 4 or truth.shape[1] != 1:
        raise ValueError(f"truth must have shape (N, 1, H, W), got {tuple(truth.shape)}")
    n, _, h, w = truth.shape
    if samples.ndim != 5 or samples.shape[0] != n or samples.shape[2:] != truth.shape[1:]:
        raise ValueError(f"samples must have shape (N, k, 1, H, W) = ({n}, k, 1, {h}, {w}), "
                         f"got {tuple(samples.shape)}")
    if (measurement.ndim != 4 or measurement.shape[:2] != (n, 1) or h % measurement.shape[2]
            or w % measurement.shape[3]):
        raise ValueError(f"measurement must have shape (N, 1, h, w) with h, w dividing {h}, {w}, "
                         f"got {tuple(measurement.shape)}")
    k = samples.shape[1]
    shown = min(int(n_show), k)
    up = measurement.repeat_interleave(h // measurement.shape[2], 2)
    up = up.repeat_interleave(w // measurement.shape[3], 3)
    columns = [truth, up] + [samples[:, i] for i in range(shown)] + ([mean] if mean is not None else [])
    labels = ["truth", "measured"] + [f"sample {i + 1}" for i in range(shown)]
    labels += [mean_label or f"mean of {k}"] if mean is not None else []
    cols = len(columns)
    canvas = np.full((n * h + (n - 1) * gap, cols * w + (cols - 1) * gap), 0.35, dtype=np.float32)
    for j, col in enumerate(columns):
        tiles = col.detach().float().cpu().clamp(0, 1).numpy()
        for i in range(n):
            canvas[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = tiles[i, 0]
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([j * (w + gap) + (w - 1) / 2 for j in range(cols)], labels, fontsize=9)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


# =============================================================================================
# Guidance (notebook 08): the tilted density, and the price of guidance on MNIST
# =============================================================================================
def plot_tilted(ax: plt.Axes, td, samples: Tensor | None = None, title: str | None = None,
                n_show: int = 600):
    """The exact tilted density π_w of :func:`scoretutor.diffusion.guidance.tilted_density` as a heat map,
    with up to ``n_show`` of ``samples`` (N, 2) on top."""
    artist = ax.imshow(td.prob_grid().cpu().numpy(), origin="lower", cmap=DENSITY_CMAP,
                       extent=(-td.lim, td.lim, -td.lim, td.lim), interpolation="bilinear")
    if samples is not None:
        pts = samples[:n_show].detach().cpu().numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, color=SAMPLE_COLOR, alpha=0.6)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return artist


def plot_guidance_sweep(ax: plt.Axes, results: list[dict], metric: str, judge: str = "judge A",
                        label: str | None = None) -> plt.Axes:
    """One figure of ``benchmarks/mnist_guidance.py``'s sweep against the guidance scale γ: a line per guide
    (classifier-free, classifier) under ``judge``, over the real digits' mean ± sd (grey band)."""
    rows = [r for r in results if r["judge"] == judge]
    if not rows:
        raise ValueError(f"no results for {judge!r}; judges present: {sorted({r['judge'] for r in results})}")
    mean, sd = rows[0]["real"][metric]
    ax.axhspan(mean - sd, mean + sd, color="0.85", label="real test digits (± sd)")
    names = {"free": "classifier-free", "classifier": "classifier guidance"}
    for i, guide in enumerate(g for g in names if any(r["guide"] == g for r in rows)):
        pts = sorted((r["guidance"], r["samples"][metric]) for r in rows if r["guide"] == guide)
        ax.plot(*zip(*pts, strict=True), "o-", color=f"C{i}", label=names[guide])
    ax.set_xlabel("guidance scale γ")
    ax.set_ylabel(label or metric)
    ax.legend(fontsize=8)
    return ax


# =============================================================================================
# Guidance (notebook 08): mode weights of samples against the exact tilted density's
# =============================================================================================
def plot_mode_weights(ax: plt.Axes, weights: dict[str, tuple], labels: Sequence[str] | None = None,
                      ylabel: str = "mode weight (±2 se)"):
    """Grouped bars: one group per mode (``labels``), one bar per entry ``{name: (weights, standard errors
    or None)}`` (e.g. the exact tilted density's weights, then each sampler's with its standard errors)."""
    names = list(weights)
    k = len(np.atleast_1d(np.asarray(weights[names[0]][0], dtype=float)))
    labels = list(labels) if labels is not None else [f"mode {i}" for i in range(k)]
    if len(labels) != k:
        raise ValueError(f"labels must name the {k} modes, got {len(labels)} labels")
    width = 0.8 / len(names)
    bars = []
    for i, name in enumerate(names):
        vals, ses = weights[name]
        vals = np.asarray(vals, dtype=float).reshape(-1)
        if vals.shape != (k,):
            raise ValueError(f"weights[{name!r}] must hold {k} values, got {vals.shape[0]}")
        err = None if ses is None else 2 * np.asarray(ses, dtype=float).reshape(-1)
        bars.append(ax.bar(np.arange(k) + (i - (len(names) - 1) / 2) * width, vals, width, yerr=err,
                           capsize=3, color=f"C{i}", label=name))
    ax.set_xticks(np.arange(k), labels)
    ax.set(ylabel=ylabel, ylim=(0, 1))
    ax.legend(fontsize=8)
    return bars
