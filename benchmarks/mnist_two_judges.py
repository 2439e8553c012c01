"""Issue 22 under two judges: predictor–corrector against the ODE samplers at 50 network calls on the shipped
MNIST model, each sample set judged by both MNIST judges (:func:`scoretutor.mnist.classifier.load_judges`).

    python benchmarks/mnist_two_judges.py [--n 1000] [--seeds 0 1 2] [--samples-dir /work/runs/samples]
                                          [--threads 1] [--draw-only] [--only NAME ...]

Every sampler draws n digits per seed with :func:`scoretutor.mnist.quality.batched` (the same seeds, hence the
same x_T, for every sampler; PC's sets are those of ``benchmarks/mnist_sampler_comparison.py``). Each set is
saved as ``<samples-dir>/<sampler>_n<n>_seed<s>.npy`` with a ``.json`` beside it (sampler, calls, seed, wall
time, threads, the score model's sha256) and reused on a re-run when it belongs to the shipped weights. Every
set is then judged by :func:`scoretutor.mnist.quality.mnist_quality` under each judge, and one Markdown table
says for each sampler whether it meets issue 22's target under each judge: at N ≤ 50 calls, a Fréchet distance
within 1.2× PC's and a confident fraction within 0.05 of PC's (means over the seeds), and ≥ 4× faster.
Speed is the sampler's CPU time per 1,000 digits (``time.process_time``, one thread by default): on a shared
machine the wall time (also shown) depends on the other jobs, the CPU time much less.
The table is also written as ``<samples-dir>/two_judges.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from scoretutor.files import atomic_write
from scoretutor.mnist import PC_CORRECTORS, load_pretrained, pc_steps, sample_ode, sample_pc
from scoretutor.mnist.quality import batched, mnist_quality, shipped_weights_sha256

TARGET = {"calls": 50, "frechet_ratio": 1.2, "confident_drop": 0.05, "speedup": 4.0}
PC = "predictor–corrector"


def samplers(model, card) -> dict[str, tuple[str, int, object]]:
    """name → (file slug, network calls, ``draw(m, seed)``); PC first, the reference of the target."""
    pc_calls = pc_steps(card) * (PC_CORRECTORS + 1)

    def ode(solver, calls, churn=0.0):
        return lambda m, s: sample_ode(model, m, card, n_calls=calls, solver=solver, seed=s, churn=churn,
                                        precision="fp32")

    return {
        PC: ("pc", pc_calls, lambda m, s: sample_pc(model, m, card, seed=s, precision="fp32",
                                                        progress=False)),
        "DPM-Solver++(2M)": ("dpmpp2m_50", 50, ode("DPM-Solver++(2M)", 50)),
        "Heun (Karras)": ("heun_50", 50, ode("Heun (Karras)", 50)),
        "DDIM": ("ddim_50", 50, ode("DDIM", 50)),
        "Euler (ODE in t)": ("euler_50", 50, ode("Euler (ODE in t)", 50)),
        "Heun, S_churn = 10": ("heun_churn10_50", 50, ode("Heun (Karras)", 50, churn=10)),
        "Heun, S_churn = 10 (100 calls)": ("heun_churn10_100", 100, ode("Heun (Karras)", 100, churn=10)),
    }


def draw_or_load(folder: Path, slug: str, calls: int, draw, n: int, seed: int, sha: str,
                 threads: int) -> tuple[torch.Tensor, dict]:
    """The sample set (n, 1, 28, 28) of one sampler and seed: loaded if saved for these weights, else drawn
    (timed) and saved as .npy + .json."""
    path = folder / f"{slug}_n{n}_seed{seed}.npy"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        x = np.load(path)
        if meta.get("checkpoint_sha256") == sha and x.shape == (n, 1, 28, 28):
            return torch.from_numpy(x), meta
        print(f"{path}: saved for other weights or another n; drawing again", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    x = batched(draw, n, seed)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    meta = {"sampler": slug, "calls": calls, "n": n, "seed": seed, "seconds": round(seconds, 1),
            "seconds_per_1000": round(seconds * 1000 / n, 1),
            "cpu_seconds_per_1000": round(cpu * 1000 / n, 1),
            "threads": threads,
            "torch": torch.__version__, "checkpoint_sha256": sha}
    atomic_write(path, lambda p: np.save(p, x.numpy().astype(np.float32)))
    atomic_write(meta_path, json.dumps(meta, indent=1) + "\n")
    return x, meta


def _ms(values: list[float], digits: int = 2) -> str:
    m = statistics.fmean(values)
    return f"{m:.{digits}f} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def summarise(result: dict) -> dict:
    """Per sampler and judge: means, ratios to PC and whether issue 22's target is met."""
    judges, rows = result["judges"], result["samplers"]
    pc = rows[PC]
    pc_time = statistics.fmean(pc["cpu_seconds_per_1000"])
    for name, r in rows.items():
        r["speedup"] = pc_time / statistics.fmean(r["cpu_seconds_per_1000"])
        r["verdict"] = {}
        for j in judges:
            fr = statistics.fmean(r[j]["frechet"]) / statistics.fmean(pc[j]["frechet"])
            dc = statistics.fmean(r[j]["confident"]) - statistics.fmean(pc[j]["confident"])
            checks = {"calls": r["calls"] <= TARGET["calls"],
                      "frechet": round(fr, 3) <= TARGET["frechet_ratio"],
                      "confident": round(dc, 3) >= -TARGET["confident_drop"],
                      "speed": r["speedup"] >= TARGET["speedup"]}
            r["verdict"][j] = {"frechet_ratio": fr, "confident_diff": dc, **checks,
                               "meets": name != PC and all(checks.values())}
    return result


def format_table(result: dict) -> str:
    judges, rows, real = result["judges"], result["samplers"], result["real"]
    head = "| sampler | calls | seeds | CPU s / 1,000 (wall) | speed-up |"
    rule = "|---|---|---|---|---|"
    for j in judges:
        head += f" {j}: Fréchet | × PC | {j}: confident | − PC | {j}: target met? |"
        rule += "---|---|---|---|---|"
    lines = [head, rule]
    cells = "| real test digits (10 subsets of n) | – | – | – | – |"
    for j in judges:
        (fm, fs), (cm, cs) = real[j]["frechet"], real[j]["confident"]
        cells += f" {fm:.2f} ± {fs:.2f} | – | {cm:.3f} ± {cs:.3f} | – | – |"
    lines.append(cells)
    for name, r in rows.items():
        cpu, wall = (statistics.fmean(r[k]) for k in ("cpu_seconds_per_1000", "seconds_per_1000"))
        cells = (f"| {name} | {r['calls']} | {','.join(map(str, r['seeds']))} | {cpu:.0f} ({wall:.0f}) | "
                 f"{r['speedup']:.1f}× |")
        for j in judges:
            v = r["verdict"][j]
            if name == PC:
                verdict = "(reference)"
            elif v["meets"]:
                verdict = "**yes**"
            else:
                why = [k for k in ("calls", "frechet", "confident", "speed") if not v[k]]
                verdict = "no (" + ", ".join({"calls": "N > 50"}.get(k, k) for k in why) + ")"
            cells += (f" {_ms(r[j]['frechet'])} | {v['frechet_ratio']:.2f} | {_ms(r[j]['confident'], 3)} | "
                      f"{v['confident_diff']:+.3f} | {verdict} |")
        lines.append(cells)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ode-seeds", type=int, nargs="+", default=None,
                        help="seeds for the ODE samplers (default: --seeds)")
    parser.add_argument("--samples-dir", default="/work/runs/samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--draw-only", action="store_true",
                        help="draw and save the sample sets, judge nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.samples_dir)
    model, card = load_pretrained(device="cpu")
    sha = shipped_weights_sha256()
    table = samplers(model, card)
    ode_seeds = args.ode_seeds or args.seeds
    sets: dict[str, list] = {name: [] for name in table}
    for seed in sorted(set(args.seeds) | set(ode_seeds)):  # seed by seed: a full table after the first
        for name, (slug, calls, draw) in table.items():
            if seed not in (args.seeds if name == PC else ode_seeds):
                continue
            x, meta = draw_or_load(folder, slug, calls, draw, args.n, seed, sha, args.threads)
            sets[name].append((seed, x, meta))
            print(f"{name}, seed {seed}: {meta['seconds_per_1000']} s per 1,000 (CPU time "
                  f"{meta['cpu_seconds_per_1000']} s)", flush=True)
    if args.draw_only:
        return

    from scoretutor.mnist.classifier import load_judges

    judges = load_judges(device="cpu")
    result = {"n": args.n, "threads": args.threads, "checkpoint_sha256": sha, "target": TARGET,
              "judges": list(judges), "real": {}, "samplers": {}}
    for name, runs in sets.items():
        row = {"calls": table[name][1], "seeds": [s for s, _, _ in runs],
               "seconds_per_1000": [m["seconds_per_1000"] for _, _, m in runs],
               "cpu_seconds_per_1000": [m["cpu_seconds_per_1000"] for _, _, m in runs]}
        for jname, judge in judges.items():
            per = {"frechet": [], "confident": [], "entropy": [], "nearest_train": []}
            for _, x, _ in runs:
                rows = mnist_quality(x, classifier=judge)
                for r in rows:
                    per[r["metric"]].append(r["samples"])
                result["real"][jname] = {r["metric"]: (r["real_mean"], r["real_std"]) for r in rows}
            row[jname] = per
            print(f"{name} / {jname}: Fréchet {_ms(per['frechet'])}, confident {_ms(per['confident'], 3)}",
                  flush=True)
        result["samplers"][name] = row
    summarise(result)
    text = format_table(result)
    result["table"] = text
    atomic_write(folder / "two_judges.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(text)


if __name__ == "__main__":
    main()
