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
# # 06 · Connections: the SDE view, diffusion models, exact likelihoods and GSNs
#
# The deck ends with *"Connection to other types of models"*: score-based models and diffusion
# probabilistic models are **one model family** (Ho et al. 2020; Song et al. 2021, ICLR):
#
# | | Score-based model | Diffusion probabilistic model |
# |---|---|---|
# | Perturbation | Multiple scales of noise | Multiple scales of noise |
# | Training objective | Score matching | ELBO |
# | Sampling | Langevin (MCMC) | Learned decoder |
# | Unique ability | Calculate log-likelihoods exactly | Can be made faster? |
#
# What runs here, row by row: **perturbation** — (1) the noise scales become a **stochastic differential
# equation**, the same for both columns (🔍 with the Fokker–Planck reason why its probability-flow ODE and its reverse
# SDE share their marginals); **sampling** — (2) one trained score model is sampled four ways
# (annealed Langevin, reverse SDE, predictor–corrector, probability-flow ODE) and (3) the prior matters for the
# deterministic sampler; **log-likelihoods** — (4) computed through the probability-flow ODE; **training
# objective** — (5) the DDPM view, where the ELBO *is* weighted denoising score matching; and (6) generative
# stochastic networks. Two cells of the table are left to notebook 07 (extension material): DDPM's **learned decoder**
# (ancestral sampling, $\mathbf{x}_{i-1} \sim p_\theta(\mathbf{x}_{i-1} \mid \mathbf{x}_i)$) — §5 here samples its ε-model
# with the reverse SDE instead, of which ancestral sampling is one particular discretisation (Song et al. 2021); 07 runs
# DDPM's ancestral sampler among the ODE solvers, on the exact score — and **"can be made faster?"**, which 07 answers.
#
# **On the 90-minute lecture route** (notebook 00): §1, §2, §4, §6 — **11 minutes**. In full mode on a 2-core CPU the
# notebook runs in under a minute once its two trainings and its sampler comparison are cached; the first run, which
# trains and samples, takes two to three minutes. 🔍 marks optional deep dives.
#
# Notation as in the deck: noise levels small to large, $\sigma_1 < \dots < \sigma_L$ (the 2019 paper numbers
# them the other way round). In code, `sigma_min`, `sigma_max`, and `sigmas` in the order a sampler visits them.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from scoretutor import fast_mode, pick
from scoretutor.densities import GaussianMixture, eight_gaussians, ncsn_mixture
from scoretutor.diffusion import ddpm
from scoretutor.diffusion.gsn import exact_posterior_denoiser, gsn_chain, tweedie_denoiser
from scoretutor.diffusion.likelihood import log_likelihood

# %% slideshow={"slide_type": "skip"}
from scoretutor.diffusion.samplers import (
    ode_sde_marginals,
    predictor_corrector,
    probability_flow,
    reverse_sde,
)

# %% slideshow={"slide_type": "skip"}
from scoretutor.diffusion.sde import (
    VESDE,
    VPSDE,
    eps_model_score_fn,
    marginal_ks_distance,
    marginal_mixture,
    mixture_prior_log_prob,
    mixture_score_fn,
    sigma_model_score_fn,
)
from scoretutor.diffusion.toy_models import train_ve_model, train_vp_eps_model
from scoretutor.lecture import plotting as P
from scoretutor.lecture.claims import check, check_greater, check_less, check_true

# %% slideshow={"slide_type": "skip"}
from scoretutor.lecture.exercises.diffusion import check_eps_score, check_ode_vs_sde, check_reverse_sde_step
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.sampling import annealed_langevin, langevin
from scoretutor.schedules import geometric_sigmas, ncsnv2_step_size
from scoretutor.training import cached, fingerprint

# %% slideshow={"slide_type": "skip"}
t_start = time.time()
mix = ncsn_mixture()                      # ⅕ N((−5,−5), I) + ⅘ N((5,5), I), as in notebooks 03–04
mix64 = ncsn_mixture(dtype=torch.float64)
seed = lambda s: torch.Generator().manual_seed(s)
share = lambda x: mode_fractions(x, mix).fractions[0].item()   # weight of the (−5,−5) mode


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · From $L$ noise levels to a continuum: the SDE view
#
# Notebook 04 perturbed the data with $L$ geometric noise levels. Let the level become a time $t \in [0, 1]$,
# $\sigma(t) = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t$, and add the noise a little at a time:
# $$d\mathbf{x} = \sqrt{\tfrac{d[\sigma^2(t)]}{dt}}\, d\mathbf{w} \qquad\text{(variance-exploding SDE)},$$
# so that, started at $\mathbf{x}_0 = \mathbf{x}_{\text{data}} + \sigma_{\min}\mathbf{z}_0$, $\mathbf{x}_t = \mathbf{x}_{\text{data}} + \sigma(t)\,\mathbf{z}$:
# its marginal $p_t$ is exactly the perturbed density $p_{\sigma(t)}$ of notebook 04, and NCSN's levels are $\sigma(t)$
# at equally spaced times.

# %% slideshow={"slide_type": "fragment"}
ve = VESDE(sigma_min=0.1, sigma_max=50.0)
sigmas = geometric_sigmas(50.0, 0.1, 10, dtype=torch.float64)       # NCSN: σ_max … σ_min
n_paths, n_steps = pick(full=4000, fast=1000), 500
x = mix64.sample(n_paths, seed(0)) + ve.sigma_min * torch.randn(n_paths, 2, generator=seed(1), dtype=torch.float64)
path, g_fwd = [x], seed(2)
for k in range(n_steps):                  # Euler–Maruyama on the forward SDE
    _, g = ve.sde(x, (k + 0.5) / n_steps)
    x = x + g[:, None] * math.sqrt(1 / n_steps) * torch.randn(x.shape, generator=g_fwd, dtype=x.dtype)
    path.append(x)
path = torch.stack(path)

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("NCSN's σ's are σ(t) at t = 1, 8/9, …, 0 (max relative gap)",
           ((ve.sigma(VESDE.times(10)) - sigmas).abs() / sigmas).max().item(), 1e-12)
var_mc = path[n_steps // 2].var(0).mean().item()            # at t = ½: data variance 1 + 0.16·10², plus σ(½)²
var_exact = 1 + 16 + ve.sigma(0.5).item() ** 2
check("variance of x_t at t = ½ (per coordinate): forward SDE vs 17 + σ(½)²", var_mc, var_exact,
      tol=4 * var_exact * math.sqrt(2 / n_paths));

# %% slideshow={"slide_type": "fragment"}
fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.2), layout="constrained")
ts = np.linspace(0, 1, n_steps + 1)
axes[0].plot(ts, path[:, :60, 0].numpy(), lw=0.5, alpha=0.6)
for sign in (-1, 1):  # the data mean ± 2σ(t): how far the noise alone spreads a path
    axes[0].plot(ts, 3 + sign * 2 * ve.sigma(torch.tensor(ts)).numpy(), "k--", lw=0.8)
axes[0].set(xlabel="t", ylabel="x (first coordinate)", ylim=(-30, 30), title="forward SDE: data → noise")
axes[1].plot(ts, ve.sigma(torch.tensor(ts)).numpy(), label="σ(t)")
axes[1].plot(VESDE.times(10).numpy(), sigmas.numpy(), "o", label="NCSN levels")
axes[1].set(xlabel="t", yscale="log", title="noise scale"), axes[1].legend()
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Running it backwards
#
# Anderson (1982): the same marginals, from $p_1$ back to $p_0$, are produced by the **reverse SDE**
# $$d\mathbf{x} = \big[\mathbf{f}(\mathbf{x}, t) - g(t)^2\,\nabla_\mathbf{x}\log p_t(\mathbf{x})\big]\,dt + g(t)\,d\bar{\mathbf{w}}
# \qquad (t\ \text{from 1 to 0}),$$
# and, with no noise at all, by the **probability-flow ODE**
# $\dfrac{d\mathbf{x}}{dt} = \mathbf{f}(\mathbf{x}, t) - \tfrac12 g(t)^2\,\nabla_\mathbf{x}\log p_t(\mathbf{x})$.
# Both need only the score $\nabla_\mathbf{x}\log p_t$ at every $t$: a noise-conditional score model,
# $\mathbf{s}_\theta(\mathbf{x}, \sigma(t))$. (Here $\mathbf{f} = 0$ and $g(t)^2 = d\sigma^2/dt$.)

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Debug.** *Exercise 1.* A colleague wrote one Euler–Maruyama step of the reverse SDE, from $t$ to $t - \Delta t$,
# given $\mathbf{x}$, $\mathbf{f}(\mathbf{x}, t)$, $g(t)$ (shape $(N, 1)$), the score $\mathbf{s}$, $\Delta t$ and
# $\mathbf{z} \sim \mathcal{N}(0, I)$. Run from the prior, its samples fly apart. Find the slip and fix it; the
# checker runs your step.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def reverse_sde_step(x, f, g, s, dt, z):
    """The colleague's step from t to t − Δt."""
    return x + (f - g**2 * s) * dt + g * math.sqrt(dt) * z


check_reverse_sde_step(reverse_sde_step, debug=True);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def solution_reverse_sde_step(x, f, g, s, dt, z):
    # the step goes from t to t − Δt, so the drift is *subtracted*: x − (f − g² s)·Δt, noise g·√Δt·z
    return x - (f - g**2 * s) * dt + g * math.sqrt(dt) * z


check_true("the solution passes the checker", check_reverse_sde_step(solution_reverse_sde_step, debug=True))

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Why the ODE has the SDE's marginals: Fokker–Planck
#
# **Predict, then check.** *Exercise 2.* Start the probability-flow ODE and the reverse SDE from the **same** 2,000
# points $\mathbf{x}_1 \sim p_1$, with the exact score of the mixture (so nothing is learned, nothing is
# approximated but the steps). (a) Will the two sets of samples have the same distribution? (b) For what fraction of
# the starting points will the two samples land in the same mode? Write down both guesses, then run the cell.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
same_law = None             # True or False
same_mode_fraction = None   # a number between 0 and 1
check_ode_vs_sde(same_law, same_mode_fraction);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
# the same law (Fokker–Planck, below); the points: about as often as two independent draws, 0.2² + 0.8² (a shade more)
solution_same_law, solution_same_mode_fraction = True, 0.2**2 + 0.8**2
check_true("the solution's predictions hold", check_ode_vs_sde(solution_same_law, solution_same_mode_fraction))

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Why.** The marginals of $d\mathbf{x} = \mathbf{f}\,dt + g\,d\mathbf{w}$ obey the Fokker–Planck equation
# $$\frac{\partial p_t}{\partial t} = -\nabla\cdot(\mathbf{f}\,p_t) + \tfrac12 g^2\,\Delta p_t
# = -\nabla\cdot\Big[\big(\mathbf{f} - \tfrac12 g^2\,\nabla\log p_t\big)\,p_t\Big],$$
# since $\Delta p_t = \nabla\cdot\nabla p_t = \nabla\cdot(p_t\nabla\log p_t)$. The right-hand side is the continuity
# equation of particles that move, without noise, with velocity $\mathbf{f} - \tfrac12 g^2\nabla\log p_t$: the
# probability-flow ODE moves $p_t$ exactly as the SDE does. Run backwards from the same $p_1$, the ODE and the
# reverse SDE (drift $\mathbf{f} - g^2\nabla\log p_t$: the same velocity, plus a pull up the score that its noise
# undoes) pass through the same $p_t$ at every $t$. The law is shared, the paths are not. Below, in 1-D
# ($\tfrac15\mathcal{N}(-5, 1) + \tfrac45\mathcal{N}(5, 1)$, the mixture's shadow on one axis), where $p_t$ is known
# exactly: the mixture blurred by $\sigma(t)$.

# %% slideshow={"slide_type": "fragment"}
mix1 = GaussianMixture(torch.tensor([[-5.0], [5.0]], dtype=torch.float64), 1.0,
                       torch.tensor([0.2, 0.8], dtype=torch.float64))
n_fp, t_fp = pick(full=4000, fast=2000), [0.75, 0.5, 0.25, 0.0]
x1_fp = marginal_mixture(mix1, ve, 1.0).sample(n_fp, seed(80))                # the exact p_1
exact1 = mixture_score_fn(mix1, ve)
ode_fp, sde_fp = ode_sde_marginals(exact1, ve, x1_fp, t_fp, n_steps=500, generator=seed(81))
few = x1_fp[:6]                                                               # six paths of each, to look at
ode_paths = probability_flow(exact1, ve, few, rtol=1e-6, atol=1e-6, t_eval=np.linspace(1, 0, 101)).trajectory
sde_paths = reverse_sde(exact1, ve, few, 500, generator=seed(82), denoise=False, return_trajectory=True,
                        trajectory_every=5, progress=False).trajectory

# %% slideshow={"slide_type": "-"}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.3), layout="constrained")
for k in range(len(few)):
    line, = axes[0].plot(np.linspace(1, 0, 101), ode_paths[:, k, 0], lw=1.5)
    axes[0].plot(np.linspace(1, 0, 101), sde_paths[:, k, 0], lw=0.6, color=line.get_color())
axes[0].set(xlabel="t (runs from 1 to 0)", ylabel="x", ylim=(-12, 12), xlim=(1, 0),
            title="same starts: ODE (thick), SDE (thin)")
grid = torch.linspace(-12, 12, 400, dtype=torch.float64)[:, None]
for ax, t in zip(axes[1:], (0.5, 0.0), strict=True):
    k = t_fp.index(t)
    ax.hist([ode_fp[k, :, 0].numpy(), sde_fp[k, :, 0].numpy()], bins=60, range=(-12, 12), density=True,
            histtype="step", label=["probability-flow ODE", "reverse SDE"])
    ax.plot(grid[:, 0], marginal_mixture(mix1, ve, t).log_prob(grid).exp(), "k--", lw=1, label="exact p_t")
    ax.set(xlabel="x", title=f"marginal at t = {t:g} (σ = {ve.sigma(t).item():.2g})")
axes[2].legend(fontsize=8)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
ks_crit = 1.95 / math.sqrt(n_fp)   # exact draws of p_t: P(KS > 1.95/√n) ≈ 0.001; + 0.01 for the solvers' error
for name, xs in (("probability-flow ODE", ode_fp), ("reverse SDE", sde_fp)):
    ks = [marginal_ks_distance(xs[k], mix1, ve, t) for k, t in enumerate(t_fp)]
    check_less(f"{name}: largest KS distance to the exact p_t, t = 0.75, 0.5, 0.25, 0", max(ks), ks_crit + 0.01)
same_fp = ((ode_fp[-1] < 0) == (sde_fp[-1] < 0)).double().mean().item()
check("paired ODE/SDE samples in the same mode at t = 0 (independent draws: 0.68)", same_fp, 0.68,
      tol=4 * math.sqrt(0.68 * 0.32 / n_fp));

# %% [markdown] slideshow={"slide_type": "fragment"}
# The histograms sit on the exact $p_t$ for both samplers (their Kolmogorov–Smirnov distances are within the noise of
# $n$ draws), yet the paths part ways: in 1-D the ODE never reorders points (it is a monotone map), while the SDE
# wanders, and a pair ends in the same mode only slightly more often than two independent draws would (about 0.70
# against 0.68: the start keeps a little information about the mode).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · One score model, four samplers
#
# We train **one** network $\mathbf{s}_\theta(\mathbf{x}, \sigma)$ on the mixture with $\sigma$ drawn *continuously*,
# $t \sim \mathcal{U}[0, 1]$, $\sigma = \sigma(t)$, with the same NCSN loss ($\lambda(\sigma) = \sigma^2$) as notebook 04,
# and sample it four ways:
#
# * **annealed Langevin** (notebook 04) at 20 levels $\sigma(t_i)$, step size by NCSNv2's rule;
# * **reverse SDE** (Euler–Maruyama);
# * **predictor–corrector**: at each level one Langevin step (corrector), then one reverse-diffusion step down to the
#   next level (predictor);
# * **probability-flow ODE**, solved by an adaptive Runge–Kutta method (scipy's RK45).

# %% slideshow={"slide_type": "fragment"}
model, history = train_ve_model(mix.sample, "ncsn_mixture", ve, n_steps=pick(full=4000, fast=400), device="cpu")
score_fn = sigma_model_score_fn(model, ve)                 # s(x, t) = s_θ(x, σ(t))
N = pick(full=4000, fast=1000)
x_T = ve.prior_sample((N, 2), seed(10))                    # N(0, σ_max² I)
data, data2 = mix.sample(N, seed(11)), mix.sample(N, seed(12))
sw = lambda x: sliced_wasserstein(x, data, generator=seed(0))
floor = sw(data2)                                          # two data samples: the metric's noise floor

# %% slideshow={"slide_type": "skip"}
sig_20 = geometric_sigmas(50.0, 0.1, 20)                  # 20 levels: γ ≈ 1.4, as in notebook 04
T_each = {50: 2, 200: 10, 1000: 50}
gamma_20 = (50.0 / 0.1) ** (1 / 19)                         # the ratio of adjacent levels, σ_{i+1}/σ_i
langevin_eps = {T: ncsnv2_step_size(T, gamma_20, 0.1) for T in T_each.values()}


# %% slideshow={"slide_type": "skip"}
def sample_with(name, budget):
    """One sampler at a budget of about ``budget`` score evaluations; returns (x, evals)."""
    if name == "annealed Langevin":
        T = T_each[budget]
        out = annealed_langevin(model.frozen_score(), x_T, sig_20.tolist(), langevin_eps[T], T,
                                generator=seed(20), progress=False)
        return out.x, out.n_score_evals
    if name == "reverse SDE":
        out = reverse_sde(score_fn, ve, x_T, budget, generator=seed(21), progress=False)
    elif name == "predictor–corrector":
        out = predictor_corrector(score_fn, ve, x_T, budget // 2, generator=seed(22), progress=False)
    else:
        tol = {50: 1e-2, 200: 1e-4, 1000: 1e-6}[budget]
        out = probability_flow(score_fn, ve, x_T, rtol=tol, atol=tol)
    return out.x, out.n_score_evals


# %% slideshow={"slide_type": "skip"}
budgets = pick(full=[50, 200, 1000], fast=[50, 200])
samplers = ["annealed Langevin", "reverse SDE", "predictor–corrector", "probability flow"]
run_all = lambda: {(s, b): (x, ev, sw(x)) for s in samplers for b in budgets for x, ev in [sample_with(s, b)]}
# full mode: computed once per machine, keyed on the model's weights and everything sample_with uses
key = dict(model=fingerprint(model), sde=repr(ve), N=N, budgets=budgets, seeds=[10, 11, 20, 21, 22], version=1)
results = run_all() if fast_mode() else cached("06-four-samplers", run_all, **key)

# %% slideshow={"slide_type": "fragment"}
print(f"{'sampler':<21}{'evals':>6}{'(−5,−5) share':>17}{'SW₂ to data':>13}")
for (s, _), (x, evals, dist) in results.items():
    mf = mode_fractions(x, mix)
    print(f"{s:<21}{evals:>6}{mf.fractions[0]:>10.3f} ± {mf.stderr[0]:.3f}{dist:>11.2f}")
print(f"{'(data vs data)':<27}{'0.200':>10}{floor:>19.2f}")

# %% slideshow={"slide_type": "fragment"}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
for s in samplers:
    ev = [results[s, b][1] for b in budgets]
    mfs = [mode_fractions(results[s, b][0], mix) for b in budgets]
    axes[0].errorbar(ev, [m.fractions[0] for m in mfs], yerr=[2 * m.stderr[0] for m in mfs], marker="o", label=s)
    axes[1].plot(ev, [results[s, b][2] for b in budgets], marker="o", label=s)
axes[0].axhline(0.2, color="k", lw=0.8, ls="--")
axes[1].axhline(floor, color="k", lw=0.8, ls="--", label="data vs data")
axes[0].set(xscale="log", xlabel="score evaluations", ylabel="(−5,−5) share (± 2 se)", title="mode weight")
axes[1].set(xscale="log", xlabel="score evaluations", ylabel="sliced W₂", title="distance to data")
axes[1].legend(fontsize=8)
P.plot_samples(axes[2], results["predictor–corrector", budgets[-1]][0], lim=9, s=1)
axes[2].set_title("predictor–corrector samples")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
best = {s: results[s, budgets[-1]][0] for s in samplers}
for s in samplers:
    # recovered, rather than the ≈ 0.5 starting split of plain Langevin: within half of that gap
    check("(−5,−5) share, " + s, share(best[s]), 0.2, tol=0.15)
sw_al = [results["annealed Langevin", b][2] for b in budgets]
check_true("annealed Langevin gets closer to the data with every budget", all(np.diff(sw_al) < 0),
           "SW₂ " + " → ".join(f"{v:.2f}" for v in sw_al))
check_less("SW₂: reverse SDE at the smallest budget / annealed Langevin at the largest",
           results["reverse SDE", budgets[0]][2] / sw_al[-1], 1);

# %% [markdown] slideshow={"slide_type": "fragment"}
# Every sampler that anneals the noise lands near ⅕ : ⅘ — far from the ≈ ½ : ½ of plain Langevin (notebook 03).
# They differ in cost and in what limits them. Annealed Langevin improves steadily with its budget but stays the
# furthest from the data. The reverse SDE is the closest already at 50 evaluations and gains nothing from more
# (in full mode its SW₂ goes 0.86 → 0.65 → 0.84: up and down, not down); predictor–corrector improves from 50 to
# 200 evaluations and then stays flat (0.99 → 0.97). Past a couple of hundred evaluations the step size no longer
# limits the SDE samplers: the learned score and the finite sample do. The ODE's adaptive solver needs the fewest
# evaluations but stays a little biased towards the far mode whatever its tolerance — the next section shows why.
# The sliced distance also carries the mode-weight noise of a finite sample (compare the data-vs-data line).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · 🔍 The prior matters for the deterministic sampler
#
# Every sampler starts from $\mathcal{N}(0, \sigma_{\max}^2 I)$, but the true $p_1$ is the data blurred by
# $\sigma_{\max}$: centred on the data mean $(3, 3)$, not on 0. A stochastic sampler keeps injecting noise and
# pulling towards $p_t$, so it forgets part of its start; the ODE is a **fixed map** from $\mathbf{x}_1$ to
# $\mathbf{x}_0$, so any error in the starting law is transported to the end. Below: exact scores, so the only
# error is the prior (and, for the SDEs, the step size).

# %% slideshow={"slide_type": "fragment"}
n_p = pick(full=8000, fast=3000)
se_p = math.sqrt(0.16 / n_p)
prior_table = {}
for smax in (20.0, 50.0):
    sde = VESDE(0.1, smax)
    exact = mixture_score_fn(mix64, sde)
    gauss = sde.prior_sample((n_p, 2), seed(30), dtype=torch.float64)
    true_p1 = marginal_mixture(mix64, sde, 1.0).sample(n_p, seed(31))
    prior_table[smax] = {
        "ODE from N(0, σ_max²)": share(probability_flow(exact, sde, gauss, rtol=1e-4, atol=1e-4).x),
        "ODE from the true p₁": share(probability_flow(exact, sde, true_p1, rtol=1e-4, atol=1e-4).x),
        "reverse SDE from N(0, σ_max²)": share(reverse_sde(exact, sde, gauss, 200, generator=seed(32), progress=False).x),
        "PC from N(0, σ_max²)": share(predictor_corrector(exact, sde, gauss, 200, generator=seed(33), progress=False).x)}

# %% slideshow={"slide_type": "-"}
print(f"{'(−5,−5) share (± ' + f'{se_p:.3f})':<32}{'σ_max = 20':>11}{'σ_max = 50':>11}")
for row in prior_table[20.0]:
    print(f"{row:<32}{prior_table[20.0][row]:>11.3f}{prior_table[50.0][row]:>11.3f}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check("ODE share from N(0, 20²)", prior_table[20.0]["ODE from N(0, σ_max²)"], 0.25, tol=4 * se_p)
check("ODE share from N(0, 50²)", prior_table[50.0]["ODE from N(0, σ_max²)"], 0.22, tol=4 * se_p)
check("ODE share from the true p₁ (σ_max = 20)", prior_table[20.0]["ODE from the true p₁"], 0.2, tol=4 * se_p)
for smax in (20.0, 50.0):
    ode_err = abs(prior_table[smax]["ODE from N(0, σ_max²)"] - 0.2)
    check_less(f"PC's share error < the ODE's (σ_max = {smax:g})",
               abs(prior_table[smax]["PC from N(0, σ_max²)"] - 0.2), ode_err)

# %% [markdown] slideshow={"slide_type": "fragment"}
# With the true $p_1$ the ODE is exact; with the Gaussian prior it over-weights the far mode — the region of
# $\mathbf{x}_1$ that the flow sends to $(-5,-5)$ holds more of $\mathcal{N}(0, \sigma_{\max}^2)$ than of $p_1$. The
# mismatch fades only slowly (like $1/\sigma_{\max}$): **$\sigma_{\max}$ must be large** compared with the data —
# NCSNv2's Technique 1, now with a second reason.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · "Calculate log-likelihoods exactly"
#
# What "exactly" means here: the probability-flow ODE gives the log-density of the model's own distribution at the
# smallest noise level, $\log p_\theta$ at $\sigma_{\min}$ (not of $p$ itself), exact up to the ODE solver's tolerance —
# and, where Hutchinson's trace replaces the exact divergence, an unbiased estimate of it. Nor is it unique to the
# score-based column: a VP/DDPM model gets its likelihood the same way, through its own probability-flow ODE.
#
# The ODE is an invertible map, so it carries densities (instantaneous change of variables, as in neural ODEs):
# $$\log p_0(\mathbf{x}_0) = \log p_1(\mathbf{x}_1) + \int_0^1 \nabla_\mathbf{x}\cdot\tilde{\mathbf{f}}(\mathbf{x}_t, t)\,dt,
# \qquad \tilde{\mathbf{f}} = \mathbf{f} - \tfrac12 g^2\,\mathbf{s}_\theta .$$
# Solve for $\mathbf{x}_t$ and the integral together from $t = 0$ to $1$. First a test we can grade: the
# **exact** score of two analytic densities and the **exact** $p_1$ as prior. The answer must be the analytic
# $\log p_{\sigma_{\min}}(\mathbf{x})$, point by point.

# %% slideshow={"slide_type": "fragment"}
sde20 = VESDE(0.1, 20.0)
rows, mae = [], {}
for name, dens in (("NCSN mixture", mix64), ("8 Gaussians", eight_gaussians(dtype=torch.float64))):
    x = dens.sample(pick(full=200, fast=40), seed(40))
    ode = log_likelihood(mixture_score_fn(dens, sde20), sde20, x, prior_log_prob=mixture_prior_log_prob(dens, sde20))
    truth = dens.perturb(sde20.sigma_min).log_prob(x)
    mae[name] = (ode - truth).abs().mean().item()
    rows += [(name, x[i].tolist(), truth[i].item(), ode[i].item()) for i in range(3)]
print(f"{'density':<14}{'x':>17}{'analytic log p':>16}{'ODE':>11}")
for name, xi, a, o in rows:
    print(f"{name:<14}{f'({xi[0]:.2f}, {xi[1]:.2f})':>17}{a:>16.5f}{o:>11.5f}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
for name, err in mae.items():
    check_less(f"mean |ODE − analytic| log-likelihood, {name}", err, 1e-3, unit="nats")

# %% [markdown] slideshow={"slide_type": "slide"}
# ### With the Gaussian prior: why $\sigma_{\max}$ must be large
#
# In practice $p_1$ is unknown and we use $\mathcal{N}(0, \sigma_{\max}^2 I)$. The score is still exact, so
# every bit of error below is the prior mismatch $\log p_1(\mathbf{x}_1) - \log\mathcal{N}(\mathbf{x}_1; 0, \sigma_{\max}^2 I)$.

# %% slideshow={"slide_type": "fragment"}
x_ll = mix64.sample(pick(full=200, fast=40), seed(41))
truth = mix64.perturb(0.1).log_prob(x_ll)
smaxes = pick(full=[10.0, 20.0, 50.0, 100.0, 200.0], fast=[10.0, 20.0, 50.0])
prior_err = []
for smax in smaxes:
    sde = VESDE(0.1, smax)
    prior_err.append((log_likelihood(mixture_score_fn(mix64, sde), sde, x_ll) - truth).abs().mean().item())
fig, ax = plt.subplots(figsize=(4.5, 3), layout="constrained")
ax.loglog(smaxes, prior_err, "o-", label="exact score, Gaussian prior")
ax.axhline(1e-3, color="k", ls="--", lw=0.8, label="exact prior (≤ 1e-3)")
ax.set(xlabel="σ_max", ylabel="mean |error| (nats)", title="log-likelihood error from the prior"), ax.legend(fontsize=8)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_true("the prior's error shrinks as σ_max grows", all(np.diff(prior_err) < 0),
           ", ".join(f"σ_max={s:g}: {e:.3f}" for s, e in zip(smaxes, prior_err, strict=True)))

# %% [markdown] slideshow={"slide_type": "slide"}
# ### The learned model's likelihood, and Hutchinson's trace
#
# Now the trained $\mathbf{s}_\theta$ with the Gaussian prior: a proper density $p_\theta$, so on held-out data its
# average log-likelihood cannot beat the truth's on average — the truth here being $p = p_{\sigma_{\min}}$, the data at the
# smallest noise level — $\mathbb{E}_p[\log p_\theta] = \mathbb{E}_p[\log p] - \mathrm{KL}(p\,\|\,p_\theta)$.
# The divergence $\nabla\cdot\tilde{\mathbf{f}}$ costs one backward pass per dimension; in high dimension it is
# replaced by Hutchinson's unbiased $\mathbf{v}^\top(\nabla\tilde{\mathbf{f}})\mathbf{v}$ with one probe $\mathbf{v}$ per point.

# %% slideshow={"slide_type": "fragment"}
held_out = mix.sample(pick(full=400, fast=60), seed(42))
ll_model = log_likelihood(score_fn, ve, held_out, rtol=1e-4, atol=1e-4)
ll_true = mix.perturb(0.1).log_prob(held_out)
neg_entropy = mix.perturb(0.1).log_prob(mix.sample(200_000, seed(43)))
gap = ll_model - ll_true
print(f"average log-likelihood: model {ll_model.mean():.3f}, truth {ll_true.mean():.3f} on the same points; "
      f"−entropy (Monte Carlo) {neg_entropy.mean():.3f} ± {neg_entropy.std() / math.sqrt(2e5):.3f} nats")
print(f"estimated KL(p ‖ p_θ) = {-gap.mean():.3f} ± {gap.std() / math.sqrt(len(gap)):.3f} nats")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("model log-likelihood − true log-likelihood (Gibbs: ≤ 0 up to 3 se)", gap.mean().item(),
           3 * gap.std().item() / math.sqrt(len(gap)));

# %% slideshow={"slide_type": "fragment"}
n_h, m_h = pick(full=40, fast=10), pick(full=16, fast=8)
pts = held_out[:n_h]
exact_ll = log_likelihood(score_fn, ve, pts)
hutch = log_likelihood(score_fn, ve, pts.repeat(m_h, 1), trace="hutchinson", generator=seed(44)).reshape(m_h, n_h)
diff = hutch - exact_ll
se_h = math.sqrt(diff.var(0).sum().item() / m_h) / n_h
fig, ax = plt.subplots(figsize=(4.5, 3), layout="constrained")
ax.hist(diff.flatten().numpy(), bins=30)
ax.set(xlabel="Hutchinson − exact (nats)", ylabel="count", title=f"one probe per point: spread {diff.std():.2f}")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check("Hutchinson's mean − exact (unbiased)", diff.mean().item(), 0.0, tol=3 * se_h + 1e-3, unit="nats");

# %% [markdown] slideshow={"slide_type": "slide"}
# ### MNIST in bits per dimension
#
# For 8-bit images the standard number is **bits/dim**: dequantize $y = (x + u)/256$ with $u \sim \mathcal{U}[0,1)^D$,
# then $\text{bpd} = -\log p(y)/(D\ln 2) + 8$ for data in $[0, 1]$ (offset 7 for data in $[-1, 1]$; a uniform model
# scores exactly 8). `scoretutor.diffusion.likelihood.bits_per_dim` does this with Hutchinson's trace.

# %% slideshow={"slide_type": "fragment"}
try:  # the MNIST score model, when the package ships one (scoretutor.mnist, trained in its own notebook)
    from scoretutor.mnist import load_pretrained
    mnist_model, card = load_pretrained(device="cpu")
except (ImportError, OSError) as err:          # no module, or no shipped checkpoint
    mnist_model = None
    print(f"No pretrained MNIST score model in this version of scoretutor ({type(err).__name__}): skipping.")
if mnist_model is not None:
    from scoretutor.diffusion.likelihood import bits_per_dim
    from scoretutor.mnist.data import load_mnist
    mnist_sde = VESDE(card["sigma_min"], card["sigma_max"])                  # trained on [0, 1] images
    digits = (load_mnist("test")[0][: pick(full=8, fast=2)] * 255).round().to(torch.uint8)
    bpd = bits_per_dim(sigma_model_score_fn(mnist_model, mnist_sde), mnist_sde, digits, data_range=(0.0, 1.0),
                       trace="hutchinson", generator=seed(45), rtol=1e-3, atol=1e-3)
    print("bits/dim per digit:", np.round(bpd.numpy(), 2), f"— mean {bpd.mean():.2f}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · 🔍 The DDPM view: a noising chain, ε-prediction, and the ELBO
#
# Ho et al. (2020) noise the data in $N$ small steps, $q(\mathbf{x}_i \mid \mathbf{x}_{i-1}) = \mathcal{N}(\sqrt{1-\beta_i}\,\mathbf{x}_{i-1}, \beta_i I)$,
# so $q(\mathbf{x}_i \mid \mathbf{x}_0) = \mathcal{N}(\sqrt{\bar\alpha_i}\,\mathbf{x}_0, (1 - \bar\alpha_i) I)$ with $\bar\alpha_i = \prod_{j \le i}(1 - \beta_j)$.
# That is the **variance-preserving SDE** $d\mathbf{x} = -\tfrac12\beta(t)\mathbf{x}\,dt + \sqrt{\beta(t)}\,d\mathbf{w}$
# at $t_i$, with $\beta_i = \beta(t_i)/N$: the same family, a different noise schedule.

# %% slideshow={"slide_type": "fragment"}
vp = VPSDE(beta_min=0.1, beta_max=20.0)
betas = vp.ddpm_betas(1000)
abar = ddpm.alpha_bars(betas)
alpha_t, _ = vp.marginal(torch.linspace(0, 1, 1000, dtype=torch.float64))   # α(t_i), t_i = (i−1)/(N−1)
chain = ddpm.forward_chain(mix.sample(2000, seed(50)), betas.float(), seed(51))
fig, axes = P.figure_row(4, size=2.6, titles=[f"x_{i}" for i in (0, 100, 300, 1000)])
for ax, i in zip(axes, (0, 100, 300, 1000), strict=True):
    P.plot_samples(ax, chain[i], lim=8, s=1)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# −log ᾱ_N = Σ −log(1 − β_i) = B(1) + ½Σβ_i² + r with 0 < r ≤ Σβ³/(3(1 − β_max)): equal up to O(β_max²/N)
check("DDPM's −log ᾱ_N − the SDE's −log α(1)²", (-abar[-1].log() + 2 * alpha_t[-1].log()).item(),
      0.5 * (betas**2).sum().item(), tol=((betas**3).sum() / (3 * (1 - betas.max()))).item());

# %% [markdown] slideshow={"slide_type": "slide"}
# ### ε-prediction is a score model
#
# DDPM trains $\boldsymbol\epsilon_\theta(\mathbf{x}_i, i)$ to predict the noise in $\mathbf{x}_i = \sqrt{\bar\alpha_i}\,\mathbf{x}_0 + \sqrt{1-\bar\alpha_i}\,\boldsymbol\epsilon$.
# Is that a score model?
#
# **Derive.** *Exercise 3.* Write $\mathbf{x}_t = \alpha_t\mathbf{x}_0 + \sigma_t\boldsymbol\epsilon$ (here $\alpha_t = \sqrt{\bar\alpha_i}$,
# $\sigma_t = \sqrt{1-\bar\alpha_i}$). Derive $\nabla_{\mathbf{x}_t}\log q(\mathbf{x}_t \mid \mathbf{x}_0)$ in terms of $\boldsymbol\epsilon$; from it,
# write the two conversions `score_from_eps(eps, sigma_t)` and `eps_from_score(score, sigma_t)` (`sigma_t` has
# shape $(N, 1)$). The answer follows below the exercise.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def score_from_eps(eps, sigma_t):
    raise NotImplementedError  # your code here


def eps_from_score(score, sigma_t):
    raise NotImplementedError  # your code here


check_eps_score(score_from_eps, eps_from_score);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def solution_score_from_eps(eps, sigma_t):
    return -eps / sigma_t       # ∇ log N(x_t; α_t x_0, σ_t² I) = −(x_t − α_t x_0)/σ_t² = −ε/σ_t


def solution_eps_from_score(score, sigma_t):
    return -sigma_t * score


check_true("the solution passes the checker", check_eps_score(solution_score_from_eps, solution_eps_from_score))

# %% [markdown] slideshow={"slide_type": "fragment"}
# Since $\nabla_{\mathbf{x}_i}\log q(\mathbf{x}_i\mid\mathbf{x}_0) = -\boldsymbol\epsilon/\sqrt{1-\bar\alpha_i}$, the ε-loss is denoising
# score matching with $\lambda = \sigma_t^2$ in disguise, and $\mathbf{s}_\theta = -\boldsymbol\epsilon_\theta/\sigma_t$.
# We train an ε-network (the same MLP, conditioned on $\sigma_t$) on the VP SDE and sample it with the reverse SDE
# through that conversion.

# %% slideshow={"slide_type": "fragment"}
eps_model, _ = train_vp_eps_model(mix.sample, "ncsn_mixture", vp, n_steps=pick(full=4000, fast=400), device="cpu")
vp_score = eps_model_score_fn(eps_model, vp)               # s(x, t) = −ε_θ(x, σ_t)/σ_t
x_vp = reverse_sde(vp_score, vp, vp.prior_sample((N, 2), seed(52)), 500, generator=seed(53), progress=False).x
mf = mode_fractions(x_vp, mix)
print(f"VP ε-model + reverse SDE: (−5,−5) share {mf.fractions[0]:.3f} ± {mf.stderr[0]:.3f}, "
      f"SW₂ to data {sw(x_vp):.2f} (data vs data {floor:.2f})")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check("(−5,−5) share, VP ε-model", mf.fractions[0].item(), 0.2, tol=0.15);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Training objective: the ELBO *is* weighted score matching
#
# The deck's table says "score matching" vs "ELBO". DDPM's ELBO term $i$ is
# $\mathrm{KL}\big(q(\mathbf{x}_{i-1}\mid\mathbf{x}_i,\mathbf{x}_0)\,\|\,p_\theta(\mathbf{x}_{i-1}\mid\mathbf{x}_i)\big)$, a KL between two Gaussians.
# With the decoder variance $\beta_i$ and the mean written through $\boldsymbol\epsilon_\theta$ it equals, up to a constant,
# $$\frac{\beta_i}{2(1-\beta_i)}\;\big\|\mathbf{s}_\theta(\mathbf{x}_i, i) - \nabla_{\mathbf{x}_i}\log q(\mathbf{x}_i\mid\mathbf{x}_0)\big\|^2,$$
# denoising score matching. In this suite's convention, a weight $\lambda$ multiplies $\tfrac12\|\cdot\|^2$, so the ELBO's weight is
# $\lambda_i = \beta_i/(1-\beta_i) \approx \beta_i = g(t_i)^2\Delta t$: level $t$ weighted by $g(t)^2$, the **likelihood weighting**
# $\lambda(t) = g(t)^2$ of Song, Durkan, Murray & Ermon (2021), under which the weighted score-matching loss bounds the
# negative log-likelihood.
# (`ddpm.dsm_weight` returns this $\lambda_i$.) One check with an arbitrary $\boldsymbol\epsilon_\theta$:

# %% slideshow={"slide_type": "fragment"}
i = 300
x0, eps = torch.randn(5, 2, generator=seed(60), dtype=torch.float64), torch.randn(5, 2, generator=seed(61), dtype=torch.float64)
eps_pred = eps + 0.3 * torch.randn(5, 2, generator=seed(62), dtype=torch.float64)     # some imperfect ε_θ
xi = abar[i - 1].sqrt() * x0 + (1 - abar[i - 1]).sqrt() * eps
kl = ddpm.elbo_term(x0, xi, eps_pred, betas, i) - ddpm.elbo_term(x0, xi, eps, betas, i)   # θ-dependent part
s_pred, s_true = -eps_pred / (1 - abar[i - 1]).sqrt(), -eps / (1 - abar[i - 1]).sqrt()
dsm = ddpm.dsm_weight(betas, i) * 0.5 * ((s_pred - s_true) ** 2).sum(-1)   # λ_i · ½‖·‖²
print("ELBO term:", kl.numpy().round(6), "\nweighted DSM:", dsm.numpy().round(6))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("max |ELBO term − weighted DSM|", (kl - dsm).abs().max().item(), 1e-10, unit="nats");

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · 🔍 Generative stochastic networks
#
# A GSN (Bengio et al. 2013) samples with a **denoiser**: corrupt, $\tilde{\mathbf{x}} = \mathbf{x} + \sigma\mathbf{z}$, then draw
# $\mathbf{x} \sim P_\theta(\mathbf{x} \mid \tilde{\mathbf{x}})$, and repeat. If $P_\theta$ is the true posterior $p(\mathbf{x}\mid\tilde{\mathbf{x}})$,
# the chain is a Gibbs sampler of $p(\mathbf{x})\,\mathcal{N}(\tilde{\mathbf{x}};\mathbf{x},\sigma^2 I)$, so **$p$ is exactly stationary**, and a large
# $\sigma$ lets it jump between modes. A denoising autoencoder's mean is Tweedie's $\tilde{\mathbf{x}} + \sigma^2\nabla\log p_\sigma(\tilde{\mathbf{x}})$:
# the score again. With only that mean and Gaussian noise, the chain is right only for small $\sigma$ — where it
# *is* Langevin dynamics with $\varepsilon = \sigma^2$.

# %% slideshow={"slide_type": "fragment"}
n_g, k_g, sig_g = pick(full=4000, fast=2000), 60, 4.0
x0_box = torch.rand(n_g, 2, generator=seed(70), dtype=torch.float64) * 16 - 8      # start far from p
gsn_exact = gsn_chain(exact_posterior_denoiser(mix64, sig_g), x0_box, sig_g, k_g, generator=seed(71))
spread = sig_g / math.sqrt(1 + sig_g**2)                   # the posterior std of one unit-variance component
gsn_tweedie = gsn_chain(tweedie_denoiser(mix64.noise_conditional_score(), sig_g, spread), x0_box, sig_g, k_g,
                        generator=seed(72))
x_lang = langevin(mix64.score, x0_box, 0.1, 600, generator=seed(73), progress=False).x
far = lambda x: (torch.cdist(x, mix64.means).min(1).values > 3).double().mean().item()
for name, x in (("GSN, exact posterior", gsn_exact), ("GSN, Tweedie mean + Gaussian", gsn_tweedie),
                ("Langevin, 10× as many steps", x_lang), ("data", mix64.sample(n_g, seed(74)))):
    print(f"{name:<30} (−5,−5) share {share(x):.3f}   off-mode (> 3 from both) {far(x):.3f}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
se_g = math.sqrt(0.16 / n_g)
check("GSN with the exact posterior: (−5,−5) share", share(gsn_exact), 0.2, tol=4 * se_g)
check_greater("Langevin from the same start: |share − 0.2|", abs(share(x_lang) - 0.2), 10 * se_g)
check_greater("Tweedie-Gaussian GSN puts mass between the modes (off-mode share)", far(gsn_tweedie),
              far(gsn_exact) + 0.02);

# %% [markdown] slideshow={"slide_type": "fragment"}
# The exact-posterior GSN mixes between the modes and recovers ⅕ : ⅘ from a bad start, which Langevin with the
# exact score cannot; the Gaussian-denoiser GSN leaves a bridge of samples between the modes, because averaging
# the two possible reconstructions is not a sample of either. Score-based models keep the GSN idea — learn to
# denoise — but sample with many small noise levels, where a Gaussian step is accurate.

# %% slideshow={"slide_type": "skip"}
print(f"notebook ran in {time.time() - t_start:.0f} s")
