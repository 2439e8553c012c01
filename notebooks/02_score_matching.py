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
# # 02 · Score matching: learning $\mathbf{s}_\theta(\mathbf{x}) \approx \nabla_\mathbf{x}\log p(\mathbf{x})$ from data
#
# Notebook 01 ended with a model of the **score**, $\mathbf{s}_\theta(\mathbf{x})$, in which $Z_\theta$ drops out.
# The lecture's question "*how to learn the score function?*" has an obvious answer that we cannot
# compute, and three clever ones that we can:
#
# 1. the **Fisher divergence** — the objective we want, unknown because it needs $\nabla_\mathbf{x}\log p$;
# 2. **implicit score matching** (Hyvärinen 2005) — integration by parts removes the unknown;
# 3. **sliced score matching** (Song et al. 2019) — makes the trace in (2) cheap in high dimension;
# 4. **denoising score matching** (Vincent 2011) — learns the score of a *noisy* $p_\sigma$ instead.
#
# Convention: every objective carries a ½ on the squared norm, so identities hold *exactly*,
# e.g. Fisher − ISM $=\tfrac12\mathbb{E}\|\nabla\log p\|^2$. Every identity below is checked numerically
# (with standard errors), and the notebook asserts it.

# %%
# %matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from scoretutor import get_device, pick
from scoretutor import plotting as P
from scoretutor.densities import GaussianMixture, gaussian_score, ncsn_mixture
from scoretutor.exercises.score_matching import check_dsm
from scoretutor.losses import (
    denoising_score_matching,
    fisher_divergence,
    implicit_score_matching,
    sliced_score_matching,
)
from scoretutor.models import EnergyMLP, ScoreMLP
from scoretutor.training import fit

device = get_device()
gen = torch.Generator().manual_seed(0)
torch.manual_seed(0)
print(f"device: {device}")


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of a list of independent estimates."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return v.mean().item(), (v.std() / math.sqrt(len(v))).item()


# %% [markdown]
# ## 1 · The Fisher divergence — what we would like to minimise
#
# $$\mathcal{F}(\theta) = \tfrac12\,\mathbb{E}_{p(\mathbf{x})}\big[\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\big]
#   = \tfrac12\int p(\mathbf{x})\,\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2\,d\mathbf{x}.$$
#
# It is zero iff $\mathbf{s}_\theta = \nabla\log p$ wherever $p>0$. Two things to notice:
# * it needs $\nabla_\mathbf{x}\log p$ — the very thing we do not know (we only have samples);
# * errors are **weighted by $p(\mathbf{x})$**: where there is no data, the model is not penalised.
#
# On our analytic toy (the NCSN mixture) we *do* know the score, so we can compute $\mathcal{F}$ — and
# use it as the ground truth to test the objectives that follow. Below: a deliberately wrong model,
# the score of a single broad Gaussian $\mathcal{N}(\mathbf{0}, 30 I)$, and where its error counts.

# %%
mix = ncsn_mixture(dtype=torch.float64)
broad = gaussian_score(torch.zeros(2, dtype=torch.float64), 30.0)
x_data = mix.sample(pick(full=20000, fast=4000), generator=gen)
print(f"Fisher divergence of the broad Gaussian: {fisher_divergence(broad, mix.score, x_data).item():.3f}")

lim = 9
err_grid = P.evaluate_on_grid(lambda x: 0.5 * ((broad(x) - mix.score(x)) ** 2).sum(-1), lim, 150)
p_grid = P.evaluate_on_grid(mix.prob, lim, 150)
fig, axes = P.figure_row(3)
P.plot_density(axes[0], mix.log_prob, lim, title="p(x) and its score ∇log p")
P.plot_score_field(axes[0], mix.score, lim, n=17)
P.plot_image(axes[1], np.log10(err_grid + 1e-3), lim, cmap=P.ERROR_CMAP, title="log₁₀ ½‖s − ∇log p‖² (broad model)")
P.plot_image(axes[2], p_grid * err_grid, lim, cmap=P.ERROR_CMAP, title="p(x)·½‖s − ∇log p‖² (what F integrates)")
plt.show()

# %% [markdown]
# The error of the broad model is largest far from the data (middle), but the Fisher divergence only
# "sees" it where $p$ has mass (right). Keep this in mind — it comes back at the end.
#
# ## 2 · Implicit score matching: integration by parts removes the unknown
#
# **1-D first.** Expand the square: $\tfrac12(\partial\log p - s)^2 = \tfrac12(\partial\log p)^2 - s\,\partial\log p + \tfrac12 s^2$.
# The first term does not depend on $\theta$. The cross term contains the unknown, but $p\,\partial\log p = p'$, so
# $$\mathbb{E}_p[s\,\partial_x\log p] = \int s(x)\,p'(x)\,dx = \big[s\,p\big]_{-\infty}^{\infty} - \int s'(x)\,p(x)\,dx = -\mathbb{E}_p[s'(x)],$$
# assuming $s(x)p(x)\to 0$ at $\pm\infty$. Hence
# $$\mathcal{F}(\theta) = \underbrace{\mathbb{E}_p\big[s_\theta'(x) + \tfrac12 s_\theta(x)^2\big]}_{J_\text{ISM}(\theta)} + \underbrace{\tfrac12\mathbb{E}_p[(\partial_x\log p)^2]}_{\text{const}}.$$
#
# **d-D.** Apply the same step to each coordinate $i$ (integrate over $x_i$, the others fixed):
# $\mathbb{E}_p[\mathbf{s}^\top\nabla\log p] = -\mathbb{E}_p[\sum_i \partial_i s_i] = -\mathbb{E}_p[\operatorname{tr}(\nabla_\mathbf{x}\mathbf{s}_\theta)]$, so
# $$J_\text{ISM}(\theta) = \mathbb{E}_{p(\mathbf{x})}\Big[\operatorname{tr}\big(\nabla_\mathbf{x}\mathbf{s}_\theta(\mathbf{x})\big) + \tfrac12\|\mathbf{s}_\theta(\mathbf{x})\|_2^2\Big],\qquad \mathcal{F}(\theta) = J_\text{ISM}(\theta) + \tfrac12\mathbb{E}_p\|\nabla\log p\|^2 .$$
# Only samples of $p$ are needed. First a 1-D sanity check of the integration-by-parts step itself, by quadrature:

# %%
xs = torch.linspace(-12, 12, 20001, dtype=torch.float64)
p1 = GaussianMixture(torch.tensor([[-2.0], [1.5]], dtype=torch.float64), torch.tensor([0.7, 1.2], dtype=torch.float64),
                     torch.tensor([0.4, 0.6], dtype=torch.float64))
px, dlogp = p1.prob(xs[:, None]), p1.score(xs[:, None])[:, 0]
s_fn = lambda x: torch.tanh(x) * 2 - 0.3 * x            # any smooth test function s(x)
ds_fn = lambda x: 2 / torch.cosh(x) ** 2 - 0.3           # its derivative
dx = (xs[1] - xs[0]).item()
lhs = (px * s_fn(xs) * dlogp).sum().item() * dx
rhs = -(px * ds_fn(xs)).sum().item() * dx
print(f"E[s·∂log p] = {lhs:.6f}    −E[s'] = {rhs:.6f}")
assert abs(lhs - rhs) < 1e-6

# %% [markdown]
# **Fisher − ISM is a constant.** A family of Gaussian score models $\mathbf{s}_{\mu,v}(\mathbf{x}) = -(\mathbf{x}-\mu)/v$ on
# Gaussian data $\mathcal{N}(\mathbf{m}, cI)$ in $d=2$: we estimate both objectives on the same batches
# (B independent batches give the standard errors) and compare with the closed forms
# $\mathcal{F} = \tfrac12[d(1/\sqrt c-\sqrt c/v)^2 + \|\mathbf{m}-\mu\|^2/v^2]$ and const $= d/(2c)$.

# %%
d, c = 2, 0.5
m = torch.tensor([1.0, -1.0], dtype=torch.float64)
data_gauss = GaussianMixture(m[None], math.sqrt(c))
vs = np.linspace(0.25, 2.0, 8)
B, n = pick(full=30, fast=10), pick(full=2000, fast=1000)
batches = [data_gauss.sample(n, generator=gen) for _ in range(B)]
rows = []
for v in vs:
    model = gaussian_score(torch.tensor([0.5, 0.0], dtype=torch.float64), float(v))
    F = [fisher_divergence(model, data_gauss.score, b).item() for b in batches]
    J = [implicit_score_matching(model, b).item() for b in batches]
    rows.append((mean_se(F), mean_se(J), mean_se(np.subtract(F, J))))
const = d / (2 * c)
fig, ax = plt.subplots(figsize=(6, 3.6))
for k, label in enumerate(["Fisher F(θ)", "ISM J(θ)", "F − J"]):
    mu_, se_ = np.array([r[k] for r in rows]).T
    ax.errorbar(vs, mu_, yerr=2 * se_, marker="o", capsize=3, label=label)
ax.axhline(const, color="k", ls=":", label="½E‖∇log p‖² = d/(2c)")
ax.set_xlabel("model variance v")
ax.set_ylabel("objective")
ax.legend()
plt.show()
diffs = np.array([r[2] for r in rows])
print("F − J per model:", np.round(diffs[:, 0], 4), "± 2SE", np.round(2 * diffs[:, 1], 4), f"  const = {const}")
# F − J equals ½E‖∇log p‖² only in expectation: per batch it also contains −mean[sᵀ∇log p + tr ∇s],
# which averages to 0 but has a θ-dependent spread (hence a separate standard error per model).
assert np.all(np.abs(diffs[:, 0] - const) < 5 * diffs[:, 1] + 1e-9)

# %% [markdown]
# The same holds for a neural network, whatever its weights. Below, a small `ScoreMLP` at several
# points along a DSM training run (very different parameters): $\mathcal{F}$ and $J_\text{ISM}$ change a lot, their
# difference does not.

# %%
torch.manual_seed(1)
net = ScoreMLP(2, hidden=64, n_layers=2).double()
dsm_loss = lambda model, x, g: denoising_score_matching(model, x, 0.5, generator=g)
x_eval = [mix.sample(pick(full=2000, fast=1000), generator=gen) for _ in range(B)]
snapshots = []
for stage in range(4):
    F = [fisher_divergence(net, mix.score, b).item() for b in x_eval]
    J = [implicit_score_matching(net, b).item() for b in x_eval]
    snapshots.append((mean_se(F), mean_se(J), mean_se(np.subtract(F, J))))
    fit(net, dsm_loss, mix.sample, n_steps=pick(full=150, fast=40), batch_size=256, lr=3e-3, seed=stage,
        device="cpu")
const_mix = mean_se([0.5 * (mix.score(b) ** 2).sum(-1).mean().item() for b in x_eval])
for i, (F_, J_, D_) in enumerate(snapshots):
    print(f"snapshot {i}: F = {F_[0]:8.3f}   J = {J_[0]:8.3f}   F − J = {D_[0]:.3f} ± {D_[1]:.3f}")
print(f"½E‖∇log p‖² = {const_mix[0]:.3f} ± {const_mix[1]:.3f}")
for _, _, D_ in snapshots:
    assert abs(D_[0] - const_mix[0]) < 5 * math.hypot(D_[1], const_mix[1])

# %% [markdown]
# ## 3 · Denoising score matching: the score of a noisy $p_\sigma$
#
# Perturb each data point, $\tilde{\mathbf{x}} = \mathbf{x} + \sigma\mathbf{z}$ with $\mathbf{z}\sim\mathcal{N}(0,I)$; the perturbation
# kernel $q_\sigma(\tilde{\mathbf{x}}|\mathbf{x}) = \mathcal{N}(\tilde{\mathbf{x}};\mathbf{x},\sigma^2I)$ has a known score
# $\nabla_{\tilde{\mathbf{x}}}\log q_\sigma(\tilde{\mathbf{x}}|\mathbf{x}) = -(\tilde{\mathbf{x}}-\mathbf{x})/\sigma^2 = -\mathbf{z}/\sigma$. The lecture's appendix:
# $$J_\text{DSM}(\theta) = \tfrac12\,\mathbb{E}_{p(\mathbf{x})}\mathbb{E}_{q_\sigma(\tilde{\mathbf{x}}|\mathbf{x})}\big[\|\mathbf{s}_\theta(\tilde{\mathbf{x}}) - \nabla_{\tilde{\mathbf{x}}}\log q_\sigma(\tilde{\mathbf{x}}|\mathbf{x})\|^2\big]
#  = \tfrac12\,\mathbb{E}\big[\|\mathbf{s}_\theta(\mathbf{x}+\sigma\mathbf{z}) + \mathbf{z}/\sigma\|^2\big].$$
# It is a regression onto a noisy target, so its minimiser is the conditional mean
# $\mathbb{E}[\nabla\log q_\sigma(\tilde{\mathbf{x}}|\mathbf{x})\mid\tilde{\mathbf{x}}] = \nabla_{\tilde{\mathbf{x}}}\log p_\sigma(\tilde{\mathbf{x}})$ with $p_\sigma = p * \mathcal{N}(0,\sigma^2I)$ — the score of the
# **noisy** data, not of $p$. Equivalently $J_\text{DSM}(\theta) = \mathcal{F}_{p_\sigma}(\theta) + C_\sigma$. No derivatives of $\mathbf{s}_\theta$ needed!
#
# Check on the Gaussian family: the DSM minimum sits at $v = c + \sigma^2$ (the variance of $p_\sigma$), the Fisher minimum at $v=c$;
# and DSM − $\mathcal{F}_{p_\sigma}$ is the constant $\tfrac d2(1/\sigma^2 - 1/(c+\sigma^2))$.

# %%
sigma = 0.6
p_sig = data_gauss.perturb(sigma)
vs_fine = np.linspace(0.2, 2.5, 24)
dsm_vals, f_vals, fs_vals = [], [], []
for v in vs_fine:
    model = gaussian_score(m, float(v))
    dsm_vals.append(mean_se([denoising_score_matching(model, b, sigma, generator=gen).item() for b in batches]))
    f_vals.append(fisher_divergence(model, data_gauss.score, batches[0]).item())
    fs_vals.append(mean_se([fisher_divergence(model, p_sig.score, p_sig.sample(n, generator=gen)).item()
                            for _ in range(B)]))
dsm_m, dsm_se = np.array(dsm_vals).T
fs_m, fs_se = np.array(fs_vals).T
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
axes[0].errorbar(vs_fine, dsm_m, yerr=2 * dsm_se, label="DSM$_σ$(v)")
axes[0].plot(vs_fine, f_vals, label="Fisher to p")
axes[0].axvline(c, color="C1", ls=":", label="v = c (score of p)")
axes[0].axvline(c + sigma**2, color="C0", ls="--", label="v = c + σ² (score of p_σ)")
axes[0].set_xlabel("model variance v")
axes[0].legend(fontsize=8)
C_sigma = d / 2 * (1 / sigma**2 - 1 / (c + sigma**2))
axes[1].errorbar(vs_fine, dsm_m - fs_m, yerr=2 * np.hypot(dsm_se, fs_se), marker=".", label="DSM − F(p_σ)")
axes[1].axhline(C_sigma, color="k", ls=":", label="d/2 (1/σ² − 1/(c+σ²))")
axes[1].set_xlabel("model variance v")
axes[1].legend(fontsize=8)
plt.show()
v_best = vs_fine[np.argmin(dsm_m)]
print(f"argmin DSM ≈ {v_best:.2f} (grid step {vs_fine[1] - vs_fine[0]:.2f});  c + σ² = {c + sigma**2:.2f};  c = {c}")
assert abs(v_best - (c + sigma**2)) <= 2 * (vs_fine[1] - vs_fine[0])
assert np.all(np.abs(dsm_m - fs_m - C_sigma) < 5 * np.hypot(dsm_se, fs_se))

# %% [markdown]
# **σ trades bias for variance.** Large σ: we learn the score of a blurred $p_\sigma$ (bias). Small σ: the
# regression target $-\mathbf{z}/\sigma$ has variance $d/\sigma^2$, so the loss and its gradients are very noisy and the
# fit is poor for a fixed budget. We train the same MLP with DSM at several σ and measure the error to the true score of $p$.

# %%
sigmas = [0.03, 0.1, 0.3, 1.0, 3.0]
n_steps_sigma = pick(full=2000, fast=250)
x_test = mix.sample(5000, generator=gen).float()
errors, bias_only, target_sd = [], [], []
for s in sigmas:
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=64, n_layers=2)
    fit(model, lambda mod, x, g, s=s: denoising_score_matching(mod, x, s, generator=g),
        lambda k, g: mix.sample(k, generator=g).float(), n_steps_sigma, batch_size=256, lr=2e-3, device=device)
    model.cpu()
    with torch.no_grad():
        errors.append(fisher_divergence(model, lambda x: mix.score(x.double()).float(), x_test).item())
    bias_only.append(fisher_divergence(lambda x, s=s: mix.perturb(s).score(x.double()).float(),
                                       lambda x: mix.score(x.double()).float(), x_test).item())
    target_sd.append(math.sqrt(2) / s)  # RMS size of the target z/σ is √d/σ (total variance d/σ²)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.loglog(sigmas, errors, "o-", label="learned s_θ: Fisher to true p")
ax.loglog(sigmas, bias_only, "s--", label="bias alone: F(∇log p_σ, ∇log p)")
ax.loglog(sigmas, target_sd, ":", label="target noise scale √d/σ")
ax.set_xlabel("σ")
ax.legend(fontsize=8)
plt.show()
for s, e, b in zip(sigmas, errors, bias_only, strict=True):
    print(f"σ = {s:5.2f}:  error {e:8.4f}   (bias alone {b:.4f})")
i_best = int(np.argmin(errors))
assert 0 < i_best < len(sigmas) - 1, "the best σ should be in the middle: bias right, variance left"

# %% [markdown]
# ## 4 · Sliced score matching: making the trace cheap
#
# $\operatorname{tr}(\nabla_\mathbf{x}\mathbf{s}_\theta)$ needs one backward pass *per dimension* — $d = 784$ passes for MNIST. Random projections fix this:
# for any random $\mathbf{v}$ with $\mathbb{E}[\mathbf{v}\mathbf{v}^\top]=I$, $\ \mathbb{E}_\mathbf{v}[\mathbf{v}^\top \nabla\mathbf{s}\,\mathbf{v}] = \operatorname{tr}(\nabla\mathbf{s})$ (Hutchinson), and
# $\mathbf{v}^\top\nabla\mathbf{s}\,\mathbf{v} = \mathbf{v}^\top\nabla(\mathbf{v}^\top\mathbf{s})$ costs **one** backward pass. Sliced score matching (Song et al. 2019):
# $$J_\text{SSM} = \mathbb{E}_{p}\mathbb{E}_{\mathbf{v}}\big[\mathbf{v}^\top\nabla_\mathbf{x}\mathbf{s}_\theta\,\mathbf{v} + \tfrac12(\mathbf{v}^\top\mathbf{s}_\theta)^2\big],\qquad
#   J_\text{SSM-VR} = \mathbb{E}_{p}\mathbb{E}_{\mathbf{v}}\big[\mathbf{v}^\top\nabla_\mathbf{x}\mathbf{s}_\theta\,\mathbf{v}\big] + \tfrac12\mathbb{E}_p\|\mathbf{s}_\theta\|^2 .$$
# All are unbiased for $J_\text{ISM}$. First their spread (over probes, same data), then the cost versus $d$.
# (SSM-VR with Gaussian probes *is* Hutchinson-with-Gaussian-probes ISM: on the same probes they agree to the last digit below.
# Rademacher probes have the smallest variance; plain SSM pays for the noisy $(\mathbf{v}^\top\mathbf{s})^2$ term.)

# %%
torch.manual_seed(0)
x_d = torch.randn(128, 2, generator=gen, dtype=torch.float64) * 3
exact = implicit_score_matching(net, x_d).item()
estimators = {
    "Hutchinson (Rademacher)": lambda g: implicit_score_matching(net, x_d, "hutchinson", generator=g),
    "Hutchinson (Gaussian)": lambda g: implicit_score_matching(net, x_d, "hutchinson", generator=g, probe="gaussian"),
    "SSM-VR": lambda g: sliced_score_matching(net, x_d, generator=g),
    "SSM": lambda g: sliced_score_matching(net, x_d, variance_reduction=False, generator=g),
}
R = pick(full=400, fast=100)
spread = {}
for name, est in estimators.items():
    vals = [est(torch.Generator().manual_seed(k)).item() for k in range(R)]
    spread[name] = (np.mean(vals), np.std(vals), math.sqrt(R))
    print(f"{name:25s} mean {np.mean(vals):9.4f} ± {np.std(vals) / math.sqrt(R):.4f}   sd per draw {np.std(vals):.4f}")
print(f"{'exact ISM':25s} {exact:9.4f}")
for mu_, sd_, r in spread.values():
    assert abs(mu_ - exact) < 5 * sd_ / r + 1e-12
assert spread["SSM-VR"][1] < spread["SSM"][1]

# %%
dims = pick(full=[2, 8, 32, 128, 392, 784], fast=[2, 16, 64, 196])
reps = pick(full=5, fast=2)


def time_loss(loss, model, x) -> float:
    loss(model, x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        loss(model, x).backward()
    return (time.perf_counter() - t0) / reps


timings = {k: [] for k in ["ISM exact", "ISM Hutchinson", "SSM-VR", "DSM"]}
for dd in dims:
    torch.manual_seed(0)
    model_d = ScoreMLP(dd, hidden=128, n_layers=2).to(device)
    xb = torch.randn(64, dd, device=device)
    timings["ISM exact"].append(time_loss(lambda mo, x: implicit_score_matching(mo, x), model_d, xb))
    timings["ISM Hutchinson"].append(time_loss(lambda mo, x: implicit_score_matching(mo, x, "hutchinson"), model_d, xb))
    timings["SSM-VR"].append(time_loss(lambda mo, x: sliced_score_matching(mo, x), model_d, xb))
    timings["DSM"].append(time_loss(lambda mo, x: denoising_score_matching(mo, x, 0.1), model_d, xb))
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, ts in timings.items():
    ax.loglog(dims, np.array(ts) * 1e3, "o-", label=name)
ax.set_xlabel("dimension d")
ax.set_ylabel("ms per loss + backward")
ax.legend(fontsize=8)
plt.show()
print("d:", dims)
for name, ts in timings.items():
    print(f"{name:15s}", " ".join(f"{t * 1e3:8.2f}" for t in ts), "ms")
ratio = timings["ISM exact"][-1] / timings["ISM exact"][0]
assert ratio > 5 * timings["SSM-VR"][-1] / timings["SSM-VR"][0], "exact trace must scale worse than sliced"

# %% [markdown]
# ## 5 · Three objectives, two model types, and where they all fail
#
# The same `ScoreMLP` trained on the NCSN mixture with ISM (exact trace), SSM-VR and DSM ($\sigma=0.1$), plus an
# **energy** network $f_\theta$ trained with DSM through its score $-\nabla_\mathbf{x}f_\theta$ (an EBM trained without ever touching $Z_\theta$).

# %%
n_train = pick(full=3000, fast=300)
sample_fn = lambda k, g: mix.sample(k, generator=g).float()
objectives = {
    "ISM (exact)": (lambda: ScoreMLP(2, 128, 3), lambda mod, x, g: implicit_score_matching(mod, x)),
    "SSM-VR": (lambda: ScoreMLP(2, 128, 3), lambda mod, x, g: sliced_score_matching(mod, x, generator=g)),
    "DSM σ=0.1": (lambda: ScoreMLP(2, 128, 3), lambda mod, x, g: denoising_score_matching(mod, x, 0.1, generator=g)),
    "EnergyMLP + DSM": (lambda: EnergyMLP(2, 128, 3),
                        lambda mod, x, g: denoising_score_matching(mod.score, x, 0.1, generator=g)),
}
trained, histories = {}, {}
for name, (make, loss) in objectives.items():
    torch.manual_seed(0)
    model = make()
    t0 = time.perf_counter()
    histories[name] = fit(model, loss, sample_fn, n_train, batch_size=256, lr=1e-3, device=device, desc=name)
    trained[name] = model.cpu()
    print(f"{name:18s} {time.perf_counter() - t0:5.1f} s, final loss {np.mean(histories[name][-50:]):.3f}")


def score_of(model):
    return model.score if isinstance(model, EnergyMLP) else model


true_score = lambda x: mix.score(x.double()).float()
fig, axes = P.figure_row(5, size=3.0)
P.plot_density(axes[0], mix.log_prob, lim, title="true ∇log p")
P.plot_score_field(axes[0], true_score, lim, n=15)
for ax, (name, model) in zip(axes[1:], trained.items(), strict=True):
    P.plot_density(ax, mix.log_prob, lim, title=name)
    P.plot_score_field(ax, score_of(model), lim, n=15)
plt.show()

# %% [markdown]
# Near the two modes all four fields point the right way. Now the error map
# $\|\mathbf{s}_\theta(\mathbf{x}) - \nabla\log p(\mathbf{x})\|$ with the data density's contours on top:

# %%
X, Y, _ = P.grid(lim, 120)
fig, axes = P.figure_row(4, size=3.2)
high = mix.prob(x_test.double()) > 1e-3
x_low = torch.rand(5000, 2, generator=gen) * 2 * lim - lim
low = mix.prob(x_low.double()) < 1e-6
for ax, (name, model) in zip(axes, trained.items(), strict=True):
    sf = score_of(model)
    err = P.evaluate_on_grid(lambda x, sf=sf: (sf(x.float()) - true_score(x)).norm(dim=-1), lim, 120)
    P.plot_image(ax, np.log10(err + 1e-3), lim, cmap=P.ERROR_CMAP, title=f"log₁₀ error: {name}", vmin=-1.5, vmax=1.5)
    ax.contour(X, Y, P.evaluate_on_grid(mix.prob, lim, 120), levels=[1e-4, 1e-2], colors="w", linewidths=0.8)
    with torch.no_grad():
        e_hi = (sf(x_test[high]) - true_score(x_test[high])).norm(dim=-1).mean().item()
        e_lo = (sf(x_low[low]) - true_score(x_low[low])).norm(dim=-1).mean().item()
    rel_hi = e_hi / true_score(x_test[high]).norm(dim=-1).mean().item()
    print(f"{name:18s} mean error where p > 1e-3: {e_hi:6.3f}   where p < 1e-6: {e_lo:6.3f}")
    assert e_lo > 2 * e_hi, name
plt.show()

# %% [markdown]
# The learned scores are accurate where the data live (inside the white contours) and wrong — sometimes
# pointing the wrong way — in the low-density regions between and around the modes. That is exactly what
# the Fisher divergence's weighting by $p(\mathbf{x})$ predicts: no data there, no penalty. Langevin dynamics
# starts in these regions, so **notebook 03** shows the consequences, and how adding noise fixes them.
#
# ## 6 · Exercise: implement denoising score matching
#
# Write `my_dsm(score_fn, x, sigma, generator)` returning $\tfrac12\,\mathrm{mean}_n\|\mathbf{s}(\tilde{\mathbf{x}}_n) + (\tilde{\mathbf{x}}_n-\mathbf{x}_n)/\sigma^2\|^2$
# with $\tilde{\mathbf{x}} = \mathbf{x} + \sigma\mathbf{z}$ and `z = torch.randn(x.shape, generator=generator, dtype=x.dtype)`.
# It must work for points $(N,2)$ *and* images $(N,C,H,W)$. Then run the checker.

# %%
def my_dsm(score_fn, x, sigma, generator):
    raise NotImplementedError  # your code here


check_dsm(my_dsm);

# %% [markdown]
# <details><summary>Reference solution (open after trying)</summary>
#
# The next cell is the solution; the checker confirms it.
# </details>

# %%
def reference_dsm(score_fn, x, sigma, generator):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    x_noisy = x + sigma * z
    residual = score_fn(x_noisy) + (x_noisy - x) / sigma**2
    return 0.5 * residual.reshape(len(x), -1).pow(2).sum(-1).mean()


assert check_dsm(reference_dsm)
