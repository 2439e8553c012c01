"""Notebook 08: a noise-conditional digit classifier p_σ(y | x̃) for classifier guidance.

Classifier guidance (Dhariwal & Nichol 2021; Song et al. 2021) samples p_σ(x | y) ∝ p_σ(x) p_σ(y | x) with
the unconditional score model s_θ and a classifier of *noisy* digits x̃ = x + σz:

    ∇ₓ log p_σ(x | y) = ∇ₓ log p_σ(x) + ∇ₓ log p_σ(y | x) ≈ s_θ(x, σ) + w ∇ₓ log p_φ(y | x, σ),

where the guidance scale w > 1 sharpens p(y | x) to p(y | x)^w. The classifier must know σ: at σ = 0.01 it
sees a clean digit, at σ ≈ 16 pure noise, where the Bayes posterior is almost the class prior.

- :class:`NoisyDigitClassifier`: logits(x̃, σ), conditioned on σ as :class:`~scoretutor.mnist.unet.ScoreUNet`
  is: the input scaled by c_in = 1/√(σ² + σ_data²) and a :class:`~scoretutor.models.SigmaEmbedding` of
  log σ modulating every convolution (FiLM).
- :func:`train_noisy_classifier`: cross-entropy on x + σz with σ ~ logU[σ_min, σ_max] through
  :func:`scoretutor.training.fit`, with an EMA of the weights.
- :func:`log_probs`, :func:`classifier_log_prob_grad`: log p_σ(· | x) and ∇ₓ log p_σ(y | x) (autograd).
- guidance with it: :class:`scoretutor.mnist.guidance.GuidedScore` (``guide="classifier"``).
- :func:`load_noisy_classifier`: the classifier shipped in ``shipped/noisy_classifier/``;
  ``python -m scoretutor.mnist.noisy_classifier --out DIR`` retrains it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scoretutor import checks
from scoretutor.device import get_device, model_device
from scoretutor.errors import CheckpointError
from scoretutor.files import git_commit
from scoretutor.losses import log_uniform_sigmas
from scoretutor.mnist.checkpoints import load_checkpoint, read_card, save_checkpoint
from scoretutor.mnist.classifier import augment
from scoretutor.mnist.data import SHIPPED_DIR
from scoretutor.models import SigmaEmbedding
from scoretutor.training import cosine_decay, fit

Tensor = torch.Tensor

EVAL_SIGMAS = (0.01, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0, 15.8)  # the accuracy-against-σ curve of the card
EMA_DECAY = 0.998


class FiLMConv(nn.Module):
    """SiLU(GN(conv(h)) · (1 + a(e)) + b(e)): a 3×3 convolution whose normalised output is modulated by
    the σ-embedding e (FiLM, as in :class:`~scoretutor.mnist.unet.ResBlock`)."""

    def __init__(self, c_in: int, c_out: int, embed_dim: int, groups: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.GroupNorm(min(groups, c_out), c_out)
        self.film = nn.Linear(embed_dim, 2 * c_out)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        a, b = self.film(e)[:, :, None, None].chunk(2, dim=1)
        return F.silu(self.norm(self.conv(h)) * (1 + a) + b)


class NoisyDigitClassifier(nn.Module):
    """logits_φ(x̃, σ) for noisy digits x̃ = x + σz, x in [0, 1]: p_φ(y | x̃, σ) = softmax(logits).

    The network sees c_in(σ)·x̃ with c_in = 1/√(σ² + σ_data²) (inputs of about unit size at every σ, as in
    the score model) and e = SiLU(SigmaEmbedding(σ)) (Fourier features of log σ), which modulates every
    convolution (:class:`FiLMConv`). ``blocks[k]`` FiLM convolutions with ``channels[k]`` channels at
    resolution k (28, 14, 7), a 2×2 average pool after each resolution (28 → 14 → 7 → 3), then a
    ``n_features``-unit SiLU layer and a linear layer to the logits. Smooth activations and average pooling
    keep ∇ₓ log p_φ(y | x̃) continuous, which guidance and the finite-difference tests rely on.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), blocks: tuple[int, ...] = (1, 2, 2),
                 embed_dim: int = 32, n_features: int = 64, n_classes: int = 10, sigma_data: float = 0.5,
                 groups: int = 8):
        super().__init__()
        channels, blocks = tuple(int(c) for c in channels), tuple(int(b) for b in blocks)
        if len(channels) != 3 or len(blocks) != 3:
            raise ValueError(f"channels and blocks need one entry per resolution (28, 14, 7), "
                             f"got channels={channels}, blocks={blocks}")
        for c in channels:
            checks.count(c, "channels", 1)
        for b in blocks:
            checks.count(b, "blocks", 1)
        self.config = {"channels": list(channels), "blocks": list(blocks), "embed_dim": int(embed_dim),
                       "n_features": checks.count(n_features, "n_features", 1),
                       "n_classes": checks.count(n_classes, "n_classes", 2),
                       "sigma_data": checks.positive(sigma_data, "sigma_data"), "groups": int(groups)}
        self.sigma_data = float(sigma_data)
        self.embed = SigmaEmbedding(embed_dim)
        self.levels = nn.ModuleList()
        c_prev = 1
        for c, b in zip(channels, blocks, strict=True):
            self.levels.append(nn.ModuleList(FiLMConv(c_prev if i == 0 else c, c, embed_dim, groups)
                                             for i in range(b)))
            c_prev = c
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * 3 * 3, n_features), nn.SiLU())
        self.head = nn.Linear(n_features, n_classes)

    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """The logits (N, n_classes) of images x (N, 1, 28, 28) at noise level σ (a number or (N,))."""
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be images of shape (N, 1, 28, 28), got {got}")
        s = checks.sigma(sigma, x)
        e = F.silu(self.embed(s))
        h = x * torch.rsqrt(s**2 + self.sigma_data**2)[:, None, None, None]
        for level in self.levels:
            for block in level:
                h = block(h, e)
            h = F.avg_pool2d(h, 2)  # 28 → 14 → 7 → 3 (the last row and column are dropped)
        return self.head(self.features(h))


# -- log-probabilities and their gradient -----------------------------------------------------------
def _labels(labels, x: Tensor, n_classes: int) -> Tensor:
    """(N,) int64 class indices in 0..n_classes−1 from an int or an (N,) integer tensor."""
    n = x.shape[0]
    if isinstance(labels, bool) or not isinstance(labels, int | Tensor):
        raise ValueError(f"labels must be an integer or an ({n},) integer tensor, got {labels!r}")
    y = torch.as_tensor(labels, device=x.device)
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.ndim == 0:
        y = y.expand(n)
    elif y.shape != (n,):
        raise ValueError(f"labels must be an integer or an ({n},) tensor (one per image), "
                         f"got shape {tuple(y.shape)}")
    if y.numel() and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)]
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {bad[:5].tolist()}")
    return y.long()


def _dtype(model: nn.Module) -> torch.dtype:
    param = next(model.parameters(), None)
    return param.dtype if param is not None else torch.get_default_dtype()


def _detached(sigma):
    """σ as given, but a tensor detached (a sampler's σ(t) must not enter the gradient)."""
    return sigma.detach() if isinstance(sigma, Tensor) else sigma


def log_probs(classifier: NoisyDigitClassifier, x: Tensor, sigma: float | Tensor) -> Tensor:
    """log p_φ(k | x, σ) for every class k: (N, n_classes) log-softmax of the logits, in x's dtype
    (computed in the classifier's dtype)."""
    x = checks.batch(x)
    return F.log_softmax(classifier(x.to(_dtype(classifier)), _detached(sigma)), dim=-1).to(x.dtype)


def classifier_log_prob_grad(classifier: NoisyDigitClassifier, x: Tensor, sigma: float | Tensor,
                             labels) -> Tensor:
    """∇ₓ log p_φ(y | x, σ) by autograd, shaped like x and in x's dtype (also under ``torch.no_grad``;
    computed in the classifier's dtype).

    ``labels``: one class for every image (an int) or one per image ((N,) integers in 0..n_classes−1).
    Images are independent, so ∇ₓ Σ_n log p(y_n | x_n) holds each image's own gradient.
    """
    x = checks.batch(x)
    y = _labels(labels, x, classifier.n_classes)
    with torch.enable_grad():
        x_in = x.detach().to(_dtype(classifier)).requires_grad_(True)
        logp = F.log_softmax(classifier(x_in, _detached(sigma)), dim=-1)
        (grad,) = torch.autograd.grad(logp.gather(1, y[:, None]).sum(), x_in)
    return grad.detach().to(x.dtype)


def make_noisy_classifier(seed: int = 0, **config) -> NoisyDigitClassifier:
    """A freshly initialised classifier (seeded, without touching the global random stream)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NoisyDigitClassifier(**config)


def train_noisy_classifier(images: Tensor, labels: Tensor, steps: int, *, sigma_min: float | None = None,
                           sigma_max: float | None = None, batch_size: int = 128, lr: float = 3e-3,
                           ema_decay: float = EMA_DECAY, augmentation: bool = True, seed: int = 0,
                           device=None, progress: bool | None = None,
                           model: NoisyDigitClassifier | None = None, time_limit_s: float | None = None
                           ) -> tuple[NoisyDigitClassifier, list[float]]:
    """Minimise E_{σ ∼ logU[σ_min, σ_max], z} CE(logits_φ(x + σz, σ), y) over (images, labels) batches.

    σ_min and σ_max default to the shipped score model's (its card), so the classifier knows every level
    the sampler visits. Adam with a cosine decay to lr/10, gradient clipping at 1, small random affine
    distortions of the clean digits (``augmentation``; :func:`scoretutor.mnist.classifier.augment`) and an
    EMA of the weights (``ema_decay``). Seeded: the same seed gives the same weights.
    Returns (the EMA classifier in eval mode, the loss history).
    """
    steps = checks.count(steps, "steps", 1)
    images = checks.batch(images, "images", min_ndim=4)
    if images.shape[1:] != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if not isinstance(labels, Tensor) or labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be an ({images.shape[0]},) tensor, got "
                         f"{tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__}")
    if sigma_min is None or sigma_max is None:
        from scoretutor.mnist.training import shipped_checkpoint_dir

        card = read_card(shipped_checkpoint_dir())
        sigma_min = card["sigma_min"] if sigma_min is None else sigma_min
        sigma_max = card["sigma_max"] if sigma_max is None else sigma_max
    sigma_min, sigma_max = checks.positive(sigma_min, "sigma_min"), checks.positive(sigma_max, "sigma_max")
    if not sigma_min < sigma_max:
        raise ValueError(f"need sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    if not 0 < ema_decay < 1:
        raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay}")
    device = torch.device(device) if device is not None else get_device()
    model = make_noisy_classifier(seed) if model is None else model
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
    y_all = _labels(labels, images, model.n_classes)

    def loss_fn(net: nn.Module, batch: tuple[Tensor, Tensor], g: torch.Generator) -> Tensor:
        x, y = batch
        if augmentation:
            x = augment(x, g)
        sigma = log_uniform_sigmas(x.shape[0], sigma_min, sigma_max, g, device=x.device, dtype=x.dtype)
        z = torch.randn(x.shape, generator=g, device=g.device).to(x.device, x.dtype)
        return F.cross_entropy(net(x + sigma[:, None, None, None] * z, sigma), y)

    history = fit(model, loss_fn, (images, y_all), steps, batch_size=batch_size, lr=lr, seed=seed,
                  device=device, progress=progress, grad_clip=1.0, desc="noisy classifier", ema=ema,
                  lr_factor=cosine_decay(steps, 0.1), time_limit_s=time_limit_s)
    return ema.module.eval(), history


@torch.no_grad()
def accuracy_at(classifier: NoisyDigitClassifier, images: Tensor, labels: Tensor, sigma: float,
                seed: int = 0, batch_size: int = 1000) -> float:
    """Fraction of noisy digits x + σz (z seeded by ``seed``) whose most probable class is the label."""
    device = model_device(classifier)
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size]
        x_noisy = (x + sigma * torch.randn(x.shape, generator=g)).to(device)
        pred = classifier(x_noisy, sigma).argmax(1).cpu()
        correct += (pred == labels[start:start + batch_size].cpu()).sum().item()
    return correct / images.shape[0]


# -- the shipped checkpoint -------------------------------------------------------------------------
def _default_dir() -> Path:
    return SHIPPED_DIR / "noisy_classifier"


def load_noisy_classifier(path: str | os.PathLike | None = None,
                          device: torch.device | str | None = None) -> NoisyDigitClassifier:
    """The shipped noisy classifier (or the one saved in folder ``path``), frozen, in eval mode on ``device``
    (default ``get_device()``)."""
    folder = _default_dir() if path is None else Path(path)
    spec = read_card(folder).get("model")
    name = spec.get("class") if isinstance(spec, dict) else None
    if name != NoisyDigitClassifier.__name__:
        raise CheckpointError(f"checkpoint {folder} holds a {name or 'model of no named class'}, "
                              "not a NoisyDigitClassifier")
    model, _ = load_checkpoint(folder, device=device)
    return model.requires_grad_(False)


def main(argv: list[str] | None = None) -> int:
    from scoretutor.mnist.data import SHIPPED_MNIST, load_shipped_mnist
    from scoretutor.mnist.training import shipped_checkpoint_dir

    parser = argparse.ArgumentParser(prog="python -m scoretutor.mnist.noisy_classifier",
                                     description="Train the noise-conditional classifier p(y | x + σz, σ) "
                                                 "for classifier guidance on the 10,000 shipped training "
                                                 "digits; report its test accuracy against σ.")
    parser.add_argument("--out", required=True, help="checkpoint folder (model.safetensors + model.json)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="stop training after this many minutes")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: get_device())")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y = load_shipped_mnist("train")
    xt, yt = load_shipped_mnist("test")
    score_card = read_card(shipped_checkpoint_dir())
    t0 = time.time()
    model, history = train_noisy_classifier(
        x, y, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        time_limit_s=None if args.time_limit is None else 60 * args.time_limit)
    wall = time.time() - t0
    sigmas = [min(s, score_card["sigma_max"]) for s in EVAL_SIGMAS]
    curve = {f"{s:g}": round(accuracy_at(model, xt, yt, s, seed=1), 4) for s in sigmas}
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(history)} steps in {wall:.0f} s, {n_params} parameters; test accuracy against σ:")
    for s, acc in curve.items():
        print(f"  σ = {s:>6}: {acc:.4f}")
    save_checkpoint(args.out, model, **{
        "trained_on": {"split": "train", "files": list(SHIPPED_MNIST["train"]), "count": len(x)},
        "loss": "cross-entropy on x + sigma z, sigma ~ logU[sigma_min, sigma_max]",
        "sigma_min": score_card["sigma_min"], "sigma_max": score_card["sigma_max"],
        "steps": len(history), "batch_size": args.batch_size, "lr": args.lr, "lr_schedule": "cosine to lr/10",
        "ema_decay": EMA_DECAY, "grad_clip": 1.0, "seed": args.seed,
        "augmentation": "random rotation ±10°, zoom ±10 %, shift ±2 px (before the noise)",
        "final_loss_mean_last_100": round(sum(history[-100:]) / len(history[-100:]), 4),
        "test_accuracy_vs_sigma": {"count": len(xt), "noise_seed": 1, "accuracy": curve},
        "parameters": n_params, "wall_time_s": round(wall, 1), "device": str(model_device(model)),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "git_commit": git_commit(),
        "command": "python -m scoretutor.mnist.noisy_classifier "
                   + " ".join(sys.argv[1:] if argv is None else argv),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
