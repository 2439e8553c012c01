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
# # 02 · Score matching: learning $\mathbf{s}_\theta(\mathbf{x}) \approx \nabla_\mathbf{x}\log p(\mathbf{x})$ from data
#
# Notebook 01 ended with a model of the **score**, $\mathbf{s}_\theta(\mathbf{x})$, in which $Z_\theta$ drops out.
# *How to learn the score function?* In the deck's order:
#
# 1. the **Fisher divergence** — the objective we want, unknown because it needs $\nabla_\mathbf{x}\log p$;
# 2. **denoising score matching** (Vincent 2011) — learns the score of a *noisy* $p_\sigma$ from samples alone;
# 3. the noise level σ trades bias for variance; two exercises (implement DSM, debug a broken one).
#
# **Appendix (🔍 deep dives, optional):** implicit score matching (Hyvärinen 2005), sliced score matching and its
# cost, and all objectives side by side.
#
# **On the 90-minute lecture route** (notebook 00): §1–§3 — **16 minutes** (the exercises and the appendix are for afterwards); it runs in about a minute on a laptop CPU
# (full mode; trainings are cached, so a re-run is quicker). Lines starting with ✓ are claims checked on every run.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from scoretutor import fast_mode, get_device, pick
from scoretutor.densities import GaussianMixture, gaussian_score, ncsn_mixture
from scoretutor.lecture import plotting as P

# %% slideshow={"slide_type": "skip"}
from scoretutor.lecture.claims import check, check_greater, check_less, check_true
from scoretutor.lecture.exercises.score_matching import check_debugged_dsm, check_dsm
from scoretutor.losses import (
    denoising_score_matching,
    fisher_divergence,
    implicit_score_matching,
    sliced_score_matching,
)
from scoretutor.models import EnergyMLP, ScoreMLP
from scoretutor.training import cache_path, fit

device, gen = get_device(), torch.Generator().manual_seed(0)

# %% slideshow={"slide_type": "skip"}
def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of a list of independent estimates."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return v.mean().item(), (v.std() / math.sqrt(len(v))).item()


def cached(name: str, **settings):
    """Full mode: a checkpoint file keyed by the settings, so a re-run loads the finished training."""
    return None if fast_mode() else cache_path(name, **settings)


# %% slideshow={"slide_type": "skip"}
def ms_per_call(loss, d: int, reps: int = pick(full=5, fast=2)) -> float:
    """Milliseconds per loss + backward for a batch of 64 points in d dimensions."""
    torch.manual_seed(0)
    model_d, xb = ScoreMLP(d, hidden=128, n_layers=2).to(device), torch.randn(64, d, device=device)
    loss(model_d, xb)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        loss(model_d, xb).backward()
    return 1e3 * (time.perf_counter() - t0) / reps


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The Fisher divergence — what we would like to minimise
#
# $$\mathcal{F}(\theta) = \tfrac12\,\mathbb{E}_{p(\mathbf{x})}\big[\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\big]
#   = \tfrac12\int p(\mathbf{x})\,\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\,d\mathbf{x}.$$
#
# > **About the ½.** The deck writes the Fisher divergence without the ½. We put a ½ on every squared norm
# > (as the deck's DSM objective does): the minimiser is the same, and the identities below hold exactly,
# > e.g. Fisher − ISM $=\tfrac12\mathbb{E}\|\nabla\log p\|^2$. Notebooks 03 and 04 use the same convention.

# %% [markdown] slideshow={"slide_type": "fragment"}
# It is zero iff $\mathbf{s}_\theta = \nabla\log p$ wherever $p>0$. Two things to notice:
# * it needs $\nabla_\mathbf{x}\log p$ — the very thing we do not know (we only have samples);
# * errors are **weighted by $p(\mathbf{x})$**: where there is no data, the model is not penalised.
#
# On our analytic toy we *do* know the score, so we can compute $\mathcal{F}$. Below: a deliberately wrong model,
# the score of one broad Gaussian $\mathcal{N}(\mathbf{0}, 30 I)$, and where its error counts.

# %% slideshow={"slide_type": "-"}
mix, lim = ncsn_mixture(dtype=torch.float64), 9
broad = gaussian_score(torch.zeros(2, dtype=torch.float64), 30.0)
err_grid = P.evaluate_on_grid(lambda x: 0.5 * ((broad(x) - mix.score(x)) ** 2).sum(-1), lim, 150)
fig, axes = P.figure_row(3)
P.plot_density(axes[0], mix.log_prob, lim, title="p(x) and its score ∇log p")
P.plot_score_field(axes[0], mix.score, lim, n=17)
P.plot_image(axes[1], np.log10(err_grid + 1e-3), lim, cmap=P.ERROR_CMAP, title="log₁₀ ½‖s − ∇log p‖²")
P.plot_image(axes[2], P.evaluate_on_grid(mix.prob, lim, 150) * err_grid, lim, cmap=P.ERROR_CMAP,
             title="p(x)·½‖s − ∇log p‖² (what F integrates)")
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# The error of the broad model is largest far from the data (middle), but the Fisher divergence only
# "sees" it where $p$ has mass (right). Keep this in mind: notebook 03 shows what it does to sampling.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Denoising score matching: the score of a noisy $p_\sigma$
#
# Perturb each data point, $\tilde{\mathbf{x}} = \mathbf{x} + \sigma\mathbf{z}$ with $\mathbf{z}\sim\mathcal{N}(0,I)$. The perturbation
# kernel $q_\sigma(\tilde{\mathbf{x}}|\mathbf{x}) = \mathcal{N}(\tilde{\mathbf{x}};\mathbf{x},\sigma^2I)$ has a known score,
# $\nabla_{\tilde{\mathbf{x}}}\log q_\sigma(\tilde{\mathbf{x}}|\mathbf{x}) = -(\tilde{\mathbf{x}}-\mathbf{x})/\sigma^2 = -\mathbf{z}/\sigma$. The deck's appendix:
# $$J_\text{DSM}(\theta) = \tfrac12\,\mathbb{E}_{p(\mathbf{x})}\mathbb{E}_{q_\sigma(\tilde{\mathbf{x}}|\mathbf{x})}\big[\|\mathbf{s}_\theta(\tilde{\mathbf{x}}) - \nabla_{\tilde{\mathbf{x}}}\log q_\sigma(\tilde{\mathbf{x}}|\mathbf{x})\|^2\big]
#  = \tfrac12\,\mathbb{E}\big[\|\mathbf{s}_\theta(\mathbf{x}+\sigma\mathbf{z}) + \mathbf{z}/\sigma\|^2\big].$$

# %% [markdown] slideshow={"slide_type": "fragment"}
# It is a regression onto a noisy target, so its minimiser is the conditional mean
# $\mathbb{E}[\nabla\log q_\sigma(\tilde{\mathbf{x}}|\mathbf{x})\mid\tilde{\mathbf{x}}] = \nabla_{\tilde{\mathbf{x}}}\log p_\sigma(\tilde{\mathbf{x}})$, with $p_\sigma = p * \mathcal{N}(0,\sigma^2I)$ — the score of the
# **noisy** data, not of $p$. Equivalently $J_\text{DSM}(\theta) = \mathcal{F}_{p_\sigma}(\theta) + C_\sigma$. Only samples, no derivatives of $\mathbf{s}_\theta$.

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Check** on Gaussian data $\mathcal{N}(\mathbf{m}, cI)$ and Gaussian models $\mathbf{s}_{\mu,\tau}(\mathbf{x}) = -(\mathbf{x}-\mu)/\tau$ ($\tau$ the model's variance):
# the DSM minimum sits at $\tau = c + \sigma^2$ (the variance of $p_\sigma$), the Fisher minimum at $\tau = c$; and
# DSM − $\mathcal{F}_{p_\sigma}$ is the constant $\tfrac d2(1/\sigma^2 - 1/(c+\sigma^2))$.

# %% slideshow={"slide_type": "skip"}
d, c, sigma = 2, 0.5, 0.6
m = torch.tensor([1.0, -1.0], dtype=torch.float64)
data_gauss = GaussianMixture(m[None], math.sqrt(c))
p_sig = data_gauss.perturb(sigma)
B, n = pick(full=30, fast=10), pick(full=2000, fast=1000)
batches = [data_gauss.sample(n, generator=gen) for _ in range(B)]
taus = np.linspace(0.2, 2.5, 24)
dsm_vals, f_vals, fs_vals = [], [], []
for tau in taus:
    model = gaussian_score(m, float(tau))
    dsm_vals.append(mean_se([denoising_score_matching(model, b, sigma, generator=gen).item() for b in batches]))
    f_vals.append(fisher_divergence(model, data_gauss.score, batches[0]).item())
    fs_vals.append(mean_se([fisher_divergence(model, p_sig.score, p_sig.sample(n, generator=gen)).item()
                            for _ in range(B)]))
(dsm_m, dsm_se), (fs_m, fs_se) = np.array(dsm_vals).T, np.array(fs_vals).T

# %% slideshow={"slide_type": "-"}
C_sigma = d / 2 * (1 / sigma**2 - 1 / (c + sigma**2))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
P.plot_mean_se(axes[0], taus, {"DSM_σ(τ)": (dsm_m, dsm_se), "Fisher to p": (f_vals, 0 * taus)},
               xlabel="model variance τ")
axes[0].axvline(c + sigma**2, color="C0", ls="--")  # the variance of p_σ
axes[0].axvline(c, color="C1", ls=":")  # the variance of p
P.plot_mean_se(axes[1], taus, {"DSM − F(p_σ)": (dsm_m - fs_m, np.hypot(dsm_se, fs_se))},
               reference=(C_sigma, "d/2 (1/σ² − 1/(c+σ²))"), xlabel="model variance τ")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
step = taus[1] - taus[0]
check("argmin of DSM = variance of p_σ", taus[np.argmin(dsm_m)], c + sigma**2, 2 * step)
z_dsm = np.abs(dsm_m - fs_m - C_sigma) / np.hypot(dsm_se, fs_se)
check_less("DSM − F(p_σ) = C_σ at every τ: largest deviation in standard errors", z_dsm.max(), 5);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · σ trades bias for variance
#
# Large σ: we learn the score of a blurred $p_\sigma$ (bias). Small σ: the regression target $-\mathbf{z}/\sigma$ has total
# variance $d/\sigma^2$, so the loss and its gradients are very noisy and the fit is poor for a fixed budget.
# We train the same MLP with DSM at several σ and measure its Fisher divergence to the true score of $p$.

# %% slideshow={"slide_type": "-"}
sigmas, n_steps, x_test = [0.03, 0.1, 0.3, 1.0, 3.0], pick(full=2000, fast=250), mix.sample(5000, generator=gen).float()
true_score = lambda x: mix.score(x.double()).float()
errors, bias_only = [], []
for s in sigmas:
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=64, n_layers=2)
    fit(model, lambda mod, x, g, s=s: denoising_score_matching(mod, x, s, generator=g),
        lambda k, g: mix.sample(k, generator=g).float(), n_steps, batch_size=256, lr=2e-3, device=device,
        checkpoint_path=cached("02-dsm-sweep", sigma=s, n_steps=n_steps), progress=False)
    errors.append(fisher_divergence(model.cpu(), true_score, x_test).item())
    bias_only.append(fisher_divergence(lambda x, s=s: mix.perturb(s).score(x.double()).float(), true_score, x_test).item())

# %% slideshow={"slide_type": "-"}
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
ax.loglog(sigmas, errors, "o-", label="learned s_θ: Fisher to true p")
ax.loglog(sigmas, bias_only, "s--", label="bias alone: F(∇log p_σ, ∇log p)")
ax.set(xlabel="σ", ylabel="Fisher divergence (squared score units)")
ax2 = ax.twinx()
ax2.loglog(sigmas, [2 / s**2 for s in sigmas], ":", color="C2")
ax2.set_ylabel("variance of the DSM target, d/σ²", color="C2")
ax.legend(fontsize=8)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
i_best = int(np.argmin(errors))
check_true("the best σ is in the middle (bias on the right, variance on the left)", 0 < i_best < len(sigmas) - 1,
           f"best σ = {sigmas[i_best]}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: implement denoising score matching
#
# Write `my_dsm(score_fn, x, sigma, generator)` returning $\tfrac12\,\mathrm{mean}_n\|\mathbf{s}(\tilde{\mathbf{x}}_n) + (\tilde{\mathbf{x}}_n-\mathbf{x}_n)/\sigma^2\|^2$
# with $\tilde{\mathbf{x}} = \mathbf{x} + \sigma\mathbf{z}$ and `z = torch.randn(x.shape, generator=generator, dtype=x.dtype)`.
# It must work for points $(N,2)$ *and* images $(N,C,H,W)$. Then run the checker. (Solution: the collapsed cell below.)

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_dsm(score_fn, x, sigma, generator):
    raise NotImplementedError  # your code here


check_dsm(my_dsm);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def reference_dsm(score_fn, x, sigma, generator):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    x_noisy = x + sigma * z
    residual = score_fn(x_noisy) + (x_noisy - x) / sigma**2
    return 0.5 * residual.reshape(len(x), -1).pow(2).sum(-1).mean()


check_true("the reference solution passes the checker", check_dsm(reference_dsm))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercise: debug a DSM loss
#
# **Debug.** A colleague's DSM loss is below. It runs, and its training loss goes down, yet the score field their
# network learns on the 2-D mixture is flat — arrows of length ≈ 0 everywhere — and on MNIST batches $(N, 1, 28, 28)$ their
# loss is 28 times smaller than yours. **Before you fix anything**, write down what score a network trained with this
# loss converges to, and why (hint: what is the best regression target given $\tilde{\mathbf{x}}$ alone?). Then find the two
# slips, fix them in place, and run the checker: it names the slips that remain.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_fixed_dsm(score_fn, x, sigma, generator):
    x_noisy = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    residual = score_fn(x_noisy) + z / sigma
    return 0.5 * residual.pow(2).sum(-1).mean()


check_debugged_dsm(my_fixed_dsm);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
# Slip 1: z is drawn twice. The target must use the z that made x̃; with a fresh z′, independent of x̃,
# E[−z′/σ | x̃] = 0, so the minimiser is s ≡ 0 — the flat field. Slip 2: .sum(-1) sums over the last axis only;
# on (N, 1, 28, 28) it sums over 28 pixels and averages over the other N·28, a loss 28 = C·H times too small.
def solution_fixed_dsm(score_fn, x, sigma, generator):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    residual = score_fn(x + sigma * z) + z / sigma
    return 0.5 * residual.reshape(len(x), -1).pow(2).sum(-1).mean()


check_true("the solution passes the checker", check_debugged_dsm(solution_fixed_dsm))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Where this leaves us
#
# DSM learns $\nabla\log p_\sigma$ from samples alone, and a small σ gives $p_\sigma \approx p$. But every score-matching
# objective weights its errors by the data density: the learned score is good where the data are and unconstrained
# elsewhere. **Notebook 03** shows what that does to sampling; **notebook 04** fixes it by adding noise.
#
# ---
# # Appendix (🔍 deep dives): implicit and sliced score matching
#
# The deck's appendix: the Fisher divergence equals, up to a constant, an objective without the unknown score.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## A1 · Implicit score matching: integration by parts removes the unknown
#
# **1-D first.** Expand $\tfrac12(\partial\log p - s)^2 = \tfrac12(\partial\log p)^2 - s\,\partial\log p + \tfrac12 s^2$.
# The first term does not depend on $\theta$; in the cross term $p\,\partial\log p = p'$, so
# $$\mathbb{E}_p[s\,\partial_x\log p] = \int s\,p'\,dx = \big[s\,p\big]_{-\infty}^{\infty} - \int s'\,p\,dx = -\mathbb{E}_p[s'(x)],$$
# assuming $s(x)p(x)\to 0$ at $\pm\infty$.

# %% [markdown] slideshow={"slide_type": "fragment"}
# **d-D.** The same step for each coordinate gives $\mathbb{E}_p[\mathbf{s}^\top\nabla\log p] = -\mathbb{E}_p[\operatorname{tr}(\nabla_\mathbf{x}\mathbf{s}_\theta)]$, so
# $$J_\text{ISM}(\theta) = \mathbb{E}_{p(\mathbf{x})}\Big[\operatorname{tr}\big(\nabla_\mathbf{x}\mathbf{s}_\theta(\mathbf{x})\big) + \tfrac12\|\mathbf{s}_\theta(\mathbf{x})\|_2^2\Big],\qquad \mathcal{F}(\theta) = J_\text{ISM}(\theta) + \tfrac12\mathbb{E}_p\|\nabla\log p\|^2 .$$
# Only samples of $p$ are needed.

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# The integration-by-parts step by quadrature (20001 points on [−12, 12]) for a 1-D mixture and s(x) = 2 tanh x − 0.3x
xs = torch.linspace(-12, 12, 20001, dtype=torch.float64)
f64 = lambda v: torch.tensor(v, dtype=torch.float64)
p1 = GaussianMixture(f64([[-2.0], [1.5]]), f64([0.7, 1.2]), f64([0.4, 0.6]))
px, dlogp, dx = p1.prob(xs[:, None]), p1.score(xs[:, None])[:, 0], (xs[1] - xs[0]).item()
lhs = (px * (2 * torch.tanh(xs) - 0.3 * xs) * dlogp).sum().item() * dx
rhs = -(px * (2 / torch.cosh(xs) ** 2 - 0.3)).sum().item() * dx
check("1-D: E[s·∂log p] = −E[s′] (quadrature)", lhs, rhs, 1e-6);

# %% [markdown] slideshow={"slide_type": "slide"}
# **Fisher − ISM is a constant.** Gaussian models $\mathbf{s}_{\mu,\tau}$ on the Gaussian data of §2 ($\mu = (0.5, 0)$): both objectives
# on the same $B$ batches (standard errors from the spread over batches), against $\tfrac12\mathbb{E}\|\nabla\log p\|^2 = d/(2c)$.

# %% slideshow={"slide_type": "-"}
tau_grid, mu = np.linspace(0.25, 2.0, 8), torch.tensor([0.5, 0.0], dtype=torch.float64)
rows = []
for tau in tau_grid:
    model = gaussian_score(mu, float(tau))
    F = [fisher_divergence(model, data_gauss.score, b).item() for b in batches]
    J = [implicit_score_matching(model, b).item() for b in batches]
    rows.append((mean_se(F), mean_se(J), mean_se(np.subtract(F, J))))
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
series = {label: np.array([r[k] for r in rows]).T for k, label in enumerate(["Fisher F", "ISM J", "F − J"])}
P.plot_mean_se(ax, tau_grid, series, reference=(d / (2 * c), "½E‖∇log p‖² = d/(2c)"), xlabel="model variance τ")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# F − J = ½E‖∇log p‖² only in expectation: per batch it also holds −mean[sᵀ∇log p + tr ∇s], which averages
# to 0 with a θ-dependent spread, hence one standard error per model.
diffs = series["F − J"]
check_less("Gaussian models: largest |F − J − d/(2c)| in standard errors", (np.abs(diffs[0] - d / (2 * c)) / diffs[1]).max(), 5);

# %% [markdown] slideshow={"slide_type": "fragment"}
# The same holds for a neural network, whatever its weights: a small `ScoreMLP` at four points along a DSM
# training run. $\mathcal{F}$ and $J_\text{ISM}$ change a lot, their difference does not.

# %% slideshow={"slide_type": "-"}
torch.manual_seed(1)
net = ScoreMLP(2, hidden=64, n_layers=2).double()
x_eval = [mix.sample(pick(full=2000, fast=1000), generator=gen) for _ in range(B)]
const_b = [0.5 * (mix.score(b) ** 2).sum(-1).mean().item() for b in x_eval]  # ½E‖∇log p‖² per batch
snapshots = []
for stage in range(4):
    F = [fisher_divergence(net, mix.score, b).item() for b in x_eval]
    J = [implicit_score_matching(net, b).item() for b in x_eval]
    D = np.subtract(F, J)
    snapshots.append((np.mean(F), np.mean(J), mean_se(D), mean_se(D - np.array(const_b))))
    fit(net, lambda mod, x, g: denoising_score_matching(mod, x, 0.5, generator=g), mix.sample,
        n_steps=pick(full=150, fast=40), batch_size=256, lr=3e-3, seed=stage, device="cpu", progress=False)
print("   F        J        F − J")
print("\n".join(f"{F_:7.2f}  {J_:7.2f}  {D_[0]:7.3f} ± {D_[1]:.3f}" for F_, J_, D_, _ in snapshots))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# F − J − ½‖∇log p‖² has mean 0 per sample (integration by parts): its per-batch values, paired on the
# same samples, give the standard error (the batches are independent).
z_net = max(abs(R[0]) / R[1] for *_, R in snapshots)
check_less("network snapshots: largest |F − J − ½E‖∇log p‖²| in standard errors", z_net, 5);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## A2 · Sliced score matching: making the trace cheap
#
# $\operatorname{tr}(\nabla_\mathbf{x}\mathbf{s}_\theta)$ needs one backward pass *per dimension* — $d = 784$ for MNIST. For a random $\mathbf{u}$ with
# $\mathbb{E}[\mathbf{u}\mathbf{u}^\top]=I$, $\ \mathbb{E}_\mathbf{u}[\mathbf{u}^\top \nabla\mathbf{s}\,\mathbf{u}] = \operatorname{tr}(\nabla\mathbf{s})$ (Hutchinson), and
# $\mathbf{u}^\top\nabla\mathbf{s}\,\mathbf{u} = \mathbf{u}^\top\nabla(\mathbf{u}^\top\mathbf{s})$ costs **one** backward pass (Song et al. 2019):
# $$J_\text{SSM} = \mathbb{E}_{p}\mathbb{E}_{\mathbf{u}}\big[\mathbf{u}^\top\nabla_\mathbf{x}\mathbf{s}_\theta\,\mathbf{u} + \tfrac12(\mathbf{u}^\top\mathbf{s}_\theta)^2\big],\qquad
#   J_\text{SSM-VR} = \mathbb{E}_{p}\mathbb{E}_{\mathbf{u}}\big[\mathbf{u}^\top\nabla_\mathbf{x}\mathbf{s}_\theta\,\mathbf{u}\big] + \tfrac12\mathbb{E}_p\|\mathbf{s}_\theta\|^2 .$$
# All are unbiased for $J_\text{ISM}$; their spread over probes differs (Rademacher probes: smallest).

# %% slideshow={"slide_type": "-"}
x_d = torch.randn(128, 2, generator=gen, dtype=torch.float64) * 3
estimators = {
    "Hutchinson (Rademacher)": lambda g: implicit_score_matching(net, x_d, "hutchinson", generator=g),
    "Hutchinson (Gaussian)": lambda g: implicit_score_matching(net, x_d, "hutchinson", generator=g, probe="gaussian"),
    "SSM-VR": lambda g: sliced_score_matching(net, x_d, generator=g),
    "SSM": lambda g: sliced_score_matching(net, x_d, variance_reduction=False, generator=g),
}
R = pick(full=400, fast=100)
draws = {name: [est(torch.Generator().manual_seed(k)).item() for k in range(R)] for name, est in estimators.items()}
print(f"exact ISM {implicit_score_matching(net, x_d).item():.3f}; spread (sd) of one estimate over {R} probe draws:")
print("\n".join(f"  {name:24s} {np.std(v):.3f}" for name, v in draws.items()))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
exact = implicit_score_matching(net, x_d).item()
z_est = max(abs(np.mean(v) - exact) / (np.std(v) / math.sqrt(R) + 1e-12) for v in draws.values())
check_less("every probe estimator is unbiased for ISM: largest deviation in standard errors", z_est, 5)
check_less("SSM-VR spreads less than SSM (sd ratio)", np.std(draws["SSM-VR"]) / np.std(draws["SSM"]), 1);

# %% [markdown] slideshow={"slide_type": "slide"}
# **The cost.** Milliseconds per loss + backward for a batch of 64 (the full sweep over $d$ is
# `python benchmarks/bench_losses.py`): the exact trace grows with $d$ (one backward pass per dimension), the sliced
# and denoising objectives barely do.

# %% slideshow={"slide_type": "-"}
costs = {"ISM exact": implicit_score_matching, "SSM-VR": sliced_score_matching,
         "DSM": lambda mo, x: denoising_score_matching(mo, x, 0.1)}
dims = pick(full=[2, 784], fast=[2, 196])
print(f"{'':10s}" + "".join(f"{f'd = {d}':>12s}" for d in dims))
print("\n".join(f"{name:10s}" + "".join(f"{ms_per_call(f, d):10.1f}ms" for d in dims) for name, f in costs.items()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## A3 · All objectives side by side, and an energy model
#
# The same `ScoreMLP` trained on the mixture with ISM (exact trace), SSM-VR and DSM ($\sigma=0.1$), plus an **energy**
# network $f_\theta$ trained with DSM through its score $-\nabla_\mathbf{x}f_\theta$ — an EBM trained without ever touching $Z_\theta$.

# %% slideshow={"slide_type": "-"}
n_train, trained = pick(full=3000, fast=300), {}
objectives = {
    "ISM (exact)": (ScoreMLP, lambda mod, x, g: implicit_score_matching(mod, x)),
    "SSM-VR": (ScoreMLP, lambda mod, x, g: sliced_score_matching(mod, x, generator=g)),
    "DSM σ=0.1": (ScoreMLP, lambda mod, x, g: denoising_score_matching(mod, x, 0.1, generator=g)),
    "EnergyMLP + DSM": (EnergyMLP, lambda mod, x, g: denoising_score_matching(mod.score, x, 0.1, generator=g)),
}
for name, (make, loss) in objectives.items():
    torch.manual_seed(0)
    trained[name] = make(2, 128, 3)
    fit(trained[name], loss, lambda k, g: mix.sample(k, generator=g).float(), n_train, lr=1e-3, device=device,
        progress=False, checkpoint_path=cached("02-objectives", objective=name, n_steps=n_train))
    trained[name].cpu()

# %% slideshow={"slide_type": "-"}
score_of = lambda model: model.score if isinstance(model, EnergyMLP) else model
fig, axes = P.figure_row(5, size=3.0)
P.plot_density(axes[0], mix.log_prob, lim, title="true ∇log p")
P.plot_score_field(axes[0], true_score, lim, n=15)
for ax, (name, model) in zip(axes[1:], trained.items(), strict=True):
    P.plot_density(ax, mix.log_prob, lim, title=name)
    P.plot_score_field(ax, score_of(model), lim, n=15)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# mean error ‖s_θ − ∇log p‖ where the data are (p > 1e-3) and in the empty regions of the box (p < 1e-6)
x_hi = x_test[mix.prob(x_test.double()) > 1e-3]
x_box = torch.rand(5000, 2, generator=gen) * 2 * lim - lim
x_lo = x_box[mix.prob(x_box.double()) < 1e-6]
for name, model in trained.items():
    sf = score_of(model)
    e_hi, e_lo = ((sf(x) - true_score(x)).norm(dim=-1).mean().item() for x in (x_hi, x_lo))
    check_greater(f"{name}: error in the empty regions / error where the data are", e_lo / e_hi, 2)

# %% [markdown] slideshow={"slide_type": "fragment"}
# All four fields are right near the modes and wrong away from them. ISM and SSM-VR are the Fisher divergence to
# $p$ up to a constant; the two DSM fits are the Fisher divergence to $p_\sigma$ ($\sigma = 0.1$) up to a constant. So
# each weights its errors by the data density — $p(\mathbf{x})$, or $p_\sigma(\mathbf{x})$, which for this small σ is
# almost the same. Notebook 03 §5 maps that error against the density.
