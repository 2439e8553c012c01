"""Inverse problems with the shipped MNIST score model (notebook 08): denoising and super-resolution.

    python benchmarks/mnist_inverse.py --out DIR [--n 50] [--k 8] [--threads 1] [--save-samples]

n test digits (a seeded random subset of the official 10,000), each measured and reconstructed:

- denoising, y = x + σ_y ε at σ_y = 0.5: y itself, y clamped to [0, 1], Tweedie's posterior mean
  E[x | y] = y + σ_y² s(y, σ_y), posterior samples (``denoise_posterior``) and the mean of k of them;
- super-resolution from 7 × 7 (4 × 4 block means) and from 14 × 14 (2 × 2), noiseless: nearest-neighbour
  upsampling (= A⁺y), bilinear upsampling, posterior samples (``super_resolve``, the replacement method)
  and the mean of k;
- the failure with measurement noise: 7 × 7 with σ_y = 0.2, sampled once told σ_y (noise-aware) and once
  told 0 (plain replacement, which copies the noise into the block means).

Columns: MSE per pixel (mean ± standard error over digits; "one sample" averages the MSE of each of the k
samples), PSNR = 10 log₁₀(1/MSE) of that mean MSE, the RMS of A x̂ − y per measured value (0 for a
consistent reconstruction; σ_y for an exact posterior sample, which is exchangeable with the truth given y),
and the fraction of digits whose reconstruction the shipped judge puts in the class it gives the truth.
Checks printed below the tables: for an exact posterior sampler E‖x_sample − x‖² = 2 E‖E[x|y] − x‖² and
E‖mean of k − x‖² = (1 + 1/k) E‖E[x|y] − x‖² (ratio one sample / mean of k = 2/(1 + 1/k)), and the samples'
spread V (the unbiased within-digit variance per pixel, = E tr Cov(x | y)/784 if exact) equals the MMSE.
``mmse_from_samples`` = E‖mean of k − x‖² − V/k estimates the MSE of the sampler's own mean (k → ∞): the
MMSE for an exact sampler, and never below the true MMSE, so V > mmse_from_samples proves the samples are
more spread out than the true posterior.
Writes ``DIR/mnist_inverse.json`` (and with ``--save-samples`` the first 16 digits' images to
``DIR/mnist_inverse_samples.pt``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from scoretutor.files import atomic_write
from scoretutor.mnist import PC_CORRECTORS, PC_SNR, load_pretrained, pc_steps
from scoretutor.mnist.classifier import classify, load_classifier
from scoretutor.mnist.data import load_shipped_mnist
from scoretutor.mnist.inverse import (
    AveragePooling,
    denoise_posterior,
    denoise_steps,
    measure,
    super_resolve,
    tweedie_denoise,
    upsample,
)

Tensor = torch.Tensor


def per_image_mse(xhat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error per pixel of each image, shape (N,)."""
    return (xhat - x).pow(2).flatten(1).mean(1)


def row(name: str, xhat: Tensor, x: Tensor, y: Tensor, op: AveragePooling, judge_truth: Tensor, judge,
        raw: Tensor | None = None, k: int = 1) -> dict:
    """The figures of one reconstruction. xhat: (N·k, 1, 28, 28) in [0, 1] (k per digit, in order); raw: the
    same before clamping (for A x̂ − y; default xhat)."""
    xr = x.repeat_interleave(k, 0)
    mse = per_image_mse(xhat, xr).view(-1, k).mean(1)  # per digit, averaged over its k reconstructions
    resid = op(xhat if raw is None else raw) - y.repeat_interleave(k, 0)
    rms = resid.flatten(1).pow(2).mean(1).sqrt()
    cls = classify(judge, xhat)[0].argmax(1).view(-1, k)
    agree = (cls == judge_truth[:, None]).float().mean(1)
    m = mse.mean().item()
    return {"name": name, "mse": m, "mse_se": mse.std().item() / math.sqrt(len(mse)),
            "psnr": 10 * math.log10(1 / m), "consistency_rms": rms.mean().item(),
            "judge_agrees": agree.mean().item(),
            "judge_agrees_se": agree.std().item() / math.sqrt(len(agree))}


def posterior_figures(samples: Tensor, x: Tensor, k: int, judge, judge_truth: Tensor) -> dict:
    """Calibration and ambiguity of k posterior samples per digit (samples: (N·k, 1, 28, 28))."""
    s = samples.view(-1, k, 784)
    mean = s.mean(1)
    spread = (s - mean[:, None]).pow(2).sum(1).mean(1) / (k - 1)  # unbiased tr Cov / 784, per digit
    mse_mean = per_image_mse(mean, x.flatten(1))
    mse_one = per_image_mse(samples, x.repeat_interleave(k, 0)).view(-1, k).mean(1)
    cls = classify(judge, samples)[0].argmax(1).view(-1, k)
    right = (cls == judge_truth[:, None]).sum(1)
    majority = torch.mode(cls, 1).values == judge_truth
    return {
        "per_digit": {"judge_classes_of_samples": cls.tolist(), "mse_of_mean": mse_mean.tolist(),
                      "spread_V": spread.tolist()},
        "spread_V": spread.mean().item(),
        "mmse_from_samples": (mse_mean - spread / k).mean().item(),  # E‖x̄_k − x‖² − V/k estimates the MMSE
        "ratio_one_sample_to_mean_of_k": (mse_one.mean() / mse_mean.mean()).item(),
        "ratio_expected_if_exact": 2 / (1 + 1 / k),
        "digits_all_k_right": (right == k).float().mean().item(),
        "digits_some_wrong": ((right > 0) & (right < k)).float().mean().item(),
        "digits_all_k_wrong": (right == 0).float().mean().item(),
        "majority_vote_right": majority.float().mean().item(),
    }


def summary(post: dict) -> str:
    return json.dumps({key: round(v, 4) for key, v in post.items() if key != "per_digit"}, indent=1)


def timing(out: dict, task: str) -> str:
    return f"\n{out['seconds'][task]:.0f} s wall, {out['cpu_seconds'][task]:.0f} s CPU"


def format_rows(title: str, rows: list[dict], expected_rms: str) -> str:
    lines = [f"\n{title}",
             f"| reconstruction | MSE (± se) | PSNR dB | RMS(A x̂ − y) [{expected_rms}] | judge agrees |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['mse']:.4f} ± {r['mse_se']:.4f} | {r['psnr']:.2f} | "
                     f"{r['consistency_rms']:.3g} | {r['judge_agrees']:.3f} ± {r['judge_agrees_se']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for mnist_inverse.json")
    parser.add_argument("--n", type=int, default=50, help="test digits")
    parser.add_argument("--k", type=int, default=8, help="posterior samples per digit")
    parser.add_argument("--sigma-y", type=float, default=0.5, help="denoising noise level")
    parser.add_argument("--noisy-sigma-y", type=float, default=0.2,
                        help="measurement noise of the 7×7 failure")
    parser.add_argument("--noisy-k", type=int, default=2, help="samples per digit in the noisy 7×7 runs")
    parser.add_argument("--seed", type=int, default=0,
                        help="digit subset; measurement noise: seed + 1, samplers: seed + 2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-samples", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t_all, c_all = time.perf_counter(), time.process_time()
    model, card = load_pretrained(device="cpu")
    judge = load_classifier(device="cpu")
    images, labels = load_shipped_mnist("test")
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[:args.n]
    x, lab = images[idx], labels[idx]
    judge_truth = classify(judge, x)[0].argmax(1)
    n, k = args.n, args.k
    out = {"n": n, "k": k, "seed": args.seed, "digits": "shipped MNIST test set, randperm(seed)[:n]",
           "test_indices": idx.tolist(), "labels": lab.tolist(), "judge_on_truth": judge_truth.tolist(),
           "judge_on_truth_vs_labels": (judge_truth == lab).float().mean().item(),
           "sampler": {"pc_steps": pc_steps(card), "denoise_steps": denoise_steps(card, args.sigma_y),
                       "n_corrector": PC_CORRECTORS, "snr": PC_SNR},
           "machine": {"threads": args.threads, "cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__},
           "tasks": {}, "seconds": {}, "cpu_seconds": {}}
    text, saved = [], {"truth": x[:16]}

    # -- denoising ---------------------------------------------------------------------------------------
    t0, c0 = time.perf_counter(), time.process_time()
    sy = args.sigma_y
    op = AveragePooling(1)
    y = measure(x, 1, sy, seed=args.seed + 1)
    tw = tweedie_denoise(model, y, sy)
    raw = denoise_posterior(model, y.repeat_interleave(k, 0), sy, card, seed=args.seed + 2, clamp=False)
    samples = raw.clamp(0, 1)
    mean = samples.view(n, k, 1, 28, 28).mean(1)
    rows = [row("y (as measured)", y, x, y, op, judge_truth, judge),
            row("y clamped to [0, 1]", y.clamp(0, 1), x, y, op, judge_truth, judge),
            row("Tweedie E[x|y] (1 call)", tw, x, y, op, judge_truth, judge),
            row("one posterior sample", samples, x, y, op, judge_truth, judge, raw=raw, k=k),
            row(f"mean of {k} samples", mean, x, y, op, judge_truth, judge)]
    post = posterior_figures(samples, x, k, judge, judge_truth)
    post["ratio_one_sample_to_tweedie"] = rows[3]["mse"] / rows[2]["mse"]
    post["ratio_mean_of_k_to_tweedie"] = rows[4]["mse"] / rows[2]["mse"]
    out["tasks"]["denoise"] = {"sigma_y": sy, "rows": rows, "posterior": post}
    out["seconds"]["denoise"] = time.perf_counter() - t0
    out["cpu_seconds"]["denoise"] = time.process_time() - c0
    text.append(format_rows(f"Denoising, σ_y = {sy} (n = {n}, k = {k})", rows, f"σ_y = {sy} for samples"))
    saved.update(denoise_y=y[:16], denoise_samples=samples.view(n, k, 1, 28, 28)[:16],
                 denoise_tweedie=tw[:16])
    print(text[-1], "\n", summary(post), timing(out, "denoise"), flush=True)

    # -- super-resolution, noiseless ------------------------------------------------------------------------
    for f in (4, 2):
        t0, c0 = time.perf_counter(), time.process_time()
        op = AveragePooling(f)
        y = measure(x, f)
        raw = super_resolve(model, y.repeat_interleave(k, 0), card, seed=args.seed + 2, clamp=False)
        samples = raw.clamp(0, 1)
        mean = samples.view(n, k, 1, 28, 28).mean(1)
        rows = [row("nearest (A⁺y)", upsample(y), x, y, op, judge_truth, judge),
                row("bilinear", upsample(y, "bilinear").clamp(0, 1), x, y, op, judge_truth, judge),
                row("one posterior sample", samples, x, y, op, judge_truth, judge, raw=raw, k=k),
                row(f"mean of {k} samples", mean, x, y, op, judge_truth, judge)]
        post = posterior_figures(samples, x, k, judge, judge_truth)
        name = f"sr{28 // f}"
        out["tasks"][name] = {"factor": f, "sigma_y": 0.0, "rows": rows, "posterior": post}
        out["seconds"][name] = time.perf_counter() - t0
        out["cpu_seconds"][name] = time.process_time() - c0
        text.append(format_rows(f"Super-resolution from {28 // f}×{28 // f} (n = {n}, k = {k})", rows,
                                "0 for samples"))
        saved.update({f"{name}_y": y[:16], f"{name}_samples": samples.view(n, k, 1, 28, 28)[:16]})
        print(text[-1], "\n", summary(post), timing(out, name), flush=True)

    # -- super-resolution from a noisy 7 × 7: noise-aware against plain replacement ------------------------
    t0, c0 = time.perf_counter(), time.process_time()
    sy, kn, op = args.noisy_sigma_y, args.noisy_k, AveragePooling(4)
    y = measure(x, 4, sy, seed=args.seed + 1)
    rows = [row("nearest (A⁺y), clamped", upsample(y).clamp(0, 1), x, y, op, judge_truth, judge),
            row("bilinear", upsample(y, "bilinear").clamp(0, 1), x, y, op, judge_truth, judge)]
    for told, name in ((sy, f"sample, told σ_y = {sy}"), (0.0, "sample, told σ_y = 0 (plain replacement)")):
        raw = super_resolve(model, y.repeat_interleave(kn, 0), card, sigma_y=told, seed=args.seed + 2,
                            clamp=False)
        samples = raw.clamp(0, 1)
        rows.append(row(name, samples, x, y, op, judge_truth, judge, raw=raw, k=kn))
        clean = (op(raw) - op(x).repeat_interleave(kn, 0)).flatten(1).pow(2).mean(1).sqrt()
        rows[-1]["rms_to_clean_measurement"] = clean.mean().item()  # RMS(A x̂ − A x)
        mean = samples.view(n, kn, 1, 28, 28).mean(1)
        rows.append(row(f"  mean of its {kn}", mean, x, y, op, judge_truth, judge))
        saved[f"sr7_noisy_told_{told:g}"] = samples.view(n, kn, 1, 28, 28)[:16]
    saved["sr7_noisy_y"] = y[:16]
    out["tasks"]["sr7_noisy"] = {"factor": 4, "sigma_y": sy, "k": kn, "rows": rows}
    out["seconds"]["sr7_noisy"] = time.perf_counter() - t0
    out["cpu_seconds"]["sr7_noisy"] = time.process_time() - c0
    text.append(format_rows(f"Super-resolution from a noisy 7×7, σ_y = {sy} (n = {n}, k = {kn})", rows,
                            f"σ_y = {sy} for exact samples"))
    print(text[-1], timing(out, "sr7_noisy"), flush=True)

    out["seconds"]["total"] = time.perf_counter() - t_all
    out["cpu_seconds"]["total"] = time.process_time() - c_all
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "mnist_inverse.json", json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    if args.save_samples:
        torch.save(saved, folder / "mnist_inverse_samples.pt")
    print("\n".join(text))
    print(f"\ntotal {out['seconds']['total']:.0f} s wall, {out['cpu_seconds']['total']:.0f} s CPU, "
          f"{args.threads} thread(s)")


if __name__ == "__main__":
    main()
