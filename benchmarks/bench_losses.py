"""Time per loss evaluation (forward + backward) versus dimension for the score-matching objectives.

    python benchmarks/bench_losses.py [--dims 2 8 32 128 392 784] [--batch 64] [--reps 5]

Exact ISM needs d backward passes for tr(∇ₓ s), so its cost grows ∝ d; Hutchinson ISM, SSM, SSM-VR
need one vector-Jacobian product per probe and DSM needs none, so they stay nearly flat. Runs on
``get_device()`` (CPU here; CUDA when available, with synchronisation around the timings).
"""

from __future__ import annotations

import argparse
import time

import torch

from scoretutor.device import get_device
from scoretutor.losses import denoising_score_matching, implicit_score_matching, sliced_score_matching
from scoretutor.models import ScoreMLP

LOSSES = {
    "ISM exact": lambda m, x: implicit_score_matching(m, x, trace="exact"),
    "ISM Hutchinson": lambda m, x: implicit_score_matching(m, x, trace="hutchinson"),
    "SSM": lambda m, x: sliced_score_matching(m, x, variance_reduction=False),
    "SSM-VR": lambda m, x: sliced_score_matching(m, x, variance_reduction=True),
    "DSM": lambda m, x: denoising_score_matching(m, x, 0.1),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loss(loss, model, x, reps: int) -> float:
    """Median seconds per loss + backward over ``reps`` runs (after one warm-up)."""
    loss(model, x).backward()
    times = []
    for _ in range(reps):
        _sync(x.device)
        t0 = time.perf_counter()
        loss(model, x).backward()
        _sync(x.device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 8, 32, 128, 392, 784])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    device = get_device()
    print(f"device: {device}, batch {args.batch}, ScoreMLP(hidden={args.hidden}, n_layers=2), "
          f"threads {torch.get_num_threads()}; ms per loss + backward (median of {args.reps})")
    print(f"{'d':>6} " + " ".join(f"{name:>15}" for name in LOSSES))
    for d in args.dims:
        torch.manual_seed(0)
        model = ScoreMLP(d, hidden=args.hidden, n_layers=2).to(device)
        x = torch.randn(args.batch, d, device=device)
        row = [time_loss(loss, model, x, args.reps) * 1e3 for loss in LOSSES.values()]
        print(f"{d:>6} " + " ".join(f"{t:>15.2f}" for t in row))


if __name__ == "__main__":
    main()
