"""Issue 23 §2: guidance on MNIST — accuracy and diversity against the guidance scale γ, for classifier and
classifier-free guidance side by side, under both judges.

    python benchmarks/mnist_guidance.py [--per-class 50] [--guidance 0 1 2 3 5] [--calls 50] [--threads 2]
    python benchmarks/mnist_guidance.py --per-class 100 --guidance 2 --name default   # the CLI's default

For each guide and γ: ``--per-class`` digits of every class 0–9 (same seed, so the same x_T for both
guides), drawn by :func:`scoretutor.mnist.guidance.sample_guided` (stochastic Heun, ``--calls`` calls), judged
by :func:`scoretutor.mnist.quality.class_quality` under judge A and judge B, with real test digits of the same
classes as the baseline. Sample sets are saved under ``--samples-dir`` and reused on a re-run. Writes (merges
into) ``scoretutor/mnist/shipped/conditional_model/guidance_sweep.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from scoretutor.files import atomic_write
from scoretutor.mnist import load_pretrained
from scoretutor.mnist.classifier import load_judges
from scoretutor.mnist.guidance import conditional_checkpoint_dir, load_conditional, sample_guided
from scoretutor.mnist.noisy_classifier import load_noisy_classifier
from scoretutor.mnist.quality import GUIDANCE_SWEEP_FILE, batched, class_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--guidance", type=float, nargs="+", default=[0, 1, 2, 3, 5])
    parser.add_argument("--guides", nargs="+", default=["free", "classifier"])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default="sweep", help="key of this run in the JSON file")
    parser.add_argument("--samples-dir", default="/work/runs/samples/guidance")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.samples_dir)
    folder.mkdir(parents=True, exist_ok=True)
    models = {"free": (*load_conditional(), None),
              "classifier": (*load_pretrained(), load_noisy_classifier())}
    judges = load_judges()
    labels = torch.arange(10).repeat_interleave(args.per_class)
    path = conditional_checkpoint_dir() / GUIDANCE_SWEEP_FILE
    out = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    run = out.setdefault(args.name, {"per_class": args.per_class, "calls": args.calls, "seed": args.seed,
                                     "sampler": "stochastic Heun (S_churn = 10)",
                                     "threads": torch.get_num_threads(),
                                     "results": []})
    print("| guide | γ | judge | read as asked | worst class | confident | Fréchet within | spread | "
          "nearest train | s per 1,000 |\n|---|---|---|---|---|---|---|---|---|---|")
    for guide in args.guides:
        model, card, classifier = models[guide]
        for w in args.guidance:
            file = folder / f"{guide}-w{w:g}-calls{args.calls}-n{args.per_class}-seed{args.seed}.npy"
            seconds = None
            if file.exists():
                x = torch.from_numpy(np.load(file))
            else:
                t0 = time.perf_counter()
                draw = _drawer(model, card, classifier, guide, w, labels, args.calls)
                x = batched(draw, len(labels), args.seed)
                seconds = (time.perf_counter() - t0) * 1000 / len(labels)
                np.save(file, x.numpy())
            for judge_name, judge in judges.items():
                q = class_quality(x, labels, judge)
                run["results"] = [r for r in run["results"]
                                  if (r["guide"], r["guidance"], r["judge"]) != (guide, w, judge_name)]
                run["results"].append({"guide": guide, "guidance": w, "judge": judge_name,
                                       "seconds_per_1000": seconds, **q})
                s = q["samples"]
                print(f"| {guide} | {w:g} | {judge_name} | {s['accuracy']:.3f} | {s['worst_class']:.3f} | "
                      f"{s['confident']:.3f} | {s['frechet_within']:.2f} | {s['spread']:.2f} | "
                      f"{s['nearest_train']:.2f} | {'' if seconds is None else f'{seconds:.0f}'} |",
                      flush=True)
            atomic_write(path, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def _drawer(model, card, classifier, guide: str, w: float, labels: torch.Tensor, calls: int):
    """``draw(m, seed)`` for :func:`batched`: the digits of the next ``m`` labels (batches come in order)."""
    done = [0]

    def draw(m: int, seed: int) -> torch.Tensor:
        y = labels[done[0]:done[0] + m]
        done[0] += m
        return sample_guided(model, card, y, w, guide, classifier, "ode", n_calls=calls, seed=seed)

    return draw


if __name__ == "__main__":
    main()
