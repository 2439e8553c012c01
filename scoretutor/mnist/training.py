"""Training the MNIST score model: the shipped configuration, its training run, the shipped checkpoint.

- :func:`make_model`: the :class:`~scoretutor.mnist.unet.ScoreUNet` configuration of the shipped model.
- :func:`train`: ``fit`` with σ ~ log-uniform on [σ_min, σ_max] (σ_max by NCSNv2's Technique 1),
  λ(σ) that fits the network's output with unit weight, an EMA of the weights, gradient clipping,
  periodic checkpoints and exact resume; the EMA weights are exported as a safetensors checkpoint
  with a JSON card (:mod:`scoretutor.mnist.checkpoints`).
- :func:`load_pretrained`: the checkpoint shipped in the package (``scoretutor/mnist/shipped/score_model``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scoretutor.checks import count, positive
from scoretutor.device import get_device, resolve_precision
from scoretutor.errors import CheckpointNotFoundError, UsageError
from scoretutor.files import git_commit
from scoretutor.losses import continuous_ncsn_loss, unit_output_weighting
from scoretutor.mnist.checkpoints import load_checkpoint, read_card, save_checkpoint
from scoretutor.mnist.data import SHIPPED_DIR
from scoretutor.mnist.unet import ScoreUNet
from scoretutor.schedules import (
    sigma_max_from_data,
)
from scoretutor.training import cosine_decay, fit

Tensor = torch.Tensor

SIGMA_MIN = 0.01  # a noise 100× below the 8-bit pixel steps' scale (1/255 ≈ 0.004 … 1): invisible
EMA_DECAY = 0.998
LR_SCHEDULES = ("constant", "cosine")
LR_FINAL = 0.1  # the cosine schedule ends at lr/10 (nanoGPT's min_lr)
MODEL_CONFIG = {"channels": (8, 32, 96), "blocks": (0, 1, 2), "attention": False, "c_skip": True}
TRAIN_STATE = "train_state.pt"
LABEL_DROPOUT = 0.1  # class-conditional training: share of labels replaced by ∅ (Ho & Salimans: 0.1–0.2)


def make_model(**overrides) -> ScoreUNet:
    """The shipped model's architecture (``overrides`` change any :class:`ScoreUNet` argument)."""
    return ScoreUNet(**{**MODEL_CONFIG, **overrides})


def sigma_max_rule(images: Tensor, seed: int = 0, max_points: int | None = 4096) -> float:
    """NCSNv2 Technique 1: σ_max = the largest pairwise distance between training images
    (on a seeded random subset of ``max_points``; ≈ 16 for MNIST in [0, 1])."""
    return sigma_max_from_data(images, max_points=max_points, generator=torch.Generator().manual_seed(seed))


def shipped_checkpoint_dir() -> Path:
    """The folder of the pretrained checkpoint inside the package."""
    return SHIPPED_DIR / "score_model"


def load_pretrained(directory: str | os.PathLike | None = None, device=None) -> tuple[nn.Module, dict]:
    """(model, card) of a trained MNIST checkpoint folder (default: the shipped one)."""
    return load_checkpoint(directory if directory is not None else shipped_checkpoint_dir(), device=device)


# -- training ----------------------------------------------------------------------------------
_RUN_KEYS = ("sigma_min", "sigma_max", "ema_decay", "batch_size", "lr", "grad_clip", "seed", "label_dropout")


def train(out: str | os.PathLike, steps: int, images: Tensor, *, batch_size: int = 64, lr: float = 2e-3,
          sigma_min: float = SIGMA_MIN, sigma_max: float | None = None, ema_decay: float = EMA_DECAY,
          grad_clip: float = 1.0, seed: int = 0, device=None, resume: bool = False,
          checkpoint_every: int = 500, progress: bool | None = None, data_info: dict | None = None,
          model: ScoreUNet | None = None, command: str | None = None,
          time_limit_s: float | None = None, lr_schedule: str = "constant",
          compile: bool = False, stop: Callable[[], bool] | None = None,
          precision: str | None = None, labels: Tensor | None = None,
          label_dropout: float = LABEL_DROPOUT) -> tuple[nn.Module, dict]:
    """Train a score model on ``images`` (N, 1, 28, 28) in [0, 1]; write its checkpoint to ``out``.

    Loss: E_{σ∼logU[σ_min, σ_max]} λ(σ) · ½‖s_θ(x + σz, σ) + z/σ‖² (:func:`continuous_ncsn_loss`) with
    λ(σ) = σ² (σ² + σ_d²)/σ_d² for a ``c_skip`` model (:func:`unit_output_weighting`), else σ².
    ``out`` receives ``model.safetensors`` + ``model.json`` (the EMA weights, every
    ``checkpoint_every`` steps and at the end) and ``train_state.pt`` (weights, optimiser, EMA,
    loss history and generator state) from which ``resume=True`` continues exactly. With
    ``time_limit_s`` training stops early once that many seconds have passed (the card records the
    steps done). ``lr_schedule="cosine"`` decays the learning rate from ``lr`` to ``lr``/10 over
    ``steps`` (:func:`~scoretutor.training.cosine_decay`); ``compile`` trains through
    ``torch.compile`` (same weights, faster steps); ``stop`` ends the run cleanly after the step under
    way once it returns True (see :func:`~scoretutor.training.fit`). ``precision`` (``"auto"``, ``"bf16"``,
    ``"fp32"``; None = ``SCORETUTOR_PRECISION``, else auto) is resolved on the device by
    :func:`~scoretutor.device.resolve_precision` and recorded in the card (``"precision"``); bf16 runs the
    forward pass under bf16 autocast, with weights, optimiser state and EMA in fp32.
    With ``labels`` (N,) the model is class-conditional (default ``make_model(n_classes=10)``), trained on
    s_θ(x̃, σ, y) with each label replaced by the null label ∅ with probability ``label_dropout``, so one
    network learns both ∇ log p_σ(x | y) and ∇ log p_σ(x) (classifier-free guidance, notebook 08).
    Returns the EMA model and the card.
    """
    steps = count(steps, "steps", 1)
    out = Path(out)
    state_path = out / TRAIN_STATE
    previous: dict = {}
    if resume:
        if not state_path.is_file():
            raise CheckpointNotFoundError(f"nothing to resume: no {TRAIN_STATE} in {out}")
        previous = read_card(out)
    elif state_path.exists():
        raise UsageError(f"{out} already holds a training run ({TRAIN_STATE}); pass resume=True (--resume) "
                         "to continue it, or choose another output folder")
    device = torch.device(device) if device is not None else get_device()
    precision = resolve_precision(precision, device)
    if sigma_max is None:
        sigma_max = previous.get("sigma_max") or sigma_max_rule(images, seed)
    run = {"sigma_min": positive(sigma_min, "sigma_min"), "sigma_max": positive(sigma_max, "sigma_max"),
           "ema_decay": float(ema_decay), "batch_size": count(batch_size, "batch_size", 1),
           "lr": positive(lr, "lr"), "grad_clip": positive(grad_clip, "grad_clip"), "seed": int(seed)}
    if labels is not None:
        if not 0 <= label_dropout < 1:
            raise UsageError(f"label_dropout must lie in [0, 1), got {label_dropout}")
        if labels.shape != images.shape[:1]:
            raise UsageError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        run["label_dropout"] = float(label_dropout)
    if lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    schedule = {"lr_schedule": lr_schedule}
    if lr_schedule == "cosine":
        schedule.update(lr_decay_steps=steps, lr_final=LR_FINAL)
    if not 0 < run["ema_decay"] < 1:
        raise UsageError(f"ema_decay must lie in (0, 1), got {ema_decay}")
    if not run["sigma_min"] < run["sigma_max"]:
        raise UsageError(f"need sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    if previous:
        clash = [f"{k}: run {previous.get(k)!r}, now {run[k]!r}" for k in _RUN_KEYS
                 if previous.get(k) is not None and not math.isclose(float(previous[k]), float(run[k]))]
        before = {k: previous.get(k, "constant" if k == "lr_schedule" else None) for k in schedule}
        if before != schedule:
            clash.append(f"learning-rate schedule: run {before}, now {schedule} (a cosine schedule is fixed "
                         "by the --steps it started with)")
        if clash:
            raise UsageError(f"--resume with settings that differ from the run in {out}: " + "; ".join(clash))
    if model is None:
        model = make_model(n_classes=10) if labels is not None else make_model()
    if (labels is not None) != bool(getattr(model, "n_classes", 0)):
        raise UsageError("a class-conditional model (n_classes > 0) trains with labels, an unconditional one "
                         "without")
    if previous:
        mine = json.loads(json.dumps(model.config))  # tuples → lists, as in the card
        if previous.get("model", {}).get("config") != mine:
            raise UsageError(f"--resume: the model in {out} has config "
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
                "device": str(device), "precision": precision, "threads": torch.get_num_threads(),
                "compiled": bool(compile),
                "torch_version": torch.__version__,
                "git_commit": commit, **({"command": command} if command else {})}

    def export(done: int) -> None:
        save_checkpoint(out, ema.module, **card(done))

    def loss_fn(net: nn.Module, batch, g: torch.Generator) -> Tensor:
        if labels is None:
            return continuous_ncsn_loss(net, batch, run["sigma_min"], run["sigma_max"], weighting=weighting,
                                        generator=g)
        x, y = batch  # y ← ∅ (index n_classes) with probability label_dropout
        drop = torch.rand(y.shape, generator=g, device=g.device).to(y.device) < run["label_dropout"]
        y = torch.where(drop, torch.full_like(y, model.n_classes), y)
        return continuous_ncsn_loss(lambda x_noisy, sigma: net(x_noisy, sigma, y), x, run["sigma_min"],
                                    run["sigma_max"], weighting=weighting, generator=g)

    batches = images if labels is None else (images, labels.long())
    fit(model, loss_fn, batches, steps, batch_size=run["batch_size"], lr=run["lr"], seed=run["seed"],
        device=device, progress=progress, checkpoint_path=state_path, checkpoint_every=checkpoint_every,
        grad_clip=run["grad_clip"], desc="training MNIST score model", mixed_precision=precision, ema=ema,
        on_checkpoint=export, time_limit_s=time_limit_s, compile=compile, stop=stop,
        lr_factor=None if lr_schedule == "constant" else cosine_decay(steps, LR_FINAL))
    return ema.module.eval(), read_card(out)
