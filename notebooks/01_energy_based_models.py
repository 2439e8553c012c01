# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: slideshow,tags,jupyter,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 01 · Energy-based models and the score
#
# *Generative Modeling by Estimating Gradients of the Data Distribution* (Song & Ermon, 2019),
# following Yang Song's 2021 essay and the lecture deck.
#
# 1. the goal of generative modelling and **energy-based models** $p_\theta(\mathbf{x}) = e^{-f_\theta(\mathbf{x})}/Z_\theta$;
# 2. why maximum likelihood is hard: the normalising constant $Z_\theta$;
# 3. last week's alternative: **invertible models**;
# 4. today's way out: the **score** $\nabla_\mathbf{x} \log p(\mathbf{x})$, in which $Z_\theta$ drops out.
#
# **On the 90-minute lecture route** (notebook 00): §1, §2 (without its 🔍 deep dives), §3, §4 — **15 minutes**; the notebook runs in
# well under a minute on a laptop CPU once its trainings are cached (the first full run trains four small models for the
# deep dive after §4: a few minutes). Sections marked **🔍 Deep dive** are optional; the one after §4 trains $f_\theta$ by
# maximum likelihood with Langevin samples (contrastive divergence) and compares it with score matching.
# Lines starting with ✓ are claims the notebook checks numerically every time it runs.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import torch

from scoretutor import fast_mode, pick
from scoretutor.densities import eight_gaussians, ncsn_mixture
from scoretutor.ebm import grid_log_partition, grid_points_log10, score_from_energy
from scoretutor.flows import BananaFlow
from scoretutor.lecture import plotting as P
from scoretutor.lecture.claims import check, check_greater, check_less, check_true
from scoretutor.lecture.exercises.energy import check_score, check_transformations, mexican_hat_energy

# %% slideshow={"slide_type": "skip"}
gen = torch.Generator().manual_seed(0)

# %% slideshow={"slide_type": "skip"}
from scoretutor.contrastive_divergence import (  # the contrastive-divergence deep dive after §4
    ContrastiveDivergence,
    fit_tracked,
    grid_log_likelihood,
    grid_log_normaliser,
    grid_mode_weights,
)
from scoretutor.losses import denoising_score_matching
from scoretutor.models import EnergyMLP
from scoretutor.training import cached, fit

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The objective of generative modelling
#
# We are given a dataset $\{\mathbf{x}_1, \dots, \mathbf{x}_N\}$ drawn from an unknown data
# distribution $p(\mathbf{x})$. We want a model $p_\theta(\mathbf{x})$ that we can evaluate and
# **sample from**. Our running example is the 2D mixture of Song & Ermon (2019, §3.2.2):
# $$p(\mathbf{x}) = \tfrac15\,\mathcal{N}\big((-5,-5), I\big) + \tfrac45\,\mathcal{N}\big((5,5), I\big).$$
# Remember the weights $\tfrac15 : \tfrac45$ — in notebook 03 a sampler will get them wrong.

# %% slideshow={"slide_type": "-"}
mix = ncsn_mixture(dtype=torch.float64)
data = mix.sample(pick(full=2000, fast=500), generator=gen)
fig, axes = P.figure_row(2)
P.plot_samples(axes[0], data, lim=9, title=f"{len(data)} samples (the dataset)")
P.plot_density(axes[1], mix.log_prob, lim=9, title="true density p(x)")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Energy-based models
#
# Any function $f_\theta(\mathbf{x})$ — say a neural network with one scalar output — defines a density
# $$p_\theta(\mathbf{x}) = \frac{e^{-f_\theta(\mathbf{x})}}{Z_\theta}, \qquad Z_\theta = \int e^{-f_\theta(\mathbf{x})}\,d\mathbf{x}.$$
# $f_\theta$ is the **energy** (an *unnormalised* model): low energy ⇔ high probability.

# %% [markdown] slideshow={"slide_type": "fragment"}
# Training by maximum likelihood means
# $$\max_\theta \sum_{i=1}^N \log p_\theta(\mathbf{x}_i) = \max_\theta \Big[\sum_{i=1}^N \big(-f_\theta(\mathbf{x}_i)\big) - N \log Z_\theta\Big],$$
# so we need $\log Z_\theta$ — an integral over the whole space — and its gradient.
# For our mixture the energy is known in closed form, normalised so that $Z = 2\pi$:

# %% slideshow={"slide_type": "-"}
fig, axes = P.figure_row(3)
P.plot_energy(axes[0], mix.energy, lim=9, levels=25, title="energy f(x)")
P.plot_density(axes[1], mix.log_prob, lim=9, title="p(x) = exp(-f(x)) / Z")
P.plot_density(axes[2], mix.log_prob, lim=9, log_scale=True, title="log p(x)")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Computing $Z$ by brute force — in 2D it works
#
# On a grid with spacing $h$ over a box, $Z \approx \sum_{\text{grid}} e^{-f(\mathbf{x})}\,h^d$.
# In 2D this is cheap and very accurate:

# %% slideshow={"slide_type": "-"}
for n in [25, 50, 100, 400]:
    logz = grid_log_partition(mix.energy, dim=2, lim=14.0, n_per_axis=n)
    print(f"{n:>3} × {n:<3} grid:  |log Z − log 2π| = {abs(logz - math.log(2 * math.pi)):.0e}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check("log Z on a 400×400 grid", logz, math.log(2 * math.pi), 1e-8);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Deep dive: the gradient of $\log Z$ needs samples from the model
#
# Differentiating under the integral sign gives
# $\nabla_\theta \log Z_\theta = -\int \frac{e^{-f_\theta(\mathbf{x})}}{Z_\theta}\nabla_\theta f_\theta(\mathbf{x})\,d\mathbf{x} = -\mathbb{E}_{p_\theta}[\nabla_\theta f_\theta(\mathbf{x})]$.
# Check it on the family $f_\theta = \theta f$ ("inverse temperature"), $\partial_\theta f_\theta = f$: at $\theta = 1$
# a finite difference of grid values of $\log Z_\theta$ must equal $-\mathbb{E}_{p}[f(\mathbf{x})]$, estimated with samples of $p$.
# In training $p_\theta$ changes every step, so this needs fresh samples from the model each time — the second reason EBMs are hard.

# %% slideshow={"slide_type": "-"}
logz_at = lambda theta: grid_log_partition(lambda x: theta * mix.energy(x), dim=2, lim=14.0, n_per_axis=400)
dlogz_fd = (logz_at(1.001) - logz_at(0.999)) / 0.002
f_samples = mix.energy(mix.sample(pick(full=100_000, fast=20_000), generator=gen))
mc, se = -f_samples.mean().item(), f_samples.std().item() / math.sqrt(len(f_samples))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# Monte Carlo error dominates (4 standard errors); the O(h²) finite-difference error is ~1e-7.
check("d/dθ log Z (finite differences) = −E_p[f] (Monte Carlo)", dlogz_fd, mc, 4 * se + 1e-4);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Deep dive: … and why a grid cannot work in high dimension
#
# A grid needs $n^d$ energy evaluations. We time one grid in $d = 5$ (20 points per axis) and extrapolate with
# the measured cost per evaluation. An MNIST digit has $d = 28 \times 28 = 784$.

# %% slideshow={"slide_type": "-"}
d_timed = 5  # 20⁵ = 3.2 million points: under a second
t0 = time.perf_counter()
grid_log_partition(lambda x: 0.5 * (x**2).sum(-1), dim=d_timed, lim=6.0, n_per_axis=20)
per_point = (time.perf_counter() - t0) / 20**d_timed
for d in [10, 50, 784]:
    log10_years = grid_points_log10(d, 20) + math.log10(per_point / 3.15e7)
    print(f"d = {d:>3}: about 10^{log10_years:.0f} years on this machine")
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
P.plot_grid_cost(ax)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Recap: invertible models avoid $Z$ by construction
#
# Last week: an **invertible** map $\mathbf{z} = g_\theta(\mathbf{x})$ to a base density $p(\mathbf{z}) = \mathcal{N}(0, I)$ gives a
# density that is normalised automatically (the deck writes this map as $f_\theta$; we call it $g_\theta$ here
# because $f_\theta$ is already the energy):
# $$p_\theta(\mathbf{x}) = p\big(g_\theta(\mathbf{x})\big)\,\Big|\det \frac{\partial g_\theta(\mathbf{x})}{\partial \mathbf{x}}\Big|.$$
# Our tiny example is one affine coupling layer (`BananaFlow`), whose Jacobian is triangular. The price:
# $g_\theta$ must be invertible with a cheap determinant, which restricts the architecture.

# %% slideshow={"slide_type": "-"}
flow = BananaFlow()
fig, axes = P.figure_row(2)
P.plot_density(axes[0], flow.log_prob, lim=(-6, 6, -4, 8), title="flow density p(x)")
P.plot_samples(axes[1], flow.sample(pick(full=2000, fast=500), generator=gen), lim=(-6, 6, -4, 8),
               title="samples x = g⁻¹(z)")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# log|det ∂g/∂x| of the coupling layer = −log a − c·tanh x₁, against autograd's full Jacobian
x_check = 2 * torch.randn(5, 2, dtype=torch.float64, generator=gen)
jac = lambda xi: torch.autograd.functional.jacobian(lambda v: flow.forward(v[None])[0][0], xi)
log_det_autograd = torch.stack([torch.linalg.det(jac(xi)).abs().log() for xi in x_check])
check_less("max |log det (formula) − log det (autograd)|",
           (flow.forward(x_check)[1] - log_det_autograd).abs().max(), 1e-10)
# ∫ p = 1 by a 600×600 midpoint rule on [−12, 12]² (the tails beyond the box are < 1e-3)
n_grid, h = 600, 24.0 / 600
xs = -12.0 + h * (torch.arange(n_grid, dtype=torch.float64) + 0.5)
X, Y = torch.meshgrid(xs, xs, indexing="xy")
mass = flow.log_prob(torch.stack([X.reshape(-1), Y.reshape(-1)], -1)).exp().sum().item() * h * h
check("the flow density integrates to 1 (no Z needed)", mass, 1.0, 2e-3);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · The score: $Z$ drops out
#
# Instead of the density, model its gradient with respect to the **input**, the (Stein) **score function**:
# $$\nabla_\mathbf{x} \log p_\theta(\mathbf{x}) = -\nabla_\mathbf{x} f_\theta(\mathbf{x}) - \underbrace{\nabla_\mathbf{x} \log Z_\theta}_{=0} = -\nabla_\mathbf{x} f_\theta(\mathbf{x}).$$
# $Z_\theta$ depends on $\theta$ but not on $\mathbf{x}$, so its $\mathbf{x}$-gradient vanishes.

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Check.** Two energies that differ by a constant define the same normalised density — and have
# *identical* scores: an energy network with random weights, and the same network plus 100 ($Z_2 = e^{-100}Z_1$).

# %% slideshow={"slide_type": "-"}
torch.manual_seed(0)
energy_net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1))
x_test = torch.randn(1000, 2, generator=gen)
s1 = score_from_energy(lambda x: energy_net(x).squeeze(-1))(x_test)
s2 = score_from_energy(lambda x: energy_net(x).squeeze(-1) + 100.0)(x_test)
check_true("f and f + 100 have identical scores", torch.equal(s1, s2))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# −∇f by autograd = closed-form mixture score Σ_k r_k(x)(−Σ_k⁻¹(x − μ_k)) = central differences of log p
x_test = 6 * torch.randn(1000, 2, dtype=torch.float64, generator=gen)
s_closed = mix.score(x_test)
s_fd = torch.stack([(mix.log_prob(x_test + 1e-5 * e) - mix.log_prob(x_test - 1e-5 * e)) / 2e-5
                    for e in torch.eye(2, dtype=torch.float64)], -1)
check_less("mixture: max |−∇f (autograd) − closed-form score|",
           (score_from_energy(mix.energy)(x_test) - s_closed).abs().max(), 1e-10)
check_less("mixture: max |finite differences of log p − closed-form score|", (s_fd - s_closed).abs().max(), 1e-5);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### What a score field looks like
#
# The score points towards higher density. Between the modes the arrows still point somewhere sensible —
# the *true* score knows the geometry of $p$ everywhere, even where $p$ is tiny. (Whether a *learned* score
# does is another matter: notebook 03.)

# %% slideshow={"slide_type": "-"}
fig, axes = plt.subplots(2, 3, figsize=(11, 7.4), layout="constrained")
for row, (name, dist, lim) in enumerate([("mixture", mix, 9), ("eight Gaussians", eight_gaussians(), 6)]):
    P.plot_energy(axes[row, 0], dist.energy, lim=lim, levels=25, title=f"{name}: energy f")
    P.plot_density(axes[row, 1], dist.log_prob, lim=lim, title=f"{name}: p(x)")
    P.plot_density(axes[row, 2], dist.log_prob, lim=lim, log_scale=True, title=f"{name}: score over log p")
    P.plot_score_field(axes[row, 2], dist.score, lim=lim, n=17, scale=25)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 🔍 Deep dive: maximum likelihood with Langevin samples (contrastive divergence)
#
# §2 showed that the gradient of the log-likelihood needs samples of the model:
# $$\nabla_\theta \frac1N\sum_i \log p_\theta(\mathbf{x}_i) = -\frac1N\sum_i \nabla_\theta f_\theta(\mathbf{x}_i) + \mathbb{E}_{\mathbf{x}\sim p_\theta}\big[\nabla_\theta f_\theta(\mathbf{x})\big].$$
# **Contrastive divergence** (CD) draws them with $K$ steps of Langevin dynamics on the current energy,
# $\mathbf{x} \leftarrow \mathbf{x} - \varepsilon\nabla_\mathbf{x} f_\theta(\mathbf{x}) + \sqrt{2\varepsilon}\,\mathbf{z}$, started from noise (*short-run*) or
# where the chains stopped at the previous update (*persistent*: a replay buffer, as the UvA deep-learning tutorial 8
# trains image EBMs). So each update costs $K$ energy gradients in $\mathbf{x}$ plus a forward/backward pass on data and samples; DSM
# (notebook 02) costs one. The gradient above is unchanged by $f \to f + c$, so the energy's level is free: a
# regulariser $\alpha\,\mathbb{E}[f^2]$ on both batches pins it (Du & Mordatch 2019). We train the same `EnergyMLP` on the
# dataset of §1 four ways ($K = 20$, $\varepsilon = 0.05$, $\alpha = 0.1$) and, since $Z_\theta$ is a grid sum in 2D, score the
# *normalised* $p_\theta$ exactly: $\mathrm{KL}(p\,\|\,p_\theta)$, the quantity maximum likelihood minimises, and the weight it gives the (5, 5) mode (truth 0.8).

# %% slideshow={"slide_type": "-"}
n_updates, K, eps, x_eval = pick(full=3000, fast=100), 20, 0.05, mix.sample(5000, generator=gen).float()
means, truth_ll = mix.means.float(), mix.log_prob(x_eval.double()).mean().item()
cd = lambda **kw: lambda: ContrastiveDivergence(EnergyMLP(2, 64, 2), step_size=eps, n_steps=K, **kw)
cd_step = lambda m, x, g: m.loss(x, g)
methods = {  # name: (new model, loss, energy gradients ∇ₓf per update)
    "score matching (DSM, σ = 0.1)": (lambda: EnergyMLP(2, 64, 2),
                                      lambda m, x, g: denoising_score_matching(m.score, x, 0.1, generator=g), 1),
    "CD, short-run (from noise)": (cd(persistent=False), cd_step, K + 2),
    "CD, persistent (replay buffer)": (cd(), cd_step, K + 2),
    "CD, short-run, α = 0": (cd(persistent=False, alpha=0.0), cd_step, K + 2),
}
probe = lambda m: lambda: {"KL": truth_ll - grid_log_likelihood(m, x_eval, lim=14).item(),
                           "weight": grid_mode_weights(m, means, lim=14)[1].item(), "level": m(x_eval).mean().item()}

# %% slideshow={"slide_type": "-"}
runs, models = {}, {}
for name, (make, loss, _) in methods.items():
    torch.manual_seed(0)
    models[name] = make()
    train = lambda m=models[name], loss=loss: fit_tracked(
        m, loss, data.float(), n_updates, pick(full=250, fast=25), probe(m), batch_size=128, device="cpu", progress=False)
    settings = dict(method=name, n_updates=n_updates, K=K, eps=eps, n_data=len(data))
    runs[name] = train() if fast_mode() else cached("01-cd", train, **settings)
    models[name].load_state_dict(runs[name]["state"])


# %% slideshow={"slide_type": "skip"}
def ms_per_update(make, loss, n: int = pick(full=30, fast=5)) -> float:
    """Wall time of one update, measured now on a fresh model (not the cached run), after two warm-up updates."""
    torch.manual_seed(0)
    model = make()
    fit(model, loss, data.float(), 2, batch_size=128, device="cpu", progress=False)  # one-off costs
    t0 = time.perf_counter()
    fit(model, loss, data.float(), n, batch_size=128, device="cpu", progress=False)
    return 1e3 * (time.perf_counter() - t0) / n


# %% slideshow={"slide_type": "slide"}
fig, axes = P.figure_row(5, size=2.9)
P.plot_density(axes[0], mix.log_prob, lim=9, title="truth p")
for ax, (name, m) in zip(axes[1:], models.items(), strict=True):
    log_z = grid_log_normaliser(m, lim=14).item()
    P.plot_density(ax, lambda x, m=m, log_z=log_z: -m(x.float()).double() - log_z, lim=9, title=name)
plt.show()

# %% slideshow={"slide_type": "-"}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
for name, run in runs.items():
    for ax, key in zip(axes, ["weight", "KL", "level"], strict=True):
        ax.plot(run["steps"], run[key], label=name)
axes[0].axhline(0.8, color="k", ls=":", label="truth 0.8")
axes[0].set(ylabel="p_θ's weight of the (5, 5) mode", xlabel="updates", ylim=(0, 1.02))
axes[1].set(ylabel="KL(p ‖ p_θ)", xlabel="updates", yscale="log")
axes[2].set(ylabel="mean energy f_θ on data", xlabel="updates", yscale="symlog")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=8)
plt.show()

# %% slideshow={"slide_type": "-"}
costs = {name: ms_per_update(make, loss) for name, (make, loss, _) in methods.items()}
late = lambda values: torch.tensor(values[len(values) // 2:])  # the second half of the training
print(f"{'':30s} ∇ₓf per update  ms per update  KL(p‖p_θ)  weight of (5, 5)   (second half: mean ± sd)")
for name, (_, _, evals) in methods.items():
    kl, w = late(runs[name]["KL"]), late(runs[name]["weight"])
    print(f"{name:30s} {evals:>14d} {costs[name]:>14.1f} {kl.mean():>10.3f} {w.mean():>12.2f} ± {w.std():.2f}")
print(f"{'truth':30s} {'':>14s} {'':>14s} {0:>10.3f} {0.8:>12.2f}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check("grid weight of the (5, 5) mode of the true mixture energy",
      grid_mode_weights(mix.energy, mix.means, lim=14, n_per_axis=400)[1].item(), 0.8, 1e-8)
sm, short = "score matching (DSM, σ = 0.1)", "CD, short-run (from noise)"
check_greater("a CD update costs more wall time than a DSM update (ratio)", costs[short] / costs[sm], 2)
check_greater("without α the energy's level drifts: −mean f on data", -runs["CD, short-run, α = 0"]["level"][-1],
              pick(full=50, fast=5))
check_greater("… and p_θ collapses: KL(p ‖ p_θ) without α / with α",
              runs["CD, short-run, α = 0"]["KL"][-1] / runs[short]["KL"][-1], pick(full=100, fast=2));

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Reading it.**
# - **Cost.** A CD update evaluates $\nabla_\mathbf{x} f_\theta$ $K = 20$ times for its negatives, then $f_\theta$ on data and negatives with one
#   backward pass in $\theta$; a DSM update is one (double) backward pass. On this small network that is several times the wall
#   time (table), and the factor grows with $K$ — which must grow with the dimension for the chains to mix.
# - **Energy drift.** $f \to f + c$ leaves the CD gradient unchanged, so without the regulariser nothing holds the energy's
#   level: it runs away (right panel), the energy surface sharpens with it, and $p_\theta$ collapses onto a narrow peak
#   at one mode (the last density above; KL ≈ 10²). With $\alpha$ the level stays near 0.
# - **Mode weights.** 20 steps of size $\varepsilon = 0.05$ move a chain by about $\sqrt{2K\varepsilon} \approx 1.4$ through noise, the modes are 14 apart:
#   no chain ever crosses. The negatives' split between the modes is set by where the chains start (noise, or the
#   replay buffer), not by $p_\theta$, and $p_\theta$'s weight of the (5, 5) mode wanders from update to update (left panel) instead of
#   settling at 0.8. Short-run CD learns an energy whose 20-step chains *from noise* match the data — a different target
#   from maximum likelihood (Nijkamp et al. 2019); the persistent buffer only helps where its chains can mix.
# - **Score matching** costs one gradient and no sampler; its KL is of the same order as CD's. But its weight of the (5, 5)
#   mode is off too: that weight is set by the energy *between* the modes, where there are no data, and score matching
#   weights its errors by the data density. Notebook 03 meets the same blind spot when sampling; notebook 04's large noise levels fix it.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What remains
#
# We swapped the density for its score, so $Z$ is gone. Two questions remain — the next two notebooks:
#
# - **How to train $\mathbf{s}_\theta(\mathbf{x}) \approx \nabla_\mathbf{x}\log p(\mathbf{x})$** without knowing the true score? → score matching (02).
# - **How to sample** when all we have is the score? → Langevin dynamics (03).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Check yourself
#
# The "Mexican hat" energy $f(\mathbf{x}) = \tfrac14\big(\|\mathbf{x}\|^2 - 4\big)^2$ has its minimum on the
# circle of radius 2. Write its score $\mathbf{s}(\mathbf{x}) = -\nabla_\mathbf{x} f(\mathbf{x})$ **by hand** (no
# autograd) for a batch of points of shape `(n, 2)`, and run the checker. (The solution is in the collapsed cell below.)

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_score(x: torch.Tensor) -> torch.Tensor:
    # Your formula here, e.g. return ... (shape (n, 2))
    raise NotImplementedError


check_score(my_score, mexican_hat_energy);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
# Solution: ∇ ¼(‖x‖² − 4)² = ¼·2(‖x‖² − 4)·2x = (‖x‖² − 4)x, so s(x) = −(‖x‖² − 4)x:
# inside the circle it points outwards, outside inwards.
def solution_score(x: torch.Tensor) -> torch.Tensor:
    return -((x**2).sum(-1, keepdim=True) - 4.0) * x


check_true("the solution passes the checker", check_score(solution_score, mexican_hat_energy))
fig, axes = P.figure_row(2)
P.plot_energy(axes[0], mexican_hat_energy, lim=3.5, levels=25, title="Mexican hat energy")
P.plot_score_field(axes[1], solution_score, lim=3.5, n=15, color="k", title="its score field")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# **Predict, then check.** Four changes to the energy $f$ of §1's mixture. For each one, predict *before running
# anything* whether the normalised density $p = e^{-f}/Z$ changes, and whether the score $\mathbf{s}(\mathbf{x}) = -\nabla_\mathbf{x} f(\mathbf{x})$
# changes at a fixed $\mathbf{x}$. Write `True` (it changes) or `False` (it stays the same). The checker computes both on a grid
# and says what happened. One of the four is a trap; once you have found it, ask yourself: can two energies have
# the same score everywhere and different densities?

# %% slideshow={"slide_type": "-"} tags=["exercise"]
my_predictions = {  # True = changes, False = stays the same
    "f(x) + 3": {"density changes": ..., "score changes": ...},
    "2 f(x)": {"density changes": ..., "score changes": ...},
    "f(x − a), a = (1, 0)": {"density changes": ..., "score changes": ...},
    "f(x) + 0.5·x₁": {"density changes": ..., "score changes": ...},
}
check_transformations(my_predictions);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
# f + 3: Z absorbs e^{-3}, ∇ₓ3 = 0. 2f: p ∝ p², sharper; s → 2s. f(x − a): everything moves by a, so at a fixed x
# both change. The trap, f + 0.5·x₁: the tilt's gradient is the constant (0.5, 0), so the score changes everywhere
# and each Gaussian mode moves by −0.5 along x₁ — and the weights change by e^{−0.5 μ₁}: the (5, 5) mode's
# weight falls from 0.8 to 0.03. No: an equal score everywhere means f₁ − f₂ is constant
# (its gradient is 0 on a connected space), so the densities are equal — the score determines p.
solution_predictions = {
    "f(x) + 3": {"density changes": False, "score changes": False},
    "2 f(x)": {"density changes": True, "score changes": True},
    "f(x − a), a = (1, 0)": {"density changes": True, "score changes": True},
    "f(x) + 0.5·x₁": {"density changes": True, "score changes": True},
}
check_true("the solution passes the checker", check_transformations(solution_predictions))
