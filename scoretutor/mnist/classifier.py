"""The project's MNIST judges: two small CNNs that score generated digits (issue 9's quality table).

Judge A, :class:`DigitClassifier`, is the judge of every figure; judge B, :class:`StridedClassifier`, is a
second opinion, differently built and trained, so that no figure is tuned to one instrument
(:func:`load_judges` returns both). Each is trained on the 10,000 shipped MNIST *training* digits only, so
every quality figure can be measured on test digits that neither the score model nor the judge has seen.
Both are shipped inside the package (``shipped/classifier/`` and ``shipped/judge_b/``, checkpoints of
:mod:`scoretutor.mnist.checkpoints`: safetensors weights and a JSON card with the training record), loaded
with :func:`load_classifier`; ``python -m scoretutor.mnist.classifier --arch A|B --out DIR`` retrains either.

Judge A (about 61 K parameters): three 3×3 conv + ReLU + 2×2 max-pool blocks (28 → 14 → 7 → 3 pixels;
16, 32, 64 channels), a flattened 64-unit ReLU feature layer ``features(x)`` (the space of the Fréchet
distance) and a linear layer to the 10 logits; AdamW, one-cycle, random rotation, zoom and shift.

Judge B (about 144 K parameters): three stride-2 convolutions (5×5, 5×5, 3×3; 28 → 14 → 7 → 4 pixels;
32, 64, 128 channels) with BatchNorm and no pooling layer until a global average pool, a 128-unit
linear + BatchNorm + ReLU feature layer, dropout and a linear layer to the logits; SGD with Nesterov
momentum, linear warm-up then cosine decay, another seed, and integer shifts only (random 28×28 crops of
the digit padded by 2 px) as augmentation.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from scoretutor.checks import count
from scoretutor.device import get_device, model_device
from scoretutor.errors import CheckpointError
from scoretutor.files import git_commit
from scoretutor.mnist.checkpoints import load_checkpoint, read_card, save_checkpoint
from scoretutor.mnist.data import SHIPPED_DIR

Tensor = torch.Tensor


class _Judge(nn.Module):
    """What both judges share: ``features(x)`` = ``body(x)`` for (N, 1, 28, 28) digits and
    ``logits = head(features(x))``; each judge builds its own ``body`` and ``head``."""

    body: nn.Module
    head: nn.Module

    def features(self, x: Tensor) -> Tensor:
        """The n_features-dimensional penultimate activations (the Fréchet feature space)."""
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class DigitClassifier(_Judge):
    """Small CNN for 28×28 digits in [0, 1]: ``logits = head(features(x))``."""

    def __init__(self, width: int = 16, n_features: int = 64, n_classes: int = 10):
        super().__init__()
        self.config = {"width": width, "n_features": n_features, "n_classes": n_classes}
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),           # 14 × 14
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # 7 × 7
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 3 × 3
            nn.Flatten(), nn.Linear(4 * w * 9, n_features), nn.ReLU(),
        )
        self.head = nn.Linear(n_features, n_classes)


class StridedClassifier(_Judge):
    """Judge B: strided 5×5 and 3×3 convolutions with BatchNorm, a global average pool,
    ``logits = head(features(x))``.

    ``features(x)`` = ReLU(BN(W · avgpool(conv(x)))), ``n_features`` wide; ``head`` = dropout + linear
    (the dropout acts in training only)."""

    def __init__(self, width: int = 32, n_features: int = 128, n_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.config = {"width": width, "n_features": n_features, "n_classes": n_classes, "dropout": dropout}
        w = width

        def block(c_in, c_out, k):
            return [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, w, 5), *block(w, 2 * w, 5), *block(2 * w, 4 * w, 3),  # 14 × 14, 7 × 7, 4 × 4
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4 * w, n_features, bias=False), nn.BatchNorm1d(n_features), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, n_classes))


JUDGE_CLASSES = (DigitClassifier, StridedClassifier)
ARCHS = {"A": DigitClassifier, "B": StridedClassifier}  # the CLI's --arch


@torch.no_grad()
def classify(model: nn.Module, images: Tensor, batch_size: int = 1000
             ) -> tuple[Tensor, Tensor]:
    """``(probs, features)`` of images (N, 1, 28, 28) in [0, 1], on the CPU, in batches.

    Images are clamped to [0, 1] first (samplers may overshoot the pixel range slightly).
    """
    model.eval()
    device = model_device(model)
    probs, feats = [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device, torch.float32).clamp(0, 1)
        f = model.features(x)
        probs.append(model.head(f).softmax(-1).cpu())
        feats.append(f.cpu())
    return torch.cat(probs), torch.cat(feats)


def _default_dir() -> Path:
    return SHIPPED_DIR / "classifier"


def second_judge_dir() -> Path:
    """The shipped judge B's checkpoint folder."""
    return SHIPPED_DIR / "judge_b"


def load_classifier(path=None, device: torch.device | str | None = None) -> nn.Module:
    """The shipped judge A (or the judge saved in folder ``path``, either class: a checkpoint of
    :mod:`scoretutor.mnist.checkpoints`), frozen, in eval mode on ``device`` (default ``get_device()``)."""
    folder = _default_dir() if path is None else Path(path)
    spec = read_card(folder).get("model")
    name = spec.get("class") if isinstance(spec, dict) else None
    allowed = [cls.__name__ for cls in JUDGE_CLASSES]
    if name not in allowed:
        raise CheckpointError(f"checkpoint {folder} holds a {name or 'model of no named class'}, "
                              f"not a {' or a '.join(allowed)} (the MNIST judges)")
    model, _ = load_checkpoint(folder, device=device)
    return model.requires_grad_(False)


def load_judges(device: torch.device | str | None = None) -> dict[str, nn.Module]:
    """Both shipped judges, ``{"judge A": DigitClassifier, "judge B": StridedClassifier}``, frozen, in
    eval mode: every MNIST figure can be measured under each (``mnist_quality(..., classifier=judge)``)."""
    return {"judge A": load_classifier(device=device),
            "judge B": load_classifier(second_judge_dir(), device=device)}


# -- training --------------------------------------------------------------------------------------
def augment(x: Tensor, generator: torch.Generator, max_shift: float = 2.0, max_degrees: float = 10.0,
            max_zoom: float = 0.1) -> Tensor:
    """Random small affine distortions (rotation, zoom, shift in pixels) of a batch (N, 1, 28, 28)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator, device=generator.device).to(x.device) * 2 - 1
    angle = u[:, 0] * math.radians(max_degrees)
    scale = 1 + u[:, 1] * max_zoom
    shift = u[:, 2:] * (2 * max_shift / 28)  # affine_grid works in [-1, 1] coordinates
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def random_shift(x: Tensor, generator: torch.Generator, max_shift: int = 2) -> Tensor:
    """Judge B's augmentation: each image of (N, 1, 28, 28) moved by whole pixels (dx, dy) drawn uniformly
    from {−max_shift, …, max_shift}², i.e. a random 28×28 crop of the image padded with zeros."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift!r}")
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator, device=generator.device)
    shifts = shifts.to(x.device)
    padded = F.pad(x, (max_shift,) * 4)
    rows = (shifts[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, h, 1)
    cols = (shifts[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, w)
    return padded[torch.arange(n, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


def accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Fraction of images whose most probable class is the label."""
    probs, _ = classify(model, images)
    return (probs.argmax(1) == labels.cpu()).float().mean().item()


def _train_epochs(model: nn.Module, opt, sched, x: Tensor, y: Tensor, epochs: int, batch_size: int,
                  g: torch.Generator, distort) -> nn.Module:
    """The judges' loop: each epoch a shuffled pass in batches of ``distort(x, g)`` digits, cross-entropy,
    one optimiser and scheduler step per batch; prints each epoch's mean loss. Returns the model (eval)."""
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=g).to(x.device)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(distort(x[idx], g)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}", flush=True)
    return model.eval()


def train_classifier(images: Tensor, labels: Tensor, epochs: int = 30, batch_size: int = 128,
                     lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0,
                     device: torch.device | str | None = None) -> DigitClassifier:
    """AdamW with a cosine learning-rate decay on augmented digits; seeded (init and batches)."""
    epochs, batch_size = count(epochs, "epochs", 1), count(batch_size, "batch_size", 1)
    device = torch.device(device or get_device())
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG stream
        torch.manual_seed(seed)
        model = DigitClassifier().to(device)
    g = torch.Generator().manual_seed(seed)
    x, y = images.to(device), labels.to(device)
    steps = epochs * math.ceil(len(x) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    return _train_epochs(model, opt, sched, x, y, epochs, batch_size, g, augment)


def train_second_judge(images: Tensor, labels: Tensor, epochs: int = 30, batch_size: int = 64,
                       lr: float = 0.05, weight_decay: float = 5e-4, momentum: float = 0.9,
                       warmup_epochs: float = 1.0, seed: int = 1,
                       device: torch.device | str | None = None) -> StridedClassifier:
    """Judge B's recipe: SGD with Nesterov momentum, lr rising linearly over ``warmup_epochs`` then
    lr_k = lr · (1 + cos(π k / K))/2, weight decay, on randomly shifted digits (:func:`random_shift`);
    seeded (init, batches, shifts, dropout) without touching the global RNG stream."""
    epochs, batch_size = count(epochs, "epochs", 1), count(batch_size, "batch_size", 1)
    device = torch.device(device or get_device())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = StridedClassifier().to(device)
        g = torch.Generator().manual_seed(seed + 1)
        x, y = images.to(device), labels.to(device)
        per_epoch = math.ceil(len(x) / batch_size)
        steps, warm = epochs * per_epoch, max(1, round(warmup_epochs * per_epoch))
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]  # no decay on biases and BN
        rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
        opt = torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                               {"params": rest, "weight_decay": 0.0}],
                              lr=lr, momentum=momentum, nesterov=True)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: (k + 1) / warm if k < warm else 0.5 * (1 + math.cos(math.pi * (k - warm)
                                                                              / max(1, steps - warm))))
        return _train_epochs(model, opt, sched, x, y, epochs, batch_size, g, random_shift)


def save_classifier(model: nn.Module, folder, metadata: dict) -> Path:
    """Write the classifier and ``metadata`` (its training record) as a checkpoint folder."""
    return save_checkpoint(folder, model, **metadata)


RECIPES = {  # --arch: the trainer, its defaults and the record of its augmentation and optimiser
    "A": (train_classifier, {"epochs": 30, "batch_size": 128, "lr": 3e-3, "seed": 0},
          "random rotation ±10°, zoom ±10 %, shift ±2 px",
          "AdamW (weight decay 1e-4), one-cycle learning rate (15 % warm-up)"),
    "B": (train_second_judge, {"epochs": 30, "batch_size": 64, "lr": 0.05, "seed": 1},
          "integer shifts only: random 28×28 crops of the digit zero-padded by 2 px",
          "SGD, Nesterov momentum 0.9, weight decay 5e-4 (not on biases and BatchNorm), "
          "1 epoch linear warm-up then cosine decay"),
}


def main(argv: list[str] | None = None) -> int:
    from scoretutor.mnist.data import SHIPPED_MNIST, load_shipped_mnist

    parser = argparse.ArgumentParser(prog="python -m scoretutor.mnist.classifier",
                                     description="Train an MNIST judge on the 10,000 shipped training "
                                                 "digits and report its accuracy on the test set.")
    parser.add_argument("--out", required=True, help="checkpoint folder (model.safetensors + model.json)")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="A",
                        help="A: DigitClassifier (the shipped judge A), B: StridedClassifier (judge B)")
    parser.add_argument("--epochs", type=int, default=None, help="default: A 30, B 30")
    parser.add_argument("--batch-size", type=int, default=None, help="default: A 128, B 64")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate; default: A 3e-3, B 0.05")
    parser.add_argument("--seed", type=int, default=None, help="default: A 0, B 1")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: get_device())")
    args = parser.parse_args(argv)
    trainer, defaults, augmentation, optimiser = RECIPES[args.arch]
    settings = {k: defaults[k] if getattr(args, k) is None else getattr(args, k) for k in defaults}
    x, y = load_shipped_mnist("train")
    xt, yt = load_shipped_mnist("test")
    t0, c0 = time.time(), time.process_time()
    model = trainer(x, y, device=args.device, **settings)
    wall, cpu = time.time() - t0, time.process_time() - c0
    acc = accuracy(model, xt, yt)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"test accuracy {acc:.4f} ({n_params} parameters, {wall:.0f} s)")
    save_classifier(model, args.out, {
        "trained_on": {"split": "train", "files": list(SHIPPED_MNIST["train"]), "count": len(x)},
        "test_accuracy": round(acc, 5), "parameters": n_params, **settings,
        "augmentation": augmentation, "optimiser": optimiser,
        "wall_time_s": round(wall, 1), "cpu_time_s": round(cpu, 1), "threads": torch.get_num_threads(),
        "device": str(next(model.parameters()).device),
        "torch": torch.__version__, "git_commit": git_commit(),
        "command": "python -m scoretutor.mnist.classifier "
                   + " ".join(sys.argv[1:] if argv is None else argv),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
