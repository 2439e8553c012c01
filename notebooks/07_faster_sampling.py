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
# # 07 · Faster sampling: ODE solvers, DDIM and flow matching, measured against the exact answer
#
# The deck's table ends with *"Diffusion probabilistic model — can be made faster?"*. Every sampler so far spends
# hundreds of network calls per sample. This notebook answers the question on the 2-D mixture of notebooks 03–06,
# where the scores and the marginals are known in closed form, so every error below is measured against the exact
# answer: (1) the probability-flow ODE solved by first- and second-order methods — DDIM, Heun with Karras et al.'s
# noise schedule, DPM-Solver++ — with their **convergence orders** read off as slopes; (2) **flow matching**, which
# learns the same ODE's velocity directly, side by side with a score model. Then (3) the same solvers on notebook 05's
# MNIST model, judged as in 05 §7 (there no exact answer exists).
#
# **Extension material, not on the 90-minute lecture route** (notebook 00). In full mode on a 2-core CPU it runs in
# under a minute once its training and its solver sweep are cached. Notation as in notebook 06: $t = 0$ is data,
# $t = 1$ noise, $\mathbf{x}_t = \alpha_t\mathbf{x}_0 + \sigma_t\boldsymbol\epsilon$, noise levels small to large.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from scoretutor import fast_mode, get_device, mnist, pick
from scoretutor.densities import ncsn_mixture
from scoretutor.diffusion import flow_matching as fm
from scoretutor.diffusion import solvers as S
from scoretutor.diffusion.likelihood import log_likelihood
from scoretutor.diffusion.samplers import probability_flow

# %% slideshow={"slide_type": "skip"}
from scoretutor.diffusion.sde import VESDE, VPSDE, eps_model_score_fn, marginal_mixture, mixture_score_fn
from scoretutor.diffusion.toy_models import train_vp_eps_model
from scoretutor.lecture import plotting as P
from scoretutor.lecture.claims import check, check_less, check_true
from scoretutor.lecture.exercises.faster_sampling import check_heun_slope, check_score_from_velocity
from scoretutor.lecture.widgets.solvers import SolverExplorer
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.mnist.quality import ODE_CURVE_FILE, format_ode_target, shipped_table
from scoretutor.training import cached, fingerprint

# %% slideshow={"slide_type": "skip"}
t_start = time.time()
mix, mix64 = ncsn_mixture(), ncsn_mixture(dtype=torch.float64)   # ⅕ N((−5,−5), I) + ⅘ N((5,5), I)
seed = lambda s: torch.Generator().manual_seed(s)
share = lambda x: mode_fractions(x, mix64).fractions[0].item()    # weight of the (−5,−5) mode
ve, vp = VESDE(sigma_min=0.1, sigma_max=50.0), VPSDE(beta_min=0.1, beta_max=20.0)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Solvers against the exact score
#
# Write $\bar{\mathbf{x}} = \mathbf{x}/\alpha_t$ and $\bar\sigma = \sigma_t/\alpha_t$ (for VE, $\bar{\mathbf{x}} = \mathbf{x}$ and $\bar\sigma = \sigma$). For **any** Gaussian
# path the probability-flow ODE becomes one simple equation (Karras et al. 2022):
# $$\frac{d\bar{\mathbf{x}}}{d\bar\sigma} = \frac{\bar{\mathbf{x}} - D(\mathbf{x}, t)}{\bar\sigma} = \hat{\boldsymbol\epsilon},
# \qquad D(\mathbf{x}, t) = \mathbb{E}[\mathbf{x}_0 \mid \mathbf{x}_t = \mathbf{x}] = \frac{\mathbf{x} + \sigma_t^2\nabla\log p_t(\mathbf{x})}{\alpha_t}\ \text{(Tweedie)}.$$
#
# | solver | step | calls/step | order |
# |---|---|---|---|
# | DDPM ancestral | draw $\mathbf{x}_s \sim q(\mathbf{x}_s\mid\mathbf{x}_t, \mathbf{x}_0 = D)$ | 1 | (SDE) |
# | Euler–Maruyama | reverse SDE, notebook 06 | 1 | (SDE) |
# | Euler (ODE in $t$) | $\mathbf{x} \leftarrow \mathbf{x} - \Delta t\,(\mathbf{f} - \tfrac12 g^2 \mathbf{s})$, $\Delta t = t - s > 0$ | 1 | 1 |
# | DDIM | $\mathbf{x}_s = \alpha_s D + \sigma_s\hat{\boldsymbol\epsilon}$ = Euler in $(\bar{\mathbf{x}}, \bar\sigma)$ | 1 | 1 |
# | Heun (Karras) | Euler, then average the slopes at both ends | 2 | 2 |
# | DPM-Solver++(2M) | exponential integrator, $D$ extrapolated from the last two steps | 1 | 2 |
#
# All run on Karras's grid, $\bar\sigma_i^{1/\rho}$ evenly spaced with $\rho = 7$ (small steps at small noise), and
# start from the **exact** $p_1$, so the only error left is the solver's.

# %% slideshow={"slide_type": "fragment"}
x_mid = marginal_mixture(mix64, vp, 0.6).sample(500, seed(1))           # points at t = 0.6 on the VP path
t, s = 0.6, 0.45
D = S.denoiser_from_score(mixture_score_fn(mix64, vp), vp)
x_ddim = S.ddim(D, vp, x_mid, [t, s]).x                                 # one DDIM step, t → s
(a_t, s_t), (a_s, s_s) = (tuple(c.item() for c in vp.marginal(u)) for u in (t, s))
eps_hat = (x_mid - a_t * D(x_mid, torch.full((500,), t, dtype=torch.float64))) / s_t
x_expo = S.exponential_euler_step(x_mid, eps_hat, vp, t, s)            # DPM-Solver-1 in λ = log(α/σ)
x_bar = x_mid / a_t + (s_s / a_s - s_t / a_t) * eps_hat                 # Euler on dx̄/dσ̄ = ε̂
print(f"max |DDIM − exponential integrator| = {(x_ddim - x_expo).abs().max():.1e}, "
      f"max |DDIM − α_s·(Euler in x̄, σ̄)| = {(x_ddim - a_s * x_bar).abs().max():.1e}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("DDIM step = exponential integrator (max difference)", (x_ddim - x_expo).abs().max().item(), 1e-10)
check_less("DDIM step = Euler in (x̄, σ̄) (max difference)", (x_ddim - a_s * x_bar).abs().max().item(), 1e-10);

# %% [markdown] slideshow={"slide_type": "fragment"}
# DDIM is not a new sampler but Euler's method in the right variables: in $(\bar{\mathbf{x}}, \bar\sigma)$, and equally
# the exponential integrator that solves the linear part $\mathbf{f}$ of the ODE exactly and freezes only
# $\hat{\boldsymbol\epsilon}$ over the step (DPM-Solver-1). For a single data point $D$ is constant and the path in
# $(\bar{\mathbf{x}}, \bar\sigma)$ is a **straight line**: DDIM is then exact in one step. Curvature comes only from $D$
# changing along the path.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Explore: a solver and its number of calls
#
# The VP probability-flow ODE with the exact score, from the same 400 starts $\mathbf{x}_1 \sim p_1$, eight paths drawn (a dot
# per step). With very few calls the paths cut corners and land between or beside the modes; Heun at 2 calls takes one
# step and overshoots badly. The status line gives the (−5, −5) mode's share and the median distance of the endpoints
# to a 1,024-call solve: watch the second-order solvers reach it with far fewer calls.

# %% slideshow={"slide_type": "-"}
explorer = SolverExplorer()
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ### How fast does the error fall?
#
# **Predict, then check.** *Exercise 1.* We run each ODE solver with $N$ = 32 … 256 network calls from the same
# starts and measure the endpoint error against a very fine solve. On log–log axes the error falls on a straight
# line. DDIM's slope is −1. What slope will **Heun's** line have (it spends two calls per step)? Write down a
# number, then run the cell; the plot follows.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
heun_slope = None   # your prediction: the slope of log(error) against log(calls)
check_heun_slope(heun_slope);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
# Heun's local error is O(h³), so the global error is O(h²) = O(N⁻²): slope −2 (two calls per step only
# shift the line, by a factor 2² = 4 at equal calls)
solution_heun_slope = -2.0
check_true("the solution's prediction holds", check_heun_slope(solution_heun_slope))

# %% slideshow={"slide_type": "skip"}
calls = pick(full=[8, 16, 32, 64, 128, 256], fast=[8, 16, 32, 64, 128])  # the cost is per step, not per point
n_s, n_e = pick(full=4000, fast=500), pick(full=500, fast=200)     # samples for distances; for endpoint errors
exact_0 = {name: marginal_mixture(mix64, sde, sde.t_min) for name, sde in (("VE", ve), ("VP", vp))}
refs = {name: (p.sample(n_s, seed(12)), p.sample(n_s, seed(13))) for name, p in exact_0.items()}
sw_to = lambda x, ref: sliced_wasserstein(x, ref, generator=seed(0))
# the metric's noise floor: two exact samples, ten independent pairs (mode-weight noise dominates it)
floors = {name: [sw_to(p.sample(n_s, seed(100 + k)), p.sample(n_s, seed(200 + k))) for k in range(10)]
          for name, p in exact_0.items()}


# %% slideshow={"slide_type": "skip"}
def sweep(name, sde):
    """Every solver at every budget from the same exact x_T: (endpoint error of the ODE solvers, SW₂, share)."""
    score = mixture_score_fn(mix64, sde)
    x_T = marginal_mixture(mix64, sde, 1.0).sample(n_s, seed(10))
    ref = probability_flow(score, sde, x_T[:n_e], rtol=1e-10, atol=1e-10, method="DOP853").x
    out = {}
    for solver, (kind, _, _) in S.SOLVERS.items():
        for c in calls:
            x = S.run_solver(solver, score, sde, x_T, c, generator=seed(11)).x
            err = (x[:n_e] - ref).norm(dim=1).median().item() if kind == "ode" else None
            out[solver, c] = (err, sw_to(x, refs[name][0]), share(x))
    return out


# %% slideshow={"slide_type": "skip"}
key = dict(calls=calls, n_s=n_s, n_e=n_e, sdes=[repr(ve), repr(vp)], solvers=list(S.SOLVERS), version=2)
run_all = lambda: {name: sweep(name, sde) for name, sde in (("VE", ve), ("VP", vp))}
results = run_all() if fast_mode() else cached("07-solver-sweep", run_all, **key)

# %% slideshow={"slide_type": "slide"}
fig, axes = plt.subplots(2, 3, figsize=(13, 6.4), layout="constrained", sharex=True)
for row, name in zip(axes, ("VE", "VP"), strict=True):
    for k, (solver, (kind, _, _)) in enumerate(S.SOLVERS.items()):  # one colour per solver in every panel
        err, sw, sh = zip(*(results[name][solver, c] for c in calls), strict=True)
        if kind == "ode":
            row[0].loglog(calls, err, "o-", ms=3, color=f"C{k}", label=solver)
        row[1].loglog(calls, sw, "o-", ms=3, color=f"C{k}", label=solver)
        row[2].semilogx(calls, sh, "o-", ms=3, color=f"C{k}")
    row[1].axhspan(min(floors[name]), max(floors[name]), color="0.8", label="exact vs exact (10 pairs)")
    row[2].axhspan(0.2 - 2 * math.sqrt(0.16 / n_s), 0.2 + 2 * math.sqrt(0.16 / n_s), color="0.85")
    row[0].set(ylabel=f"{name}: median endpoint error"), row[1].set(ylabel="sliced W₂ to exact samples")
    row[2].set(ylabel="(−5,−5) share (grey: ±2 se)")
axes[0, 0].legend(fontsize=7), axes[0, 1].legend(fontsize=7)
fig.supxlabel("network calls")
plt.show()

# %% slideshow={"slide_type": "fragment"}
orders = {}
print(f"{'solver':<20}{'theory':>7}{'VE: measured':>16}{'VP: measured':>16}   (fit over 32–{calls[-1]} calls)")
for solver, (kind, _, theory) in S.SOLVERS.items():
    if kind == "ode":
        for name in ("VE", "VP"):
            orders[name, solver] = S.convergence_order(calls[2:], [results[name][solver, c][0] for c in calls[2:]])
        ve_p, vp_p = orders["VE", solver], orders["VP", solver]
        print(f"{solver:<20}{theory:>7}{ve_p[0]:>10.2f} ± {ve_p[1]:.2f}{vp_p[0]:>10.2f} ± {vp_p[1]:.2f}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# 32–256 calls: discretisation error dominates (the reference is at 1e-10) and the next-order term bends the
# line by < 0.07 over the range (see tests/test_solvers.py); the band is that plus 4 standard errors of the fit
for (name, solver), (p, se) in orders.items():
    check(f"{name}, {solver}: order", p, S.SOLVERS[solver][2], tol=0.1 + 4 * se)
for name in ("VE", "VP"):
    e = {sv: results[name][sv, calls[-1]][0] for sv in ("DDIM", "Heun (Karras)", "DPM-Solver++(2M)")}
    check_less(f"{name}: error at {calls[-1]} calls, DPM-Solver++(2M) / DDIM", e["DPM-Solver++(2M)"] / e["DDIM"], 0.1);

# %% [markdown] slideshow={"slide_type": "fragment"}
# The first-order solvers (Euler in $t$, DDIM) fall with slope −1, the second-order ones (Heun, DPM-Solver++(2M))
# with slope −2: doubling the calls divides their error by four. At equal calls DPM-Solver++(2M) is the most accurate
# of all — second order at one call per step. The sample distances tell the same story more coarsely: the
# second-order ODE solvers settle within about 16–32 calls, while the first-order and stochastic samplers are still
# moving at 256. Where the curves flatten they sit at the sampling noise of $n$ samples — the grey band, ten
# exact-vs-exact pairs, whose spread comes mostly from the binomial noise of the mode weights (a 1 % shift of mass
# between modes 14 apart moves SW₂ by about 0.2). The stochastic samplers converge only **in law** (weak order 1);
# at small budgets their mode weights are off by many standard errors, in opposite directions: Euler–Maruyama
# overweights the small mode, DDPM ancestral underweights it.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Flow matching is the probability-flow ODE learned directly
#
# Instead of noising with an SDE, draw a straight line from each data point to its own noise,
# $$\mathbf{x}_t = (1 - t)\,\mathbf{x}_0 + t\,\mathbf{z}, \qquad \mathbf{z} \sim \mathcal{N}(0, I),$$
# on which the point moves with the constant velocity $\mathbf{z} - \mathbf{x}_0$. **Flow matching** (Lipman et al. 2023;
# Liu et al. 2023, "rectified flow"; Albergo & Vanden-Eijnden 2023) regresses a network on it,
# $\;\mathcal{L}(\theta) = \mathbb{E}_{t,\mathbf{x}_0,\mathbf{z}}\,\tfrac12\|\mathbf{v}_\theta(\mathbf{x}_t, t) - (\mathbf{z} - \mathbf{x}_0)\|^2,$
# whose minimiser is the **marginal velocity** $\mathbf{v}^*(\mathbf{x}, t) = \mathbb{E}[\mathbf{z} - \mathbf{x}_0 \mid \mathbf{x}_t = \mathbf{x}]$ — the same
# trick as denoising score matching, one level up. Its ODE $d\mathbf{x}/dt = \mathbf{v}^*$ moves $p_t$ along the path
# (it solves the continuity equation), so solving it from $t = 1$ to $0$ samples the data. This path is Gaussian,
# $\alpha_t = 1 - t$, $\sigma_t = t$: it has a score too.
#
# **Derive.** *Exercise 2.* Express the score $\nabla\log p_t(\mathbf{x})$ through $\mathbf{v}^*(\mathbf{x}, t)$. Hint: condition
# $\mathbf{x} = (1-t)\,\mathbf{x}_0 + t\,\mathbf{z}$ on $\mathbf{x}_t = \mathbf{x}$, and use Tweedie. The derivation follows below the exercise.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def score_from_velocity(x, t, v):
    """∇ log p_t(x) on the linear path, from v = v*(x, t); t has shape (N, 1)."""
    raise NotImplementedError  # your code here


check_score_from_velocity(score_from_velocity);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def solution_score_from_velocity(x, t, v):
    # x = (1 − t) E[x₀|x] + t E[z|x] and v = E[z|x] − E[x₀|x]  ⇒  E[z|x] = x + (1 − t) v;  Tweedie: s = −E[z|x]/t
    return -(x + (1 - t) * v) / t


check_true("the solution passes the checker", check_score_from_velocity(solution_score_from_velocity))

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Why.** Conditioning $\mathbf{x} = (1-t)\,\mathbb{E}[\mathbf{x}_0\mid\mathbf{x}] + t\,\mathbb{E}[\mathbf{z}\mid\mathbf{x}]$ and
# $\mathbf{v}^* = \mathbb{E}[\mathbf{z}\mid\mathbf{x}] - \mathbb{E}[\mathbf{x}_0\mid\mathbf{x}]$ give $\mathbb{E}[\mathbf{z}\mid\mathbf{x}] = \mathbf{x} + (1-t)\,\mathbf{v}^*$,
# and Tweedie says $\mathbb{E}[\mathbf{z}\mid\mathbf{x}_t] = -\sigma_t\nabla\log p_t = -t\,\nabla\log p_t$. Solved for $\mathbf{v}^*$:
# $$\mathbf{v}^*(\mathbf{x}, t) = a(t)\,\mathbf{x} + b(t)\,\nabla\log p_t(\mathbf{x}), \qquad a(t) = -\frac{1}{1-t},\quad b(t) = -\frac{t}{1-t},$$
# which is exactly $\mathbf{f} - \tfrac12 g^2\nabla\log p_t$ for this path's SDE ($\mathbf{f} = -\mathbf{x}/(1-t)$, $g^2 = 2t/(1-t)$):
# **the flow-matching ODE is this path's probability-flow ODE**. For the mixture $\mathbf{v}^*$ is known in closed form
# (`fm.mixture_velocity_fn`); below it is checked against $a\mathbf{x} + b\nabla\log p_t$, and against the VP
# ODE: in $(\bar{\mathbf{x}}, \bar\sigma)$, with $\bar\sigma = t/(1-t)$ here, both paths have the same right-hand side.

# %% slideshow={"slide_type": "fragment"}
path, v_exact = fm.LinearPath(), fm.mixture_velocity_fn(mix64)
xt_pts = marginal_mixture(mix64, path, 0.5).sample(1000, seed(20))
half = torch.full((1000,), 0.5, dtype=torch.float64)
gap_ab = (v_exact(xt_pts, half) - fm.velocity_from_score(mixture_score_fn(mix64, path))(xt_pts, half)).abs().max()
t_vp = S.time_of_sigma_bar(vp, torch.tensor([1.0])).item()              # VP time with σ̄ = 1, as t = ½ here
a_vp = vp.marginal(t_vp)[0].item()
d_fm = fm.denoiser_from_velocity(v_exact)(xt_pts, half)                 # D from the velocity
d_vp = S.denoiser_from_score(mixture_score_fn(mix64, vp), vp)(a_vp * 2 * xt_pts, torch.full((1000,), t_vp, dtype=torch.float64))
print(f"max |v* − (a x + b ∇log p_t)| = {gap_ab:.1e};  max |D_flow − D_VP| at equal x̄, σ̄ = {(d_fm - d_vp).abs().max():.1e}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("closed-form v* − (a x + b ∇log p_t), max", gap_ab.item(), 1e-10)
check_less("flow-matching and VP denoisers at the same (x̄, σ̄), max difference", (d_fm - d_vp).abs().max().item(),
           1e-8);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Training a velocity field
#
# A small MLP $\mathbf{v}_\theta(\mathbf{x}, t)$ trained by the same `fit` loop as every model in the suite, on the flow-matching
# loss; beside it, notebook 06's VP ε-model (the same data, the same loop, DDPM's loss), read as a score.

# %% slideshow={"slide_type": "fragment"}
steps = pick(full=4000, fast=400)
v_model, fm_hist = fm.train_velocity_model(mix.sample, "ncsn_mixture", n_steps=steps, device="cpu")
eps_model, _ = train_vp_eps_model(mix.sample, "ncsn_mixture", vp, n_steps=steps, device="cpu")
v_fn = lambda x, t: v_model(x.float(), t.float()).to(x.dtype)
vp_score = eps_model_score_fn(lambda x, s: eps_model(x.float(), s.float()).to(x.dtype), vp)
ts_err = torch.linspace(0.02, 0.98, 25)
with torch.no_grad():
    rel_err = []
    for tv in ts_err.tolist():
        xs = marginal_mixture(mix64, path, tv).sample(2000, seed(21))
        tt = torch.full((2000,), tv, dtype=torch.float64)
        rel_err.append(((v_fn(xs, tt) - v_exact(xs, tt)).norm(dim=1).mean() / v_exact(xs, tt).norm(dim=1).mean()).item())

# %% slideshow={"slide_type": "-"}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
g1 = torch.linspace(-9, 9, 15, dtype=torch.float64)
grid = torch.stack(torch.meshgrid(g1, g1, indexing="xy"), -1).reshape(-1, 2)
P.plot_density(axes[0], marginal_mixture(mix64, path, 0.5).log_prob, lim=9, title="t = ½: v* (black), v_θ (red)")
with torch.no_grad():
    for f, c in ((v_exact, "k"), (v_fn, "tab:red")):
        vv = f(grid, torch.full((len(grid),), 0.5, dtype=torch.float64))
        axes[0].quiver(grid[:, 0], grid[:, 1], vv[:, 0], vv[:, 1], color=c, scale=150, width=0.004)
axes[1].plot(ts_err, rel_err, "o-")
axes[1].set(xlabel="t", ylabel="E‖v_θ − v*‖ / E‖v*‖", title="learned against exact velocity", ylim=(0, None))
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("flow matching: mean relative velocity error over t", float(np.mean(rel_err)), pick(full=0.05, fast=0.3));

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Side by side: the score model's ODE and the flow-matching ODE
#
# The score model is sampled by DDIM and Heun on Karras's grid (VP), the velocity model by Euler and Heun in $t$ on
# an even grid (the usual choice for flow matching; its Euler step *is* DDIM on the linear path). Both start from
# their own exact prior: $\mathcal{N}(0, I)$ is exact at $t = 1$ on both paths (for VP up to the mean $\alpha_1\mathbf{x}_0$, with $\alpha_1 \approx e^{-5}$).

# %% slideshow={"slide_type": "skip"}
fm_calls = [4, 8, 16, 32, 64]
x_data = mix64.sample(n_s, seed(30))
z = torch.randn(n_s, 2, generator=seed(31), dtype=torch.float64)
D_vp = S.denoiser_from_score(vp_score, vp)
uniform = lambda c: torch.linspace(1, 0, c + 1, dtype=torch.float64)
samplers = {"VP score model, DDIM": lambda c: S.ddim(D_vp, vp, z, S.time_grid(vp, c)),
            "VP score model, Heun": lambda c: S.heun(D_vp, vp, z, S.time_grid(vp, c // 2)),
            "flow matching, Euler": lambda c: S.euler(v_fn, z, uniform(c)),
            "flow matching, Heun": lambda c: S.heun_t(v_fn, z, uniform(c // 2))}
sw_data = lambda x: sliced_wasserstein(x, x_data, generator=seed(0))
run_side = lambda: {(k, c): (sw_data(x), share(x)) for k, f in samplers.items() for c in fm_calls for x in [f(c).x]}
key2 = dict(fm=fingerprint(v_model), vp=fingerprint(eps_model), n=n_s, calls=fm_calls, version=2)
side = run_side() if fast_mode() else cached("07-side-by-side", run_side, **key2)

# %% slideshow={"slide_type": "skip"}
with torch.no_grad():
    paths = {"VP score model (DDIM, 64 steps)": S.ddim(D_vp, vp, z[:300], S.time_grid(vp, 64), return_trajectory=True),
             "flow matching (Euler, 64 steps)": S.euler(v_fn, z[:300], uniform(64), return_trajectory=True)}
straight = {k: fm.straightness(o.trajectory).mean().item() for k, o in paths.items()}
floor_fm = [sliced_wasserstein(mix64.sample(n_s, seed(300 + k)), mix64.sample(n_s, seed(400 + k)),
                               generator=seed(0)) for k in range(10)]

# %% slideshow={"slide_type": "fragment"}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
for k in samplers:
    axes[0].loglog(fm_calls, [side[k, c][0] for c in fm_calls], "o-", ms=3, label=k)
axes[0].axhspan(min(floor_fm), max(floor_fm), color="0.8", label="data vs data (10 pairs)")
axes[0].set(xlabel="network calls", ylabel="sliced W₂ to data"), axes[0].legend(fontsize=7)
axes[0].set_xticks(fm_calls, [str(c) for c in fm_calls], minor=False), axes[0].minorticks_off()
for ax, (k, o) in zip(axes[1:], paths.items(), strict=True):
    P.plot_density(ax, mix64.log_prob, lim=(-9, 9, -9, 9), title=f"{k}\nstraightness {straight[k]:.3f}")
    ax.plot(o.trajectory[:, :40, 0], o.trajectory[:, :40, 1], lw=0.6, color="w", alpha=0.8)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
for k in samplers:
    check("(−5,−5) share at 64 calls, " + k, side[k, 64][1], 0.2, tol=pick(full=0.05, fast=0.15))
check_true("both ODEs' paths are nearly straight (chord / length > 0.9)", min(straight.values()) > 0.9,
           ", ".join(f"{v:.3f}" for v in straight.values()));

# %% [markdown] slideshow={"slide_type": "fragment"}
# With exact fields the two ODEs would be **the same ODE in different coordinates** (same $D$ at the same
# $(\bar{\mathbf{x}}, \bar\sigma)$, above); the trained versions differ in what the network learned and in the time grid.
# Past 16–32 calls the curves are flat: the solvers' own error is gone, and what is left is the learned field's
# error plus sampling noise — flow matching's samples lie inside the grey band (ten data-vs-data pairs, wide because
# it carries the binomial noise of the mode weights), the VP score model's just above it, in line with its larger KL
# below. At 2 steps Heun is worse than Euler at
# 4: second order pays only once the steps are small enough. "Straightness"
# (chord over length, 1 for a straight path) is close to 1 for both: a path bends only where its posterior mean
# $D$ changes — near the watershed between the two modes — whatever the parametrisation.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Exact log-likelihoods, again through the divergence integral
#
# The flow is an invertible map, so it carries densities exactly as in notebook 06:
# $\log p_0(\mathbf{x}_0) = \log\mathcal{N}(\mathbf{x}_1; 0, I) + \int_0^1 \nabla\cdot\mathbf{v}(\mathbf{x}_t, t)\,dt$,
# computed by the same `log_likelihood` (`fm.VelocityODE` passes the velocity where it takes the drift). With the exact
# $\mathbf{v}^*$ it must return the analytic $\log p$ of the data — here with no $\sigma_{\min}$ blur, since the path ends
# at the data itself.

# %% slideshow={"slide_type": "fragment"}
held_out = mix64.sample(pick(full=200, fast=40), seed(40))
ll_exact = log_likelihood(v_exact, fm.VelocityODE(), held_out, rtol=1e-7, atol=1e-7)
ll_fm = log_likelihood(v_fn, fm.VelocityODE(), held_out, rtol=1e-4, atol=1e-4)
ll_vp = log_likelihood(vp_score, vp, held_out, rtol=1e-4, atol=1e-4)
truth = mix64.log_prob(held_out)
truth_vp = marginal_mixture(mix64, vp, vp.t_min).log_prob(held_out)    # the VP model's target, p at t_min
se = lambda d: d.std().item() / math.sqrt(len(d))
print(f"exact v*: mean |log p − analytic| = {(ll_exact - truth).abs().mean():.1e} nats")
for name, ll, ref in (("flow matching", ll_fm, truth), ("VP score model", ll_vp, truth_vp)):
    print(f"{name:<15} estimated KL(p ‖ p_θ) = {(ref - ll).mean():.3f} ± {se(ref - ll):.3f} nats")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("exact velocity: mean |ODE − analytic| log-likelihood", (ll_exact - truth).abs().mean().item(), 1e-3,
           unit="nats")
check_less("flow-matching model − truth (Gibbs: ≤ 0 up to 3 se)", (ll_fm - truth).mean().item(),
           3 * se(ll_fm - truth));

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Back to notebook 01: a continuous normalising flow without a Jacobian determinant
#
# Notebook 01's flows buy a normalised density with an invertible map whose $\log|\det\partial g/\partial\mathbf{x}|$ must be
# cheap, which restricts the architecture (a triangular coupling layer). The ODE $d\mathbf{x}/dt = \mathbf{v}_\theta$ is
# such a map for **any** network — a continuous normalising flow (Chen et al. 2018), whose log-determinant is the
# integral of $\nabla\cdot\mathbf{v}_\theta$ computed above. Trained by maximum likelihood, it would need that integral (and an
# ODE solve) at every step. Flow matching — like score matching — never computes it during training: a regression on
# $\mathbf{z} - \mathbf{x}_0$ at random times, one network call per example. The determinant appears only if we ask
# for a likelihood afterwards.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The same solvers on MNIST
#
# Notebook 05's score network $\mathbf{s}_\theta(\mathbf{x}, \sigma)$ is a VE model, $\sigma$ from $\sigma_{\max}$ down to $\sigma_{\min} = 0.01$. Its
# probability-flow ODE is the same equation as above with $\bar\sigma = \sigma$; the predictor–corrector sampler of
# notebooks 05 and 06 spends **285** network calls per digit. DPM-Solver++(2M) on Karras's grid, with 50:

# %% slideshow={"slide_type": "-"}
model, card = mnist.load_pretrained(device=get_device())
n_calls = pick(full=50, fast=10)
t0 = time.perf_counter()
digits = mnist.sample_ode(model, pick(full=64, fast=8), card, n_calls=n_calls, seed=0)
seconds = time.perf_counter() - t0
fig, ax = plt.subplots(figsize=(8, len(digits) / 8 + 0.5))
P.plot_digits(ax, digits.cpu(), cols=8, title=f"{len(digits)} digits, {n_calls} network calls each, {seconds:.1f} s")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# How good are they, and how many calls does each solver need? Judged as in notebook 05 §7 — 1,000 digits per point,
# the same starting noise for every solver — by `benchmarks/mnist_ode.py` (precomputed: about half an hour of this CPU):

# %% slideshow={"slide_type": "-"}
ode, ode_current = shipped_table(ODE_CURVE_FILE)
pc_ref = (285, ode["pc"]["frechet"], "predictor–corrector (3 seeds)")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
P.plot_quality_curve(axes[0], ode["curve"], "frechet", ode["real"]["frechet"], pc_ref, "Fréchet distance (lower is better)")
axes[0].set_yscale("log")  # Euler's 568 at 10 calls would flatten the rest
P.plot_quality_curve(axes[1], ode["curve"], "confident", ode["real"]["confident"],
                     (285, ode["pc"]["confident"], pc_ref[2]), "confident fraction (higher is better)")
plt.show()
display(Markdown(format_ode_target(ode)))

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Reading it.** The ODE is fast: DPM-Solver++(2M) has converged by about 20 calls (its figures at 50 and 100 calls
# agree), and every solver heads for the same place — the first-order ones (Euler in $t$, DDIM) more slowly, as in §1.
# But that place is **not** where predictor–corrector lands: the probability-flow ODE of *this* network has a Fréchet
# distance about three times larger, and more steps (up to 100 calls) do not change that. So the gap is not the solver's
# discretisation error: it comes from the model the ODE integrates — the learned score, and possibly the prior
# $\mathcal{N}(0, \sigma_{\max}^2 I)$, to which the ODE is the most sensitive sampler (notebook 06 §3). The ODE is deterministic: an error in $\mathbf{s}_\theta$ at one noise level moves the sample,
# and nothing later moves it back. The stochastic samplers add fresh noise and Langevin steps at every level, which
# pull each sample back towards $p_\sigma$ and so forgive earlier errors (notebook 06 §3 showed the same sensitivity of
# the ODE to its prior). A middle way (Karras et al. 2022): Heun with **churn**, a little fresh noise before each step.

# %% slideshow={"slide_type": "-"}
runs = {"0 (the ODE)": ode["curve"]["Heun (Karras)"], **ode["churn"]}
cell = lambda r, c: f"{r[c]['frechet']:.1f} / {r[c]['confident']:.3f}"
pc_seed0 = f"{ode['pc']['frechet'][0]:.1f} / {ode['pc']['confident'][0]:.3f}"
display(Markdown("| Heun (Karras), seed 0, n = 1,000 | 50 calls: Fréchet / confident | 100 calls |\n|---|---|---|\n"
                 + "\n".join(f"| S_churn = {s} | {cell(r, '50')} | {cell(r, '100')} |" for s, r in runs.items())
                 + f"\n| predictor–corrector, 285 calls | {pc_seed0} | |"))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
at100 = {name: points["100"]["frechet"] for name, points in ode["curve"].items()}
dpm = ode["curve"]["DPM-Solver++(2M)"]
check_true("the precomputed MNIST tables are for the shipped weights", ode_current)
check_less("DPM-Solver++(2M) has converged: |Fréchet at 50 calls − at 100| / at 100",
           abs(dpm["50"]["frechet"] - dpm["100"]["frechet"]) / dpm["100"]["frechet"], 0.05)
check_less("the solvers agree at 100 calls: largest / smallest Fréchet", max(at100.values()) / min(at100.values()), 1.15)
check_true("predictor–corrector below the ODE on Fréchet distance, every seed",
           max(ode["pc"]["frechet"]) < min(ode["at_50"]["frechet"]))
check_less("churn (S_churn = 10, 100 calls) / the ODE (100 calls): Fréchet", ode["churn"]["10"]["100"]["frechet"]
           / ode["curve"]["Heun (Karras)"]["100"]["frechet"], 0.5);

# %% [markdown] slideshow={"slide_type": "fragment"}
# A little churn goes a long way: with 100 calls, about a third of predictor–corrector's, churned Heun draws digits as
# good as predictor–corrector's on this seed (its worst of three: 13.0, against 9.2 and 7.7) — though not at 50 calls.
# More churn is not better: at 100 calls $\gamma = 0.2$ ($S_\text{churn} = 10$) beats the cap $\gamma = \sqrt2 - 1$ ($S_\text{churn} = 40$),
# since the added noise must be removed again by the same few steps; at 50 calls both are at or near the cap and score
# alike. So on this network the answer to the deck's "can be made faster?" is *yes, about 6× at 50 calls*
# (`scoretutor sample mnist --sampler ode`), at a cost in quality that a better-trained score should shrink — and churn
# at 100 calls (about 3× faster than predictor–corrector) buys most of it back on this seed.

# %% slideshow={"slide_type": "skip"}
print(f"notebook ran in {time.time() - t_start:.0f} s")
