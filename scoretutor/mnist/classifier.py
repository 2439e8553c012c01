"""The project's MNIST judge: a small CNN that scores generated digits (issue 9's quality table).

It is trained on the 10,000 shipped MNIST *training* digits only, so every quality figure can be
measured on test digits that neither the score model nor this classifier has seen. It is shipped
inside the package (``shipped/classifier/``, a checkpoint of :mod:`scoretutor.mnist.checkpoints`:
safetensors weights and a JSON card with its training record) and loaded with :func:`load_classifier`;
``python -m scoretutor.mnist.classifier --out DIR`` retrains it.

Architecture (about 61 K parameters): three 3×3 conv + ReLU + 2×2 max-pool blocks
(28 → 14 → 7 → 3 pixels; 16, 32, 64 channels), a 64-unit ReLU feature layer ``features(x)``
(the space of the Fréchet distance) and a linear layer to the 10 logits.
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


class DigitClassifier(nn.Module):
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

    def features(self, x: Tensor) -> Tensor:
        """The n_features-dimensional penultimate activations (the Fréchet feature space)."""
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def classify(model: DigitClassifier, images: Tensor, batch_size: int = 1000
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


def load_classifier(path=None, device: torch.device | str | None = None) -> DigitClassifier:
    """The shipped judge (or the one saved in folder ``path``: a checkpoint of
    :mod:`scoretutor.mnist.checkpoints`), frozen, in eval mode on ``device`` (default ``get_device()``)."""
    folder = _default_dir() if path is None else Path(path)
    spec = read_card(folder).get("model")
    name = spec.get("class") if isinstance(spec, dict) else None
    if name != DigitClassifier.__name__:
        raise CheckpointError(f"checkpoint {folder} holds a {name or 'model of no named class'}, "
                              "not a DigitClassifier")
    model, _ = load_checkpoint(folder, device=device)
    return model.requires_grad_(False)


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


def accuracy(model: DigitClassifier, images: Tensor, labels: Tensor) -> float:
    """Fraction of images whose most probable class is the label."""
    probs, _ = classify(model, images)
    return (probs.argmax(1) == labels.cpu()).float().mean().item()


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
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=g).to(device)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(augment(x[idx], g)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}", flush=True)
    return model.eval()


def save_classifier(model: DigitClassifier, folder, metadata: dict) -> Path:
    """Write the classifier and ``metadata`` (its training record) as a checkpoint folder."""
    return save_checkpoint(folder, model, **metadata)


def main(argv: list[str] | None = None) -> int:
    from scoretutor.mnist.data import SHIPPED_MNIST, load_shipped_mnist

    parser = argparse.ArgumentParser(prog="python -m scoretutor.mnist.classifier",
                                     description="Train the MNIST judge on the 10,000 shipped training "
                                                 "digits and report its accuracy on the test set.")
    parser.add_argument("--out", required=True, help="checkpoint folder (model.safetensors + model.json)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: get_device())")
    args = parser.parse_args(argv)
    x, y = load_shipped_mnist("train")
    xt, yt = load_shipped_mnist("test")
    t0 = time.time()
    model = train_classifier(x, y, args.epochs, args.batch_size, args.lr, seed=args.seed,
                             device=args.device)
    wall = time.time() - t0
    acc = accuracy(model, xt, yt)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"test accuracy {acc:.4f} ({n_params} parameters, {wall:.0f} s)")
    save_classifier(model, args.out, {
        "trained_on": {"split": "train", "files": list(SHIPPED_MNIST["train"]), "count": len(x)},
        "test_accuracy": round(acc, 5), "parameters": n_params,
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "augmentation": "random rotation ±10°, zoom ±10 %, shift ±2 px",
        "wall_time_s": round(wall, 1), "device": str(next(model.parameters()).device),
        "torch": torch.__version__, "git_commit": git_commit(),
        "command": "python -m scoretutor.mnist.classifier "
                   + " ".join(sys.argv[1:] if argv is None else argv),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
