# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: slideshow,tags,jupyter,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Langevin dynamics: sampling with the score, and where it goes wrong
#
# Notebook 02 learned $\mathbf{s}_\theta(\mathbf{x}) \approx \nabla_\mathbf{x}\log p(\mathbf{x})$ without ever
# touching $Z_\theta$. The lecture's next question is *how to sample?* The answer is a noisy gradient ascent on
# $\log p$, **Langevin dynamics**:
#
# $$\mathbf{x}_0 \sim \pi(\mathbf{x}), \qquad
#   \mathbf{x}_{i+1} \leftarrow \mathbf{x}_i + \epsilon\,\nabla_\mathbf{x}\log p(\mathbf{x}_i) + \sqrt{2\epsilon}\,\mathbf{z}_i,
#   \quad \mathbf{z}_i\sim\mathcal{N}(\mathbf{0}, I),\quad i = 0, 1, \dots, K-1.$$
#
# (The deck writes $i = 0, \dots, K$; we count $K$ updates, as the code does.)
#
# It needs only the score, and it provably produces samples of $p$ — *as $\epsilon\to 0$ and $K\to\infty$*.
# This notebook takes that fine print seriously:
#
# 1. the sampler in five lines, and an exercise;
# 2. does it converge? distance to the target against steps, for several step sizes $\epsilon$;
# 3. why a finite $\epsilon$ is biased — a closed form for a Gaussian — and how a Metropolis correction removes it;
# 4. an explorer with sliders for $\epsilon$, $K$ and the number of particles;
# 5. **low-density regions**: where a learned score is wrong, and why training never notices;
# 6. **the mode-weight failure** (Song & Ermon 2019, Fig. 3): even the *exact* score gets the mixture weights wrong.

# %%
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from scoretutor import get_device, pick
from scoretutor import plotting as P
from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.exercises.langevin import check_langevin_step, check_stationary_variance
from scoretutor.losses import denoising_score_matching
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.models import ScoreMLP
from scoretutor.sampling import LangevinDivergenceError, langevin, mala
from scoretutor.training import fit
from scoretutor.widgets.langevin import LangevinExplorer

device = get_device()
gen = torch.Generator().manual_seed(0)
torch.manual_seed(0)
print(f"device: {device}")
t_start = time.perf_counter()

# %% [markdown]
# ## 1 · The sampler in five lines
#
# Our target for the first half is a mixture of three overlapping Gaussians, so that particles can travel
# between the modes. The update is literally the equation above:

# %%
target = GaussianMixture(torch.tensor([[-2.5, -1.0], [2.5, -1.0], [0.0, 2.5]]),
                         torch.tensor([1.0, 0.8, 0.6]), torch.tensor([0.5, 0.3, 0.2]))
lim = 6.0


def langevin_loop(score, x, eps, K, generator):
    for _ in range(K):
        z = torch.randn(x.shape, generator=generator)
        x = x + eps * score(x) + math.sqrt(2 * eps) * z
    return x


x0 = 4 * torch.randn(1000, 2, generator=gen)
mine = langevin_loop(target.score, x0, 0.05, 200, torch.Generator().manual_seed(1))
# the package's sampler is the same loop (plus input checks, a divergence guard, trajectories, any device)
pkg = langevin(target.score, x0, 0.05, 200, generator=torch.Generator().manual_seed(1)).x
print(f"max |loop − scoretutor.sampling.langevin| = {(mine - pkg).abs().max().item():.1e}")
assert torch.allclose(mine, pkg, atol=1e-5)

fig, axes = P.figure_row(3, size=3.4)
P.plot_density(axes[0], target.log_prob, lim, title="p(x) and its score")
P.plot_score_field(axes[0], target.score, lim, n=15)
P.plot_samples(axes[1], x0, lim, title="x₀ ~ N(0, 4²I)")
P.plot_samples(axes[2], pkg, lim, title="after K = 200 steps, ε = 0.05")
plt.show()

# %% [markdown]
# The score pulls every particle uphill in $\log p$; the noise $\sqrt{2\epsilon}\,\mathbf{z}$ keeps them from
# collapsing onto the modes. The factor $\sqrt{2\epsilon}$ is not arbitrary: it is what makes $p$ the stationary
# distribution (the discretisation of the Langevin SDE $d\mathbf{x} = \nabla\log p\,dt + \sqrt 2\,d\mathbf{w}$).
#
# ### Exercise 1 · one Langevin step
#
# Write `my_step(x, score_fn, eps, z)` returning $\mathbf{x} + \epsilon\,\mathbf{s}(\mathbf{x}) + \sqrt{2\epsilon}\,\mathbf{z}$
# (the noise `z` is given). The checker recognises the usual slips (missing noise, $\sqrt\epsilon$ instead of
# $\sqrt{2\epsilon}$, wrong sign).

# %%
def my_step(x, score_fn, eps, z):
    raise NotImplementedError  # your code here


check_langevin_step(my_step);

# %% [markdown]
# <details><summary>Reference solution (open after trying)</summary>
#
# The next cell is the solution; the checker confirms it.
# </details>

# %%
def reference_step(x, score_fn, eps, z):
    return x + eps * score_fn(x) + math.sqrt(2 * eps) * z


assert check_langevin_step(reference_step)

# %% [markdown]
# ## 2 · Does it converge? Distance to the target against steps
#
# We measure how far the particles are from $p$ with the **sliced Wasserstein distance** to a large exact
# sample: $\mathrm{SW}_2(\mathbf{x}, \mathbf{y})^2 = \mathbb{E}_{\boldsymbol\theta}\, W_2^2(\boldsymbol\theta^\top\mathbf{x}, \boldsymbol\theta^\top\mathbf{y})$,
# an average of exact 1-D Wasserstein distances over random directions (`scoretutor.metrics`; tested against
# shifted and scaled copies with known answers). Even a perfect sampler does not reach 0 with finitely
# many particles, so the grey band shows the **noise floor**: SW between independent exact samples of the
# same size (mean ± 2 sd over repeats).

# %%
n_particles = pick(full=2000, fast=1000)
n_ref = pick(full=20000, fast=10000)
K = pick(full=1500, fast=600)
n_proj = 128
reference = target.sample(n_ref, generator=gen)
sw = lambda x: sliced_wasserstein(x, reference, n_projections=n_proj, generator=torch.Generator().manual_seed(7))

floor = torch.tensor([sw(target.sample(n_particles, generator=gen)) for _ in range(10)])
floor_mean, floor_sd = floor.mean().item(), floor.std().item()
print(f"noise floor (exact samples, n = {n_particles}): SW = {floor_mean:.3f} ± {floor_sd:.3f} (sd)")

checkpoints = sorted({int(v) for v in np.unique(np.geomspace(1, K, 18).round())})
x_start = 4 * torch.randn(n_particles, 2, generator=gen)


def sw_curve(run):
    """Run a sampler with a callback that records SW at the checkpoints."""
    curve = [(0, sw(x_start))]
    run(lambda i, x: curve.append((i, sw(x))) if i in checkpoints else None)
    return np.array(curve)


curves = {}
for eps in (0.01, 0.05, 0.2, 1.0):
    t0 = time.perf_counter()
    curves[f"ULA ε = {eps}"] = sw_curve(lambda cb, eps=eps: langevin(
        target.score, x_start, eps, K, generator=torch.Generator().manual_seed(2), callback=cb))
    print(f"ULA  ε = {eps:<5} final SW = {curves[f'ULA ε = {eps}'][-1, 1]:.3f}   ({time.perf_counter() - t0:.1f} s)")

accept = []
curves["MALA ε = 1.0"] = sw_curve(lambda cb: accept.append(mala(
    target.log_prob, x_start, 1.0, K, generator=torch.Generator().manual_seed(2), callback=cb
).acceptance.mean().item()))
print(f"MALA ε = 1.0   final SW = {curves['MALA ε = 1.0'][-1, 1]:.3f}   (acceptance rate {accept[0]:.2f})")

try:
    langevin(target.score, x_start, 2.5, K, generator=torch.Generator().manual_seed(2))
except LangevinDivergenceError as err:
    print(f"ULA  ε = 2.5:  {err}")

# %%
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
colors = plt.cm.viridis(np.linspace(0, 0.85, 4)).tolist() + ["#d62728"]
for (name, c), color in zip(curves.items(), colors, strict=True):
    ax.plot(np.maximum(c[:, 0], 0.7), c[:, 1], marker="o", ms=3, color=color, label=name,
            ls="--" if name.startswith("MALA") else "-")
ax.axhspan(floor_mean - 2 * floor_sd, floor_mean + 2 * floor_sd, color="0.8", label="exact samples (noise floor)")
ax.set(xscale="log", yscale="log", xlabel="Langevin step i (step 0 plotted at 0.7)", ylabel="SW₂ to p",
       title="Convergence of Langevin dynamics with the exact score")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Three regimes, all visible at once:
#
# * **small $\epsilon$ (0.01)** is accurate but slow: after $K$ steps it has moved a "time" $K\epsilon$, and it needs
#   $K\epsilon$ of a few units to forget the start;
# * **moderate $\epsilon$ (0.05)** reaches the noise floor; **0.2** approaches it fastest but settles above it —
#   a first sign of bias;
# * **large $\epsilon$ (1.0)** converges *to the wrong distribution*: it is fast, but stays far above the floor
#   forever. And $\epsilon = 2.5$ diverges (the sampler stops with an error instead of returning NaNs).
#
# The dashed red line is the same proposal with a Metropolis–Hastings accept/reject step (**MALA**): at the same
# $\epsilon = 1.0$ it reaches the floor, because the correction makes $p$ exactly invariant at any step size.

# %%
final = {name: c[-1, 1] for name, c in curves.items()}
late = {name: c[c[:, 0] >= K // 2, 1].mean() for name, c in curves.items()}  # checkpoints in the second half
assert late["ULA ε = 0.05"] < floor_mean + 4 * floor_sd, late
assert late["ULA ε = 1.0"] > floor_mean + 6 * floor_sd, late
assert late["MALA ε = 1.0"] < 0.5 * late["ULA ε = 1.0"], late
assert final["ULA ε = 0.01"] > final["ULA ε = 0.05"] or late["ULA ε = 0.01"] > late["ULA ε = 0.05"]

# %% [markdown]
# ## 3 · Why a finite step is biased: the Gaussian case in closed form
#
# For $p = \mathcal{N}(0, s^2)$ the score is $-x/s^2$, and one step is linear:
#
# $$x' = \underbrace{(1 - \epsilon/s^2)}_{a}\,x + \sqrt{2\epsilon}\,z .$$
#
# Taking variances, $v' = a^2 v + 2\epsilon$, whose fixed point (stable iff $|a|<1$, i.e. $0<\epsilon<2s^2$) is
#
# $$v_\infty = \frac{2\epsilon}{1-(1-\epsilon/s^2)^2} = \frac{s^2}{1-\epsilon/(2s^2)} \;>\; s^2 .$$
#
# The unadjusted chain (ULA) is **too wide by a factor $1/(1-\epsilon/(2s^2))$**, an $O(\epsilon)$ bias that no number of
# steps removes. MALA rejects exactly the proposals that cause it. Below: the variance each sampler settles at,
# started from exact samples of $\mathcal{N}(0, 1)$, against the formula (error bars: $\pm 2$ standard errors).

# %%
s2, n_var = 1.0, pick(full=40000, fast=10000)
eps_grid = np.geomspace(0.01, 1.9, 10)
x_exact = torch.randn(n_var, 1, generator=gen, dtype=torch.float64)
ula_var, mala_var = [], []
for eps in eps_grid:
    a = 1 - eps / s2
    steps = math.ceil(math.log(1e-6) / (2 * math.log(abs(a))))  # |a|^{2K} ≤ 1e-6: the start is forgotten
    ula_var.append(langevin(lambda x: -x / s2, x_exact, eps, steps, generator=gen).x.var().item())
    mala_var.append(mala(lambda x: -0.5 * (x**2).sum(-1) / s2, x_exact, eps, 50, generator=gen).x.var().item())
formula = 2 * eps_grid / (1 - (1 - eps_grid / s2) ** 2)
se = formula * math.sqrt(2 / n_var)  # standard error of a sample variance: v·√(2/n)

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
fine = np.geomspace(0.01, 1.95, 200)
ax.plot(fine, 2 * fine / (1 - (1 - fine / s2) ** 2), "k-", lw=1, label="2ε / (1 − (1 − ε/s²)²)")
ax.errorbar(eps_grid, ula_var, yerr=2 * se, fmt="o", color="#1f77b4", label="ULA (measured)")
ax.errorbar(eps_grid, mala_var, yerr=2 * s2 * math.sqrt(2 / n_var), fmt="s", color="#d62728", label="MALA (measured)")
ax.axhline(s2, color="0.5", ls=":", label="target s² = 1")
ax.set(xscale="log", yscale="log", xlabel="step size ε", ylabel="stationary variance",
       title="Unadjusted Langevin is biased at finite ε; MALA is not")
ax.legend(fontsize=8)
plt.show()

z_ula = (np.array(ula_var) - formula) / se
z_mala = (np.array(mala_var) - s2) / (s2 * math.sqrt(2 / n_var))
print("ULA  (measured − formula)/se:", np.round(z_ula, 1))
print("MALA (measured − s²)/se:     ", np.round(z_mala, 1))
assert np.all(np.abs(z_ula) < 4) and np.all(np.abs(z_mala) < 4)

# %% [markdown]
# At $\epsilon = 1.9$ the unadjusted chain's variance is 20 times too large; at $\epsilon = 0.01$ it is 0.5 % too large.
# That is the trade-off of Section 2 in one line: small $\epsilon$ is accurate but needs many steps.
#
# ### Exercise 2 · the stationary variance
#
# Derive $v_\infty(\epsilon, s^2)$ yourself and write it as `my_variance(eps, s2)`.

# %%
def my_variance(eps, s2):
    raise NotImplementedError  # your formula here


check_stationary_variance(my_variance);

# %% [markdown]
# <details><summary>Reference solution</summary>
#
# $v = a^2v + 2\epsilon$ with $a = 1-\epsilon/s^2$ gives $v = 2\epsilon/(1-a^2)$.
# </details>

# %%
assert check_stationary_variance(lambda eps, s2: 2 * eps / (1 - (1 - eps / s2) ** 2))

# %% [markdown]
# ## 4 · Explore: step size ε, number of steps K, number of particles
#
# Drag the sliders (they recompute on release). The same starting points and the same noise are used on every
# update, so you see the effect of the parameter, not of resampling. Things to try: $K$ from 0 upwards at
# $\epsilon = 0.05$ (the particles flow into the modes); $\epsilon$ towards 1 (too-wide clouds, jagged paths);
# $\epsilon > 2$ (divergence, reported in the status line). The status line prints the fraction of particles
# nearest to each mode against the target weights. Without a live kernel you see one static frame.

# %%
explorer = LangevinExplorer(target, lim=lim, init="gaussian", step_size=0.05, n_steps=100, n_particles=500)
display(explorer)
for eps in (0.01, 0.3, 1.5):  # drive it headlessly, as a slider move would
    explorer.update(step_size=eps)
    print(f"ε = {eps:<4}: update took {1000 * explorer.last_update_s:.0f} ms — {explorer.status_text}")
explorer.update(step_size=0.05)
assert explorer.last_update_s < 5.0

# %% [markdown]
# ## 5 · The low-density problem: a learned score is only right where the data are
#
# With a *learned* score the picture changes. Training minimises the Fisher divergence
#
# $$\mathbb{E}_{p(\mathbf{x})}\big[\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\big]
#   = \int p(\mathbf{x})\,\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\,d\mathbf{x}$$
#
# (the numbers below carry notebook 02's factor $\tfrac12$),
#
# so errors count **weighted by $p(\mathbf{x})$**: where there is no data, nothing is learned. We train notebook 02's
# model — a `ScoreMLP` with denoising score matching at a small $\sigma = 0.1$ (so $p_\sigma \approx p$) — on samples
# of the NCSN mixture $p = \tfrac15\mathcal{N}((-5,-5), I) + \tfrac45\mathcal{N}((5,5), I)$, and compare it with the
# true score everywhere in the box.

# %%
mix = ncsn_mixture()
box = 8.0
torch.manual_seed(0)
net = ScoreMLP(dim=2, hidden=128, n_layers=3)
t0 = time.perf_counter()
history = fit(net, lambda m, x, g: denoising_score_matching(m, x, 0.1, generator=g), mix.sample,
              n_steps=pick(full=3000, fast=400), batch_size=256, lr=1e-3, seed=0, device=device, desc="DSM σ=0.1")
net = net.cpu().eval()
print(f"trained {len(history)} steps in {time.perf_counter() - t0:.1f} s, final loss {np.mean(history[-50:]):.3f}")


def learned_score(x):
    with torch.no_grad():
        return net(x.float()).to(x.dtype)


err = lambda x: (learned_score(x) - mix.score(x)).norm(dim=-1)
n_grid = 150
p_grid = P.evaluate_on_grid(mix.prob, box, n_grid)
err_grid = P.evaluate_on_grid(err, box, n_grid)

fig, axes = P.figure_row(3, size=3.6)
P.plot_image(axes[0], np.log10(p_grid + 1e-12), box, title="log₁₀ p(x)", vmin=-10, colorbar=True)
P.plot_image(axes[1], np.log10(err_grid + 1e-3), box, cmap=P.ERROR_CMAP,
             title="log₁₀ ‖s_θ(x) − ∇log p(x)‖", vmin=-1.5, vmax=1.5, colorbar=True)
X, Y, _ = P.grid(box, n_grid)
for ax in axes[:2]:
    ax.contour(X, Y, p_grid, levels=[1e-4, 1e-2], colors="w", linewidths=0.7)
bins = np.logspace(-10, np.log10(p_grid.max()), 16)
which = np.digitize(p_grid.ravel(), bins)
centres, med = [], []
for b in range(1, len(bins)):
    sel = which == b
    if sel.sum() >= 20:
        centres.append(math.sqrt(bins[b - 1] * bins[b]))
        med.append(np.median(err_grid.ravel()[sel]))
axes[2].loglog(centres, med, "o-")
axes[2].set(xlabel="p(x)", ylabel="median error ‖s_θ − ∇log p‖", title="error against density")
axes[2].set_aspect("auto")
plt.show()

# %% [markdown]
# Inside the white contours (where the training data live) the learned field is accurate; outside, the error grows
# to the size of the score itself (the true score there has magnitude ~5–10). Two ways to average the same error:

# %%
x_data = mix.sample(pick(full=20000, fast=5000), generator=gen)
x_box = (2 * torch.rand(pick(full=20000, fast=5000), 2, generator=gen) - 1) * box
fisher = 0.5 * (err(x_data) ** 2).mean().item()
uniform = 0.5 * (err(x_box) ** 2).mean().item()
hi = torch.from_numpy(p_grid.ravel() > 1e-3)
lo = torch.from_numpy(p_grid.ravel() < 1e-6)
e_hi, e_lo = err_grid.ravel()[hi.numpy()].mean(), err_grid.ravel()[lo.numpy()].mean()
print(f"½ E_p ‖s_θ − ∇log p‖²       (Fisher, what training sees): {fisher:8.3f}")
print(f"½ E_uniform ‖s_θ − ∇log p‖² (the box Langevin starts in): {uniform:8.3f}")
print(f"mean error where p > 1e-3: {e_hi:.3f}    where p < 1e-6: {e_lo:.3f}")
assert uniform > 5 * fisher and e_lo > 3 * e_hi

# %% [markdown]
# Langevin dynamics started from noise spends its first steps exactly where the score is wrong. Here are the two
# samplers side by side, exact and learned score, from the same uniform start:

# %%
n_modes = pick(full=3000, fast=2000)
x_unif = (2 * torch.rand(n_modes, 2, generator=gen) - 1) * box
K_modes = pick(full=1000, fast=300)
x_true = langevin(mix.score, x_unif, 0.1, K_modes, generator=torch.Generator().manual_seed(3)).x
x_learned = langevin(learned_score, x_unif, 0.1, K_modes, generator=torch.Generator().manual_seed(3)).x
fig, axes = P.figure_row(3, size=3.4)
P.plot_samples(axes[0], mix.sample(n_modes, generator=gen), box, title="exact samples of p")
P.plot_samples(axes[1], x_true, box, title="Langevin, exact score")
P.plot_samples(axes[2], x_learned, box, title="Langevin, learned score")
for ax in axes:
    ax.contour(X, Y, p_grid, levels=[1e-4, 1e-2], colors="k", linewidths=0.5)
plt.show()
mf_true, mf_learned, mf_exact = (mode_fractions(x, mix) for x in (x_true, x_learned, mix.sample(n_modes, generator=gen)))
print("exact samples:          ", mf_exact)
print("Langevin, exact score:  ", mf_true)
print("Langevin, learned score:", mf_learned)

# %% [markdown]
# With the learned score, every particle's first steps follow a field that was never trained: where the boundary
# between the two basins ends up (and so how the particles split between the modes) is an accident of the network,
# and with short training some particles are still stranded in the gap. But both Langevin panels share a more
# striking feature, and it is *not* caused by the learned score: the lower-left mode holds about half of the particles,
# instead of one fifth. That is the next failure.
#
# ## 6 · The mode-weight failure: the exact score, the wrong weights
#
# Song & Ermon (2019, Fig. 3) point out that Langevin dynamics cannot recover the **relative weights** of
# separated modes in reasonable time, even with the exact score. Measured on the NCSN mixture, particles
# started uniformly on $[-8, 8]^2$:

# %%
frac_ula = mf_true.fractions[0].item()
se_ula = mf_true.stderr[0].item()
x_mala = mala(mix.log_prob, x_unif, 0.5, K_modes, generator=torch.Generator().manual_seed(4)).x
mf_mala = mode_fractions(x_mala, mix)
print("fraction in the (−5,−5) mode, target 0.200:")
print(f"  exact samples            {mf_exact.fractions[0]:.3f} ± {mf_exact.stderr[0]:.3f}")
print(f"  Langevin (exact score)   {frac_ula:.3f} ± {se_ula:.3f}   ({(frac_ula - 0.2) / se_ula:.0f} standard errors from 0.2)")
print(f"  MALA     (exact log p)   {mf_mala.fractions[0]:.3f} ± {mf_mala.stderr[0]:.3f}")
assert frac_ula > 0.35 and (frac_ula - 0.2) / se_ula > 10
assert abs(mf_exact.fractions[0].item() - 0.2) < 4 * mf_exact.stderr[0].item()
assert mf_mala.fractions[0].item() > 0.35

fig, axes = P.figure_row(2, size=3.6)
P.plot_density(axes[0], mix.log_prob, box, title="Langevin samples (exact score)")
P.plot_samples(axes[0], x_true, box, color="#7fffd4", alpha=0.5)
names = ["target", "exact", "Langevin", "MALA"]
vals = [0.2, mf_exact.fractions[0].item(), frac_ula, mf_mala.fractions[0].item()]
errs = [0, mf_exact.stderr[0].item(), se_ula, mf_mala.stderr[0].item()]
axes[1].bar(names, vals, yerr=[2 * e for e in errs], color=["0.6", "#1f77b4", "#ff7f0e", "#d62728"], capsize=4)
axes[1].axhline(0.5, color="k", ls=":", lw=0.8)
axes[1].set(ylabel="fraction in the (−5,−5) mode (±2 se)", ylim=(0, 0.65), title="mode weight")
plt.show()

# %% [markdown]
# Why? The score is a **local** quantity. Near mode $k$ the responsibility of the other component is
# astronomically small, so
#
# $$\nabla_\mathbf{x}\log p(\mathbf{x}) \approx -(\mathbf{x}-\boldsymbol\mu_k) \quad\text{near } \boldsymbol\mu_k,$$
#
# which does **not depend on the weights** $w_1, w_2$. The weights are encoded only in the score of the
# low-density gap between the modes (where the responsibilities switch), and a particle must cross that gap to feel
# them: its barrier in $-\log p$ is 23–25 nats, so a crossing takes of the order of $e^{24}$ time units of the
# underlying diffusion, i.e. more than $10^{11}$ Langevin steps at $\epsilon = 0.1$.
# Each particle therefore stays in the basin it started in, and the mode fractions are the **areas of the basins**
# under the initial distribution — about one half each for a uniform start. A Metropolis correction does not help
# either: MALA is exact *in the limit*, but it mixes between modes just as slowly.
#
# The numbers: compare the score of $p$ with the score of the same mixture with **equal** weights.

# %%
mix_equal = GaussianMixture(mix.means.double(), 1.0, torch.tensor([0.5, 0.5], dtype=torch.float64))
mix64 = ncsn_mixture(dtype=torch.float64)
angles = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
ring = torch.stack([angles.cos(), angles.sin()], -1)
for k, mu in enumerate(mix64.means):
    near = mu + 3 * ring * torch.rand(200, 1, generator=gen, dtype=torch.float64)  # within 3σ of the mode
    diff = (mix64.score(near) - mix_equal.score(near)).norm(dim=-1).max().item()
    print(f"mode {k} at {mu.tolist()}: max ‖∇log p − ∇log p_equal‖ within radius 3 = {diff:.1e}")
    assert diff < 1e-6
t = torch.linspace(0, 1, 2001, dtype=torch.float64)[:, None]
segment = (1 - t) * mix64.means[0] + t * mix64.means[1]  # the straight line between the modes
gap_diff = (mix64.score(segment) - mix_equal.score(segment)).norm(dim=-1)
where = gap_diff.argmax()
print(f"on the segment between the modes: max difference {gap_diff.max().item():.1f} at "
      f"{segment[where].numpy().round(2).tolist()}, where p = {mix64.prob(segment[where]).item():.0e}")
assert gap_diff.max().item() > 3  # ≈ Δr·‖μ₂ − μ₁‖ with Δr ≈ 0.3 in the switching band
barrier = (mix64.energy(torch.zeros(1, 2, dtype=torch.float64)) - mix64.energy(mix64.means[1:])).item()
print(f"energy barrier from (5,5) to the saddle at 0: {barrier:.1f} nats → e^barrier ≈ {math.exp(barrier):.1e}")

# %% [markdown]
# Near the modes the two scores agree to better than $10^{-6}$ (mathematically to ~$10^{-24}$; in float64 the computed difference is exactly 0); only in a thin band in the
# gap — where $p \approx 10^{-12}$ and no particle ever goes — do they differ, by several units (the size of the score itself). Longer chains do not help on any practical time
# scale. Try it in the explorer: raise $K$ and watch the mode fractions in the status line stay put.

# %%
explorer_modes = LangevinExplorer(mix, lim=box, init="uniform", step_size=0.1, n_steps=200, n_particles=1000)
display(explorer_modes)
explorer_modes.update(n_steps=pick(full=1000, fast=400))
print(explorer_modes.status_text)

# %% [markdown]
# ## Summary
#
# * Langevin dynamics turns a score into samples: $\mathbf{x}_{i+1} = \mathbf{x}_i + \epsilon\,\mathbf{s}(\mathbf{x}_i) + \sqrt{2\epsilon}\,\mathbf{z}_i$.
# * At finite $\epsilon$ it is **biased** — for a Gaussian the stationary variance is $s^2/(1-\epsilon/(2s^2))$ — and too large
#   an $\epsilon$ diverges; Metropolis adjustment (MALA) removes the bias when $\log p$ is available.
# * A **learned** score is accurate only where $p$ has mass: the Fisher divergence weights errors by $p(\mathbf{x})$,
#   and Langevin chains start exactly where it was never trained.
# * Even the **exact** score cannot fix the **relative weights of separated modes**: the score near a mode does not
#   depend on the other modes' weights, and crossing the gap takes forever.
#
# Both problems live in low-density regions. The next notebook fills those regions with data by **adding noise**:
# noise-conditional scores $\mathbf{s}_\theta(\mathbf{x}, i)$ for $\sigma_1 > \dots > \sigma_L$ and *annealed* Langevin dynamics.

# %%
print(f"notebook ran in {time.perf_counter() - t_start:.0f} s")
