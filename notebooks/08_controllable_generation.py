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
# # 08 · Controllable generation: Bayes' rule for scores, guidance, inverse problems
#
# The deck's first slides threw away the normaliser: $\nabla_{\mathbf{x}}\log p = -\nabla_{\mathbf{x}} f$, and $Z$ drops out.
# Conditioning is free of normalisers for the same reason. For a label $y$,
# $$\nabla_{\mathbf{x}}\log p_t(\mathbf{x}\mid y) = \nabla_{\mathbf{x}}\log p_t(\mathbf{x}) + \nabla_{\mathbf{x}}\log p_t(y\mid\mathbf{x}),$$
# because $\log p_t(\mathbf{x}\mid y) = \log p_t(\mathbf{x}) + \log p_t(y\mid\mathbf{x}) - \log p(y)$ and $p(y)$ does not
# depend on $\mathbf{x}$. An unconditional score model plus a classifier of *noisy* inputs is a conditional score model.
# This notebook (1) checks that and what a guidance scale does on a 2-D mixture where everything is exact,
# (2) draws digits of a chosen class on MNIST with classifier guidance and classifier-free guidance, (3) measures
# the price in diversity, and (4) solves two more inverse problems with the same idea.
#
# **Extension material, not on the 90-minute lecture route** (notebook 00). Noise levels as in the deck, small to
# large; $t = 0$ is data.

# %% slideshow={"slide_type": "skip"}
# %matplotlib inline
import json
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from scoretutor import mnist, pick
from scoretutor.diffusion import guidance as G
from scoretutor.diffusion.sde import VESDE

# %% slideshow={"slide_type": "skip"}
from scoretutor.lecture import plotting as P
from scoretutor.lecture.claims import check, check_greater, check_less, check_true
from scoretutor.lecture.exercises.guidance import check_guided_score
from scoretutor.lecture.widgets.guidance import DigitGuidanceExplorer
from scoretutor.mnist import inverse as inv
from scoretutor.mnist.classifier import classify, load_judges
from scoretutor.mnist.data import load_shipped_mnist
from scoretutor.mnist.guidance import GUIDANCE, conditional_checkpoint_dir, load_conditional, sample_guided
from scoretutor.mnist.noisy_classifier import accuracy_at, load_noisy_classifier
from scoretutor.mnist.quality import GUIDANCE_SWEEP_FILE

# %% slideshow={"slide_type": "skip"}
lm = G.overlapping_classes(dtype=torch.float64)   # two classes, two unit Gaussians each
seed = lambda s: torch.Generator().manual_seed(s)
ve = VESDE(sigma_min=0.01, sigma_max=50.0)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Exact first: Bayes' rule for scores in 2-D
#
# Four unit Gaussians, weight ¼ each. Class 0 sits at $(-3, 0)$ and $(0, 1)$, class 1 at $(3, 0)$ and $(0, -1)$: the
# two inner components overlap, so the classifier $p(y\mid\mathbf{x})$ is unsure in the middle. Every noisy marginal
# $p_\sigma = p * \mathcal{N}(0, \sigma^2 I)$ is again such a mixture, so $p_\sigma(y\mid\mathbf{x})$, its gradient and
# both scores have closed forms. Below: the conditional score computed directly, against the unconditional score plus
# the classifier's gradient, and that gradient against autograd of $\log p_\sigma(y\mid\mathbf{x})$.

# %% slideshow={"slide_type": "fragment"}
x = 4 * torch.randn(2000, 2, generator=seed(0), dtype=torch.float64)
for sigma in (0.01, 0.5, 2.0, 10.0):
    m = lm.perturb(sigma)
    bayes = (m.conditional_score(x, 0) - (m.score(x) + m.classifier_gradient(x, 0))).abs().max().item()
    xg = x.clone().requires_grad_(True)
    auto = torch.autograd.grad(m.log_class_posterior(xg, 0).sum(), xg)[0]
    grad_err = (auto - m.classifier_gradient(x, 0)).abs().max().item()
    print(f"σ = {sigma:5.2f}: max |s(x|y) − s(x) − ∇log p(y|x)| = {bayes:.1e}, "
          f"max |closed form − autograd| = {grad_err:.1e}")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("Bayes' rule for scores at σ = 10 (max error)", bayes, 1e-10)
check_less("classifier gradient = autograd at σ = 10 (max error)", grad_err, 1e-10);

# %% [markdown] slideshow={"slide_type": "slide"}
# ### A guidance scale tilts the density
#
# Guidance multiplies the classifier term by $\gamma$:
# $s_\gamma = \nabla\log p_t(\mathbf{x}) + \gamma\,\nabla\log p_t(y\mid\mathbf{x})$, the score of the **tilted** density
# $\pi_\gamma \propto p_t(\mathbf{x})\,p_t(y\mid\mathbf{x})^\gamma$. At $\gamma = 0$ it is $p$, at $\gamma = 1$ it is
# $p(\mathbf{x}\mid y)$, and beyond 1 it is **not** the class any more: mass leaves the places where the classifier is
# unsure. Classifier-free guidance (Ho & Salimans 2022) writes the same score as $\gamma\,s(\mathbf{x}, y) - (\gamma - 1)\,s(\mathbf{x}, \varnothing)$; its $w$ is $\gamma - 1$.

# %% slideshow={"slide_type": "fragment"}
end = lm.perturb(ve.sigma_min)                            # the samplers' last level, σ₁ = 0.01
gammas = (0.0, 1.0, 3.0)
tilted = {g: G.tilted_density(end, 0, g, lim=8.0, n=pick(full=300, fast=120)) for g in gammas}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, g in zip(axes, gammas, strict=True):
    w = tilted[g].weights.tolist()
    P.plot_tilted(ax, tilted[g], title=f"γ = {g:g}: inner {w[1]:.2f}, outer {w[0]:.2f}")
fig.suptitle("π_γ ∝ p(x) p(y = 0 | x)^γ, exact; mass on class 0's inner and outer component")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
gap = (tilted[1.0].log_prob - end.conditional_log_prob(tilted[1.0].points, 0)).abs().max().item()
# the box [−8, 8]² misses ~3e-7 of the mass (5 sd beyond the outer means): log Z is off by about that
check_less("γ = 1 is p(x | y = 0): max |log π₁ − log p(x | y)| on the grid", gap, 1e-5)
(o1, i1), (o3, i3) = (tilted[g].weights[:2].tolist() for g in (1.0, 3.0))
check_true("γ = 1 → 3 moves mass from the inner to the outer component", o3 > o1 and i3 < i1,
           f"outer {o1:.3f} → {o3:.3f}, inner {i1:.3f} → {i3:.3f}");

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Does a guided sampler reach the tilted density?
#
# Run the reverse SDE from $\sigma_L = 50$ to $\sigma_1 = 0.01$ with the exact guided score $s_\gamma$. At $\gamma = 1$ it
# is the exact conditional score, so the sampler draws $p(\mathbf{x}\mid y)$. At $\gamma = 3$ the scores at the
# different noise levels belong to tilted densities that are **not** noisy versions of one another
# ($p_t(y\mid\mathbf{x})^\gamma$ is not $p_0(y\mid\mathbf{x})^\gamma$ blurred), so nothing promises $\pi_3$ at the end.
# Predictor–corrector adds a Langevin step *at each level*, which targets that level's tilted density itself.

# %% slideshow={"slide_type": "fragment"}
n, steps = pick(full=2000, fast=1000), pick(full=300, fast=150)
rows = {}
for g in (1.0, 3.0):
    start = G.tilted_prior_sample(lm, ve, 0, g, n, seed(1))           # π_γ at t = 1: the prior is not the question
    x_sde = G.guided_sample(lm, ve, 0, g, n, n_steps=steps, generator=seed(2), x_T=start).x
    x_pc = G.guided_sample(lm, ve, 0, g, n, "predictor_corrector", steps, seed(3), start).x
    rows[g] = {"exact": tilted[g].weights[0].item(), "sde": end.mode_weights(x_sde), "pc": end.mode_weights(x_pc)}
table = "| outer component's mass | exact π_γ | guided reverse SDE | guided predictor–corrector |\n|---|---|---|---|\n"
for g, r in rows.items():
    cells = [f"{r[k].weights[0]:.3f} ± {r[k].stderr[0]:.3f}" for k in ("sde", "pc")]
    table += f"| γ = {g:g} | {r['exact']:.3f} | " + " | ".join(cells) + " |\n"
display(Markdown(table))

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
# tolerances: 4 standard errors of the mean responsibility, plus the samplers' step bias (≤ 0.005 at 150+ steps,
# measured in benchmarks/bench_guidance.py at n = 10,000)
for g, k in ((1.0, "sde"), (1.0, "pc"), (3.0, "pc")):
    got = rows[g][k]
    check(f"γ = {g:g}: guided {k.upper()} reaches π_γ's outer mass", got.weights[0].item(), rows[g]["exact"],
          tol=4 * got.stderr[0].item() + 0.005)
miss = rows[3.0]["sde"]
check_greater("γ = 3: the guided reverse SDE misses π₃'s outer mass (in standard errors)",
              (miss.weights[0].item() - rows[3.0]["exact"]) / miss.stderr[0].item(), 6.0);

# %% [markdown] slideshow={"slide_type": "fragment"}
# Read the table as a warning more than a recipe: at $\gamma = 3$ the reverse SDE over-sharpens (and the
# probability-flow ODE more so), while predictor–corrector lands on $\pi_3$ here because its Langevin steps can cross
# between these close modes. In practice guidance is used with $\gamma > 1$ *because* it sharpens, not because it
# samples a named distribution: what a guided sampler produces is "something like" $p(\mathbf{x})p(y\mid\mathbf{x})^\gamma$.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Class-conditional digits
#
# Two ways to get $\nabla\log p_\sigma(y\mid\mathbf{x})$ for MNIST:
#
# * **Classifier guidance** (Dhariwal & Nichol 2021): a small classifier $p_\sigma(y\mid\tilde{\mathbf{x}})$ trained on
#   *noisy* training digits, $\sigma$-conditioned like the score model, differentiated by autograd and added, with scale
#   $\gamma$, to notebook 05's unconditional score model.
# * **Classifier-free guidance** (Ho & Salimans 2022): one network $s(\mathbf{x}, \sigma, y)$ trained with 10 % of the labels
#   replaced by "no label" $\varnothing$, so it learns both $\nabla\log p_\sigma(\mathbf{x}\mid y)$ and $\nabla\log p_\sigma(\mathbf{x})$;
#   their difference is the classifier's gradient. Shipped as a second small checkpoint (its card is in
#   `docs/mnist-model.md`).
#
# A classifier of noisy digits can only be as sure as the noise allows: at $\sigma_L \approx 16$ it knows the class prior
# and nothing else.

# %% slideshow={"slide_type": "fragment"}
classifier = load_noisy_classifier(device="cpu")
test_x, test_y = load_shipped_mnist("test")
sigmas = [0.01, 0.1, 0.3, 1.0, 2.0, 4.0, 8.0, 15.8]
sub = pick(full=2000, fast=300)
acc = [accuracy_at(classifier, test_x[:sub], test_y[:sub], s, seed=4) for s in sigmas]
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.semilogx(sigmas, acc, "o-")
ax.axhline(0.1, color="0.5", ls="--", label="chance")
ax.set(xlabel="noise level σ", ylabel="test accuracy", title="the noise-conditional classifier")
ax.legend()
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("noisy classifier: test error at σ = 0.1", 1 - acc[1], 0.05)
check_less("noisy classifier: accuracy at σ = 15.8 is near chance", acc[-1], 0.35);

# %% [markdown] slideshow={"slide_type": "slide"}
# The same seed, so the same start $\mathbf{x}_L \sim \mathcal{N}(0, \sigma_L^2 I)$ for every row; one row per class,
# drawn by stochastic Heun (notebook 07) with each guide at its default scale. The command line does the same:
# `python -m scoretutor sample mnist --class 7 --n 64 --out sevens.npy [--guide classifier] [--guidance 3]`.

# %% slideshow={"slide_type": "fragment"}
cond_model, cond_card = load_conditional(device="cpu")
score_model, card = mnist.load_pretrained(device="cpu")
per, calls = pick(full=8, fast=2), pick(full=50, fast=20)
labels = torch.arange(10).repeat_interleave(per)
t0 = time.perf_counter()
digits = {"classifier-free": sample_guided(cond_model, cond_card, labels, n_calls=calls),
          "classifier guidance": sample_guided(score_model, card, labels, guide="classifier",
                                               classifier=classifier, n_calls=calls)}
seconds = time.perf_counter() - t0
fig, axes = plt.subplots(1, 2, figsize=(10, 6))
for ax, (name, x) in zip(axes, digits.items(), strict=True):
    P.plot_digits(ax, x, cols=per, title=f"{name}, γ = {GUIDANCE['free' if 'free' in name else 'classifier']:g}")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
judge = load_judges()["judge A"]
for name, x in digits.items():
    read = (classify(judge, x)[0].argmax(1) == labels).float().mean().item()
    check_greater(f"{name}: share the judge reads as the asked class", read, 0.8)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The price of guidance
#
# Accuracy and diversity against $\gamma$, measured once by `benchmarks/mnist_guidance.py` (50 digits of each class per
# point; two judges, differently built and trained; real test digits of the same classes as the grey band). "Fréchet
# within a class" compares each class's samples with that class's real digits in a judge's features: it rises when a
# class loses its variety. "Spread" is the mean pixel distance to the class mean, a figure without any judge.

# %% slideshow={"slide_type": "fragment"}
sweep = json.loads((conditional_checkpoint_dir() / GUIDANCE_SWEEP_FILE).read_text(encoding="utf-8"))
results = sweep["sweep"]["results"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
P.plot_guidance_sweep(axes[0], results, "accuracy", label="read as the asked class (judge A)")
P.plot_guidance_sweep(axes[1], results, "frechet_within", label="Fréchet within a class (judge A)")
P.plot_guidance_sweep(axes[2], results, "spread", label="pixel spread within a class")
plt.show()

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
by = {(r["guide"], r["guidance"], r["judge"]): r["samples"] for r in results}
for guide in ("free", "classifier"):
    for judge_name in ("judge A", "judge B"):
        low, high = by[(guide, 1.0, judge_name)], by[(guide, max(g for gd, g, j in by if gd == guide), judge_name)]
        check_true(f"{guide}, {judge_name}: more guidance, higher accuracy and less spread",
                   high["accuracy"] >= low["accuracy"] and high["spread"] < low["spread"],
                   f"accuracy {low['accuracy']:.3f} → {high['accuracy']:.3f}, spread {low['spread']:.2f} → "
                   f"{high['spread']:.2f}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ### Explore: class and guidance scale
#
# Sixteen digits of one class from the same start, classifier-free guidance with scale $\gamma$; the status line says how
# many the judge reads as the asked digit, and their pixel spread. At $\gamma = 0$ the class is ignored; at 1 most digits
# are right; past 2 they become bolder, cleaner and more alike. (The first frames take a few seconds; the rest are
# computed in the background.)

# %% slideshow={"slide_type": "-"}
explorer = DigitGuidanceExplorer(cond_model, cond_card, n=pick(full=16, fast=4), n_calls=pick(full=30, fast=6))
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · Inverse problems beyond inpainting
#
# A measurement $\mathbf{y} = A\mathbf{x} + \sigma_y\boldsymbol\epsilon$ and the learned prior give the posterior
# $p(\mathbf{x}\mid\mathbf{y}) \propto p(\mathbf{x})\,p(\mathbf{y}\mid\mathbf{x})$, and its score is again a sum:
# prior score plus likelihood score. Notebook 05's inpainting is one case ($A$ keeps some pixels).
#
# * **Denoising**, $A = I$: $\mathbf{y} = \mathbf{x} + \sigma_y\boldsymbol\epsilon$ has exactly the law of the forward process
#   at $\sigma = \sigma_y$. Running the reverse SDE *from $\mathbf{y}$ at $\sigma_y$* samples $p(\mathbf{x}\mid\mathbf{y})$ — no
#   approximation beyond the score's error — and Tweedie's formula $\mathbb{E}[\mathbf{x}\mid\mathbf{y}] = \mathbf{y} + \sigma_y^2 s(\mathbf{y}, \sigma_y)$
#   gives the posterior mean in one call.
# * **Super-resolution** from $7\times 7$ block means ($A$ averages $4\times4$ blocks): above the level where the
#   measurement's own noise sits, we *replace* the block means of the sample by the measurement noised to the current
#   level (notebook 05's replacement method, generalised to any $A$ with orthogonal rows). That ignores how the noise in the
#   measured and the unmeasured parts is correlated given $\mathbf{y}$: an approximation.

# %% slideshow={"slide_type": "fragment"}
k, m = pick(full=8, fast=2), pick(full=4, fast=2)
truth = test_x[:m]
y_noisy = inv.measure(truth, factor=1, sigma_y=0.5, seed=5)
y_small = inv.measure(truth, factor=4, seed=5)
den = inv.denoise_posterior(score_model, y_noisy.repeat_interleave(k, 0), 0.5, card, seed=6).view(m, k, 1, 28, 28)
sr_raw = inv.super_resolve(score_model, y_small.repeat_interleave(k, 0), card, seed=7, clamp=False,
                           n_steps=pick(full=None, fast=20)).view(m, k, 1, 28, 28)
sr = sr_raw.clamp(0, 1)                                          # pixels outside [0, 1] are clipped for display
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
P.plot_inverse_problem(axes[0], truth, y_noisy, den, den.mean(1), title="denoising, σ_y = 0.5")
P.plot_inverse_problem(axes[1], truth, y_small, sr, sr.mean(1), title="super-resolution from 7×7")
plt.show()

# %% slideshow={"slide_type": "fragment"}
mse = lambda a: ((a - truth) ** 2).mean().item()
tweedie = inv.tweedie_denoise(score_model, y_noisy, 0.5)
print(f"denoising MSE: the measurement {mse(y_noisy):.4f}, one posterior sample {mse(den[:, 0]):.4f}, "
      f"mean of {k} samples {mse(den.mean(1)):.4f}, Tweedie's mean {mse(tweedie):.4f}")
print(f"super-resolution MSE: nearest upsampling {mse(inv.upsample(y_small)):.4f}, one sample "
      f"{mse(sr[:, 0]):.4f}, mean of {k} {mse(sr.mean(1)):.4f}; |A x̂ − y| ≤ "
      f"{(inv.AveragePooling(4)(sr_raw[:, 0]) - y_small).abs().max():.1e} before clipping")

# %% slideshow={"slide_type": "skip"} tags=["claims"] jupyter={"source_hidden": true}
check_less("denoising: Tweedie's mean beats the measurement (MSE ratio)", mse(tweedie) / mse(y_noisy), 0.5)
check_less("denoising: one posterior sample beats the measurement (MSE ratio)", mse(den[:, 0]) / mse(y_noisy), 1.0)
check_less("super-resolution: the samples keep the measured block means (max error, float32)",
           (inv.AveragePooling(4)(sr_raw.flatten(0, 1)) - y_small.repeat_interleave(k, 0)).abs().max().item(),
           1e-5);

# %% [markdown] slideshow={"slide_type": "fragment"}
# Two things to read off. A posterior **sample** is further from the truth than the posterior **mean** — for exact
# posterior sampling about twice as far in mean square, since a sample is the mean plus an independent posterior draw —
# but it is a plausible digit, while the mean is a blur where the posterior is unsure. And from $7\times7$ the posterior is
# genuinely ambiguous: some samples are *other digits* with the same block means. That is the right answer, not a
# failure; a failure is a sample whose block means do not match (they do, above) or a digit the prior would not draw.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Exercises
#
# **Derive.** Write classifier-free guidance with scale $\gamma$ (the weight on $\nabla\log p(y\mid\mathbf{x})$) from a
# conditional score `cond` $= s(\mathbf{x}, y)$ and an unconditional one `uncond` $= s(\mathbf{x}, \varnothing)$. The checker
# tries it against the exact scores of §1's mixture and names the usual slips.

# %% slideshow={"slide_type": "-"} tags=["exercise"]
def my_guided_score(cond, uncond, gamma):
    return cond  # ← your formula here


check_guided_score(my_guided_score);

# %% slideshow={"slide_type": "skip"} tags=["solution"] jupyter={"source_hidden": true}
def solution_guided_score(cond, uncond, gamma):
    return uncond + gamma * (cond - uncond)   # = γ s(x, y) − (γ − 1) s(x, ∅)


check_guided_score(solution_guided_score);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap
#
# * Conditioning a score needs no normaliser: $\nabla\log p_t(\mathbf{x}\mid y) = \nabla\log p_t(\mathbf{x}) + \nabla\log p_t(y\mid\mathbf{x})$, and $p(y)$ drops out as $Z$ did.
# * A guidance scale $\gamma$ tilts the density to $p\,p(y\mid\mathbf{x})^\gamma$: sharper, less diverse, and for $\gamma \ne 1$
#   not exactly what a guided diffusion sampler ends at.
# * Classifier guidance needs a classifier of noisy inputs; classifier-free guidance one network trained with dropped labels.
# * The same sum — prior score plus likelihood score — solves inverse problems; denoising under a VE model is exact.
