"""MNIST end to end: the noise-conditional U-Net, its training run, annealed Langevin sampling, inpainting.

- :func:`make_model`: the :class:`~scoretutor.models.ScoreUNet` configuration of the shipped model.
- :func:`train`: ``fit`` with σ ~ log-uniform on [σ_min, σ_max] (σ_max by NCSNv2's Technique 1),
  λ(σ) that fits the network's output with unit weight, an EMA of the weights, gradient clipping,
  periodic checkpoints and exact resume; the EMA weights are exported as a safetensors checkpoint
  with a JSON card (:mod:`scoretutor.checkpoints`).
- :func:`load_pretrained`: the checkpoint shipped in the package (``scoretutor/checkpoints/mnist``).
- :func:`sampler_settings`, :func:`sample`, :func:`inpaint`: annealed Langevin on a geometric grid
  chosen by NCSNv2's Techniques 2 and 4, with the final denoising step (Tweedie).
- :func:`sample_pc`: predictor–corrector sampling of the VE SDE with the same network and the same
  number of network calls (the command line's default: better digits on the quality table).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scoretutor.checkpoints import git_commit, load_checkpoint, read_card, save_checkpoint
from scoretutor.checks import count, positive
from scoretutor.device import get_device, make_generator, model_device
from scoretutor.losses import continuous_ncsn_loss, unit_output_weighting
from scoretutor.models import ScoreUNet
from scoretutor.sampling import annealed_langevin, predictor_corrector, step_sizes
from scoretutor.schedules import (
    geometric_sigmas,
    ncsnv2_gamma,
    ncsnv2_step_size,
    num_levels,
    sigma_max_from_data,
)
from scoretutor.sde import VESDE, sigma_model_score_fn
from scoretutor.training import cosine_decay, fit

Tensor = torch.Tensor

SIGMA_MIN = 0.01  # a noise 100× below the 8-bit pixel steps' scale (1/255 ≈ 0.004 … 1): invisible
EMA_DECAY = 0.998
LR_SCHEDULES = ("constant", "cosine")
LR_FINAL = 0.1  # the cosine schedule ends at lr/10 (nanoGPT's min_lr)
MODEL_CONFIG = {"channels": (8, 32, 96), "blocks": (0, 1, 2), "attention": False, "c_skip": True}
TRAIN_STATE = "train_state.pt"


def make_model(**overrides) -> ScoreUNet:
    """The shipped model's architecture (``overrides`` change any :class:`ScoreUNet` argument)."""
    return ScoreUNet(**{**MODEL_CONFIG, **overrides})


def sigma_max_rule(images: Tensor, seed: int = 0, max_points: int | None = 4096) -> float:
    """NCSNv2 Technique 1: σ_max = the largest pairwise distance between training images
    (on a seeded random subset of ``max_points``; ≈ 16 for MNIST in [0, 1])."""
    return sigma_max_from_data(images, max_points=max_points, generator=torch.Generator().manual_seed(seed))


def shipped_checkpoint_dir() -> Path:
    """The folder of the pretrained checkpoint inside the package."""
    return Path(str(resources.files("scoretutor") / "checkpoints" / "mnist"))


def load_pretrained(directory: str | os.PathLike | None = None, device=None) -> tuple[nn.Module, dict]:
    """(model, card) of a trained MNIST checkpoint folder (default: the shipped one)."""
    return load_checkpoint(directory if directory is not None else shipped_checkpoint_dir(), device=device)


# -- training ----------------------------------------------------------------------------------
_RUN_KEYS = ("sigma_min", "sigma_max", "ema_decay", "batch_size", "lr", "grad_clip", "seed")


def train(out: str | os.PathLike, steps: int, images: Tensor, *, batch_size: int = 64, lr: float = 2e-3,
          sigma_min: float = SIGMA_MIN, sigma_max: float | None = None, ema_decay: float = EMA_DECAY,
          grad_clip: float = 1.0, seed: int = 0, device=None, resume: bool = False,
          checkpoint_every: int = 500, progress: bool | None = None, data_info: dict | None = None,
          model: ScoreUNet | None = None, command: str | None = None,
          time_limit_s: float | None = None, lr_schedule: str = "constant",
          compile: bool = False) -> tuple[nn.Module, dict]:
    """Train a score model on ``images`` (N, 1, 28, 28) in [0, 1]; write its checkpoint to ``out``.

    Loss: E_{σ∼logU[σ_min, σ_max]} λ(σ) · ½‖s_θ(x + σz, σ) + z/σ‖² (:func:`continuous_ncsn_loss`) with
    λ(σ) = σ² (σ² + σ_d²)/σ_d² for a ``c_skip`` model (:func:`unit_output_weighting`), else σ².
    ``out`` receives ``model.safetensors`` + ``model.json`` (the EMA weights, every
    ``checkpoint_every`` steps and at the end) and ``train_state.pt`` (weights, optimiser, EMA,
    loss history and generator state) from which ``resume=True`` continues exactly. With
    ``time_limit_s`` training stops early once that many seconds have passed (the card records the
    steps done). ``lr_schedule="cosine"`` decays the learning rate from ``lr`` to ``lr``/10 over
    ``steps`` (:func:`~scoretutor.training.cosine_decay`); ``compile`` trains through
    ``torch.compile`` (same weights, faster steps). Returns the EMA model and the card.
    """
    steps = count(steps, "steps", 1)
    out = Path(out)
    state_path = out / TRAIN_STATE
    previous: dict = {}
    if resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"nothing to resume: no {TRAIN_STATE} in {out}")
        previous = read_card(out)
    elif state_path.exists():
        raise ValueError(f"{out} already holds a training run ({TRAIN_STATE}); pass resume=True (--resume) "
                         "to continue it, or choose another output folder")
    device = torch.device(device) if device is not None else get_device()
    if sigma_max is None:
        sigma_max = previous.get("sigma_max") or sigma_max_rule(images, seed)
    run = {"sigma_min": positive(sigma_min, "sigma_min"), "sigma_max": positive(sigma_max, "sigma_max"),
           "ema_decay": float(ema_decay), "batch_size": count(batch_size, "batch_size", 1),
           "lr": positive(lr, "lr"), "grad_clip": positive(grad_clip, "grad_clip"), "seed": int(seed)}
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    schedule = {"lr_schedule": lr_schedule}
    if lr_schedule == "cosine":
        schedule.update(lr_decay_steps=steps, lr_final=LR_FINAL)
    if not 0 < run["ema_decay"] < 1:
        raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay}")
    if not run["sigma_min"] < run["sigma_max"]:
        raise ValueError(f"need sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    if previous:
        clash = [f"{k}: run {previous.get(k)!r}, now {run[k]!r}" for k in _RUN_KEYS
                 if previous.get(k) is not None and not math.isclose(float(previous[k]), float(run[k]))]
        before = {k: previous.get(k, "constant" if k == "lr_schedule" else None) for k in schedule}
        if before != schedule:
            clash.append(f"learning-rate schedule: run {before}, now {schedule} (a cosine schedule is fixed "
                         "by the --steps it started with)")
        if clash:
            raise ValueError(f"--resume with settings that differ from the run in {out}: " + "; ".join(clash))
    if model is None:
        model = make_model()
    if previous:
        mine = json.loads(json.dumps(model.config))  # tuples → lists, as in the card
        if previous.get("model", {}).get("config") != mine:
            raise ValueError(f"--resume: the model in {out} has config "
                             f"{previous.get('model', {}).get('config')}, this one {mine}")
    if model.config.get("c_skip"):  # fit the network's output F with weight 1 at every σ
        weighting = unit_output_weighting(model.sigma_data)
        loss_name = "lambda(sigma) = sigma^2 (sigma^2 + sigma_data^2) / sigma_data^2"
    else:
        weighting, loss_name = "sigma2", "lambda(sigma) = sigma^2"
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(run["ema_decay"]), use_buffers=True)
    wall_before = float(previous.get("wall_time_s", 0.0))
    commit = git_commit()  # the code that runs, read once (the checkout may change while it trains)
    t0 = time.perf_counter()
    data = dict(data_info or {"name": "mnist", "split": "train", "count": int(images.shape[0])})

    def card(done: int) -> dict:
        return {**run, **schedule, "steps": done, "data": data,
                "loss": f"continuous NCSN: sigma ~ logU[sigma_min, sigma_max], {loss_name}",
                "wall_time_s": round(wall_before + time.perf_counter() - t0, 1),
                "device": str(device), "threads": torch.get_num_threads(), "compiled": bool(compile),
                "torch_version": torch.__version__,
                "git_commit": commit, **({"command": command} if command else {})}

    def export(done: int) -> None:
        save_checkpoint(out, ema.module, **card(done))

    def loss_fn(net: nn.Module, x: Tensor, g: torch.Generator) -> Tensor:
        return continuous_ncsn_loss(net, x, run["sigma_min"], run["sigma_max"], weighting=weighting,
                                    generator=g)

    fit(model, loss_fn, images, steps, batch_size=run["batch_size"], lr=run["lr"], seed=run["seed"],
        device=device, progress=progress, checkpoint_path=state_path, checkpoint_every=checkpoint_every,
        grad_clip=run["grad_clip"], desc="training MNIST score model", mixed_precision=True, ema=ema,
        on_checkpoint=export, time_limit_s=time_limit_s, compile=compile,
        lr_factor=None if lr_schedule == "constant" else cosine_decay(steps, LR_FINAL))
    return ema.module.eval(), read_card(out)


# -- sampling ----------------------------------------------------------------------------------
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
        """σ_1 > … > σ_L in the order the sampler visits them."""
        return geometric_sigmas(self.sigma_max, self.sigma_min, self.n_levels, dtype=torch.float64)

    @property
    def n_score_evals(self) -> int:
        return self.n_levels * self.n_steps_each + 1  # + the final denoising step


def sampler_settings(sigma_max: float, sigma_min: float = SIGMA_MIN, n_steps_each: int = DEFAULT_STEPS_EACH,
                     step_size: float | None = None, n_levels: int | None = None, dim: int = 28 * 28,
                     step_size_factor: float = STEP_SIZE_FACTOR) -> SamplerSettings:
    """The NCSNv2 rules for images of ``dim`` pixels: γ from Technique 2 (half the mass of p_{σ_i}
    inside the 3-std shell of p_{σ_{i−1}}), L = 1 + ⌈log(σ_max/σ_min)/log γ⌉ levels, and ε from
    Technique 4 for T = ``n_steps_each`` (times ``step_size_factor``) unless ``step_size`` is given."""
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


@torch.no_grad()
def sample(model: nn.Module, n: int, settings: SamplerSettings, seed: int = 0,
           return_trajectory: bool = False, progress: bool | None = None, clamp: bool = True):
    """n images by annealed Langevin from x_0 ~ N(0, σ_max² I) with the final denoising step.

    Noise is drawn from a CPU generator seeded with ``seed``, so a seed gives the same images on
    any device. Returns (n, 1, 28, 28) clipped to [0, 1] (``clamp``), and with ``return_trajectory``
    also the iterate at the end of every level, shape (L + 2, n, 1, 28, 28) (start, L levels, final).
    """
    n = count(n, "n", 1)
    device = model_device(model)
    g = make_generator(seed, "cpu")
    x0 = (settings.sigma_max * torch.randn(n, 1, 28, 28, generator=g)).to(device)
    out = annealed_langevin(lambda x, s: model(x, s), x0, settings.sigmas, settings.step_size,
                            settings.n_steps_each, generator=g, denoise_last=True,
                            return_trajectory=return_trajectory, trajectory_every=settings.n_steps_each,
                            progress=progress)
    x, traj = out.x, out.trajectory
    if clamp:
        x = x.clamp(0, 1)
    return (x, traj) if return_trajectory else x


PC_SNR = 0.3  # corrector signal-to-noise ratio r: best of 0.1–0.6 at n = 256; equal to 0.35 at n = 1,000
PC_CORRECTORS = 2  # Langevin steps per level; with 95 levels 95 · (1 + 2) = 285 network calls


def pc_steps(card: dict) -> int:
    """The predictor steps of :func:`sample_pc`: the NCSNv2 grid's number of levels L (95 here)."""
    return default_settings(card).n_levels


@torch.no_grad()
def sample_pc(model: nn.Module, n: int, card: dict, seed: int = 0, n_steps: int | None = None,
              snr: float = PC_SNR, n_corrector: int = PC_CORRECTORS, progress: bool | None = None,
              clamp: bool = True) -> Tensor:
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
    device = model_device(model)
    g = make_generator(seed, "cpu")
    sde = VESDE(card["sigma_min"], card["sigma_max"])
    x_T = (card["sigma_max"] * torch.randn(n, 1, 28, 28, generator=g)).to(device)
    x = predictor_corrector(sigma_model_score_fn(model, sde), sde, x_T, n_steps, snr=snr,
                            n_corrector=n_corrector, generator=g, progress=progress).x
    return x.clamp(0, 1) if clamp else x


@torch.no_grad()
def inpaint(model: nn.Module, images: Tensor, known: Tensor, settings: SamplerSettings, seed: int = 0,
            clamp: bool = True) -> Tensor:
    """Fill in the unknown pixels of ``images`` (where ``known`` is False) by annealed Langevin.

    At each level σ_i the known pixels are set to y + σ_i z (the data noised to the current level, so
    the whole image is a sample of p_{σ_i}) before every step, and the rest follow
    x ← x + α_i s_θ(x, σ_i) + √(2α_i) z; after the final denoising step the known pixels are exactly y.
    """
    if images.ndim != 4 or known.shape not in (images.shape, images.shape[1:], images.shape[2:]):
        raise ValueError(f"images must be (N, C, H, W) and known a boolean mask of the same (or (C, H, W) / "
                         f"(H, W)) shape, got {tuple(images.shape)} and {tuple(known.shape)}")
    device = model_device(model)
    y, mask = images.to(device), known.to(device=device, dtype=torch.bool).expand(images.shape)
    g = make_generator(seed, "cpu")
    noise = lambda: torch.randn(y.shape, generator=g).to(device)
    x = torch.where(mask, y, settings.sigma_max * noise())
    sigmas = settings.sigmas.tolist()
    for sigma, alpha in zip(sigmas, step_sizes(sigmas, settings.step_size), strict=True):
        y_sigma = y + sigma * noise()
        for _ in range(settings.n_steps_each):
            x = torch.where(mask, y_sigma, x)
            x = x + alpha * model(x, sigma) + math.sqrt(2 * alpha) * noise()
    x = torch.where(mask, y_sigma, x)
    x = x + sigmas[-1] ** 2 * model(x, sigmas[-1])  # Tweedie: E[x_clean | x] at σ_L
    x = torch.where(mask, y, x)
    return x.clamp(0, 1) if clamp else x
