"""Issue 22 §2: the probability-flow ODE on the shipped MNIST model — quality against network calls for every
ODE solver of notebook 07, and the N = 50 figures for three seeds beside predictor–corrector's.

    python benchmarks/mnist_ode.py [--n 1000] [--calls 10 20 35 50 100] [--threads 2]
    python benchmarks/mnist_ode.py --churn 10 40 80 --calls 50 100   # then: what churned Heun buys

Every sample set is judged by ``scoretutor.mnist.quality.mnist_quality`` (n digits, same x_T seeds as
``benchmarks/mnist_sampler_comparison.py``), and wall times are measured in the same run, side by side.
Writes ``scoretutor/mnist/shipped/score_model/ode_curve.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from scoretutor.diffusion.solvers import SOLVERS
from scoretutor.files import atomic_write
from scoretutor.mnist import ODE_CALLS, load_pretrained, sample_ode, sample_pc, shipped_checkpoint_dir
from scoretutor.mnist.quality import (
    BATCH,
    METRICS,
    ODE_CURVE_FILE,
    batched,
    mnist_quality,
    shipped_table,
    shipped_weights_sha256,
)


def add_churn(model, card, args) -> None:
    """Karras et al.'s stochastic Heun: fresh noise at each step (S_churn), added to ``ode_curve.json``."""
    path = shipped_checkpoint_dir() / ODE_CURVE_FILE
    out = json.loads(path.read_text(encoding="utf-8"))
    churn = out.setdefault("churn", {})
    for s_churn in args.churn:
        for calls in args.calls:
            def draw(m, s, s_churn=s_churn, calls=calls):
                return sample_ode(model, m, card, n_calls=calls, solver="Heun (Karras)", seed=s,
                                  churn=s_churn)
            rows = mnist_quality(batched(draw, args.n, args.seeds[0]))
            churn.setdefault(f"{s_churn:g}", {})[str(calls)] = {r["metric"]: r["samples"] for r in rows}
            figures = {r["metric"]: round(r["samples"], 3) for r in rows}
            print(f"S_churn = {s_churn:g}, {calls} calls:", figures, flush=True)
    atomic_write(path, json.dumps(out, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 20, 35, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds at N = 50")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--churn", type=float, nargs="+",
                        help="only add Heun with these S_churn (at --calls, seed 0) to the existing file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, card = load_pretrained()
    if args.churn:
        return add_churn(model, card, args)
    solvers = [name for name, (kind, _, _) in SOLVERS.items() if kind == "ode"]
    out = {"n": args.n, "calls": args.calls, "curve": {}, "at_50": {}, "seconds_per_1000": {}}

    t0 = time.perf_counter()  # wall time per 1,000 digits, side by side: PC and each solver at N = 50
    sample_pc(model, BATCH, card, seed=99)
    out["seconds_per_1000"]["predictor–corrector (285 calls)"] = (time.perf_counter() - t0) * 1000 / BATCH
    for name in solvers:
        t0 = time.perf_counter()
        sample_ode(model, BATCH, card, n_calls=ODE_CALLS, solver=name, seed=99)
        out["seconds_per_1000"][f"{name} ({ODE_CALLS} calls)"] = (time.perf_counter() - t0) * 1000 / BATCH
    print(json.dumps(out["seconds_per_1000"], indent=1, ensure_ascii=False))

    for name in solvers:
        out["curve"][name] = {}
        for calls in args.calls:
            def draw(m, s, name=name, calls=calls):
                return sample_ode(model, m, card, n_calls=calls, solver=name, seed=s)
            rows = mnist_quality(batched(draw, args.n, args.seeds[0]))
            out["curve"][name][calls] = {r["metric"]: r["samples"] for r in rows}
            out["real"] = {r["metric"]: (r["real_mean"], r["real_std"]) for r in rows}
            print(name, calls, {k: round(v, 3) for k, v in out["curve"][name][calls].items()}, flush=True)
    best = min(solvers, key=lambda s: out["curve"][s][ODE_CALLS]["frechet"])
    out["best"] = best
    figures = {k: [] for k in METRICS}
    for seed in args.seeds:
        if seed == args.seeds[0]:
            row = out["curve"][best][ODE_CALLS]
        else:
            draw = lambda m, s: sample_ode(model, m, card, n_calls=ODE_CALLS, solver=best, seed=s)
            row = {r["metric"]: r["samples"] for r in mnist_quality(batched(draw, args.n, seed))}
        for k in METRICS:
            figures[k].append(row[k])
    out["at_50"] = {"solver": best, "seeds": args.seeds, **figures}
    table, _ = shipped_table()
    out["pc"] = table["samplers"]["predictor–corrector"]
    folder = shipped_checkpoint_dir()
    out["checkpoint_sha256"] = shipped_weights_sha256()
    atomic_write(folder / ODE_CURVE_FILE, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    for name, f in ((f"{best}, {ODE_CALLS} calls", figures), ("predictor–corrector, same seeds", out["pc"])):
        print(f"{name}: Fréchet {f['frechet']}, confident {f['confident']}")


if __name__ == "__main__":
    main()
