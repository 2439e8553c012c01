"""``scoretutor sample mnist --n N --seed S --out FILE.npy``: draw digits from a checkpoint.

Writes a float32 array of shape (N, 1, 28, 28) in [0, 1], sampled with the notebook's default settings
from the shipped checkpoint unless ``--checkpoint DIR`` names another: predictor–corrector sampling
(``--sampler pc``, the default: NCSNv2 grid of 95 levels, 2 corrector steps each, 285 network calls)
annealed Langevin (``--sampler langevin``: T = 3 steps per level and the final denoising step), or the
probability-flow ODE (``--sampler ode``: DPM-Solver++(2M) on EDM's σ grid, ``--nfe`` network calls in all,
default 50; ``--solver`` picks another of notebook 07's ODE solvers; ``--solver heun --churn S`` adds Karras
et al.'s fresh noise at each step).

``--class K`` draws digits of class K with guidance (notebook 08): ``--guide free`` (the default:
classifier-free, the shipped class-conditional model) or ``--guide classifier`` (the shipped unconditional
model plus the noise-conditional classifier's gradient), scale ``--guidance W`` (the weight on ∇ log p(y | x):
0 = unconditional, 1 = conditional, default the shipped choice), sampled by stochastic Heun
(``--sampler ode``, the default with ``--class``, ``--nfe`` calls) or predictor–corrector (``--sampler pc``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scoretutor.cli import digit, non_negative_float, positive_float, positive_int

SOLVER_NAMES = {"euler": "Euler (ODE in t)", "ddim": "DDIM", "heun": "Heun (Karras)",
                "dpm2m": "DPM-Solver++(2M)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["mnist"], help="which model family (only mnist)")
    parser.add_argument("--n", type=positive_int, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output file, .npy (float32, N×1×28×28, in [0, 1])")
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--sampler", choices=["pc", "langevin", "ode"],
                        help="predictor-corrector (default), annealed Langevin, or the probability-flow ODE "
                             "(default with --class: ode, stochastic Heun)")
    parser.add_argument("--class", dest="digit_class", type=digit,
                        help="draw digits of this class (0-9) with guidance")
    parser.add_argument("--guidance", type=non_negative_float,
                        help="--class only: guidance scale W, the weight on grad log p(y|x) "
                             "(0 = unconditional, 1 = conditional; default 2)")
    parser.add_argument("--guide", choices=["free", "classifier"],
                        help="--class only: classifier-free guidance (default) or a noise-conditional "
                             "classifier's gradient")
    parser.add_argument("--nfe", type=positive_int,
                        help="ode only: network calls in all (default 50)")
    parser.add_argument("--solver", choices=["euler", "ddim", "heun", "dpm2m"],
                        help="ode only: the ODE solver (default dpm2m: DPM-Solver++(2M))")
    parser.add_argument("--churn", type=positive_float,
                        help="ode with --solver heun: Karras et al.'s S_churn (noise added at each step)")
    parser.add_argument("--steps-each", type=positive_int,
                        help="Langevin steps per level (langevin: T, default 3; pc: correctors, default 2)")
    parser.add_argument("--step-size", type=positive_float,
                        help="langevin only: step size ε at the smallest level")
    parser.add_argument("--snr", type=positive_float,
                        help="pc only: corrector signal-to-noise ratio (default 0.3)")
    parser.add_argument("--batch-size", type=positive_int, default=500,
                        help="images sampled at once (default 500)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: best available)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                        help="precision of the network: auto (default, or SCORETUTOR_PRECISION) = bf16 "
                             "autocast on CUDA GPUs with bf16 and CPUs with AMX or AVX-512 BF16, else fp32")


def run(args: argparse.Namespace) -> int:
    from scoretutor.errors import UsageError

    if args.digit_class is None and (args.guidance, args.guide) != (None, None):
        raise UsageError("--guidance and --guide need --class K (the digit to draw)")
    if args.digit_class is not None:
        args.sampler = args.sampler or "ode"
        if args.sampler == "langevin" or (args.solver, args.churn, args.steps_each, args.step_size,
                                          args.snr) != (None,) * 5:
            raise UsageError("with --class, choose --sampler ode (with --nfe) or pc; --solver, --churn, "
                             "--steps-each, --step-size and --snr are for unguided sampling")
    args.sampler = args.sampler or "pc"
    if args.sampler != "ode" and (args.nfe, args.solver, args.churn) != (None, None, None):
        raise UsageError("--nfe, --solver and --churn are for --sampler ode")
    if args.churn is not None and args.solver != "heun":
        raise UsageError("--churn needs --solver heun (Karras et al.'s stochastic Heun)")
    if args.sampler == "ode" and (args.steps_each, args.step_size, args.snr) != (None, None, None):
        raise UsageError("--steps-each, --step-size and --snr are for pc and langevin; "
                         "ode takes --nfe and --solver")
    if args.sampler == "pc" and args.step_size is not None:
        raise UsageError("--step-size is for --sampler langevin; pc chooses its steps from --snr")
    if args.sampler == "langevin" and args.snr is not None:
        raise UsageError("--snr is for --sampler pc; langevin takes --step-size")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise UsageError(f"--out must end in .npy, got {args.out}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: folder {out.parent} does not exist")

    import numpy as np
    import torch

    from scoretutor.device import get_device, resolve_precision
    from scoretutor.files import atomic_write

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    precision = resolve_precision(args.precision, device)
    if args.digit_class is not None:
        draw, summary = _guided(args, device, precision)
    else:
        draw, summary = _unguided(args, device, precision)
    chunks = []
    for i, start in enumerate(range(0, args.n, args.batch_size)):
        m = min(args.batch_size, args.n - start)
        chunks.append(draw(m, args.seed + 1_000_003 * i).cpu())
    images = torch.cat(chunks).numpy().astype(np.float32)
    atomic_write(out, lambda tmp: np.save(tmp, images))
    print(f"wrote {args.n} samples to {out} ({summary}, {precision})")
    return 0


def _guided(args: argparse.Namespace, device, precision: str):
    """(draw(m, seed), summary) for --class K: guided digits of one class."""
    from scoretutor import mnist
    from scoretutor.mnist import guidance

    guide = args.guide or "free"
    w = args.guidance if args.guidance is not None else guidance.GUIDANCE[guide]
    if guide == "free":
        model, card = guidance.load_conditional(args.checkpoint, device=device)
        classifier = None
    else:
        from scoretutor.mnist.noisy_classifier import load_noisy_classifier

        model, card = mnist.load_pretrained(args.checkpoint, device=device)
        classifier = load_noisy_classifier(device=device)
    calls = args.nfe if args.nfe is not None else guidance.ODE_GUIDED_CALLS
    draw = lambda m, seed: guidance.sample_guided(model, card, [args.digit_class] * m, w, guide, classifier,
                                                  args.sampler, n_calls=calls, seed=seed, precision=precision)
    how = f"stochastic Heun, {calls} calls" if args.sampler == "ode" else "predictor-corrector"
    kind = "classifier-free" if guide == "free" else "classifier"
    return draw, f"digit {args.digit_class}, {kind} guidance W={w:g}, {how}"


def _unguided(args: argparse.Namespace, device, precision: str):
    """(draw(m, seed), summary) for the unconditional samplers."""
    from scoretutor import mnist

    model, card = mnist.load_pretrained(args.checkpoint, device=device)
    if args.sampler == "ode":
        solver = SOLVER_NAMES[args.solver or "dpm2m"]
        nfe = args.nfe if args.nfe is not None else mnist.ODE_CALLS
        churn = args.churn or 0.0
        draw = lambda m, seed: mnist.sample_ode(model, m, card, n_calls=nfe, solver=solver, seed=seed,
                                              precision=precision, churn=churn)
        summary = f"probability-flow ODE, {solver}, {nfe} network calls"
        summary += f", S_churn={churn:g}" if churn else ""
    elif args.sampler == "langevin":
        overrides = {k: v for k, v in (("n_steps_each", args.steps_each), ("step_size", args.step_size))
                     if v is not None}
        settings = mnist.default_settings(card, **overrides)
        draw = lambda m, seed: mnist.sample(model, m, settings, seed=seed, precision=precision)
        summary = (f"annealed Langevin, L={settings.n_levels}, T={settings.n_steps_each}, "
                   f"ε={settings.step_size:.3g}")
    else:
        snr = args.snr if args.snr is not None else mnist.PC_SNR
        correctors = args.steps_each if args.steps_each is not None else mnist.PC_CORRECTORS
        draw = lambda m, seed: mnist.sample_pc(model, m, card, seed=seed, snr=snr, n_corrector=correctors,
                                             precision=precision)
        summary = f"predictor-corrector, {mnist.pc_steps(card)} levels, {correctors} correctors, snr={snr:g}"
    return draw, summary
