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
# # 03 · Langevin dynamics: sampling with the score, and where it goes wrong
#
# Notebook 02 learned $\mathbf{s}_\theta(\mathbf{x}) \approx \nabla_\mathbf{x}\log p(\mathbf{x})$. *How to sample?* With a noisy
# gradient ascent on $\log p$, **Langevin dynamics**:
# $$\mathbf{x}_0 \sim \pi(\mathbf{x}), \qquad
#   \mathbf{x}_{i+1} \leftarrow \mathbf{x}_i + \epsilon\,\nabla_\mathbf{x}\log p(\mathbf{x}_i) + \sqrt{2\epsilon}\,\mathbf{z}_i,
#   \quad \mathbf{z}_i\sim\mathcal{N}(\mathbf{0}, I),\quad i = 0, 1, \dots, K-1.$$
# (The deck writes $i = 0, \dots, K$; we count $K$ updates, as the code does.) It needs only the score, and it
# provably produces samples of $p$ — *as $\epsilon\to 0$ and $K\to\infty$*.
#
# 1. the sampler in five lines, and an exercise; 2. convergence for several step sizes $\epsilon$;
# 3. 🔍 why a finite $\epsilon$ is biased (predict it, then derive it), and MALA; 4. an explorer for $\epsilon$ and $K$;
# 5. **low-density regions**: a learned score is wrong where there are no data; 6. **the mode-weight failure**.
#
# **On the 90-minute lecture route** (notebook 00): §1, §4 (live explorer), §5, §6 — **20 minutes**; the notebook runs in about a minute on a laptop
# CPU (full mode; the training in §5 is cached, so a re-run is quicker). 🔍 marks optional deep dives.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from scoretutor import fast_mode, get_device, pick

# %% slideshow={"slide_type": "skip"}
from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.lecture import plotting as P
from scoretutor.lecture.claims import check, check_greater, check_less, check_true
from scoretutor.lecture.exercises.langevin import (
    check_langevin_step,
    check_stationary_variance,
    check_variance_prediction,
)
from scoretutor.lecture.widgets.langevin import LangevinExplorer
from scoretutor.losses import denoising_score_matching
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.models import ScoreMLP
from scoretutor.sampling import LangevinDivergenceError, langevin, mala
from scoretutor.training import cache_path, fit

# %% slideshow={"slide_type": "skip"}
device, gen = get_device(), torch.Generator().manual_seed(0)
seeded = lambda seed: torch.Generator().manual_seed(seed)
langevin, mala = partial(langevin, progress=False), partial(mala, progress=False)  # no bar per sampler call

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The sampler in five lines
#
# Our first target is a mixture of three overlapping Gaussians, so that particles can travel between the modes.
# The update is literally the equation above; the package's `langevin` is the same loop (plus input checks, a
# divergence guard, trajectories and any device):

# %% slideshow={"slide_type": "-"}
target = GaussianMixture(torch.tensor([[-2.5, -1.0], [2.5, -1.0], [0.0, 2.5]]),
                         torch.tensor([1.0, 0.8, 0.6]), torch.tensor([0.5, 0.3, 0.2]))
lim = 6.0


def langevin_loop(score, x, eps, K, generator):
    for _ in range(K):
        z = torch.randn(x.shape, generator=generator)
        x = x + eps * score(x) + math.sqrt(2 * eps) * z
    return x

# %% slideshow={"slide_type": "-"}
x0 = 4 * torch.randn(1000, 2, generator=gen)
mine = langevin_loop(target.score, x0, 0.05, 200, seeded(1))
pkg = langevin(target.score, x0, 0.05, 200, generator=seeded(1)).x
check_less("max |our loop − scoretutor.sampling.langevin|", (mine - pkg).abs().max(), 1e-5)
fig, axes = P.figure_row(3, size=3.4)
P.plot_density(axes[0], target.log_prob, lim, title="p(x) and its score")
P.plot_score_field(axes[0], target.score, lim, n=15)
P.plot_samples(axes[1], x0, lim, title="x₀ ~ N(0, 4²I)")
P.plot_samples(axes[2], pkg, lim, title="after K = 200 steps, ε = 0.05")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# The score pulls every particle uphill in $\log p$; the noise $\sqrt{2\epsilon}\,\mathbf{z}$ keeps them from collapsing
# onto the modes. Where does $\sqrt{2\epsilon}$ come from? $p$ is the stationary distribution of the **Langevin SDE**
# $d\mathbf{x} = \nabla\log p(\mathbf{x})\,dt + \sqrt 2\,d\mathbf{w}$, and the update is its Euler–Maruyama discretisation with
# time step $\epsilon$ (Brownian increments over time $\epsilon$ have standard deviation $\sqrt\epsilon$). The discrete chain
# itself is only *approximately* stationary for $p$ — §3 measures the difference.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Exercise 1 · one Langevin step
#
# Write `my_step(x, score_fn, eps, z)` returning $\mathbf{x} + \epsilon\,\mathbf{s}(\mathbf{x}) + \sqrt{2\epsilon}\,\mathbf{z}$
# (the noise `z` is given). The checker recognises the usual slips (missing noise, $\sqrt\epsilon$ instead of
# $\sqrt{2\epsilon}$, wrong sign). The solution is in the collapsed cell below.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_step(x, score_fn, eps, z):
    raise NotImplementedError  # your code here


check_langevin_step(my_step);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def reference_step(x, score_fn, eps, z):
    return x + eps * score_fn(x) + math.sqrt(2 * eps) * z


check_true("the solution passes the checker", check_langevin_step(reference_step))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Does it converge? Distance to the target against steps
#
# We measure how far the particles are from $p$ with the **sliced Wasserstein distance** SW₂ to a large exact
# sample (an average of exact 1-D Wasserstein distances over random directions). Even a perfect sampler does not
# reach 0 with finitely many particles: the grey band is the **noise floor**, SW₂ between independent exact samples.

# %% slideshow={"slide_type": "skip"}
n_particles, K = pick(full=2000, fast=1000), pick(full=1500, fast=600)
reference = target.sample(pick(full=20000, fast=10000), generator=gen)
sw = lambda x: sliced_wasserstein(x, reference, n_projections=128, generator=seeded(7))
floor = torch.tensor([sw(target.sample(n_particles, generator=gen)) for _ in range(10)])
floor_mean, floor_sd = floor.mean().item(), floor.std().item()
checkpoints = sorted({int(v) for v in np.unique(np.geomspace(1, K, 18).round())})
x_start = 4 * torch.randn(n_particles, 2, generator=gen)


def sw_curve(run):
    """Run a sampler with a callback that records SW₂ at the checkpoints; rows (step, SW₂)."""
    curve = [(0, sw(x_start))]
    run(lambda i, x: curve.append((i, sw(x))) if i in checkpoints else None)
    return np.array(curve)

# %% slideshow={"slide_type": "-"}
curves = {f"ULA ε = {eps}": sw_curve(lambda cb, eps=eps: langevin(
    target.score, x_start, eps, K, generator=seeded(2), callback=cb)) for eps in (0.01, 0.05, 0.2, 1.0)}
mala_run = []
curves["MALA ε = 1.0"] = sw_curve(lambda cb: mala_run.append(
    mala(target.log_prob, x_start, 1.0, K, generator=seeded(2), callback=cb)))
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
P.plot_convergence(ax, curves, floor=(floor_mean, floor_sd))
plt.show()
try:
    langevin(target.score, x_start, 2.5, K, generator=seeded(2))
except LangevinDivergenceError as err:
    print(f"ULA with ε = 2.5: {err}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
late = {name: c[c[:, 0] >= K // 2, 1].mean() for name, c in curves.items()}  # second half of the run
sd_above = lambda name: (late[name] - floor_mean) / floor_sd
check_less("ULA ε = 0.05 reaches the noise floor (SW₂ above it, in floor sd)", sd_above("ULA ε = 0.05"), 4)
check_greater("ULA ε = 1.0 stays far above the floor (in floor sd)", sd_above("ULA ε = 1.0"), 6)
check_less("MALA ε = 1.0 / ULA ε = 1.0 (late SW₂)", late["MALA ε = 1.0"] / late["ULA ε = 1.0"], 0.5)
slow = max(curves["ULA ε = 0.01"][-1, 1] - curves["ULA ε = 0.05"][-1, 1], late["ULA ε = 0.01"] - late["ULA ε = 0.05"])
check_greater("ε = 0.01 is still further from p than ε = 0.05 (SW₂ difference)", slow, 0);

# %% [markdown] slideshow={"slide_type": "fragment"}
# * **small $\epsilon$ (0.01)** is accurate but slow: after $K$ steps it has moved a "time" $K\epsilon$, and it needs
#   $K\epsilon$ of a few units to forget the start;
# * **moderate $\epsilon$ (0.05)** reaches the noise floor; **0.2** approaches it fastest but settles above it;
# * **large $\epsilon$ (1.0)** converges *to the wrong distribution*; $\epsilon = 2.5$ diverges (the sampler stops with an error).
#
# The dashed red line adds a Metropolis–Hastings accept/reject step to the same proposal (**MALA**). The correction
# restores detailed balance with respect to $p$, so $p$ is exactly invariant at any step size and the chain reaches the floor.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · 🔍 Deep dive: why a finite step is biased — the Gaussian case in closed form
#
# For $p = \mathcal{N}(0, \tau^2)$ the score is $-x/\tau^2$, and one step is linear:
# $x' = \underbrace{(1 - \epsilon/\tau^2)}_{a}\,x + \sqrt{2\epsilon}\,z$. Start the chain from exact samples of $p$ and
# run it until it has forgotten its start. Does its variance stay at $\tau^2$?
#
# **Predict, then check.** For $\tau^2 = 1$ and $\epsilon = 0.5$, what variance does the chain settle at? Write down a
# number before you compute anything (a guess is fine); the checker runs 20,000 chains and tells you what happened.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
my_prediction = None  # your number

check_variance_prediction(my_prediction, eps=0.5, tau2=1.0);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
solution_prediction = 4 / 3  # τ²/(1 − ε/(2τ²)) with ε = 0.5, τ² = 1: derived in the next exercise
check_true("the solution passes the checker", check_variance_prediction(solution_prediction, eps=0.5, tau2=1.0))

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Derive.** Now explain the number. Take the variance of both sides of one step ($z$ is independent of $x$), find the
# fixed point $v_\infty(\epsilon, \tau^2)$ of the map $v \mapsto v'$, and say for which $\epsilon$ the chain reaches it (the checker tests the formula; the
# range of $\epsilon$ is in the solution). Write it
# as `my_variance(eps, tau2)`; the derivation follows the figure below (and the collapsed solution cell).

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_variance(eps, tau2):
    raise NotImplementedError  # your formula here


check_stationary_variance(my_variance);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
# v' = a²v + 2ε with a = 1 − ε/τ²; the fixed point v = 2ε/(1 − a²) is reached iff |a| < 1, i.e. 0 < ε < 2τ²
def solution_variance(eps, tau2):
    return 2 * eps / (1 - (1 - eps / tau2) ** 2)


check_true("the solution passes the checker", check_stationary_variance(solution_variance))

# %% [markdown] slideshow={"slide_type": "slide"}
# ### The measurement for every step size
#
# The variance each sampler settles at, started from exact samples of $\mathcal{N}(0, 1)$, for step sizes from 0.01 to 1.9,
# with unadjusted Langevin (ULA) and with MALA (its Metropolis-corrected version from §2). The black line is the formula for $v_\infty$ you derived.

# %% slideshow={"slide_type": "-"}
tau2, n_var, eps_grid = 1.0, pick(full=40000, fast=10000), np.geomspace(0.01, 1.9, 10)
x_exact = torch.randn(n_var, 1, generator=gen, dtype=torch.float64)
steps = lambda eps: math.ceil(math.log(1e-6) / (2 * math.log(abs(1 - eps / tau2))))  # |a|^{2K} ≤ 1e-6
ula_var = [langevin(lambda x: -x / tau2, x_exact, e, steps(e), generator=gen).x.var().item() for e in eps_grid]
mala_var = [mala(lambda x: -0.5 * (x**2).sum(-1) / tau2, x_exact, e, 50, generator=gen).x.var().item() for e in eps_grid]
formula = 2 * eps_grid / (1 - (1 - eps_grid / tau2) ** 2)
se = np.sqrt(2 / n_var)  # relative standard error of a sample variance
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
P.plot_mean_se(ax, eps_grid, {"ULA (measured)": (ula_var, formula * se), "MALA (measured)": (mala_var, tau2 * se)},
               reference=(tau2, "target τ² = 1"), xlabel="step size ε", ylabel="stationary variance", log=True)
ax.plot(eps_grid, formula, "k-", lw=1, label="2ε / (1 − (1 − ε/τ²)²)")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("ULA variance = formula: largest deviation in standard errors",
           np.abs((np.array(ula_var) - formula) / (formula * se)).max(), 4)
check_less("MALA variance = τ²: largest deviation in standard errors", np.abs((np.array(mala_var) - tau2) / se).max(), 4);

# %% [markdown] slideshow={"slide_type": "fragment"}
# **The derivation.** Taking variances, $v' = a^2 v + 2\epsilon$, whose fixed point (stable iff $|a|<1$, i.e. $0<\epsilon<2\tau^2$) is
# $$v_\infty = \frac{2\epsilon}{1-(1-\epsilon/\tau^2)^2} = \frac{\tau^2}{1-\epsilon/(2\tau^2)} \;>\; \tau^2 ,$$
# $4/3$ at $\epsilon = 0.5$. The unadjusted chain is **too wide by a factor $1/(1-\epsilon/(2\tau^2))$**, an $O(\epsilon)$ bias that
# no number of steps removes: at $\epsilon = 1.9$ its variance is 20 times too large, at $\epsilon = 0.01$ 0.5 % too large.
# MALA's accept/reject step makes $p$ exactly invariant, so it has no such bias.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · Explore: step size ε, number of steps K, number of particles
#
# Drag the sliders (they recompute on release; the same starting points and noise every time). Try $K$ from 0 upwards
# at $\epsilon = 0.05$; $\epsilon$ towards 1 (too-wide clouds); $\epsilon > 2$ (divergence, reported in the status line).
# The status line compares the fraction of particles nearest to each mode with the target weights.

# %% slideshow={"slide_type": "-"}
explorer = LangevinExplorer(target, lim=lim, init="gaussian", step_size=0.05, n_steps=100, n_particles=500)
display(explorer)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · The low-density problem: a learned score is only right where the data are
#
# With a *learned* score the picture changes. Training minimises the Fisher divergence (with notebook 02's ½)
# $$\tfrac12\,\mathbb{E}_{p(\mathbf{x})}\big[\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\big]
#   = \tfrac12\int p(\mathbf{x})\,\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\,d\mathbf{x},$$
# so errors count **weighted by $p(\mathbf{x})$**: where there is no data, nothing is learned. We train a `ScoreMLP` by
# denoising score matching at a small $\sigma = 0.1$ (so $p_\sigma \approx p$) on the mixture
# $p = \tfrac15\mathcal{N}((-5,-5), I) + \tfrac45\mathcal{N}((5,5), I)$, and compare it with the true score everywhere.

# %% slideshow={"slide_type": "-"}
mix, box, n_train = ncsn_mixture(), 8.0, pick(full=3000, fast=400)
torch.manual_seed(0)
net = ScoreMLP(dim=2, hidden=128, n_layers=3)
fit(net, lambda m, x, g: denoising_score_matching(m, x, 0.1, generator=g), mix.sample, n_steps=n_train,
    lr=1e-3, device=device, desc="DSM σ=0.1",
    checkpoint_path=None if fast_mode() else cache_path("03-dsm", sigma=0.1, n_steps=n_train))
net = net.cpu().eval()
learned_score = torch.no_grad()(lambda x: net(x.float()).to(x.dtype))
err = lambda x: (learned_score(x) - mix.score(x)).norm(dim=-1)

# %% slideshow={"slide_type": "-"}
p_grid, err_grid = P.evaluate_on_grid(mix.prob, box, 150), P.evaluate_on_grid(err, box, 150)
fig, axes = P.figure_row(3, size=3.6)
P.plot_image(axes[0], np.log10(p_grid + 1e-12), box, title="log₁₀ p(x)", vmin=-10, colorbar=True)
P.plot_image(axes[1], np.log10(err_grid + 1e-3), box, cmap=P.ERROR_CMAP,
             title="log₁₀ ‖s_θ(x) − ∇log p(x)‖", vmin=-1.5, vmax=1.5, colorbar=True)
for ax in axes[:2]:
    P.plot_contours(ax, mix.prob, box)
P.plot_error_vs_density(axes[2], p_grid, err_grid)
axes[2].set_aspect("auto")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# Inside the white contours (where the training data live) the learned field is accurate; outside, the error grows
# to the size of the score itself. The Fisher divergence training sees, against the same error averaged over the box:

# %% slideshow={"slide_type": "-"}
x_data = mix.sample(pick(full=20000, fast=5000), generator=gen)
x_box = (2 * torch.rand(pick(full=20000, fast=5000), 2, generator=gen) - 1) * box
fisher, uniform = (0.5 * (err(x) ** 2).mean().item() for x in (x_data, x_box))
print(f"½E_p‖s_θ − ∇log p‖² (what training sees) = {fisher:.3f};  ½E_box‖s_θ − ∇log p‖² = {uniform:.3f}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_greater("box average / Fisher divergence", uniform / fisher, 5)
e_hi, e_lo = err_grid[p_grid > 1e-3].mean(), err_grid[p_grid < 1e-6].mean()
check_greater("mean error where p < 1e-6 / where p > 1e-3", e_lo / e_hi, 3);

# %% [markdown] slideshow={"slide_type": "slide"}
# Langevin dynamics started from noise spends its first steps exactly where the score is wrong. The two samplers side
# by side, exact and learned score, from the same uniform start on $[-8, 8]^2$:

# %% slideshow={"slide_type": "-"}
n_modes, K_modes = pick(full=3000, fast=2000), pick(full=1000, fast=300)
x_unif = (2 * torch.rand(n_modes, 2, generator=gen) - 1) * box
x_true = langevin(mix.score, x_unif, 0.1, K_modes, generator=seeded(3)).x
x_learned = langevin(learned_score, x_unif, 0.1, K_modes, generator=seeded(3)).x
x_exact = mix.sample(n_modes, generator=gen)
P.sample_panels({"exact samples of p": x_exact, "Langevin, exact score": x_true,
                 "Langevin, learned score": x_learned}, box, size=3.4, background=mix.log_prob)
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# With the learned score, the first steps follow a field that was never trained: where the boundary between the two
# basins ends up is an accident of the network. But both Langevin panels share a more striking feature that is *not*
# caused by the learned score: the lower-left mode holds about half of the particles instead of one fifth.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · The mode-weight failure: the exact score, the wrong weights
#
# Song & Ermon (2019, Fig. 3): Langevin dynamics cannot recover the **relative weights** of separated modes in
# reasonable time, even with the exact score — and neither can MALA. The fraction of particles in the $(-5,-5)$ mode:

# %% slideshow={"slide_type": "-"}
x_mala = mala(mix.log_prob, x_unif, 0.5, K_modes, generator=seeded(4)).x
fractions = {name: mode_fractions(x, mix) for name, x in
             {"exact": x_exact, "Langevin": x_true, "learned": x_learned, "MALA": x_mala}.items()}
fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
P.plot_fractions(ax, {k: (f.fractions[0].item(), f.stderr[0].item()) for k, f in fractions.items()}, target=0.2,
                 ylabel="fraction in the (−5,−5) mode (±2 se)")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
frac = {k: (f.fractions[0].item(), f.stderr[0].item()) for k, f in fractions.items()}
check("exact samples: fraction in the (−5,−5) mode", frac["exact"][0], 0.2, 4 * frac["exact"][1])
check_greater("Langevin (exact score): fraction in the (−5,−5) mode", frac["Langevin"][0], 0.35)
check_greater("Langevin: standard errors above the true 0.2", (frac["Langevin"][0] - 0.2) / frac["Langevin"][1], 10)
check_greater("MALA (exact log p): fraction in the (−5,−5) mode", frac["MALA"][0], 0.35);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Why? The score is local
#
# Near mode $k$ the responsibility of the other component is astronomically small, so
# $\nabla_\mathbf{x}\log p(\mathbf{x}) \approx -(\mathbf{x}-\boldsymbol\mu_k)$ near $\boldsymbol\mu_k$ — **independent of the weights** $w_1, w_2$.
# The weights live only in the score of the low-density gap, and a particle must cross it to feel them.

# %% [markdown] slideshow={"slide_type": "fragment"}
# The barrier in $-\log p$ between the modes is 23–25 nats, so a crossing takes of the order of $e^{24}$ time units of
# the diffusion — more than $10^{11}$ Langevin steps at $\epsilon = 0.1$. Each particle stays in the basin it started
# in, and the mode fractions are the **areas of the basins** under the initial distribution: about one half each.
# Below we compare the score of $p$ with the score of the same mixture with **equal** weights.

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
mix64 = ncsn_mixture(dtype=torch.float64)
mix_equal = GaussianMixture(mix64.means, 1.0, torch.tensor([0.5, 0.5], dtype=torch.float64))
angles = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
ring = torch.stack([angles.cos(), angles.sin()], -1) * 3 * torch.rand(200, 1, generator=gen, dtype=torch.float64)
near = max((mix64.score(mu + ring) - mix_equal.score(mu + ring)).norm(dim=-1).max().item() for mu in mix64.means)
check_less("within 3 of either mode: max ‖∇log p − ∇log p_equal‖", near, 1e-6)
t = torch.linspace(0, 1, 2001, dtype=torch.float64)[:, None]
segment = (1 - t) * mix64.means[0] + t * mix64.means[1]  # the straight line between the modes
gap = (mix64.score(segment) - mix_equal.score(segment)).norm(dim=-1)
check_greater("on the segment between the modes: max ‖∇log p − ∇log p_equal‖", gap.max(), 3)  # ≈ Δr·‖μ₂ − μ₁‖
barrier = (mix64.energy(torch.zeros(1, 2, dtype=torch.float64)) - mix64.energy(mix64.means[1:])).item()
check("f(0) − f(5,5) = 25 + log 0.8 nats (the saddle is near 0)", barrier, 25 + math.log(0.8), 1e-6);

# %% [markdown] slideshow={"slide_type": "fragment"}
# Near the modes the two scores agree to better than $10^{-6}$; only in a thin band in the gap — where
# $p \approx 10^{-12}$ and no particle ever goes — do they differ, by several units. Try it in the explorer:
# raise $K$ and watch the mode fractions in the status line stay put.

# %% slideshow={"slide_type": "-"}
explorer_modes = LangevinExplorer(mix, lim=box, init="uniform", step_size=0.1, n_steps=200, n_particles=1000)
display(explorer_modes)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Summary
#
# * Langevin dynamics turns a score into samples: $\mathbf{x}_{i+1} = \mathbf{x}_i + \epsilon\,\mathbf{s}(\mathbf{x}_i) + \sqrt{2\epsilon}\,\mathbf{z}_i$.
# * At finite $\epsilon$ it is **biased** (for a Gaussian the stationary variance is $\tau^2/(1-\epsilon/(2\tau^2))$), and too large
#   an $\epsilon$ diverges; a Metropolis correction (MALA) removes the bias when $\log p$ is available.
# * A **learned** score is accurate only where $p$ has mass: the Fisher divergence weights errors by $p(\mathbf{x})$,
#   and Langevin chains start exactly where it was never trained.
# * Even the **exact** score cannot fix the **relative weights of separated modes**.
#
# Both problems live in low-density regions. Notebook 04 fills those regions by **adding noise**: noise levels
# $\sigma_1 < \dots < \sigma_L$, one noise-conditional score model $\mathbf{s}_\theta(\mathbf{x}, i)$, and *annealed* Langevin dynamics.
