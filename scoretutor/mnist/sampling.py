"""Sampling the MNIST score model: annealed Langevin, predictor–corrector, inpainting.

- :func:`sampler_settings`, :func:`sample`, :func:`inpaint`: annealed Langevin on a geometric grid
  chosen by NCSNv2's Techniques 2 and 4, with the final denoising step (Tweedie).
- :func:`sample_pc`: predictor–corrector sampling of the VE SDE with the same network and the same
  number of network calls (the command line's default: better digits on the quality table).

Each takes ``precision`` (``"auto"``, ``"bf16"``, ``"fp32"``; None = ``SCORETUTOR_PRECISION``, else auto;
see :func:`~scoretutor.device.resolve_precision`): the network runs under bf16 autocast where it resolves
to bf16, and the sampler's own arithmetic (steps, noise, step sizes) stays in fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from scoretutor.checks import count, positive
from scoretutor.device import make_generator, model_device, resolve_precision
from scoretutor.diffusion.samplers import predictor_corrector
from scoretutor.diffusion.sde import VESDE, sigma_model_score_fn
from scoretutor.mnist.training import SIGMA_MIN
from scoretutor.sampling import annealed_langevin, step_sizes
from scoretutor.schedules import geometric_sigmas, ncsnv2_gamma, ncsnv2_step_size, num_levels

Tensor = torch.Tensor

DEFAULT_STEPS_EACH = 3  # T per level; with the NCSNv2 grid (L = 95) 286 network calls
STEP_SIZE_FACTOR = 2.0  # ε = 2 × NCSNv2's Technique-4 step size: best of 0.5–8 on the quality table (n = 256)


@dataclass(frozen=True)
class SamplerSettings:
    """Annealed Langevin settings: L geometric levels σ_max → σ_min, T steps each, step size ε."""

    sigma_max: float
    sigma_min: float
    n_levels: int
    n_steps_each: int
    step_size: float

    @property
    def sigmas(self) -> Tensor:
        """From σ_max (= σ_L) down to σ_min (= σ_1): the order the sampler visits them."""
        return geometric_sigmas(self.sigma_max, self.sigma_min, self.n_levels, dtype=torch.float64)

    @property
    def n_score_evals(self) -> int:
        return self.n_levels * self.n_steps_each + 1  # + the final denoising step


def sampler_settings(sigma_max: float, sigma_min: float = SIGMA_MIN, n_steps_each: int = DEFAULT_STEPS_EACH,
                     step_size: float | None = None, n_levels: int | None = None, dim: int = 28 * 28,
                     step_size_factor: float = STEP_SIZE_FACTOR) -> SamplerSettings:
    """The NCSNv2 rules for images of ``dim`` pixels: γ from Technique 2 (half the mass of p_{σ_i}
    inside the 3-std shell of p_{σ_{i+1}}, the next larger level), L = 1 + ⌈log(σ_max/σ_min)/log γ⌉
    levels, and ε from Technique 4 for T = ``n_steps_each`` (times ``step_size_factor``) unless
    ``step_size`` is given."""
    sigma_max, sigma_min = positive(sigma_max, "sigma_max"), positive(sigma_min, "sigma_min")
    T = count(n_steps_each, "n_steps_each", 1)
    if n_levels is None:
        n_levels = num_levels(sigma_max, sigma_min, ncsnv2_gamma(dim))
    n_levels = count(n_levels, "n_levels", 2)
    if step_size is None:
        gamma = (sigma_max / sigma_min) ** (1 / (n_levels - 1))
        step_size = positive(step_size_factor, "step_size_factor") * ncsnv2_step_size(T, gamma, sigma_min)
    return SamplerSettings(sigma_max, sigma_min, n_levels, T, positive(step_size, "step_size"))


def default_settings(card: dict, **overrides) -> SamplerSettings:
    """The notebook's and the CLI's sampler settings for a checkpoint card (its σ range)."""
    return sampler_settings(card["sigma_max"], card["sigma_min"], **overrides)


def network(model: nn.Module, precision: str | None = None):
    """s(x, σ) = ``model(x, σ)`` computed in ``precision`` (resolved on the model's device; bf16 =
    bf16 autocast around the call only) and returned in x's dtype, so the sampler's arithmetic stays fp32."""
    device = model_device(model)
    if resolve_precision(precision, device) == "fp32":
        return model

    def score(x: Tensor, sigma) -> Tensor:  # resolved once above, not at each of the ~285 calls
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return model(x, sigma).to(x.dtype)

    return score


def _start(n: int, sigma_max: float, seed: int, device) -> tuple[torch.Generator, Tensor]:
    """The samplers' shared start: a CPU generator seeded with ``seed`` (so a seed gives the same images on
    any device) and x ~ N(0, σ_max² I), n images, drawn from it first and moved to ``device``."""
    g = make_generator(seed, "cpu")
    return g, (sigma_max * torch.randn(n, 1, 28, 28, generator=g)).to(device)


@torch.no_grad()
def sample(model: nn.Module, n: int, settings: SamplerSettings, seed: int = 0,
           return_trajectory: bool = False, progress: bool | None = None, clamp: bool = True,
           precision: str | None = None):
    """n images by annealed Langevin from x_0 ~ N(0, σ_max² I) with the final denoising step.

    Noise is drawn from a CPU generator seeded with ``seed``, so a seed gives the same images on
    any device. Returns (n, 1, 28, 28) clipped to [0, 1] (``clamp``), and with ``return_trajectory``
    also the iterate at the end of every level, shape (L + 2, n, 1, 28, 28) (start, L levels, final).
    """
    n = count(n, "n", 1)
    g, x0 = _start(n, settings.sigma_max, seed, model_device(model))
    out = annealed_langevin(network(model, precision), x0, settings.sigmas, settings.step_size,
                            settings.n_steps_each, generator=g, denoise_last=True,
                            return_trajectory=return_trajectory, trajectory_every=settings.n_steps_each,
                            progress=progress)
    x, traj = out.x, out.trajectory
    if clamp:
        x = x.clamp(0, 1)
    return (x, traj) if return_trajectory else x


def sample_with_snapshots(model: nn.Module, n: int, settings: SamplerSettings, seed: int = 0,
                          n_snapshots: int = 10) -> dict:
    """:func:`sample`, plus ``n_snapshots`` iterates of the first sample from the start x ~ N(0, σ_max² I) to
    the denoised result, and the wall time: ``{"samples", "snapshots", "seconds"}`` (what notebook 05 shows
    and caches)."""
    import time

    t0 = time.perf_counter()
    x, traj = sample(model, n, settings, seed=seed, return_trajectory=True)
    keep = torch.linspace(0, len(traj) - 1, count(n_snapshots, "n_snapshots", 2)).round().long()
    return {"samples": x.cpu(), "snapshots": traj[keep, 0].cpu(), "seconds": time.perf_counter() - t0}


PC_SNR = 0.3  # corrector signal-to-noise ratio r: best of 0.1–0.6 at n = 256; equal to 0.35 at n = 1,000
PC_CORRECTORS = 2  # Langevin steps per level; with 95 levels 95 · (1 + 2) = 285 network calls


def pc_steps(card: dict) -> int:
    """The predictor steps of :func:`sample_pc`: the NCSNv2 grid's number of levels L (95 here)."""
    return default_settings(card).n_levels


@torch.no_grad()
def sample_pc(model: nn.Module, n: int, card: dict, seed: int = 0, n_steps: int | None = None,
              snr: float = PC_SNR, n_corrector: int = PC_CORRECTORS, progress: bool | None = None,
              clamp: bool = True, precision: str | None = None) -> Tensor:
    """n images by predictor–corrector sampling of the VE SDE σ(t) = σ_min (σ_max/σ_min)^t (notebook 06).

    From x ~ N(0, σ_max² I), at each of ``n_steps`` levels (default :func:`pc_steps`, the NCSNv2 grid):
    ``n_corrector`` Langevin steps x ← x + ε s + √(2ε) z with ε = 2 (r √D / ‖s‖)² (r = ``snr``, D = 784),
    then one reverse-diffusion step to the next level,
    x ← x + (σ_k² − σ_{k+1}²) s_θ(x, σ_k) + √(σ_k² − σ_{k+1}²) z;
    the last predictor step adds no noise (it is the denoising step). Annealed Langevin is the
    corrector alone; the predictor moves the sample down to each new level explicitly.
    Same seeding as :func:`sample` (a CPU generator, so a seed gives the same images on any device).
    """
    n = count(n, "n", 1)
    n_steps = pc_steps(card) if n_steps is None else count(n_steps, "n_steps", 1)
    sde = VESDE(card["sigma_min"], card["sigma_max"])
    g, x_T = _start(n, card["sigma_max"], seed, model_device(model))
    x = predictor_corrector(sigma_model_score_fn(network(model, precision), sde), sde, x_T, n_steps, snr=snr,
                            n_corrector=n_corrector, generator=g, progress=progress).x
    return x.clamp(0, 1) if clamp else x


ODE_SOLVER = "DPM-Solver++(2M)"  # the default ODE solver: see benchmarks/mnist_ode.py
ODE_CALLS = 50


@torch.no_grad()
def sample_ode(model: nn.Module, n: int, card: dict, n_calls: int = ODE_CALLS, solver: str = ODE_SOLVER,
               schedule: str = "karras", seed: int = 0, clamp: bool = True, precision: str | None = None,
               churn: float = 0.0) -> Tensor:
    """n images by solving the probability-flow ODE of the VE SDE σ(t) = σ_min (σ_max/σ_min)^t with one of
    notebook 07's solvers (:data:`scoretutor.diffusion.solvers.SOLVERS`) in about ``n_calls`` network calls,
    on EDM's σ grid (``schedule="karras"``, ρ = 7). Deterministic given x_T ~ N(0, σ_max² I), which is drawn
    as in :func:`sample_pc` (same seed, same x_T). ``churn`` > 0 (Heun only) adds Karras et al.'s fresh
    noise before each step (S_churn), which makes it a stochastic sampler."""
    from scoretutor.diffusion.solvers import SOLVERS, denoiser_from_score, heun, run_solver, time_grid

    n = count(n, "n", 1)
    if solver not in SOLVERS or SOLVERS[solver][0] != "ode":
        odes = [k for k, v in SOLVERS.items() if v[0] == "ode"]
        raise ValueError(f"solver must be one of {odes}, got {solver!r}")
    sde = VESDE(card["sigma_min"], card["sigma_max"])
    g, x_T = _start(n, card["sigma_max"], seed, model_device(model))
    score = sigma_model_score_fn(network(model, precision), sde)
    flat = lambda x, t: score(x.view(-1, 1, 28, 28), t).flatten(1)  # the solvers step (N, D) arrays
    if churn:
        if solver != "Heun (Karras)":
            raise ValueError(f"churn is a Heun (Karras) option, got solver {solver!r}")
        ts = time_grid(sde, max(1, count(n_calls, "n_calls", 2) // 2), schedule)
        x = heun(denoiser_from_score(flat, sde), sde, x_T.flatten(1), ts, churn=churn, generator=g).x
    else:
        x = run_solver(solver, flat, sde, x_T.flatten(1), n_calls, schedule=schedule).x
    x = x.view(-1, 1, 28, 28)
    return x.clamp(0, 1) if clamp else x


@torch.no_grad()
def inpaint(model: nn.Module, images: Tensor, known: Tensor, settings: SamplerSettings, seed: int = 0,
            clamp: bool = True, precision: str | None = None) -> Tensor:
    """Fill in the unknown pixels of ``images`` (where ``known`` is False) by annealed Langevin.

    At each level σ_i the known pixels are set to y + σ_i z (the data noised to the current level; an
    approximate conditional sampler, not an exact one) before every step, and the rest follow
    x ← x + α_i s_θ(x, σ_i) + √(2α_i) z; after the final denoising step the known pixels are exactly y.
    """
    if images.ndim != 4 or known.shape not in (images.shape, images.shape[1:], images.shape[2:]):
        raise ValueError(f"images must be (N, C, H, W) and known a boolean mask of the same (or (C, H, W) / "
                         f"(H, W)) shape, got {tuple(images.shape)} and {tuple(known.shape)}")
    device = model_device(model)
    net = network(model, precision)
    y, mask = images.to(device), known.to(device=device, dtype=torch.bool).expand(images.shape)
    g = make_generator(seed, "cpu")
    noise = lambda: torch.randn(y.shape, generator=g).to(device)
    x = torch.where(mask, y, settings.sigma_max * noise())
    sigmas = settings.sigmas.tolist()
    for sigma, alpha in zip(sigmas, step_sizes(sigmas, settings.step_size), strict=True):
        y_sigma = y + sigma * noise()
        for _ in range(settings.n_steps_each):
            x = torch.where(mask, y_sigma, x)
            x = x + alpha * net(x, sigma) + math.sqrt(2 * alpha) * noise()
    x = torch.where(mask, y_sigma, x)
    x = x + sigmas[-1] ** 2 * net(x, sigmas[-1])  # Tweedie: E[x_clean | x] at σ_1 = σ_min
    x = torch.where(mask, y, x)
    return x.clamp(0, 1) if clamp else x
