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
# # 05 · Score-based generation of MNIST digits
#
# Everything from notebooks 02–04, now on real images ($D = 28 \times 28 = 784$ pixels):
#
# 1. the data, and the digits perturbed at each noise level — what the network sees;
# 2. the noise levels $\sigma_1 < \dots < \sigma_L$ chosen by the NCSNv2 rules;
# 3. a noise-conditional score network $\mathbf{s}_\theta(\mathbf{x}, \sigma)$ and how it is trained;
# 4. annealed Langevin and predictor–corrector samples, judged against real test digits;
# 5. inpainting, and an explorer for the step size $\epsilon$ and the steps per level $T$.
#
# **On the 90-minute lecture route** (notebook 00): §2, §6, §7 — **7 minutes**; the notebook runs in
# about 20 seconds on a 2-core CPU once its samples are cached (full mode, with the shipped model; no training; the
# first run samples for about 20 s more). 🔍 marks optional deep dives.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import math
import tempfile
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

# %% slideshow={"slide_type": "skip"}
from scoretutor import fast_mode, get_device, mnist, pick
from scoretutor.lecture.claims import check, check_less, check_true
from scoretutor.lecture.exercises.mnist import check_denoise, check_levels_prediction, check_log_uniform
from scoretutor.lecture.plotting import plot_digits, plot_sampler_comparison
from scoretutor.lecture.widgets.mnist import MNISTSamplerExplorer
from scoretutor.losses import continuous_ncsn_loss, unit_output_weighting
from scoretutor.mnist.data import load_shipped_mnist
from scoretutor.mnist.quality import format_sampler_comparison, shipped_table
from scoretutor.schedules import ncsnv2_gamma, num_levels, shell_overlap
from scoretutor.training import cached, fingerprint

# %% slideshow={"slide_type": "skip"}
device = get_device()
t_start = time.time()
print(f"device: {device}; fast mode: {fast_mode()}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The data
#
# The suite ships 10,000 MNIST training digits — the ones the shipped model was trained on — and the official 10,000
# **test** digits, so this notebook needs no download. The test digits are kept apart: the model never sees them, and
# every quality figure below compares samples with them. Pixels are in $[0, 1]$.

# %% slideshow={"slide_type": "-"}
train_x, train_y = load_shipped_mnist("train")
test_x, test_y = load_shipped_mnist("test")
print(f"training digits {tuple(train_x.shape)}, test digits {tuple(test_x.shape)}")
fig, ax = plt.subplots(figsize=(8, 2))
plot_digits(ax, train_x[:32], cols=16, title="training digits: " + " ".join(map(str, train_y[:16].tolist())) + " …")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · What the network sees: digits perturbed at each noise level
#
# Training pairs are $\tilde{\mathbf{x}} = \mathbf{x} + \sigma\mathbf{z}$, $\mathbf{z} \sim \mathcal{N}(0, I)$. At small $\sigma$ the digit is
# intact; at large $\sigma$ nothing of it is visible — yet the score of $p_\sigma$ there still points towards
# "the average digit". (Shown clipped to $[0, 1]$; the network gets the unclipped values.)

# %% slideshow={"slide_type": "-"}
show_sigmas = [0.01, 0.1, 0.3, 1.0, 3.0, 15.0]
g = torch.Generator().manual_seed(0)
clean = test_x[:6]
fig, axes = plt.subplots(1, len(show_sigmas), figsize=(12, 2.4))
for ax, sigma in zip(axes, show_sigmas, strict=True):
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    plot_digits(ax, noisy.clamp(0, 1), cols=3, title=f"σ = {sigma:g}")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · 🔍 The noise levels, by the NCSNv2 rules
#
# The deck numbers levels from small to large, $\sigma_1 < \dots < \sigma_L$; the 2019 paper (and NCSNv2) number them the
# other way round. In code we write `sigma_max`, `sigma_min` and `sigmas` in the order the sampler visits them.
#
# * **Technique 1** — $\sigma_{\max}$ = the largest distance between two training digits, so that $p_{\sigma_{\max}}$ is one broad blob.
# * **Technique 2** — consecutive levels overlap: the ratio $\gamma$ solves $\Phi(\sqrt{2D}(\gamma-1) + 3\gamma) - \Phi(\sqrt{2D}(\gamma-1) - 3\gamma) = \tfrac12$,
#   and $L = 1 + \lceil \log(\sigma_{\max}/\sigma_{\min}) / \log\gamma \rceil$.
# * **Technique 4** — the step size $\epsilon$ that keeps the Langevin chain's variance right after $T$ steps per level.
#
# $\sigma_{\min} = 0.01$: noise far below what the eye sees in an image whose pixels are 0 or 1.

# %% slideshow={"slide_type": "-"}
sigma_max = mnist.sigma_max_rule(train_x, max_points=pick(full=4096, fast=1024))
gamma = ncsnv2_gamma(28 * 28)
L = num_levels(sigma_max, mnist.SIGMA_MIN, gamma)
print(f"σ_max = {sigma_max:.2f} (Technique 1),  γ = {gamma:.4f} (Technique 2),  L = {L} levels down to σ_min = 0.01")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_true("σ_max is a distance between two digits: at most the largest possible, √784 = 28",
           0 < sigma_max <= 28, f"σ_max = {sigma_max:.2f}")
check("p_σ(i) mass in the 3-std shell of p_σ(i+1) at this γ (Technique 2)", shell_overlap(gamma, 28 * 28), 0.5, 1e-6);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · 🔍 The model: a small noise-conditional U-Net
#
# $$\mathbf{s}_\theta(\mathbf{x}, \sigma) = -\frac{\mathbf{x}}{\sigma^2 + \sigma_d^2} + \frac{\sigma_d}{\sqrt{\sigma^2 + \sigma_d^2}} \cdot \frac{F_\theta(c(\sigma)\,\mathbf{x}, \log\sigma)}{\sigma},\qquad \sigma_d = 0.5,$$
# the same call `model(x, sigma)` as the 2-D models of notebook 04.
#
# * the first term is the exact score of $\mathcal{N}(0, (\sigma_d^2 + \sigma^2) I)$, a zero-mean Gaussian of scale $\sigma_d$ perturbed to level $\sigma$;
#   $\sigma_d = 0.5$ is a fixed scale of the preconditioning (Karras et al. 2022), not fitted to the digits (their pixels have
#   mean 0.13 and standard deviation 0.31). The network $F_\theta$ only learns the correction. At large $\sigma$ that term is almost the whole
#   answer and the network's errors are damped by $\sigma_d/\sigma$; at small $\sigma$ the output is $F_\theta/\sigma$, the size of the true score $-\mathbf{z}/\sigma$ (NCSNv2's scaling);
# * the input is scaled by $c(\sigma) = 1/\sqrt{\sigma^2 + \sigma_d^2}$, so the network sees images of about unit size at every level;
# * $\log\sigma$ enters through Fourier features and shifts/scales every residual block.
#
# A U-Net at 28 → 14 → 7 pixels, with few channels at full resolution, where convolutions are costly on a CPU.

# %% slideshow={"slide_type": "-"}
model, card = mnist.load_pretrained(device=device)
n_params = sum(p.numel() for p in model.parameters())
print(f"{type(model).__name__} {card['model']['config']['channels']} channels: {n_params:,} parameters")
print(f"shipped checkpoint: {card['steps']:,} steps of batch {card['batch_size']} in {card['wall_time_s'] / 60:.0f} min "
      f"on a {card['device']} ({card['data']['count']:,} training digits)")

# %% [markdown] slideshow={"slide_type": "fragment"}
# What the network adds to the Gaussian term: the error of Tweedie's denoiser $\tilde{\mathbf{x}} + \sigma^2\mathbf{s}(\tilde{\mathbf{x}}, \sigma)$ on held-out test digits,
# with $F_\theta = 0$ (the Gaussian term alone shrinks $\tilde{\mathbf{x}}$ towards 0) and with the trained network.

# %% slideshow={"slide_type": "-"}
sig_grid = torch.logspace(math.log10(mnist.SIGMA_MIN), math.log10(sigma_max), 12).tolist()
x_clean = test_x[: pick(full=256, fast=64)].to(device)
nets = {"Gaussian term only (F = 0)": mnist.make_model().to(device), "shipped network": model}
denoise_error = {name: [] for name in nets}
with torch.no_grad():
    for sigma in sig_grid:
        x_noisy = x_clean + sigma * torch.randn(x_clean.shape, generator=g).to(device)
        for name, net in nets.items():
            denoised = x_noisy + sigma**2 * net(x_noisy, sigma)
            denoise_error[name].append(((denoised - x_clean) ** 2).mean().item())

# %% slideshow={"slide_type": "-"}
fig, ax = plt.subplots(figsize=(5.5, 3))
for name, err in denoise_error.items():
    ax.loglog(sig_grid, err, "o-", label=name)
ax.set(xlabel="σ", ylabel="squared error per pixel", title="denoising test digits")
ax.legend()
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
gauss_err, net_err = (torch.tensor(v) for v in denoise_error.values())
check_less("largest ratio over σ of the network's denoising error to the Gaussian term's", (net_err / gauss_err).max().item(), 1);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · 🔍 Training: one loss for every noise level
#
# Each example gets its own level, drawn **continuously**: $\log\sigma \sim \mathcal{U}[\log\sigma_{\min}, \log\sigma_{\max}]$, and
# $$\mathcal{L}(\theta) = \mathbb{E}_{\sigma}\, \lambda(\sigma) \cdot \tfrac12\, \mathbb{E}_{\mathbf{x}, \mathbf{z}} \big\| \mathbf{s}_\theta(\mathbf{x} + \sigma\mathbf{z}, \sigma) + \mathbf{z}/\sigma \big\|^2,
#   \qquad \lambda(\sigma) = \sigma^2\,\frac{\sigma^2 + \sigma_d^2}{\sigma_d^2},$$
# the NCSN objective — so the same network serves any grid of levels (and, in the next notebook, the SDE samplers). This $\lambda$ makes each
# term $\tfrac12\|F_\theta - F^*\|^2$: every level counts the same for the network's own output. The NCSN choice $\lambda = \sigma^2$ (the small-$\sigma$ limit)
# would weight a level $\sigma \gg \sigma_d$ by only $\sigma_d^2/\sigma^2$; `docs/mnist-model.md` measures what the two choices do to the samples.
# `mnist.train` runs the shared `fit` loop with an EMA of the weights, gradient clipping, checkpoints and exact resume.
# Here: a few steps on a small batch, to see the loop. The shipped model was trained with
# `python -m scoretutor train mnist …` (the exact command is in `docs/mnist-model.md`), its learning rate decayed along a cosine to a tenth and the network
# run through `torch.compile`; set `TRAIN_FULL = True` to retrain it here with the settings on its card.

# %% slideshow={"slide_type": "-"}
TRAIN_FULL = False  # True: retrain the shipped model here (29 minutes on a 2-core CPU)
demo_dir = tempfile.mkdtemp()
steps = card.get("lr_decay_steps", card["steps"]) if TRAIN_FULL else pick(full=60, fast=12)
as_shipped = dict(lr_schedule=card.get("lr_schedule", "constant"), compile=card.get("compiled", False),
                  time_limit_s=card["wall_time_s"]) if TRAIN_FULL else {}
demo, _ = mnist.train(demo_dir, steps, train_x, batch_size=64 if TRAIN_FULL else 16, sigma_max=sigma_max,
                      device=device, progress=TRAIN_FULL, checkpoint_every=max(steps, 1), **as_shipped)
history = torch.load(f"{demo_dir}/{mnist.TRAIN_STATE}", weights_only=True)["history"]
print("loss every few steps:", [round(v, 1) for v in history[:: max(1, steps // 6)]])
if TRAIN_FULL:
    model = demo

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# the demo's loss on 512 digits against that of the untrained network (F = 0), with the same σ and z
judge = train_x[:512].to(device)
with torch.no_grad():
    loss_of = lambda net: continuous_ncsn_loss(net, judge, mnist.SIGMA_MIN, sigma_max, weighting=unit_output_weighting(demo.sigma_data),
                                               generator=torch.Generator().manual_seed(1)).item()
    check_less("training loss after the demo steps / before", loss_of(demo) / loss_of(mnist.make_model().to(device)), 1)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Annealed Langevin samples
#
# Start from $\mathcal{N}(0, \sigma_{\max}^2 I)$, run $T$ Langevin steps at every level with $\alpha_i = \epsilon\,\sigma_i^2/\sigma_{\min}^2$, and finish with one
# **denoising step** $\mathbf{x} \leftarrow \mathbf{x} + \sigma_{\min}^2\,\mathbf{s}_\theta(\mathbf{x}, \sigma_{\min})$ (Tweedie's formula: the posterior mean of the clean image).
# Defaults: the NCSNv2 grid (95 levels), $T = 3$, and $\epsilon$ twice the Technique-4 value — the best of the
# multiples tried by the quality measures of §7 (tuned at 256 samples on the previous checkpoint; `docs/mnist-model.md`). Technique 4 is exact for data concentrated at one point; on digits, with
# 3 steps per level, a somewhat larger step did better and a much larger one worse.

# %% slideshow={"slide_type": "-"}
settings = mnist.default_settings(card, **pick(full={}, fast={"n_levels": 12, "n_steps_each": 1}))
print(f"{settings.n_levels} levels from σ_max = {settings.sigma_max:.2f} to σ_min = {settings.sigma_min:g}, "
      f"T = {settings.n_steps_each} steps each, ε = {settings.step_size:.2g}")
draw = lambda: mnist.sample_with_snapshots(model, pick(full=64, fast=8), settings, seed=0)
drawn = draw() if fast_mode() else cached("05-samples", draw, model=fingerprint(model), settings=settings, n=64,
                                          device=device.type)  # full mode: sampled once per machine
samples = drawn["samples"]
print(f"{len(samples)} samples, {settings.n_score_evals} network calls, {drawn['seconds']:.0f} s on this machine "
      "(cached after the first run)")
fig, ax = plt.subplots(figsize=(8, len(samples) / 8 + 0.5))
plot_digits(ax, samples, cols=8)
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# Tweedie's step on noisy test digits must land closer to the clean digits than the noisy input was
x_clean = test_x[:64].to(device)
for sigma in (0.01, 0.1, 0.5):
    x_noisy = x_clean + sigma * torch.randn(x_clean.shape, generator=g).to(device)
    with torch.no_grad():
        denoised = x_noisy + sigma**2 * model(x_noisy, sigma)
    check_less(f"σ = {sigma}: error after the denoising step / before", ((denoised - x_clean).norm() / (x_noisy - x_clean).norm()).item(), 1)

# %% slideshow={"slide_type": "fragment"}
fig, ax = plt.subplots(figsize=(10, 1.5))  # 10 snapshots of the first sample, start → denoised result
plot_digits(ax, drawn["snapshots"].clamp(0, 1), cols=10, title="one sample through the levels (clipped to [0, 1])")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · How good are they? Judged against real test digits
#
# A small classifier trained on the training digits (shipped, test accuracy 0.99) judges samples and real **test** digits
# alike, at the same $n$: the fraction classified with confidence > 0.9, the entropy of the label histogram
# (1 = all ten digits equally often), the Fréchet distance of the classifier's features to one half of the test set, and the
# median distance to the nearest training digit (copying would make it small).
#
# Two samplers, the same network and the same number of network calls: annealed Langevin (above), and the
# **predictor–corrector** sampler of notebook 06. Annealed Langevin only *corrects*: at each level its Langevin steps must
# carry the sample from $p_{\sigma_{i+1}}$ to $p_{\sigma_i}$ by themselves. Predictor–corrector adds an explicit move between
# levels, a reverse-diffusion step $\mathbf{x} \leftarrow \mathbf{x} + (\sigma_{i+1}^2 - \sigma_i^2)\,\mathbf{s}_\theta(\mathbf{x}, \sigma_{i+1}) + \sqrt{\sigma_{i+1}^2 - \sigma_i^2}\,\mathbf{z}$,
# and sets its two Langevin steps per level by a signal-to-noise ratio $r = 0.3$: $\epsilon = 2\,(r\sqrt{D}/\|\mathbf{s}\|)^2$.
#
# Judging needs many samples — about 45 minutes of this CPU — so the comparison below was computed once
# (`benchmarks/mnist_sampler_comparison.py`): three independent draws of 1,000 samples per sampler.

# %% slideshow={"slide_type": "fragment"}
comparison, current = shipped_table()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
plot_sampler_comparison(axes[0], comparison, "frechet", "Fréchet distance (lower is better)")
plot_sampler_comparison(axes[1], comparison, "confident", "confident fraction (higher is better)")
plt.show()
display(Markdown(format_sampler_comparison(comparison)))

# %% [markdown] slideshow={"slide_type": "fragment"}
# **How to read it.** Each dot is one draw of 1,000 samples; the square and its bar are their mean ± standard deviation.
# The grey band is real test digits judged the same way: the mean ± sd over 10 random subsets of 1,000. The spread is the
# point: the Fréchet distance of *real* digits moves by about a third between subsets, so a difference between two
# samplers counts only when it is well outside both bars. And compare only at the same $n$: the Fréchet distance is biased
# upwards at small $n$ (real digits score about 19 at $n = 256$, 6 at $n = 1{,}000$), so a table of 64 samples says little.
#
# Read this way, the two samplers differ on every draw: predictor–corrector's Fréchet distances all lie below annealed
# Langevin's, and it is more often confident — the explicit move between levels pays. Neither reaches real digits: both
# are less often confident on every draw (at most 0.885 against 0.98), and annealed Langevin's Fréchet distances lie far
# above the grey band; predictor–corrector's mean lies above it too, though one of its three draws falls inside
# (`docs/mnist-model.md` tells how far training got).

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
pc_q, al_q = comparison["samplers"]["predictor–corrector"], comparison["samplers"]["annealed Langevin"]
check_true("the precomputed table is for the shipped weights (sha256 of model.safetensors)", current)
check_true("predictor–corrector below annealed Langevin on Fréchet distance, every draw",
           max(pc_q["frechet"]) < min(al_q["frechet"]), f"{max(pc_q['frechet']):.1f} < {min(al_q['frechet']):.1f}")
check_true("predictor–corrector more confident than annealed Langevin, every draw",
           min(pc_q["confident"]) > max(al_q["confident"]), f"{min(pc_q['confident']):.3f} > {max(al_q['confident']):.3f}")
check_true("neither copies: median distance to the nearest training digit at least real digits' mean",
           min(pc_q["nearest_train"] + al_q["nearest_train"]) >= comparison["real"]["nearest_train"][0]);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · 🔍 Does it copy? The nearest training digits
#
# For a few samples, the closest training digits in pixel space.

# %% slideshow={"slide_type": "-"}
few = samples[:6].cpu()
dist = torch.cdist(few.flatten(1), train_x.flatten(1))
nearest = dist.topk(3, largest=False)
rows_img = torch.stack([torch.cat([few[i:i + 1], train_x[nearest.indices[i]]]) for i in range(len(few))])
fig, ax = plt.subplots(figsize=(3, len(few) * 0.8))
plot_digits(ax, rows_img.flatten(0, 1), cols=4, title="sample | 3 nearest training digits")
plt.show()
print("distances to the nearest:", [round(v, 2) for v in nearest.values[:, 0].tolist()])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9 · 🔍 Inpainting
#
# Hide the right half of test digits and sample the rest: at each level the **known** pixels are set to the data noised to the
# current level, $\mathbf{y} + \sigma_i\mathbf{z}$, and Langevin moves only the unknown ones. This is an *approximate* conditional
# sampler: the noised known pixels are drawn independently of the unknown ones, not jointly with them, so the fill-ins
# need not be exact samples of $p(\text{unknown} \mid \text{known})$.

# %% slideshow={"slide_type": "-"}
originals = test_x[100:100 + pick(full=8, fast=3)]
known = torch.zeros(28, 28, dtype=torch.bool)
known[:, :14] = True
filled = mnist.inpaint(model, originals, known, settings, seed=0).cpu()
fig, ax = plt.subplots(figsize=(len(originals), 3.2))
plot_digits(ax, torch.cat([originals, originals * known, filled]), cols=len(originals),
            title="test digits / right half hidden / inpainted")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_true("inpainting keeps every known pixel", torch.equal(filled[..., :14], originals[..., :14]))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 10 · Explorer: step size ε and steps per level T
#
# The same seed for every setting, on a coarser grid of 20 levels so that a frame takes a fraction of a second; ε is given
# as a multiple of the Technique-4 value. All 60 settings are computed in the background as soon as the explorer appears,
# so once they are done (under a minute on a 2-core CPU) every slider move is instant. Too small: the chain cannot
# follow the shrinking noise, and noise is left in the image; too large: the chain overshoots and diverges.

# %% slideshow={"slide_type": "-"}
explorer = MNISTSamplerExplorer(model, card, n=pick(full=8, fast=4), n_levels=pick(full=20, fast=8))
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 11 · Exercises
#
# **1.** Write `my_log_uniform(n, sigma_min, sigma_max, generator)`: $n$ noise levels with $\log\sigma$ uniform on
# $[\log\sigma_{\min}, \log\sigma_{\max}]$, drawn with `torch.rand(n, generator=generator)`.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_log_uniform(n, sigma_min, sigma_max, generator):
    raise NotImplementedError


check_log_uniform(my_log_uniform);

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Predict, then check.** *Exercise 2.* §3 gave $L$ levels for $28 \times 28$ digits. How many would Technique 2 ask for if the
# digits had **four times as many pixels** ($56 \times 56$), with the same $\sigma_{\max}$ and $\sigma_{\min}$?
# Think about the shells $\|\mathbf{x}\| \approx \sqrt{D}\,\sigma$ first; write your number, then run the cell.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
my_L_for_4x_pixels = ...  # your prediction, a number

check_levels_prediction(my_L_for_4x_pixels, sigma_max);

# %% [markdown] slideshow={"slide_type": "fragment"}
# **3.** Write the final denoising step `my_denoise(score_fn, x, sigma)` (Tweedie's formula). The checker uses Gaussian data,
# where the posterior mean $\mathbb{E}[\mathbf{x}_0 \mid \mathbf{x}]$ is known in closed form.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_denoise(score_fn, x, sigma):
    raise NotImplementedError


check_denoise(my_denoise);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def solution_log_uniform(n, sigma_min, sigma_max, generator):
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.exp(math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min)))


# 2: γ − 1 shrinks like 1/√D, so L grows like √D: twice the levels for four times the pixels.
solution_L_for_4x_pixels = 1 + math.ceil(math.log(sigma_max / mnist.SIGMA_MIN) / math.log(ncsnv2_gamma(4 * 28 * 28)))


def solution_denoise(score_fn, x, sigma):
    return x + sigma**2 * score_fn(x, sigma)  # E[x₀ | x] = x + σ² ∇log p_σ(x)


check_true("the solutions pass the checkers", check_log_uniform(solution_log_uniform)
           and check_levels_prediction(solution_L_for_4x_pixels, sigma_max) and check_denoise(solution_denoise))

# %% slideshow={"slide_type": "skip"}
print(f"notebook ran in {time.time() - t_start:.0f} s")
