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
# # 04 · Noise to the rescue: noise-conditional score models and annealed Langevin
#
# Notebook 03 ended with two failures of "score matching + Langevin" on the mixture
# $p = \tfrac15\mathcal{N}((-5,-5), I) + \tfrac45\mathcal{N}((5,5), I)$: the learned score is poor in
# **low-density regions**, and Langevin dynamics **cannot recover the mode weights**. The fix of Song & Ermon (2019)
# is to *add noise*:
#
# 1. perturbed densities $p_{\sigma}$: too much noise, no signal; too little, poor coverage;
# 2. many noise levels $\sigma_1 < \dots < \sigma_L$ and one **noise-conditional score model** $\mathbf{s}_\theta(\mathbf{x}, i)$;
# 3. training it; 4. **annealed Langevin dynamics**, which fixes the mode weights (Song & Ermon's Fig. 3);
# 5. an explorer, a debugging exercise and a recap. 🔍 Deep dives: data on a curve (the manifold hypothesis), the final
#    denoising step, the NCSNv2 rules, the rings.
#
# **On the 90-minute lecture route** (notebook 00): §1–§4, the explorer §5 (live) and the recap — **23 minutes**; the notebook runs in about a
# minute on a laptop CPU (full mode; the main training is cached, so a re-run is quicker).

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch

from scoretutor import fast_mode, pick, schedules
from scoretutor.densities import UniformCircle, ncsn_mixture, rings
from scoretutor.lecture import plotting as P
from scoretutor.lecture.claims import check, check_greater, check_less, check_true
from scoretutor.lecture.exercises.annealing import check_annealed_langevin
from scoretutor.lecture.widgets.annealing import AnnealingExplorer, NoiseTradeoffExplorer

# %% slideshow={"slide_type": "skip"}
from scoretutor.losses import implicit_score_matching, ncsn_loss
from scoretutor.metrics import mode_fractions, sliced_wasserstein
from scoretutor.models import NoiseConditionalScoreMLP
from scoretutor.sampling import annealed_langevin, langevin
from scoretutor.training import cache_path, fit

gen = torch.Generator().manual_seed(0)
seeded = lambda seed: torch.Generator().manual_seed(seed)
langevin = partial(langevin, progress=False)  # no progress bar per sampler call
annealed_langevin = partial(annealed_langevin, progress=False)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Perturbing the data with noise
#
# Adding Gaussian noise of scale $\sigma$ to every data point turns $p$ into
# $$p_{\sigma}(\mathbf{x}) = \int p(\mathbf{y})\, \mathcal{N}(\mathbf{x}; \mathbf{y}, \sigma^2 I)\, d\mathbf{y}.$$
# Sampling it is trivial: draw $\mathbf{x} \sim p$ and return $\mathbf{x} + \sigma\mathbf{z}$ with $\mathbf{z} \sim \mathcal{N}(0, I)$.
# For a Gaussian mixture the integral is exact: $p_\sigma = \sum_k w_k \mathcal{N}(\boldsymbol\mu_k, \Sigma_k + \sigma^2 I)$
# (`GaussianMixture.perturb`, checked against a Monte Carlo estimate of the integral below).

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
mix, mix64 = ncsn_mixture(), ncsn_mixture(dtype=torch.float64)
x_check = torch.tensor([[-5.0, -5.0], [-3.5, -6.0], [5.0, 4.0], [6.0, 6.5]], dtype=torch.float64)
y = mix64.sample(200_000, generator=gen)
z_max = 0.0
for sigma in (0.5, 2.0, 8.0):  # p_σ(x) = E_{y∼p} N(x; y, σ²I), by Monte Carlo with its standard error
    kernel = torch.exp(-((x_check[:, None] - y[None]) ** 2).sum(-1) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    closed = mix64.perturb(sigma).log_prob(x_check).exp()
    z_max = max(z_max, ((kernel.mean(1) - closed) / (kernel.std(1) / math.sqrt(len(y)))).abs().max().item())
check_less("closed-form p_σ = Monte Carlo integral: largest deviation in standard errors", z_max, 4.5);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Deep dive: data on a curve have no score — the manifold hypothesis
#
# Real data are thought to concentrate near a low-dimensional set (the **manifold hypothesis**, Song & Ermon 2019, §3.1).
# Take the extreme in 2-D: points uniform on the unit circle (`UniformCircle`). This distribution has no density in the
# plane, so $\nabla_\mathbf{x}\log p$ is undefined everywhere, on the circle and off it. The perturbed $p_\sigma$ has one: with
# $r = \|\mathbf{x}\|$ the integral over the angle is a Bessel function,
# $p_\sigma(\mathbf{x}) = e^{-(r^2+R^2)/(2\sigma^2)}\,I_0(rR/\sigma^2)/(2\pi\sigma^2)$ (`NoisyCircle`, tested against quadrature over the angle),
# and its score points back to the circle with magnitude ≈ distance/σ²:
# $-\sigma^2\nabla_\mathbf{x}\log p_\sigma(\mathbf{x}) \to \mathbf{x} - \mathrm{proj}(\mathbf{x})$ as $\sigma \to 0$.

# %% slideshow={"slide_type": "-"}
circle = UniformCircle(1.0)
fig, axes = P.figure_row(3, size=3.3)
for ax, s in zip(axes, (0.3, 0.1), strict=False):
    P.plot_density(ax, circle.perturb(s).log_prob, 2.0, title=f"p_σ and its score, σ = {s}")
    P.plot_score_field(ax, circle.perturb(s).score, 2.0, n=15)
d = torch.logspace(-2, 0, 60, dtype=torch.float64)
ray = torch.stack([1 + d, 0 * d], -1)  # outside the circle, at distance d from it
for s in (0.3, 0.1, 0.03):
    (line,) = axes[2].loglog(d, circle.perturb(s).score(ray).norm(dim=-1), label=f"σ = {s}")
    axes[2].loglog(d, d / s**2, ":", color=line.get_color())
axes[2].set(xlabel="distance to the circle", title="‖∇log p_σ‖ (dotted: distance/σ²)")
axes[2].legend()
plt.show()

# %% [markdown] slideshow={"slide_type": "fragment"}
# The smaller σ, the steeper the field; at σ = 0 it is infinite off the circle. (Close to the circle the norm levels off
# at $1/(2R) = \tfrac12$: the ridge of $p_\sigma$ lies $\sigma^2/(2R)$ inside the circle, because the circle curves.)
# What does score matching make of the circle's points themselves? Take the field $\mathbf{s}_c(\mathbf{x}) = -c\,(\mathbf{x} - \mathrm{proj}(\mathbf{x}))$,
# which pulls towards the circle with strength $c$, and evaluate the implicit score-matching objective
# $J = \mathbb{E}[\operatorname{tr}\nabla_\mathbf{x}\mathbf{s}_c + \tfrac12\|\mathbf{s}_c\|^2]$ (notebook 02; the trace by autograd) on the data, without and with noise:

# %% slideshow={"slide_type": "-"}
pull = lambda c: lambda x: -c * (x - circle.project(x))
c_grid, g_circle = np.linspace(0, 150, 31), seeded(5)
data = {"σ = 0 (on the circle)": circle.sample(2000, generator=g_circle, dtype=torch.float64)}
data |= {f"σ = {s}": circle.perturb(s).sample(2000, generator=g_circle, dtype=torch.float64) for s in (0.3, 0.1)}
objective = {k: np.array([implicit_score_matching(pull(c), x).item() for c in c_grid]) for k, x in data.items()}
fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
for name, J in objective.items():
    ax.plot(c_grid, J, label=name)
ax.plot([1 / 0.3**2, 1 / 0.1**2], [-0.5 / 0.3**2, -0.5 / 0.1**2], "k+", ms=10, label="c = 1/σ², J = −c/2")
ax.set(xlabel="strength c of the pull", ylabel="J(c) = E[tr ∇s_c + ½‖s_c‖²]", ylim=(-160, 60))
ax.legend()
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
x_near = circle.perturb(0.05).sample(2000, generator=seeded(6), dtype=torch.float64)
residual = -(0.05**2) * circle.perturb(0.05).score(x_near) - (x_near - circle.project(x_near))
check_less("σ = 0.05, samples of p_σ: max ‖−σ²∇log p_σ(x) − (x − proj x)‖", residual.norm(dim=-1).max(), 0.002)
check_less("σ = 0 (data on the circle): max |J(c) + c| over c", np.abs(objective["σ = 0 (on the circle)"] + c_grid).max(), 1e-9)
for s in (0.3, 0.1):
    a2, a1, _ = np.polyfit(c_grid, objective[f"σ = {s}"], 2)  # J is quadratic in c
    check(f"σ = {s}: the minimiser of J(c), times σ²", -a1 / (2 * a2) * s**2, 1.0, 0.1)

# %% [markdown] slideshow={"slide_type": "fragment"}
# On the circle $\mathbf{s}_c$ vanishes and its divergence is $-c$, so $J(c) = -c$: the steeper the pull, the lower the loss,
# **and no minimum**. Score matching on data on a curve has no consistent target: it pushes a network towards ever steeper
# fields, and what the network ends up with off the curve is not fixed by the data. On noisy data $J(c) \approx -c + \tfrac12 c^2\sigma^2$, smallest at $c \approx 1/\sigma^2$, the strength
# of $p_\sigma$'s score near the curve: noise makes the score, and its estimate, well defined everywhere. Images are the
# high-dimensional case: a 28 × 28 digit has 784 coordinates but far fewer degrees of freedom.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### The trade-off: how much noise?
#
# Train a score model at a **single** noise level σ by denoising score matching. It only sees noisy points
# $\tilde{\mathbf{x}} \sim p_\sigma$, so it minimises the Fisher divergence $\tfrac12\mathbb{E}_{p_\sigma}\|\mathbf{s}_\theta - \nabla \log p_\sigma\|^2$
# (notebook 02's ½) — an error **weighted by $p_\sigma$**. The explorer shows, per σ, $p_\sigma$ with its score, the unweighted
# error, and the error weighted by $p_\sigma$ (in units of $\mathbb{E}_{p_\sigma}\|\nabla \log p_\sigma\|^2$, so different σ compare fairly).
#
# * **Too little noise**: $p_\sigma \approx p$, but the model is accurate only near the modes; in between, where
#   Langevin has to travel, its error is huge.
# * **Too much noise**: accurate everywhere, but $p_\sigma$ is one broad blob — the structure of the data is gone.

# %% slideshow={"slide_type": "-"}
tradeoff = NoiseTradeoffExplorer(sigmas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), n_steps=pick(full=2000, fast=300),
                                 grid_n=pick(full=100, fast=60), cache=not fast_mode())
tradeoff.update(sigma=0.1)
tradeoff

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
small, large = tradeoff.frames[0], tradeoff.frames[-1]
check_greater("σ = 0.1: box-average error / Fisher (weighted) error", small["box_average"] / small["fisher"], 10)
check_less("σ = 10: box-average error (units of E‖∇log p_σ‖²)", large["box_average"], 0.1);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Many noise levels, one model
#
# Take the best of both: levels $\sigma_1 < \sigma_2 < \dots < \sigma_L$, from small enough that $p_{\sigma_1} \approx p$ to
# large enough to cover the space, and **one** network conditioned on the level,
# $\mathbf{s}_\theta(\mathbf{x}, i) \approx \nabla_{\mathbf{x}} \log p_{\sigma_i}(\mathbf{x})$ for all $i = 1, \dots, L$.
#
# > **Numbering.** Like the deck and Song's essay we number the levels **small to large**, $\sigma_1 < \dots < \sigma_L$.
# > The 2019 paper and NCSNv2 number them the other way ($\sigma_1$ is the *largest* there) — swap the indices when
# > you read them. In code we write `sigma_max`, `sigma_min`, and `sigmas` in the order the sampler visits them (largest first).

# %% [markdown] slideshow={"slide_type": "fragment"}
# It is trained on a weighted sum of Fisher divergences — each estimated by denoising score matching (notebook 02):
# $$\sum_{i=1}^L \lambda(i)\, \tfrac12\mathbb{E}_{p_{\sigma_i}}\big[\|\nabla_{\mathbf{x}} \log p_{\sigma_i}(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x}, i)\|_2^2\big],
# \qquad \lambda(i) = \sigma_i^2 .$$
# Why $\lambda(i) = \sigma_i^2$? The target scores have size $\|\nabla \log p_{\sigma}\| \sim 1/\sigma$, so $\sigma_i^2\,\|\cdot\|^2$ is $O(1)$
# at every level and no level dominates. Our model feeds $\log\sigma$ through an embedding into every layer and outputs
# $\mathbf{s}_\theta(\mathbf{x}, \sigma) = \mathrm{net}(\mathbf{x}, \sigma)/\sigma$ (the $1/\sigma$ scaling is NCSNv2's Technique 3). In code we index by the
# level's value, $\mathbf{s}_\theta(\mathbf{x}, \sigma_i) \equiv \mathbf{s}_\theta(\mathbf{x}, i)$.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Training the noise-conditional model
#
# Song & Ermon's toy: $L = 10$ levels, geometric from $\sigma_{\max} = 20$ down to $\sigma_{\min} = 1$. `ncsn_loss` gives each
# example a random level $i$, perturbs it to $\tilde{\mathbf{x}} = \mathbf{x} + \sigma_i\mathbf{z}$, and adds
# $\lambda(\sigma_i)\cdot\tfrac12\|\mathbf{s}_\theta(\tilde{\mathbf{x}}, \sigma_i) + \mathbf{z}/\sigma_i\|^2$.

# %% slideshow={"slide_type": "-"}
sigmas = schedules.geometric_sigmas(20.0, 1.0, 10)  # in the order the sampler visits them: 20 first, 1 last
n_train = pick(full=3000, fast=400)
torch.manual_seed(0)
model = NoiseConditionalScoreMLP(hidden=64, n_layers=3)
history = fit(model, lambda m, x, g: ncsn_loss(m, x, sigmas, generator=g), mix.sample, n_steps=n_train,
              lr=2e-3, device="cpu", progress=False,
              checkpoint_path=None if fast_mode() else cache_path("04-ncsn", n_steps=n_train))

# %% slideshow={"slide_type": "skip"}
@torch.no_grad()
def relative_score_error(model, mixture, sigma, n=4000, seed=0):
    """E_pσ‖s_θ(x,σ) − ∇log p_σ(x)‖² / E_pσ‖∇log p_σ(x)‖², with its Monte Carlo standard error."""
    p_sigma = mixture.perturb(sigma)
    x = p_sigma.sample(n, generator=seeded(seed))
    err = ((model(x, sigma) - p_sigma.score(x)) ** 2).sum(-1)
    ref = (p_sigma.score(x) ** 2).sum(-1).mean()
    return (err.mean() / ref).item(), (err.std() / math.sqrt(n) / ref).item()

# %% slideshow={"slide_type": "-"}
errors = np.array([relative_score_error(model, mix, s) for s in sigmas.tolist()]).T
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
P.plot_loss(axes[0], history, ylabel="ncsn_loss (λ = σ²)")
P.plot_mean_se(axes[1], sigmas.numpy(), {"relative Fisher error on p_σ": tuple(errors)}, xlabel="σ_i", log=True)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("relative score error at the largest level", errors[0][0], 0.06)
check_less("relative score error at the smallest level", errors[0][-1], 0.06);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · Annealed Langevin dynamics
#
# Run Langevin at every level, **from the largest σ down** ($i = L, L-1, \dots, 1$), $T$ steps each — $K = L\cdot T$ steps
# in all — with a step size that shrinks with the noise, $\alpha_i = \epsilon\,\sigma_i^2/\sigma_1^2$ (so the smallest level uses $\epsilon$):
# $$\mathbf{x} \leftarrow \mathbf{x} + \alpha_i\,\mathbf{s}_\theta(\mathbf{x}, \sigma_i) + \sqrt{2\alpha_i}\,\mathbf{z}, \qquad \mathbf{z} \sim \mathcal{N}(0, I).$$
# **The $\sigma_L$ model is good at the beginning**: $p_{\sigma_L}$ is one broad blob, so every particle is pulled into it
# wherever it started. **The $\sigma_1$ model refines.** In code, a few lines — the same as the package's sampler:

# %% slideshow={"slide_type": "-"}
def annealed_loop(score, x, sigmas, eps, T, generator):
    for sigma in sigmas:  # largest first
        alpha = eps * sigma**2 / sigmas[-1] ** 2
        for _ in range(T):
            x = x + alpha * score(x, sigma) + math.sqrt(2 * alpha) * torch.randn(x.shape, generator=generator)
    return x


x0, exact_score = torch.rand(1280, 2, generator=gen) * 16 - 8, mix.noise_conditional_score()
mine = annealed_loop(exact_score, x0, sigmas.tolist(), 0.1, 100, seeded(1))
x_exact = annealed_langevin(exact_score, x0, sigmas, 0.1, 100, generator=seeded(1), denoise_last=False).x
check_less("max |our loop − scoretutor.sampling.annealed_langevin|", (mine - x_exact).abs().max(), 1e-4);

# %% [markdown] slideshow={"slide_type": "slide"}
# **Song & Ermon's toy experiment**: the 10 levels above, $\epsilon = 0.1$, $T = 100$ ($K = 1000$), 1280 particles from
# $\mathcal{U}[-8, 8]^2$. Plain Langevin gets the same $K = 1000$ steps at step size $\epsilon$ with the exact score of $p$.
# As in the 2019 paper we stop after the last Langevin step (`denoise_last=False`).

# %% slideshow={"slide_type": "-"}
EPS, T = 0.1, 100
samples = {
    "data": mix.sample(len(x0), generator=gen),
    "Langevin (exact score)": langevin(mix.score, x0, EPS, T * len(sigmas), generator=seeded(1)).x,
    "annealed (exact scores)": x_exact,
    "annealed (learned model)": annealed_langevin(model.frozen_score(), x0, sigmas, EPS, T, generator=seeded(1),
                                                  denoise_last=False).x,
}
weight = {name: mode_fractions(x, mix).fractions[0].item() for name, x in samples.items()}
P.sample_panels({f"{name}\n(−5,−5): {weight[name]:.2f}": x for name, x in samples.items()}, lim=9)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# 1280 particles: binomial standard error of a 0.2 share is 0.011; ±0.05 is about 4.5 of them
check("annealed (exact scores): weight of (−5,−5)", weight["annealed (exact scores)"], 0.2, 0.05)
check("annealed (learned model): weight of (−5,−5)", weight["annealed (learned model)"], 0.2, 0.05)
check_greater("plain Langevin: |weight of (−5,−5) − 0.2|", abs(weight["Langevin (exact score)"] - 0.2), 0.15);

# %% [markdown] slideshow={"slide_type": "fragment"}
# Plain Langevin leaves each particle on the side of the gap where it started — about half go to each mode. Annealed
# Langevin, with the exact perturbed scores and with our learned model, puts about 0.20 of the particles on the small mode.

# %% [markdown] slideshow={"slide_type": "slide"}
# ### The $\sigma_L$ model first, the $\sigma_1$ model refines
#
# The particles at the end of some of the levels (exact scores). At $\sigma_L = 20$ they form one blob much wider than
# the box; as σ shrinks it contracts around the data mean $(3, 3)$ and, around σ ≈ 3–4, splits — with the small mode's share
# already ≈ 0.2 (the share printed is that of particles nearer to $(-5,-5)$ than to $(5,5)$). The last levels only sharpen.

# %% slideshow={"slide_type": "-"}
traj = annealed_langevin(exact_score, x0, sigmas, EPS, T, generator=seeded(1), denoise_last=False,
                         return_trajectory=True, trajectory_every=T).trajectory
shown = [0, 3, 5, 7, 9]  # level indices in visiting order: σ = 20 … 1
share = lambda x: mode_fractions(x, mix).fractions[0].item()
P.sample_panels({f"σ = {sigmas[k]:.2f}: {share(traj[k + 1]):.2f}": traj[k + 1] for k in shown}, lim=12, size=3.0)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Deep dive: the final denoising step
#
# After the last level the particles are samples of $p_{\sigma_1}$, not of $p$: each mode has variance $1 + \sigma_1^2 = 2$
# instead of 1. `denoise_last=True` (the default, from NCSNv2) adds one noise-free step
# $\mathbf{x} \leftarrow \mathbf{x} + \sigma_1^2\, \mathbf{s}_\theta(\mathbf{x}, \sigma_1)$, by Tweedie's formula the posterior mean $\mathbb{E}[\mathbf{x}_{\text{clean}} \mid \mathbf{x}]$.
# For one unit Gaussian mode that is $\boldsymbol\mu + (\mathbf{x} - \boldsymbol\mu)/(1 + \sigma_1^2)$, with variance $1/(1+\sigma_1^2) = 0.5$ —
# too narrow at this large $\sigma_1$, harmless at the small $\sigma_1$ used for images, where it removes visible noise.

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
x_denoised = x_exact + sigmas[-1] ** 2 * exact_score(x_exact, sigmas[-1].item())
heavy = mix.component_of(x_exact) == 1
# sample variances of ~1000 points have relative standard error √(2/n) ≈ 0.045: allow 4 of them (ULA's own
# bias at α = 0.1, a factor 1/(1 − α/4) ≈ 1.026 on the variance, fits inside)
check("variance per axis in the (5,5) mode before denoising", x_exact[heavy].var(0).mean(), 2.0, 4 * 0.045 * 2.0)
check("variance per axis after the denoising step", x_denoised[heavy].var(0).mean(), 0.5, 4 * 0.045 * 0.5 + 0.02);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Deep dive: how to choose the noise levels (NCSNv2, Song & Ermon 2020)
#
# * **Technique 1, $\sigma_{\max}$** ($=\sigma_L$): about the largest distance between two training points, so every mode is within reach.
# * **Technique 2, the ratio $\gamma = \sigma_{i+1}/\sigma_i$** (geometric levels): in $D$ dimensions a sample of $\mathcal{N}(0, \sigma^2 I)$
#   sits on a thin shell $\|\mathbf{x}\| \approx \sqrt{D}\sigma$; choose $\gamma$ so that each level puts about half its mass in the shell of the next larger one:
#   $\Phi(\sqrt{2D}(\gamma-1)+3\gamma) - \Phi(\sqrt{2D}(\gamma-1)-3\gamma) \approx 0.5$. The shell is $\sqrt{D}\sigma \pm 3\sigma/\sqrt2$, so for
#   $D \le 4$ it reaches down to the origin and the criterion says nothing: in 2-D the number of levels is a matter of budget.
# * **Technique 4, the step size $\epsilon$** for $T$ steps per level: for data at a single point, one level of Langevin started
#   from $\mathcal{N}(0, \sigma_{i+1}^2)$ ends at variance $s_T^2$ with ($\sigma_{\min} = \sigma_1$)
#   $$\frac{s_T^2}{\sigma_i^2} = \Big(1 - \frac{\epsilon}{\sigma_{\min}^2}\Big)^{2T}\Big(\gamma^2 - \frac{2\epsilon}{\sigma_{\min}^2 - \sigma_{\min}^2(1 - \epsilon/\sigma_{\min}^2)^2}\Big) + \frac{2\epsilon}{\sigma_{\min}^2 - \sigma_{\min}^2(1 - \epsilon/\sigma_{\min}^2)^2},$$
#   and $\epsilon$ is chosen to bring this ratio closest to 1.

# %% slideshow={"slide_type": "-"}
gamma, d_cifar = (20.0 / 1.0) ** (1 / 9), 3072
gamma_cifar = schedules.ncsnv2_gamma(d_cifar)
print(f"T1: largest distance in our data: {schedules.sigma_max_from_data(mix.sample(2000, generator=gen)):.1f}"
      " (Song & Ermon use σ_max = 20)")
print("T2: says nothing in 2-D: for D ≤ 4 the 3-std shell reaches down to ‖x‖ = 0, a ball holding most of the "
      f"smaller level's mass at any γ ({schedules.shell_overlap(50, 2, exact=True):.2f} at γ = 50); L is set by the budget")
print(f"T2: for CIFAR-10 (D = {d_cifar}) γ = {gamma_cifar:.3f}, "
      f"L = {schedules.num_levels(50, 0.01, gamma_cifar)} levels from σ_max = 50 to σ_min = 0.01")
print(f"T4: our schedule (γ = {gamma:.3f}, T = 100): ε = {schedules.ncsnv2_step_size(100, gamma, 1.0):.3f}; "
      f"Song & Ermon's ε = 0.1 gives s_T²/σ_i² = {schedules.langevin_variance_ratio(0.1, 100, gamma, 1.0):.3f}")

# %% slideshow={"slide_type": "-"}
eps_grid = np.logspace(-3, 0, 200)
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
for T_ in (10, 30, 100):
    ax.loglog(eps_grid, [schedules.langevin_variance_ratio(e, T_, gamma, 1.0) for e in eps_grid], label=f"T = {T_}")
ax.axhline(1, color="k", lw=0.8)
ax.set(xlabel="ε", ylabel="s_T² / σ_i²", title="Technique 4: variance after one level")
ax.legend()
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 🔍 Deep dive: a harder data set, two rings
#
# Two concentric rings (`rings()`, a mixture of many small Gaussians, so the true score is known). Technique 1 gives
# $\sigma_{\max}$, the rings' width suggests $\sigma_{\min} = 0.1$, and Technique 4 gives $\epsilon$.

# %% slideshow={"slide_type": "-"}
ring = rings()
ring_data = ring.sample(pick(full=5000, fast=2000), generator=gen)
ring_sigmas = schedules.geometric_sigmas(schedules.sigma_max_from_data(ring_data), 0.1, 12)
eps_ring = schedules.ncsnv2_step_size(50, (ring_sigmas[0] / 0.1).item() ** (1 / 11), 0.1)
torch.manual_seed(1)
ring_model = NoiseConditionalScoreMLP(hidden=pick(full=128, fast=64), n_layers=3)
n_ring = pick(full=4000, fast=1200)
ring_history = fit(ring_model, lambda m, x, g: ncsn_loss(m, x, ring_sigmas, generator=g), ring.sample, n_ring,
                   lr=2e-3, seed=1, device="cpu", progress=False,
                   checkpoint_path=None if fast_mode() else cache_path("04-rings", n_steps=n_ring))
x0_ring = torch.rand(1280, 2, generator=gen) * 16 - 8
x_ring = annealed_langevin(ring_model.frozen_score(), x0_ring, ring_sigmas, eps_ring, 50, generator=seeded(2)).x

# %% slideshow={"slide_type": "-"}
sw_ring, sw_init = (sliced_wasserstein(x, ring_data, generator=seeded(0)) for x in (x_ring, x0_ring))
fig, axes = P.figure_row(3, size=3.4)
P.plot_loss(axes[0], ring_history, title="training loss (rings)")
P.plot_samples(axes[1], ring_data[:1280], lim=7, s=2, title="data")
P.plot_samples(axes[2], x_ring, lim=7, s=2, title=f"annealed Langevin (SW₂ {sw_ring:.2f})")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("rings: SW₂ of the annealed samples / SW₂ of the uniform start", sw_ring / sw_init, 0.25);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Explore: σ_max, σ_min, L, ε and T
#
# Annealed Langevin on the learned model (a fixed set of starting points, so only the schedule changes). The default is a
# quick schedule ($T = 10$) that updates live; try $T = 100$ (the paper's setting), a small $\sigma_{\max}$ (little annealing:
# the weights go wrong again), a single level $L = 1$, or a large $\epsilon$.

# %% slideshow={"slide_type": "-"}
explorer = AnnealingExplorer(model, n_particles=300)
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Exercise: debug an annealed sampler
#
# **Debug.** A colleague wrote annealed Langevin from the 2019 paper, which numbers the levels the other way round. It runs,
# but the particles come out wrong: the sampler below has **three slips**. Run the cell: the checker runs it on our mixture
# with the exact scores, says what the particles did (the share of the (−5,−5) mode, their spread) and names one slip.
# Fix the slips one at a time; before each run, say what your fix should change in those numbers.
#
# As in §4, `sigmas` is in visiting order ($\sigma_L = 20$ first) and $\alpha_i = \epsilon\,\sigma_i^2/\sigma_1^2$ with $\sigma_1$ the smallest level;
# `noise(shape)` returns a fresh $\mathbf{z} \sim \mathcal{N}(0, I)$ (call it once per step); there is no final denoising step.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_annealed_langevin(score_fn, x0, sigmas, eps, T, noise):
    x = x0
    sigma_1 = sigmas[0]
    for sigma in sorted(sigmas):
        alpha = eps * (sigma / sigma_1) ** 2
        for _ in range(T):
            x = x + alpha * score_fn(x, sigma) + math.sqrt(alpha) * noise(x.shape)
    return x


check_annealed_langevin(my_annealed_langevin);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def solution_annealed_langevin(score_fn, x0, sigmas, eps, T, noise):
    x = x0
    sigma_1 = sigmas[-1]  # the smallest level: σ_1 in the deck's numbering (the paper's σ_L)
    for sigma in sigmas:  # already in visiting order: the σ_L model starts, the σ₁ model refines
        alpha = eps * (sigma / sigma_1) ** 2
        for _ in range(T):
            x = x + alpha * score_fn(x, sigma) + math.sqrt(2 * alpha) * noise(x.shape)  # √(2α), not √α
    return x


check_true("the solution passes the checker", check_annealed_langevin(solution_annealed_langevin))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap
#
# * **Model the score** $\nabla_\mathbf{x}\log p(\mathbf{x})$ instead of $p(\mathbf{x})$: $Z_\theta$ drops out (notebook 01).
# * **Train by score matching**: the Fisher divergence $\tfrac12\mathbb{E}_{p(\mathbf{x})}\|\nabla_\mathbf{x}\log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2$, made
#   computable by denoising score matching (notebook 02).
# * **Sample by Langevin**: $\mathbf{x}_{i+1} \leftarrow \mathbf{x}_i + \epsilon\,\mathbf{s}_\theta(\mathbf{x}_i) + \sqrt{2\epsilon}\,\mathbf{z}_i$, $i = 0, \dots, K-1$ (notebook 03).
# * **Circumvent low density: add noise** — levels $\sigma_1 < \dots < \sigma_L$, one model $\mathbf{s}_\theta(\mathbf{x}, i)$ trained with
#   $\lambda(i) = \sigma_i^2$, and annealed Langevin from $\sigma_L$ down to $\sigma_1$, which recovers the mode weights (this notebook).
