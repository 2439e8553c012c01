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
# # 04 · Noise to the rescue: noise-conditional score models and annealed Langevin
#
# Notebook 03 ended with two failures of "score matching + Langevin" on the mixture
# $p = \tfrac15\mathcal{N}((-5,-5), I) + \tfrac45\mathcal{N}((5,5), I)$:
# the learned score is poor in **low-density regions**, and Langevin dynamics **cannot recover the
# mode weights** $\tfrac15 : \tfrac45$ because the score of a well-separated mixture barely depends
# on them. The fix of Song & Ermon (2019) is to *add noise*:
#
# 1. perturbed densities $p_{\sigma}$ and the trade-off "too much noise: no signal; too little: poor coverage";
# 2. many noise scales $\sigma_1 > \dots > \sigma_L$ and one **noise-conditional score model** $\mathbf{s}_\theta(\mathbf{x}, i)$;
# 3. how to choose $\sigma_1$, $L$ and the step size $\varepsilon$ (the NCSNv2 rules);
# 4. **annealed Langevin dynamics**, which fixes the mode weights — Song & Ermon's Fig. 3, reproduced;
# 5. two explorers to drive it all with sliders.

# %%
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from scoretutor import get_device, pick
from scoretutor import plotting as P
from scoretutor.densities import ncsn_mixture, rings
from scoretutor.exercises.annealing import check_annealed_langevin
from scoretutor.losses import ncsn_loss
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.models import NoiseConditionalScoreMLP
from scoretutor.sampling import annealed_langevin, langevin
from scoretutor.schedules import (
    geometric_sigmas,
    langevin_variance_ratio,
    ncsnv2_gamma,
    ncsnv2_step_size,
    num_levels,
    shell_overlap,
    sigma_max_from_data,
)
from scoretutor.training import fit
from scoretutor.widgets.annealing import AnnealingExplorer, NoiseTradeoffExplorer

device = get_device()
gen = torch.Generator().manual_seed(0)
t_start = time.time()
print(f"device: {device}")

# %% [markdown]
# ## 1 · Perturbing the data with noise
#
# Adding Gaussian noise of scale $\sigma$ to every data point turns $p$ into
# $$p_{\sigma}(\mathbf{x}) = \int p(\mathbf{y})\, \mathcal{N}(\mathbf{x}; \mathbf{y}, \sigma^2 I)\, d\mathbf{y}.$$
# Sampling it is trivial: draw $\mathbf{x} \sim p$ and return $\mathbf{x} + \sigma\mathbf{z}$ with
# $\mathbf{z} \sim \mathcal{N}(0, I)$. For a Gaussian mixture the integral is exact:
# $p_\sigma = \sum_k w_k \mathcal{N}(\boldsymbol\mu_k, \Sigma_k + \sigma^2 I)$ (`GaussianMixture.perturb`).
# First we check that closed form against the integral itself, estimated by Monte Carlo as
# $\mathbb{E}_{\mathbf{y} \sim p}[\mathcal{N}(\mathbf{x}; \mathbf{y}, \sigma^2 I)]$.

# %%
mix = ncsn_mixture()
mix64 = ncsn_mixture(dtype=torch.float64)
x_check = torch.tensor([[-5.0, -5.0], [-3.5, -6.0], [5.0, 4.0], [6.0, 6.5]], dtype=torch.float64)
y = mix64.sample(200_000, generator=gen)
for sigma in (0.5, 2.0, 8.0):
    kernel = torch.exp(-((x_check[:, None] - y[None]) ** 2).sum(-1) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    mc, se = kernel.mean(1), kernel.std(1) / math.sqrt(y.shape[0])
    closed = mix64.perturb(sigma).log_prob(x_check).exp()
    z_scores = ((mc - closed) / se).abs()
    print(f"σ = {sigma:>3}: closed form {closed.numpy().round(6)}  Monte Carlo {mc.numpy().round(6)}  "
          f"max |difference|/se = {z_scores.max():.2f}")
    assert (z_scores < 4.5).all()

# %% [markdown]
# ### The trade-off: how much noise?
#
# Now train a score model at a **single** noise level $\sigma$ by denoising score matching. It only
# ever sees noisy points $\tilde{\mathbf{x}} \sim p_\sigma$, so it minimises the Fisher divergence
# $\mathbb{E}_{p_\sigma}\|\mathbf{s}_\theta - \nabla \log p_\sigma\|^2$, an error **weighted by $p_\sigma$**.
# The explorer shows, for each $\sigma$ (one model trained per value), $p_\sigma$ with its score,
# the unweighted error $\|\mathbf{s}_\theta(\mathbf{x}) - \nabla\log p_\sigma(\mathbf{x})\|^2$ and the same error weighted
# by $p_\sigma$ (both in units of $\mathbb{E}_{p_\sigma}\|\nabla \log p_\sigma\|^2$, so different $\sigma$ compare fairly).
#
# * **Too little noise**: $p_\sigma \approx p$ (good signal), but the model is accurate only near
#   the two modes; in between, where Langevin has to travel, its error is huge.
# * **Too much noise**: the model is accurate everywhere, but $p_\sigma$ is one broad blob — the
#   structure of the data is gone.

# %%
tradeoff = NoiseTradeoffExplorer(sigmas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), n_steps=pick(full=2000, fast=300),
                                 grid_n=pick(full=100, fast=60))
print(f"{'σ':>5} {'Fisher error':>13} {'box average':>12} {'accurate area':>14}")
for sigma, f in zip(tradeoff.sigma_values, tradeoff.frames, strict=True):
    print(f"{sigma:>5g} {f['fisher']:>13.3g} {f['box_average']:>12.3g} {100 * f['accurate']:>13.0f}%")
small, large = tradeoff.frames[0], tradeoff.frames[-1]
assert small["box_average"] > 10 * small["fisher"] and large["box_average"] < 0.1
tradeoff.update(sigma=0.1)
tradeoff

# %% [markdown]
# Move the slider: at $\sigma = 0.1$ the weighted error (right) is small — training succeeded by its
# own measure — while the unweighted error (middle) is orders of magnitude larger away from the modes.
# From $\sigma \approx 5$ the model is accurate on the whole box.
#
# ## 2 · Many noise scales, one model
#
# Take the best of both: a sequence $\sigma_1 > \sigma_2 > \dots > \sigma_L$, from large enough to cover the
# space to small enough that $p_{\sigma_L} \approx p$, and **one** network conditioned on the level,
# $\mathbf{s}_\theta(\mathbf{x}, i) \approx \nabla_{\mathbf{x}} \log p_{\sigma_i}(\mathbf{x})$ for all $i$.
# It is trained on a weighted sum of Fisher divergences — each estimated by denoising score matching:
# $$\sum_{i=1}^L \lambda(i)\, \mathbb{E}_{p_{\sigma_i}}\big[\|\nabla_{\mathbf{x}} \log p_{\sigma_i}(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x}, i)\|_2^2\big],
# \qquad \lambda(i) = \sigma_i^2 .$$
# Why $\lambda(i) = \sigma_i^2$? The target scores have size $\|\nabla \log p_{\sigma}\| \sim 1/\sigma$, so
# $\sigma_i^2\,\|\cdot\|^2$ is $O(1)$ at every level and no level dominates. Our model feeds $\log\sigma$ through an
# embedding into every layer and outputs $\mathbf{s}_\theta(\mathbf{x}, \sigma) = \mathrm{net}(\mathbf{x}, \sigma)/\sigma$. The $1/\sigma$
# scaling is NCSNv2's Technique 3, which goes further and uses an *unconditional* net, $\mathbf{s}_\theta(\mathbf{x})/\sigma$;
# we keep the embedding as well. In code we index by the level's value:
# $\mathbf{s}_\theta(\mathbf{x}, \sigma_i) \equiv \mathbf{s}_\theta(\mathbf{x}, i)$ and $\lambda(\sigma_i) \equiv \lambda(i)$.
#
# ### How to choose the noise levels (NCSNv2, Song & Ermon 2020)
#
# * **$\sigma_1$** should be about the largest distance between two training points, so that from
#   $p_{\sigma_1}$ every mode is within reach.
# * **The ratio $\gamma = \sigma_{i-1}/\sigma_i$** (geometric sequence): in $D$ dimensions a sample of
#   $\mathcal{N}(0, \sigma^2 I)$ sits on a thin shell $\|\mathbf{x}\| \approx \sqrt{D}\sigma$. Choose $\gamma$ so that
#   $p_{\sigma_i}$ puts about half its mass in the shell of $p_{\sigma_{i-1}}$:
#   $\Phi(\sqrt{2D}(\gamma-1)+3\gamma) - \Phi(\sqrt{2D}(\gamma-1)-3\gamma) \approx 0.5$.
# * **The step size $\varepsilon$** for $T$ steps per level: for data at a single point, one level of
#   Langevin started from $\mathcal{N}(0, \sigma_{i-1}^2)$ ends at variance $s_T^2$ with
#   $$\frac{s_T^2}{\sigma_i^2} = \Big(1 - \frac{\varepsilon}{\sigma_L^2}\Big)^{2T}\Big(\gamma^2 - \frac{2\varepsilon}{\sigma_L^2 - \sigma_L^2(1 - \varepsilon/\sigma_L^2)^2}\Big) + \frac{2\varepsilon}{\sigma_L^2 - \sigma_L^2(1 - \varepsilon/\sigma_L^2)^2},$$
#   and $\varepsilon$ is chosen to bring this ratio closest to 1.
#
# Each rule is tested in `tests/test_schedules.py` (Monte Carlo of the shell probability; a simulated
# 1-D Langevin chain for the variance ratio). Here we apply them to our toy.

# %%
data = mix.sample(pick(full=5000, fast=2000), generator=gen)
print(f"Technique 1: largest pairwise distance in the data = {sigma_max_from_data(data):.1f}  (Song & Ermon use σ₁ = 20)")
print(f"Technique 2 in D = 2: shell overlap at γ = 1.4 / 5 / 50: "
      f"{shell_overlap(1.4, 2, exact=True):.3f} / {shell_overlap(5, 2, exact=True):.3f} / {shell_overlap(50, 2, exact=True):.3f}"
      " — it never drops to 0.5: in 2-D adjacent levels always overlap, so L is set by the budget.")
for D, name in ((784, "MNIST 28×28"), (3072, "CIFAR-10 32×32×3")):
    gamma = ncsnv2_gamma(D)
    print(f"Technique 2 for {name} (D = {D}): γ = {gamma:.4f}; from σ₁ = 50 to σ_L = 0.01 that is L = {num_levels(50, 0.01, gamma)} levels")

sigmas = geometric_sigmas(20.0, 1.0, 10)
gamma = (20.0 / 1.0) ** (1 / 9)
eps_rule = ncsnv2_step_size(100, gamma, 1.0)
print(f"Technique 4 for σ: 20 → 1 in 10 levels (γ = {gamma:.3f}), T = 100: ε = {eps_rule:.3f} gives s_T²/σ_i² = "
      f"{langevin_variance_ratio(eps_rule, 100, gamma, 1.0):.4f}; Song & Ermon's ε = 0.1 gives "
      f"{langevin_variance_ratio(0.1, 100, gamma, 1.0):.4f}")
print("σ_i:", np.round(sigmas.numpy(), 2))

eps_grid = np.logspace(-3, 0, 200)
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
for T_ in (10, 30, 100):
    ax.plot(eps_grid, [langevin_variance_ratio(e, T_, gamma, 1.0) for e in eps_grid], label=f"T = {T_}")
ax.axhline(1, color="k", lw=0.8)
ax.axvline(0.1, color="grey", ls=":", label="ε = 0.1")
ax.set(xscale="log", yscale="log", xlabel="ε", ylabel="s_T² / σ_i²", title="Technique 4: variance after one level")
ax.legend()
plt.show()

# %% [markdown]
# ## 3 · Training the noise-conditional model
#
# The loss is `ncsn_loss`: each example in a batch gets a level $i \sim \mathcal{U}\{1..L\}$, is perturbed
# to $\tilde{\mathbf{x}} = \mathbf{x} + \sigma_i\mathbf{z}$, and contributes
# $\lambda(\sigma_i)\cdot\tfrac12\|\mathbf{s}_\theta(\tilde{\mathbf{x}}, \sigma_i) + \mathbf{z}/\sigma_i\|^2$ (its equality with the hand-written
# sum, and that its minimiser is the perturbed score, are in `tests/test_ncsn.py`).

# %%
torch.manual_seed(0)
model = NoiseConditionalScoreMLP(hidden=64, n_layers=3)
t0 = time.time()
history = fit(model, lambda m, x, g: ncsn_loss(m, x, sigmas, generator=g), mix.sample,
              n_steps=pick(full=3000, fast=400), batch_size=256, lr=2e-3, seed=0, device="cpu")
print(f"trained {len(history)} steps in {time.time() - t0:.1f} s")


@torch.no_grad()
def relative_score_error(model, mixture, sigma, n=4000, seed=0):
    """E_pσ‖s_θ(x,σ) − ∇log p_σ(x)‖² / E_pσ‖∇log p_σ(x)‖², with its Monte Carlo standard error."""
    p_sigma = mixture.perturb(sigma)
    x = p_sigma.sample(n, generator=torch.Generator().manual_seed(seed))
    err = ((model(x, sigma) - p_sigma.score(x)) ** 2).sum(-1)
    ref = (p_sigma.score(x) ** 2).sum(-1).mean()
    return (err.mean() / ref).item(), (err.std() / math.sqrt(n) / ref).item()


errors = [relative_score_error(model, mix, s) for s in sigmas.tolist()]
print("relative Fisher error per level: " + ", ".join(f"σ={s:.2f}: {e:.3f}±{se:.3f}"
                                                   for s, (e, se) in zip(sigmas.tolist(), errors, strict=True)))
assert errors[0][0] < 0.06 and errors[-1][0] < 0.06  # the same target as tests/test_ncsn.py

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
axes[0].plot(history, lw=0.6, alpha=0.5)
axes[0].plot(np.convolve(history, np.ones(25) / 25, mode="valid"), lw=1.5)
axes[0].set(xlabel="step", ylabel="ncsn_loss (λ = σ²)", title="training loss")
axes[1].errorbar(sigmas.numpy(), [e for e, _ in errors], yerr=[2 * se for _, se in errors], marker="o")
axes[1].set(xscale="log", yscale="log", xlabel="σ_i", ylabel="relative Fisher error", title="score error on p_σ")
plt.show()

# %% [markdown]
# ## 4 · Annealed Langevin dynamics
#
# Sampling runs Langevin at every level, from the largest $\sigma$ down, with a step size that shrinks with
# the noise, $\alpha_i = \varepsilon\,\sigma_i^2/\sigma_L^2$, and $T$ steps each:
# $$\mathbf{x} \leftarrow \mathbf{x} + \alpha_i\,\mathbf{s}_\theta(\mathbf{x}, \sigma_i) + \sqrt{2\alpha_i}\,\mathbf{z}, \qquad \mathbf{z} \sim \mathcal{N}(0, I).$$
# The $\sigma_1$ model is good at the beginning: $p_{\sigma_1}$ is a single broad blob centred near the mixture
# mean, so every particle is pulled into it wherever it started. As $\sigma$ shrinks the blob contracts and then
# splits; because the large-$\sigma$ scores still "see" both components, the particles divide in the ratio
# $\tfrac15 : \tfrac45$ by the time the modes separate (around $\sigma \approx 3$–$4$, see the snapshots below).
# The small-$\sigma$ models then refine.
#
# **Song & Ermon's toy experiment**: $\sigma$ geometric from 20 to 1 in 10 levels, $\varepsilon = 0.1$,
# $T = 100$, 1280 particles from $\mathcal{U}[-8, 8]^2$; plain Langevin gets the same 1000 steps at the
# smallest step size $\varepsilon$ and the exact score of $p$. As in the 2019 paper we stop after the last
# Langevin step (`denoise_last=False`); the optional final denoising step is discussed below.

# %%
EPS, T, N = 0.1, 100, 1280
x0 = torch.rand(N, 2, generator=gen) * 16 - 8
exact_score = mix.noise_conditional_score()   # s(x, σ) = ∇log p_σ(x), p_σ = mix.perturb(σ) cached per σ

x_plain = langevin(mix.score, x0, EPS, T * len(sigmas), generator=torch.Generator().manual_seed(1)).x
x_exact, traj, _, _ = annealed_langevin(exact_score, x0, sigmas, EPS, T, generator=torch.Generator().manual_seed(1),
                                        denoise_last=False, return_trajectory=True, trajectory_every=T)
x_learned = annealed_langevin(model.frozen_score(), x0, sigmas, EPS, T,
                              generator=torch.Generator().manual_seed(1), denoise_last=False).x
x_data = mix.sample(N, generator=gen)

results = {"data": x_data, "Langevin (exact score)": x_plain,
           "annealed (exact scores)": x_exact, "annealed (learned model)": x_learned}
print(f"{'':<27}{'weight of (−5,−5)':>20}   SW₂ to data")
for name, x in results.items():
    mf = mode_fractions(x, mix)
    sw = sliced_wasserstein(x, data, generator=torch.Generator().manual_seed(0))
    print(f"{name:<27}{mf.fractions[0]:>13.3f} ± {mf.stderr[0]:.3f}   {sw:8.3f}")
w = {name: mode_fractions(x, mix).fractions[0].item() for name, x in results.items()}
assert abs(w["annealed (exact scores)"] - 0.2) < 0.05 and abs(w["annealed (learned model)"] - 0.2) < 0.05
assert abs(w["Langevin (exact score)"] - 0.2) > 0.15

fig, axes = P.figure_row(4, size=3.2)
for ax, (name, x) in zip(axes, results.items(), strict=True):
    P.plot_samples(ax, x, lim=9, s=2, title=f"{name}\n(−5,−5): {w[name]:.2f}")
plt.show()

# %% [markdown]
# Plain Langevin leaves each particle on the side of the gap where it started — about half of them go
# to each mode, because the score cannot tell the modes' weights apart. Annealed Langevin, with the exact
# perturbed scores and with our learned model, puts about 0.20 of the particles on the small mode (within $\pm 0.05$, as asserted above; the
# binomial standard error with 1280 particles is 0.011).
#
# **The final denoising step.** After the last level the particles are samples of $p_{\sigma_L}$, not of $p$:
# each mode has variance $1 + \sigma_L^2 = 2$ instead of 1 (look closely: the annealed clusters are a bit
# wider than the data). `denoise_last=True` (the default, from NCSNv2) adds one noise-free step
# $\mathbf{x} \leftarrow \mathbf{x} + \sigma_L^2\, \mathbf{s}_\theta(\mathbf{x}, \sigma_L)$, which by Tweedie's formula is the
# posterior mean $\mathbb{E}[\mathbf{x}_{\text{clean}} \mid \mathbf{x}]$. For one unit Gaussian mode that is
# $\boldsymbol\mu + (\mathbf{x} - \boldsymbol\mu)/(1 + \sigma_L^2)$: the variance becomes $(1+\sigma_L^2)/(1+\sigma_L^2)^2 = 1/(1+\sigma_L^2) = 0.5$ — too narrow at
# this large $\sigma_L$, harmless at the small $\sigma_L$ used for images, where it removes visible noise.

# %%
x_denoised = x_exact + sigmas[-1] ** 2 * exact_score(x_exact, sigmas[-1].item())
heavy = mix.component_of(x_exact) == 1
var_before, var_after = x_exact[heavy].var(0).mean().item(), x_denoised[heavy].var(0).mean().item()
print(f"variance per axis in the (5,5) mode: before denoising {var_before:.2f} (theory 2.00), "
      f"after {var_after:.2f} (theory 0.50)")
# Sample variances of ~1000 points have relative standard error √(2/n) ≈ 0.045; allow 4 of them
# (ULA's own bias at α = 0.1, a factor 1/(1 − α/4) ≈ 1.026 on the variance, fits well inside).
assert abs(var_before - 2.0) < 4 * 0.045 * 2.0 and abs(var_after - 0.5) < 4 * 0.045 * 0.5 + 0.02

# %% [markdown]
# ### Large σ first, small σ refines
#
# The particles at the end of each level of the run above (exact scores):

# %%
fig, axes = plt.subplots(2, 5, figsize=(15, 6.4), layout="constrained")
for i, ax in enumerate(axes.flat):
    snap = traj[i + 1]
    frac = mode_fractions(snap, mix).fractions[0].item()
    P.plot_samples(ax, snap, lim=12, s=2, title=f"after level {i + 1}: σ = {sigmas[i]:.2f}\n(−5,−5): {frac:.2f}")
plt.show()

# %% [markdown]
# At $\sigma_1 = 20$ the particles form one blob much wider than the box (the "(−5,−5)" share printed
# above a panel is just the share of particles nearer to $(-5,-5)$ than to $(5,5)$). As $\sigma$ shrinks the blob
# contracts towards the heavy mode; around $\sigma \approx 3$–$4$ it splits, and at that moment the share of the
# small mode is already $\approx 0.2$. The remaining levels only sharpen the two clusters.
#
# ## 5 · A harder data set: rings
#
# Two concentric rings (`rings()`, an analytic mixture of many small Gaussians, so the true score is
# known). Technique 1 gives $\sigma_1$, the rings' width suggests $\sigma_L$, and Technique 4 gives $\varepsilon$.

# %%
ring = rings()
ring_data = ring.sample(pick(full=5000, fast=2000), generator=gen)
s1 = sigma_max_from_data(ring_data)
ring_sigmas = geometric_sigmas(s1, 0.1, 12)
ring_gamma = (s1 / 0.1) ** (1 / 11)
T_ring = 50
eps_ring = ncsnv2_step_size(T_ring, ring_gamma, 0.1)
print(f"σ₁ = {s1:.2f}, σ_L = 0.1, L = 12 (γ = {ring_gamma:.3f}), T = {T_ring}, ε = {eps_ring:.2e}")

torch.manual_seed(1)
ring_model = NoiseConditionalScoreMLP(hidden=pick(full=128, fast=64), n_layers=3)
t0 = time.time()
ring_history = fit(ring_model, lambda m, x, g: ncsn_loss(m, x, ring_sigmas, generator=g), ring.sample,
                   n_steps=pick(full=4000, fast=1200), batch_size=256, lr=2e-3, seed=1, device="cpu")
print(f"trained {len(ring_history)} steps in {time.time() - t0:.1f} s")

x0_ring = torch.rand(N, 2, generator=gen) * 16 - 8
x_ring = annealed_langevin(ring_model.frozen_score(), x0_ring, ring_sigmas, eps_ring, T_ring,
                           generator=torch.Generator().manual_seed(2)).x
sw_ring = sliced_wasserstein(x_ring, ring_data, generator=torch.Generator().manual_seed(0))
sw_init = sliced_wasserstein(x0_ring, ring_data, generator=torch.Generator().manual_seed(0))
sw_ref = sliced_wasserstein(ring.sample(N, generator=gen), ring_data, generator=torch.Generator().manual_seed(0))
print(f"SW₂ to data: annealed samples {sw_ring:.3f}, fresh data samples {sw_ref:.3f}, the uniform start {sw_init:.3f}")
assert sw_ring < 0.25 * sw_init

fig, axes = P.figure_row(3, size=3.4)
axes[0].plot(ring_history, lw=0.5, alpha=0.5)
axes[0].plot(np.convolve(ring_history, np.ones(25) / 25, mode="valid"))
axes[0].set(xlabel="step", ylabel="ncsn_loss", title="training loss (rings)")
P.plot_samples(axes[1], ring_data[:N], lim=7, s=2, title="data")
P.plot_samples(axes[2], x_ring, lim=7, s=2, title=f"annealed Langevin (SW₂ {sw_ring:.2f})")
plt.show()

# %% [markdown]
# ## 6 · Explore: σ₁, σ_L, L, ε and T
#
# The explorer runs annealed Langevin on the learned model for the toy mixture (a fixed set of starting
# points, so only the schedule changes). The default is a quick schedule ($T = 10$) that updates live;
# try $T = 100$ (the paper's setting), a tiny $\sigma_1$ (no annealing: the weights go wrong again), a
# single level $L = 1$, or a large $\varepsilon$.

# %%
explorer = AnnealingExplorer(model, n_particles=300)
explorer

# %%
# two settings to compare, driven from code: the paper's T = 100, and almost no annealing (σ₁ = 2)
for settings in ({"T": 100}, {"sigma_1": 2.0, "T": 100}):
    explorer.update(**settings)
    print(explorer.status_text)
_ = explorer.update(sigma_1=20.0, T=10)  # back to the live default

# %% [markdown]
# ## 7 · Exercise: write annealed Langevin yourself
#
# Complete `my_annealed_langevin`. `noise(shape)` returns a fresh $\mathbf{z} \sim \mathcal{N}(0, I)$; call it
# exactly once per step. Skip the final denoising step.

# %%
def my_annealed_langevin(score_fn, x0, sigmas, eps, T, noise):
    """For each σ_i (largest first): α_i = ε·σ_i²/σ_L², then T steps x ← x + α_i·s(x, σ_i) + √(2α_i)·z."""
    x = x0
    raise NotImplementedError  # your code here
    return x


check_annealed_langevin(my_annealed_langevin);

# %% [markdown]
# ## Summary
#
# * Noise fills the low-density regions: a score model trained on $p_\sigma$ is accurate where
#   Langevin needs it, at the price of blurring the data — so we use many $\sigma$ and one
#   noise-conditional model $\mathbf{s}_\theta(\mathbf{x}, i)$, trained with $\lambda(i) = \sigma_i^2$.
# * Annealed Langevin ($\alpha_i = \varepsilon\sigma_i^2/\sigma_L^2$, large $\sigma$ first) recovers the
#   mode weights that plain Langevin cannot.
# * The NCSNv2 rules pick $\sigma_1$ (largest data distance), $\gamma$ (shell overlap, meaningful for
#   $D \ge 5$) and $\varepsilon$ (variance ratio closest to 1).

# %%
print(f"notebook ran in {time.time() - t_start:.0f} s")
