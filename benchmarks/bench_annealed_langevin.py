"""Annealed Langevin throughput and notebook-04 widget latency.

    python benchmarks/bench_annealed_langevin.py            # on get_device() (SCORETUTOR_DEVICE to override)
    python benchmarks/bench_annealed_langevin.py --moves 40

1. Throughput of ``annealed_langevin`` on 2-D data, in particles·steps per second, for 1k and 100k
   particles, with the exact perturbed scores of the NCSN mixture and with a NoiseConditionalScoreMLP
   (called directly, and through ``model.frozen_score()``, which folds the σ-conditioning into biases).
2. Widget update latency: median and 95th percentile over ``--moves`` slider moves (calling the
   callback headlessly) for notebook 04's explorers and notebook 03's Langevin explorer, at their
   default settings. Target: p95 < 150 ms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.device import get_device, make_generator
from scoretutor.lecture.widgets.annealing import AnnealingExplorer, NoiseTradeoffExplorer
from scoretutor.lecture.widgets.langevin import LangevinExplorer
from scoretutor.losses import ncsn_loss
from scoretutor.models import NoiseConditionalScoreMLP
from scoretutor.sampling import annealed_langevin
from scoretutor.schedules import geometric_sigmas
from scoretutor.training import fit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(score_fn, n: int, L: int, T: int, device: torch.device, repeats: int = 3) -> float:
    """Best-of-``repeats`` particles·steps/s of annealed Langevin with L levels × T steps."""
    sigmas = geometric_sigmas(20.0, 1.0, L)
    x0 = (torch.rand(n, 2, generator=make_generator(0)) * 16 - 8).to(device)
    g = make_generator(1, device)
    annealed_langevin(score_fn, x0, sigmas, 0.1, 1, generator=g, progress=False)  # warm-up (caches, kernels)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        annealed_langevin(score_fn, x0, sigmas, 0.1, T, generator=g, progress=False)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return n * L * T / best


def latency(explorer, moves: list[dict], pause: float = 0.0) -> tuple[float, float]:
    """Median and p95 update time in ms; ``pause`` s between moves (a student looking at the frame)."""
    times = []
    for m in moves:
        explorer.update(**m)
        times.append(explorer.last_update_s)
        time.sleep(pause)
    return float(np.median(times)) * 1e3, float(np.percentile(times, 95)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20, help="slider moves per explorer (>= 20)")
    parser.add_argument("--train-steps", type=int, default=300, help="training steps for the widget's model")
    args = parser.parse_args()
    device = get_device()
    print(f"device: {device}  (torch {torch.__version__}, {torch.get_num_threads()} threads)\n")

    exact = ncsn_mixture(device=device).noise_conditional_score()

    torch.manual_seed(0)
    model = NoiseConditionalScoreMLP(hidden=64, n_layers=3).to(device).eval()
    fast = model.frozen_score()
    direct = lambda x, s: model(x, s)
    rows = []
    for n, T in ((1_000, 20), (100_000, 2 if device.type == "cpu" else 20)):
        for name, fn in (("exact mixture score", exact), ("NCSN MLP (model(x, σ))", direct),
                         ("NCSN MLP (frozen_score)", fast)):
            with torch.no_grad():
                rows.append((name, n, 10 * T, throughput(fn, n, 10, T, device)))
    print("annealed Langevin throughput (L = 10 levels)")
    print(f"{'score function':<32}{'particles':>10}{'steps':>8}{'particles·steps/s':>20}")
    for name, n, steps, rate in rows:
        print(f"{name:<32}{n:>10,}{steps:>8}{rate:>20,.0f}")

    # widget latency, on the CPU as in a lecture notebook
    moves = max(args.moves, 20)
    torch.manual_seed(0)
    cpu_model = NoiseConditionalScoreMLP(hidden=64, n_layers=3)
    sig = geometric_sigmas(20.0, 1.0, 10)
    cpu_mix = ncsn_mixture()
    fit(cpu_model, lambda m, x, g: ncsn_loss(m, x, sig, generator=g), cpu_mix.sample, args.train_steps,
        lr=2e-3, device="cpu", progress=False)
    annealing = AnnealingExplorer(cpu_model)
    eps_moves = [{"step_size": float(e)} for e in np.geomspace(0.05, 0.2, moves)]
    t_moves = [{"T": int(t)} for t in np.linspace(5, 15, moves).round()] + [{"T": annealing.values["T"]}]
    tradeoff = NoiseTradeoffExplorer(n_steps=50)
    options = tradeoff.sigma_values
    sigma_moves = [{"sigma": options[i % len(options)]} for i in range(moves)]
    langevin_ex = LangevinExplorer()
    langevin_moves = [{"step_size": float(e)} for e in np.geomspace(0.01, 0.3, moves)]
    print(f"\nwidget update latency over {moves} slider moves (compute + draw + PNG), target p95 < 150 ms")
    print(f"{'explorer (default settings)':<62}{'median ms':>10}{'p95 ms':>9}")
    for name, ex, mv in (
        (f"AnnealingExplorer ε moves ({annealing.x0.shape[0]} particles, L=10, T=10)", annealing, eps_moves),
        ("AnnealingExplorer T moves (T = 5…15)", annealing, t_moves),
        ("NoiseTradeoffExplorer σ moves", tradeoff, sigma_moves),
        ("LangevinExplorer ε moves (notebook 03: 500 particles, K=100)", langevin_ex, langevin_moves),
    ):
        med, p95 = latency(ex, mv)
        print(f"{name:<62}{med:>10.1f}{p95:>9.1f}")
    # notebook 03's second explorer (1000 particles, K = 400 in fast mode, 1000 in full mode):
    # walks of one slider step per move, as key presses make them, 0.5 s apart, so what is measured
    # is the cached/prefetched chains (scoretutor.lecture.widgets.chains); the row above is the cold cost.
    for K in (400, 1000):
        ex = LangevinExplorer(ncsn_mixture(), lim=10.0, init="uniform", step_size=0.1, n_steps=K,
                              n_particles=1000)
        s = ex.sliders
        walks = {
            "ε": [{"step_size": float(10 ** min(-1 + s["step_size"].step * i, s["step_size"].max))}
                  for i in range(1, moves + 1)],
            "K": [{"n_steps": max(K - 10 * i, 0) if K == s["n_steps"].max else K + 10 * i}
                  for i in range(1, moves + 1)],
            "particles": [{"n_particles": min(1000 + 50 * i, s["n_particles"].max)}
                          for i in range(1, moves + 1)],
        }
        for slider, mv in walks.items():
            med, p95 = latency(ex, mv, pause=0.5)
            name = f"LangevinExplorer {slider} steps (1000 particles, K={K})"
            print(f"{name:<62}{med:>10.1f}{p95:>9.1f}")


if __name__ == "__main__":
    main()
