"""Precompute notebook 05 §7: annealed Langevin against predictor–corrector on the shipped MNIST model,
n = 1,000 samples per seed, several seeds, judged by ``scoretutor.mnist.quality.mnist_quality``.

    python benchmarks/mnist_sampler_comparison.py [--n 1000] [--seeds 0 1 2] [--threads 2]

Writes ``scoretutor/mnist/shipped/score_model/sampler_comparison.json`` (with the checkpoint's sha256,
so the notebook can tell a stale table) and prints the Markdown table. About 25 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from scoretutor.files import atomic_write
from scoretutor.mnist import (
    PC_CORRECTORS,
    default_settings,
    load_pretrained,
    pc_steps,
    sample,
    sample_pc,
    shipped_checkpoint_dir,
)
from scoretutor.mnist.quality import (
    COMPARISON_FILE,
    batched,
    format_sampler_comparison,
    sampler_comparison,
    shipped_weights_sha256,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, card = load_pretrained()
    settings = default_settings(card)
    langevin = lambda m, s: sample(model, m, settings, seed=s)
    pc = lambda m, s: sample_pc(model, m, card, seed=s)
    samplers = {"annealed Langevin": lambda n, seed: batched(langevin, n, seed),
                "predictor–corrector": lambda n, seed: batched(pc, n, seed)}
    t0 = time.perf_counter()
    table = sampler_comparison(samplers, args.seeds, args.n)
    folder = shipped_checkpoint_dir()
    table["checkpoint_sha256"] = shipped_weights_sha256()
    table["network_calls"] = {"annealed Langevin": settings.n_score_evals,
                              "predictor–corrector": pc_steps(card) * (PC_CORRECTORS + 1)}
    table["wall_time_s"] = round(time.perf_counter() - t0)
    atomic_write(folder / COMPARISON_FILE, json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    print(format_sampler_comparison(table))
    print(f"{table['wall_time_s']} s")


if __name__ == "__main__":
    main()
