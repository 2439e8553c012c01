"""Make the README figure: Song & Ermon (2019) Fig. 3 with exact scores (no training needed).

    python docs/make_figures.py            # writes docs/overview.png

Samples from the NCSN mixture, from plain Langevin with the exact score, and from annealed
Langevin with the exact perturbed scores (σ geometric 20 → 1 in 10 levels, ε = 0.1, T = 100,
1280 particles from U[−8, 8]², no final denoising step, as in the paper), with the fraction of
particles in the (−5, −5) mode.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from scoretutor.densities import ncsn_mixture  # noqa: E402
from scoretutor.lecture import plotting as P  # noqa: E402
from scoretutor.sampling import annealed_langevin, langevin  # noqa: E402
from scoretutor.schedules import geometric_sigmas  # noqa: E402

OUT = Path(__file__).with_name("overview.png")


def main(out: Path = OUT, n: int = 1280, seed: int = 0) -> None:
    mix = ncsn_mixture()
    g = torch.Generator().manual_seed(seed)
    x0 = 16 * torch.rand(n, 2, generator=g) - 8
    sigmas = geometric_sigmas(20.0, 1.0, 10)
    plain = langevin(mix.score, x0, step_size=0.1, n_steps=1000, generator=g).x
    annealed = annealed_langevin(mix.noise_conditional_score(), x0, sigmas, step_size=0.1,
                                 n_steps_each=100, generator=g, denoise_last=False).x
    panels = [("data", mix.sample(n, generator=g)), ("Langevin", plain), ("annealed Langevin", annealed)]
    fig, axes = P.figure_row(3, size=3.4)
    for ax, (name, x) in zip(axes, panels, strict=True):
        frac = (mix.component_of(x) == 0).float().mean().item()
        P.plot_samples(ax, x, lim=9, s=2, title=f"{name}\nweight of (−5,−5) mode: {frac:.2f}")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
