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
# # 00 · Overview: generative modelling by estimating gradients of the data distribution
#
# *Song & Ermon (2019), along Yang Song's 2021 essay.* One page for the whole story; each step is a notebook.
#
# 1. **Model the score, not the density.** An energy-based model $p_\theta(\mathbf{x}) = e^{-f_\theta(\mathbf{x})}/Z_\theta$
#    needs the normaliser $Z_\theta$; the score $\nabla_\mathbf{x} \log p_\theta(\mathbf{x}) = -\nabla_\mathbf{x} f_\theta(\mathbf{x})$ does not.
# 2. **Train by score matching.** Minimise the Fisher divergence
#    $\mathbb{E}_{p(\mathbf{x})}\|\nabla_\mathbf{x} \log p(\mathbf{x}) - \mathbf{s}_\theta(\mathbf{x})\|_2^2$ without knowing
#    $\nabla_\mathbf{x} \log p$: denoising, implicit or sliced score matching.
# 3. **Sample by Langevin dynamics.** $\mathbf{x}_{i+1} \leftarrow \mathbf{x}_i + \epsilon\, \mathbf{s}_\theta(\mathbf{x}_i) + \sqrt{2\epsilon}\, \mathbf{z}_i$, $i = 0, \dots, K$.
# 4. **Add noise to get around low density.** Learned scores are wrong where data is rare, and Langevin
#    cannot weigh separated modes; perturbing the data with noise levels $\sigma_1 < \dots < \sigma_L$ and annealing
#    from $\sigma_L$ down to $\sigma_1$ fixes both.
# 5. **Images**: the same recipe on MNIST digits; **diffusion models**: the continuous-time view of the same idea.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The 90-minute lecture
#
# One route through notebooks 01–06 in the order of the deck. Minutes are presenting time; the *drop if late*
# stops can shrink to one sentence. Two explorers are best shown **live** in JupyterLab (stops 8 and 14); everywhere
# else the figures are enough. 🔍 deep dives, appendices and exercises are off the route, for students afterwards.
# `scoretutor export lecture --full --out DIR` writes this route as one reveal.js deck with speaker notes (press S).
# Notebooks beyond the deck — 07, faster sampling (ODE solvers, DDIM, flow matching), and 08, controllable generation
# (guidance, class-conditional digits, inverse problems) — are extension material, outside the route.

# %%
from IPython.display import Markdown

from scoretutor.lecture.route import route_markdown

Markdown(route_markdown())

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The notebooks
#
# Times are wall-clock on a 2-core CPU without a GPU. *Fast mode* (`SCORETUTOR_FAST=1`, what CI runs) shrinks every
# training and sampling loop; *full mode* (unset) makes the figures the lecture shows. Set `SCORETUTOR_DEVICE=cuda`
# (or leave it to `get_device()`) to use a GPU where one helps.

# %%
from scoretutor.lecture.overview import contents, contents_markdown

Markdown(contents_markdown())

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Three ways to use the suite
#
# * **Lecture**: `bash scripts/lab.sh` opens JupyterLab here; present a notebook as slides with RISE
#   (`pip install -e '.[slides]'`), or export slides and handouts with `scoretutor export slides|html --full --out DIR`.
# * **On your own**: run the notebooks top to bottom; exercises have hidden solutions (click to expand).
# * **Just the sliders**: `scoretutor explore` serves the σ and ε explorers as a page without code.

# %% tags=["check"] slideshow={"slide_type": "skip"}
from scoretutor.lecture.claims import check_true
from scoretutor.lecture.route import total_minutes

entries = contents()
check_true("the overview lists every numbered notebook", len(entries) >= 5 and entries[0].number == "00",
           f"found {[e.file for e in entries]}")
check_true("the lecture route takes 85–95 minutes", 85 <= total_minutes() <= 95, f"{total_minutes()} min")
