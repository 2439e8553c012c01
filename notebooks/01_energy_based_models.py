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
# # 01 · Energy-based models and the score
#
# *Generative Modeling by Estimating Gradients of the Data Distribution* (Song & Ermon, 2019),
# following Yang Song's 2021 essay. This first notebook sets the stage:
#
# 1. the goal of generative modelling and **energy-based models** $p_\theta(\mathbf{x}) = e^{-f_\theta(\mathbf{x})}/Z_\theta$;
# 2. why maximum likelihood is hard: the normalising constant $Z_\theta$ — computed by brute force in 2D, hopeless in 784-D;
# 3. the alternative you saw last week: **invertible models** and the change-of-variables formula;
# 4. the way out taken today: the **score** $\nabla_\mathbf{x} \log p(\mathbf{x})$, in which $Z_\theta$ drops out.
#
# Every equation below is also checked numerically, right where it appears.

# %%
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from scoretutor import get_device, pick
from scoretutor import plotting as P
from scoretutor.densities import eight_gaussians, ncsn_mixture
from scoretutor.ebm import grid_log_partition, grid_points_log10, score_from_energy
from scoretutor.exercises.energy import check_score, mexican_hat_energy
from scoretutor.flows import BananaFlow

device = get_device()
gen = torch.Generator().manual_seed(0)
print(f"device: {device}")

# %% [markdown]
# ## 1 · The objective of generative modelling
#
# We are given a dataset $\{\mathbf{x}_1, \dots, \mathbf{x}_N\}$ drawn from an unknown data
# distribution $p(\mathbf{x})$. We want a model $p_\theta(\mathbf{x})$ that we can evaluate and,
# ideally, **sample from**.
#
# Our running example is the 2D mixture of Song & Ermon (2019, §3.2.2):
# $$p(\mathbf{x}) = \tfrac15\,\mathcal{N}\big((-5,-5), I\big) + \tfrac45\,\mathcal{N}\big((5,5), I\big).$$
# Remember the weights $\tfrac15 : \tfrac45$ — in notebook 03 a sampler will get them wrong.

# %%
mix = ncsn_mixture(dtype=torch.float64)
data = mix.sample(pick(full=2000, fast=500), generator=gen)
print(mix)

fig, axes = P.figure_row(2)
P.plot_samples(axes[0], data, lim=9, title=f"{len(data)} samples (the dataset)")
P.plot_density(axes[1], mix.log_prob, lim=9, title="true density p(x)")
plt.show()

# %% [markdown]
# ## 2 · Energy-based models
#
# Any function $f_\theta(\mathbf{x})$ — say a neural network with one scalar output — defines a density
# $$p_\theta(\mathbf{x}) = \frac{e^{-f_\theta(\mathbf{x})}}{Z_\theta}, \qquad Z_\theta = \int e^{-f_\theta(\mathbf{x})}\,d\mathbf{x}.$$
# $f_\theta$ is the **energy** (an *unnormalised* model): low energy ⇔ high probability.
# Training by maximum likelihood means
# $$\max_\theta \sum_{i=1}^N \log p_\theta(\mathbf{x}_i) = \max_\theta \sum_{i=1}^N \big(-f_\theta(\mathbf{x}_i)\big) - N \log Z_\theta ,$$
# so we need $\log Z_\theta$ and its gradient $\nabla_\theta \log Z_\theta = -\mathbb{E}_{p_\theta}[\nabla_\theta f_\theta(\mathbf{x})]$
# — an integral over the whole space, or samples from the model we are still training.
#
# For our mixture we can write the energy in closed form. It is normalised so that
# $Z = 2\pi$ exactly (see `GaussianMixture.energy`). Let us look at $f$, $p$ and $\log p$:

# %%
fig, axes = P.figure_row(3)
P.plot_energy(axes[0], mix.energy, lim=9, levels=25, title="energy f(x)")
P.plot_density(axes[1], mix.log_prob, lim=9, title="p(x) = exp(-f(x)) / Z")
P.plot_density(axes[2], mix.log_prob, lim=9, log_scale=True, title="log p(x)")
plt.show()

# %% [markdown]
# ### Computing $Z$ by brute force — in 2D it works
#
# On a grid with spacing $h$ over a box, $Z \approx \sum_{\text{grid}} e^{-f(\mathbf{x})}\,h^d$.
# In 2D this is cheap and very accurate: we recover $\log Z = \log 2\pi$.

# %%
print(f"exact  log Z = log 2π = {math.log(2 * math.pi):.10f}")
for n in [25, 50, 100, 200, 400]:
    logz = grid_log_partition(mix.energy, dim=2, lim=14.0, n_per_axis=n)
    print(f"grid {n:>3}×{n:<3}: log Z ≈ {logz:.10f}   error {abs(logz - math.log(2 * math.pi)):.1e}")
logz_grid = grid_log_partition(mix.energy, dim=2, lim=14.0, n_per_axis=400)
assert abs(logz_grid - math.log(2 * math.pi)) < 1e-8

# %% [markdown]
# ### The gradient of $\log Z$ needs samples from the model
#
# Differentiating $Z_\theta = \int e^{-f_\theta}$ under the integral sign gives
# $\nabla_\theta \log Z_\theta = -\int \frac{e^{-f_\theta(\mathbf{x})}}{Z_\theta}\nabla_\theta f_\theta(\mathbf{x})\,d\mathbf{x} = -\mathbb{E}_{p_\theta}[\nabla_\theta f_\theta(\mathbf{x})]$.
# Check it on the one-parameter family $f_\theta = \theta f$ ("inverse temperature"), where
# $\partial_\theta f_\theta = f$: at $\theta = 1$, a finite difference of grid values of $\log Z_\theta$ must equal
# $-\mathbb{E}_{p}[f(\mathbf{x})]$, estimated with samples of $p$. In training, $p_\theta$ changes at every step,
# so this expectation would need fresh samples from the model each time — the second reason EBMs are hard.

# %%
h_theta = 1e-3
logz_at = lambda theta: grid_log_partition(lambda x: theta * mix.energy(x), dim=2, lim=14.0, n_per_axis=400)
dlogz_fd = (logz_at(1 + h_theta) - logz_at(1 - h_theta)) / (2 * h_theta)
f_samples = mix.energy(mix.sample(pick(full=100_000, fast=20_000), generator=gen))
mc, se = -f_samples.mean().item(), f_samples.std().item() / math.sqrt(len(f_samples))
print(f"d/dθ log Z  by finite differences of the grid: {dlogz_fd:.4f}")
print(f"−E_p[f(x)]  by Monte Carlo:                    {mc:.4f} ± {se:.4f}")
assert abs(dlogz_fd - mc) < 4 * se + 1e-4  # Monte Carlo error dominates; the O(h²) FD error is ~1e-7

# %% [markdown]
# ### … and why it cannot work in high dimension
#
# A grid needs $n^d$ energy evaluations. We time it for a Gaussian energy
# $f(\mathbf{x}) = \|\mathbf{x}\|^2/2$ (whose $\log Z = \tfrac d2 \log 2\pi$ we know) with only 20
# points per axis, then extrapolate with the measured cost per evaluation.
# An MNIST digit has $d = 28 \times 28 = 784$.

# %%
gauss_energy = lambda x: 0.5 * (x**2).sum(-1)
rows = []
for d in range(1, pick(full=6, fast=5) + 1):
    t0 = time.perf_counter()
    logz = grid_log_partition(gauss_energy, dim=d, lim=6.0, n_per_axis=20)
    seconds = time.perf_counter() - t0
    rows.append((d, 20**d, seconds, abs(logz - 0.5 * d * math.log(2 * math.pi))))
    print(f"d={d}: {20**d:>12,d} points, {seconds:8.4f} s, |error in log Z| = {rows[-1][3]:.1e}")
per_point = rows[-1][2] / rows[-1][1]
print(f"\nmeasured cost ≈ {per_point * 1e9:.1f} ns per energy evaluation")
for d in [10, 50, 784]:
    log10_pts = grid_points_log10(d, 20)
    log10_years = log10_pts + math.log10(per_point) - math.log10(3.15e7)
    years = f"{10**log10_years:.2g}" if log10_years < 6 else f"10^{log10_years:.0f}"
    print(f"d={d:>3}: 10^{log10_pts:.0f} points ≈ {years} years on this machine")

dims = np.arange(1, 785)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for n_axis in [10, 20, 100]:
    ax.semilogx(dims, [grid_points_log10(int(d), n_axis) for d in dims], label=f"{n_axis} points per axis")
ax.axhline(80, color="gray", ls="--")
ax.text(1.1, 110, "atoms in the universe ≈ 10^80", color="gray")
ax.axvline(784, color="k", ls=":")
ax.text(600, 300, "MNIST\n(784-D)", ha="right")
ax.set(xlabel="dimension d", ylabel="log10(grid points)", title="The cost of computing Z on a grid")
ax.legend()
plt.show()

# %% [markdown]
# ## 3 · Recap: invertible models avoid $Z$ by construction
#
# Last week's alternative: choose an **invertible** map $\mathbf{z} = T(\mathbf{x})$ to a simple base
# density $p(\mathbf{z}) = \mathcal{N}(0, I)$. The change-of-variables formula gives a density that is
# normalised automatically:
# $$p_\theta(\mathbf{x}) = p\big(T(\mathbf{x})\big)\,\Big|\det \frac{\partial T(\mathbf{x})}{\partial \mathbf{x}}\Big|.$$
# Our tiny example is one affine coupling layer (`BananaFlow`):
# $z_1 = x_1/a$, $z_2 = \big(x_2 - b(x_1^2 - a^2)\big)e^{-c\tanh x_1}$, whose Jacobian is triangular,
# so $\log|\det| = -\log a - c\tanh x_1$. We check (i) that log-determinant against autograd's full
# Jacobian and (ii) that the density integrates to 1 — no $Z$ needed. The price: $T$ must be
# invertible with a cheap determinant, which restricts the architecture.

# %%
flow = BananaFlow()
x_check = 2 * torch.randn(5, 2, dtype=torch.float64, generator=gen)
_, log_det = flow.forward(x_check)
log_det_autograd = torch.stack([
    torch.linalg.det(torch.autograd.functional.jacobian(lambda v: flow.forward(v[None])[0][0], xi)).abs().log()
    for xi in x_check
])
print("log|det J| (formula) :", log_det.numpy().round(6))
print("log|det J| (autograd):", log_det_autograd.numpy().round(6))
assert torch.allclose(log_det, log_det_autograd, atol=1e-10)

n_grid, lo, hi = 600, -12.0, 12.0
h = (hi - lo) / n_grid
xs = lo + h * (torch.arange(n_grid, dtype=torch.float64) + 0.5)
X, Y = torch.meshgrid(xs, xs, indexing="xy")
mass = flow.log_prob(torch.stack([X.reshape(-1), Y.reshape(-1)], -1)).exp().sum().item() * h * h
print(f"∫ p(x) dx on the grid = {mass:.5f}")
assert abs(mass - 1) < 2e-3

fig, axes = P.figure_row(2)
P.plot_density(axes[0], flow.log_prob, lim=(-6, 6, -4, 8), title="flow density p(x)")
P.plot_samples(axes[1], flow.sample(pick(full=2000, fast=500), generator=gen), lim=(-6, 6, -4, 8),
               title="samples x = T⁻¹(z)")
plt.show()

# %% [markdown]
# ## 4 · The score: $Z$ drops out
#
# Today's way out. Instead of the density, model its gradient with respect to the **input**,
# the (Stein) **score function**:
# $$\nabla_\mathbf{x} \log p_\theta(\mathbf{x}) = -\nabla_\mathbf{x} f_\theta(\mathbf{x}) - \underbrace{\nabla_\mathbf{x} \log Z_\theta}_{=0} = -\nabla_\mathbf{x} f_\theta(\mathbf{x}).$$
# $Z_\theta$ depends on $\theta$ but not on $\mathbf{x}$, so its $\mathbf{x}$-gradient vanishes.
#
# **Check 1.** Two energies that differ by a constant define the same density after normalisation —
# and have *identical* scores. We use autograd on an unnormalised energy network (random weights)
# and on the same network plus 100.

# %%
torch.manual_seed(0)
energy_net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1))
f1 = lambda x: energy_net(x).squeeze(-1)
f2 = lambda x: energy_net(x).squeeze(-1) + 100.0   # Z₂ = e^{-100} Z₁
x_test = torch.randn(1000, 2, generator=gen)
s1, s2 = score_from_energy(f1)(x_test), score_from_energy(f2)(x_test)
print(f"max |s1 - s2| = {(s1 - s2).abs().max().item():.2e}")
assert torch.equal(s1, s2)

# %% [markdown]
# **Check 2.** For the mixture, $-\nabla_\mathbf{x} f$ by autograd equals the closed-form score
# $\nabla_\mathbf{x}\log p(\mathbf{x}) = \sum_k r_k(\mathbf{x})\,\big(-\Sigma_k^{-1}(\mathbf{x}-\boldsymbol\mu_k)\big)$
# with responsibilities $r_k(\mathbf{x}) = w_k \mathcal{N}_k(\mathbf{x}) / p(\mathbf{x})$, and a finite difference of $\log p$.

# %%
x_test = 6 * torch.randn(1000, 2, dtype=torch.float64, generator=gen)
s_autograd = score_from_energy(mix.energy)(x_test)
s_closed = mix.score(x_test)
eps = 1e-5
s_fd = torch.stack([(mix.log_prob(x_test + eps * e) - mix.log_prob(x_test - eps * e)) / (2 * eps)
                    for e in torch.eye(2, dtype=torch.float64)], -1)
print(f"max |autograd - closed form|    = {(s_autograd - s_closed).abs().max().item():.1e}")
print(f"max |finite diff - closed form| = {(s_fd - s_closed).abs().max().item():.1e}")
assert torch.allclose(s_autograd, s_closed, atol=1e-10) and torch.allclose(s_fd, s_closed, atol=1e-5)

# %% [markdown]
# ### What a score field looks like
#
# The score is a vector field that points towards higher density. Below: energy, density and
# score field (arrows normalised to show direction) for the mixture and for eight Gaussians on a
# circle. Notice that between the modes the arrows still point somewhere sensible — the score
# knows the geometry of $p$ everywhere, even where $p$ is tiny. (Whether a *learned* score does is
# another matter: notebook 03.)

# %%
ring = eight_gaussians(dtype=torch.float64)
fig, axes = plt.subplots(2, 3, figsize=(11, 7.4), layout="constrained")
for row, (name, dist, lim) in enumerate([("NCSN mixture", mix, 9), ("eight Gaussians", ring, 6)]):
    P.plot_energy(axes[row, 0], dist.energy, lim=lim, levels=25, title=f"{name}: energy f")
    P.plot_density(axes[row, 1], dist.log_prob, lim=lim, title=f"{name}: p(x)")
    P.plot_density(axes[row, 2], dist.log_prob, lim=lim, log_scale=True, title=f"{name}: score over log p")
    P.plot_score_field(axes[row, 2], dist.score, lim=lim, n=17, scale=25)
plt.show()

# %% [markdown]
# ## What remains
#
# We swapped the density for its score, so $Z$ is gone. Two questions remain, and they are the
# next two notebooks:
#
# - **How to train $\mathbf{s}_\theta(\mathbf{x}) \approx \nabla_\mathbf{x}\log p(\mathbf{x})$** without knowing
#   the true score? → score matching (notebook 02).
# - **How to sample** when all we have is the score? → Langevin dynamics (notebook 03).
#
# ## Check yourself
#
# The "Mexican hat" energy $f(\mathbf{x}) = \tfrac14\big(\|\mathbf{x}\|^2 - 4\big)^2$ has its minimum on the
# circle of radius 2. Write its score $\mathbf{s}(\mathbf{x}) = -\nabla_\mathbf{x} f(\mathbf{x})$ **by hand** (no
# autograd) for a batch of points of shape `(n, 2)`, and run the checker.

# %%
def my_score(x: torch.Tensor) -> torch.Tensor:
    # Your formula here, e.g. return ... (shape (n, 2))
    raise NotImplementedError


check_score(my_score, mexican_hat_energy);

# %% [markdown]
# <details><summary>Solution (click to open)</summary>
#
# $\nabla_\mathbf{x} \tfrac14(\|\mathbf{x}\|^2-4)^2 = \tfrac14 \cdot 2(\|\mathbf{x}\|^2-4)\cdot 2\mathbf{x} = (\|\mathbf{x}\|^2-4)\,\mathbf{x}$,
# so $\mathbf{s}(\mathbf{x}) = -(\|\mathbf{x}\|^2 - 4)\,\mathbf{x}$: inside the circle it points outwards, outside inwards.
# </details>

# %%
def solution_score(x: torch.Tensor) -> torch.Tensor:
    return -((x**2).sum(-1, keepdim=True) - 4.0) * x


assert check_score(solution_score, mexican_hat_energy)
fig, axes = P.figure_row(2)
P.plot_energy(axes[0], mexican_hat_energy, lim=3.5, levels=25, title="Mexican hat energy")
P.plot_score_field(axes[1], solution_score, lim=3.5, n=15, color="k", title="its score field")
plt.show()
