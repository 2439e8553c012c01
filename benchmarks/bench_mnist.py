"""MNIST score model: training speed and sampling time beside the tutorial ScoreNet; the quality table.

    python benchmarks/bench_mnist.py                  # on get_device() (SCORETUTOR_DEVICE to override)
    python benchmarks/bench_mnist.py --threads 1      # a busy 2-core CPU: 1 thread avoids OpenMP stalls
    python benchmarks/bench_mnist.py --quality 1000   # + the quality table of 1,000 samples (slow on a CPU)
    python benchmarks/bench_mnist.py --compile        # + training speed of both under torch.compile
    python benchmarks/bench_mnist.py --precision-only --threads 1 --precision-steps 6 --precision-levels 4
                                                      # only the fp32/bf16 table (5), short

1. Training images/s at batch 64 (forward, DSM loss, backward, Adam step) for scoretutor's ScoreUNet
   (the shipped architecture) and the reference ScoreNet of the score-SDE tutorial
   (benchmarks/reference_scorenet.py), measured in alternating rounds in one run, so that a busy
   machine slows both alike; median over rounds. Target: ScoreUNet ≥ reference. With ``--compile``
   the same again with both networks compiled (``train mnist --compile``; ~1 min of compiling each).
2. Sampling time of 64 images with the default settings for both networks: annealed Langevin (NCSNv2
   grid, final denoising step) and predictor–corrector (the command line's default; 285 network
   calls). Target: ≤ 30 s on the CPU.
3. Notebook 05's ε/T explorer (8 images, 20 levels): compute time of a frame (median and max over
   the slider settings visited), the time until the background thread has every setting, and a
   slider move after that. Target: ≤ 200 ms.
4. With ``--quality N``: the quality table of N samples from the shipped checkpoint, both samplers.
5. fp32 beside bf16 autocast (``--precision``), measured in alternating rounds in one process: training
   images/s at batch 64 (``--precision-steps`` steps each, default 24), one call of the shipped network on
   64 digits, 64 samples end to end (predictor–corrector, ``--precision-levels`` levels, default the full
   95). On a device without bf16 units bf16 is forced (``torch.autocast`` directly) and labelled emulated.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_scorenet import ReferenceScoreNet  # noqa: E402

from scoretutor import mnist  # noqa: E402
from scoretutor.device import bf16_supported, cpu_description, get_device, make_generator  # noqa: E402
from scoretutor.losses import continuous_ncsn_loss, unit_output_weighting  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_throughput(models: dict, device: torch.device, batch: int = 64, steps: int = 8,
                     rounds: int = 5) -> dict[str, float]:
    """Median images/s over ``rounds`` alternating rounds of ``steps`` training steps per model."""
    x = torch.rand(batch, 1, 28, 28, generator=make_generator(0)).round().to(device)
    g = make_generator(1, device)
    opts = {k: torch.optim.Adam(m.parameters(), 1e-3) for k, m in models.items()}

    def step(k):
        loss = continuous_ncsn_loss(models[k], x, 0.01, 16.0, generator=g)
        opts[k].zero_grad(set_to_none=True)
        loss.backward()
        opts[k].step()

    return alternating_rates(step, list(models), device, batch, steps, rounds, warmup=3)


def alternating_rates(step, keys: list[str], device: torch.device, batch: int, steps: int, rounds: int,
                      warmup: int = 1) -> dict[str, float]:
    """Median images/s of ``step(key)`` per key: ``warmup`` untimed steps each (oneDNN primitives,
    allocator), then ``rounds`` rounds of ``steps`` steps, the keys alternating so that a busy machine
    slows all of them alike."""
    for k in keys:
        for _ in range(warmup):
            step(k)
    rates = {k: [] for k in keys}
    for _ in range(rounds):
        for k in keys:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step(k)
            _sync(device)
            rates[k].append(steps * batch / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in rates.items()}


def sampling_time(draw, model, n: int = 64) -> float:
    _sync(next(model.parameters()).device)
    t0 = time.perf_counter()
    draw(model, n, 0)
    _sync(next(model.parameters()).device)
    return time.perf_counter() - t0


def cpu_kind() -> str:
    """lscpu's model name (with family/model) beside what torch reports (kernels, bf16 units)."""
    fields = {}
    if shutil.which("lscpu"):
        with contextlib.suppress(Exception):
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            for line in text.splitlines():
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    name = fields.get("Model name")
    if name and "CPU family" in fields:
        name += f" (family {fields['CPU family']}, model {fields.get('Model', '?')})"
    flags = fields.get("Flags", "").split()
    bf16_flags = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    torch_says = cpu_description()
    return f"{name or torch_says}; torch: {torch_says}" + (
        f"; lscpu flags: {', '.join(bf16_flags) or 'no avx512f/avx512_bf16/amx_bf16'}" if flags else "")


def precision_comparison(device: torch.device, steps: int = 24, levels: int | None = None,
                         rounds: int = 2, calls: int = 3) -> None:
    """fp32 beside bf16 autocast, alternating in one process (so a busy machine slows both alike)."""
    native = bf16_supported(device)
    where = "this CPU" if device.type == "cpu" else str(device)
    bf16 = "bf16" if native else f"bf16 (not supported by {where}: emulated)"
    modes = {"fp32": lambda: contextlib.nullcontext(),
             bf16: lambda: torch.autocast(device.type, dtype=torch.bfloat16)}
    print(f"\nfp32 vs bf16 autocast on {device}: {cpu_kind() if device.type == 'cpu' else device}")

    # 1. training images/s, batch 64: the loss under autocast as fit() computes it, backward and Adam outside
    batch, x = 64, torch.rand(64, 1, 28, 28, generator=make_generator(0)).round().to(device)
    nets, opts, gens = {}, {}, {}
    for k in modes:
        torch.manual_seed(0)
        nets[k] = mnist.make_model().to(device)
        opts[k] = torch.optim.Adam(nets[k].parameters(), 2e-3)
        gens[k] = make_generator(1, device)
    weighting = unit_output_weighting(nets["fp32"].sigma_data)

    def train_step(k):
        with modes[k]():
            loss = continuous_ncsn_loss(nets[k], x, 0.01, 16.0, weighting=weighting, generator=gens[k])
        opts[k].zero_grad(set_to_none=True)
        loss.backward()
        opts[k].step()

    per_round = max(1, steps // rounds)
    train = alternating_rates(train_step, list(modes), device, batch, per_round, rounds)

    # 2. one call of the shipped network on 64 digits (σ = 0.5), best of ``calls`` per round
    model, card = mnist.load_pretrained(device=device)
    digits = torch.rand(64, 1, 28, 28, generator=make_generator(2)).to(device)
    call_s = {k: [] for k in modes}
    with torch.no_grad():
        for _ in range(rounds):
            for k in modes:
                for _ in range(calls):
                    _sync(device)
                    t0 = time.perf_counter()
                    with modes[k]():
                        model(digits, 0.5)
                    _sync(device)
                    call_s[k].append(time.perf_counter() - t0)

    # 3. 64 samples end to end (predictor–corrector); bf16 forced where the device has no bf16 units
    n_levels = levels or mnist.pc_steps(card)
    n_calls = n_levels * (1 + mnist.PC_CORRECTORS)
    sample_s = {}
    forced = contextlib.nullcontext() if native else mock.patch("scoretutor.device.bf16_supported",
                                                               return_value=True)
    with forced:
        for k in modes:
            _sync(device)
            t0 = time.perf_counter()
            mnist.sample_pc(model, 64, card, seed=0, n_steps=n_levels, progress=False,
                            precision="fp32" if k == "fp32" else "bf16")
            _sync(device)
            sample_s[k] = time.perf_counter() - t0

    call = {k: min(v) for k, v in call_s.items()}
    width = max(len(k) for k in modes)
    print(f"  {'':{width}s}  {'training (img/s)':>17s}  {'1 call, 64 digits':>17s}  "
          f"{f'64 samples, {n_calls} calls':>24s}")
    for k in modes:
        print(f"  {k:{width}s}  {train[k]:17.0f}  {call[k] * 1e3:14.0f} ms  {sample_s[k]:22.1f} s")
    f, b = "fp32", bf16
    print(f"  {'bf16 / fp32 speed':{width}s}  {train[b] / train[f]:16.2f}x  {call[f] / call[b]:16.2f}x  "
          f"{sample_s[f] / sample_s[b]:23.2f}x")
    full = mnist.pc_steps(card) * (1 + mnist.PC_CORRECTORS)
    note = f", the default schedule makes {full} calls" if n_calls != full else ""
    print(f"  (training: median of {rounds} rounds of {per_round} steps each; a call: best of "
          f"{rounds * calls}; samples: one run each, {n_levels} levels{note})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time training under torch.compile")
    parser.add_argument("--quality", type=int, default=0, help="samples for the quality table (0: skip)")
    parser.add_argument("--precision-only", action="store_true", help="only the fp32 vs bf16 table")
    parser.add_argument("--precision-steps", type=int, default=24, help="training steps per precision")
    parser.add_argument("--precision-levels", type=int, default=None,
                        help="predictor-corrector levels for the 64 samples (default: the full 95)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device()
    print(f"device {device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    if args.precision_only:
        precision_comparison(device, steps=args.precision_steps, levels=args.precision_levels)
        return
    torch.manual_seed(0)
    models = {"ScoreUNet (scoretutor)": mnist.make_model().to(device),
              "ScoreNet (tutorial reference)": ReferenceScoreNet().to(device)}
    for name, m in models.items():
        print(f"  {name:30s} {sum(p.numel() for p in m.parameters()) / 1e6:.3f} M parameters")

    runs = {"training, batch 64 (median of alternating rounds):": models}
    if args.compile:  # the networks as `train mnist --compile` runs ours
        compiled = {k: torch.compile(m) for k, m in models.items()}
        runs["training, batch 64, both under torch.compile:"] = compiled
    for title, nets in runs.items():
        rates = train_throughput(nets, device, rounds=args.rounds)
        print(f"\n{title}")
        for name, r in rates.items():
            print(f"  {name:30s} {r:7.0f} images/s")
        ours, ref = rates.values()
        print(f"  ratio ScoreUNet / reference: {ours / ref:.2f} (target >= 1)")

    model, card = mnist.load_pretrained(device=device)
    settings = mnist.default_settings(card)
    reference = models["ScoreNet (tutorial reference)"]
    pc_calls = mnist.pc_steps(card) * (1 + mnist.PC_CORRECTORS)
    langevin = f"L={settings.n_levels}, T={settings.n_steps_each}, {settings.n_score_evals} calls"
    pc = f"{mnist.pc_steps(card)} levels, {mnist.PC_CORRECTORS} correctors, {pc_calls} calls"
    samplers = {  # name -> (description, draw(model, n, seed))
        "annealed Langevin": (langevin, lambda m, n, s: mnist.sample(m, n, settings, seed=s, progress=False)),
        "predictor-corrector": (pc, lambda m, n, s: mnist.sample_pc(m, n, card, seed=s, progress=False)),
    }
    for label, (description, draw) in samplers.items():
        print(f"\nsampling 64 images, {label} ({description}):")
        for name, m in (("ScoreUNet (shipped)", model), ("ScoreNet (reference)", reference)):
            m.eval()
            print(f"  {name:30s} {sampling_time(draw, m):6.1f} s (target <= 30 s)")

    from scoretutor.lecture.widgets.mnist import MNISTSamplerExplorer

    explorer = MNISTSamplerExplorer(model, card, n=8, n_levels=20, prefetch=False)
    computed = []
    for factor, T in ((1.0, 1), (2.0, 1), (4.0, 1), (1.0, 2), (2.0, 2), (1.0, 3), (2.0, 3)):
        explorer.update(factor=factor, T=T)
        computed.append(explorer.last_update_s)
    median_ms, max_ms = statistics.median(computed) * 1e3, max(computed) * 1e3
    t0 = time.perf_counter()
    explorer = MNISTSamplerExplorer(model, card, n=8, n_levels=20)
    explorer.prefetch_thread.join()
    ready_s = time.perf_counter() - t0
    moves = []
    for factor, T in ((1.0, 1), (2.0, 1), (4.0, 2), (8.0, 3), (0.25, 4), (32.0, 1)):
        explorer.update(factor=factor, T=T)
        moves.append(explorer.last_update_s)
    move_ms = statistics.median(moves) * 1e3, max(moves) * 1e3
    print(f"\nexplorer (8 images, 20 levels): a frame computes in {median_ms:.0f} ms (median; max "
          f"{max_ms:.0f} ms); all {len(explorer.cache)} settings ready {ready_s:.1f} s after it appears; "
          f"then a slider move takes {move_ms[0]:.0f} ms (median; max {move_ms[1]:.0f} ms)")

    precision_comparison(device, steps=args.precision_steps, levels=args.precision_levels)

    if args.quality:
        from scoretutor.mnist.quality import format_quality_comparison, mnist_quality

        quality = {}
        for label, (_, draw) in samplers.items():
            t0 = time.perf_counter()
            samples = torch.cat([draw(model, min(500, args.quality - i), 1000 + i)
                                 for i in range(0, args.quality, 500)])
            print(f"\n{label}: {args.quality} samples in {time.perf_counter() - t0:.0f} s")
            quality[label] = mnist_quality(samples)
        print(format_quality_comparison(quality))


if __name__ == "__main__":
    main()
