"""``scoretutor train mnist --steps N --out DIR``: train the MNIST score model.

Writes DIR/model.safetensors + DIR/model.json (EMA weights and their card) every
``--checkpoint-every`` steps and at the end, and DIR/train_state.pt for ``--resume``. Ctrl-C saves
the run where it stopped (exit status 130); ``--resume`` with the same options continues it to
``--steps`` exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import warnings

from scoretutor.cli import positive_float, positive_int, unit_interval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["mnist"], help="what to train on (only mnist)")
    parser.add_argument("--steps", type=positive_int, required=True,
                        help="total optimiser steps (also when resuming)")
    parser.add_argument("--out", required=True, help="checkpoint folder to write (and resume from)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: best available)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="images per step (default 64)")
    parser.add_argument("--lr", type=positive_float, default=2e-3, help="Adam learning rate (default 2e-3)")
    parser.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                        help="constant, or cosine decay to lr/10 over --steps (default constant)")
    parser.add_argument("--compile", action="store_true",
                        help="train through torch.compile: 6-9%% faster steps here after ~1 min of compiling "
                             "(needs a C++ compiler)")
    parser.add_argument("--sigma-max", type=positive_float,
                        help="largest noise level (default: NCSNv2 rule, largest distance between digits)")
    parser.add_argument("--sigma-min", type=positive_float, help="smallest noise level (default 0.01)")
    parser.add_argument("--ema", type=unit_interval, help="EMA decay of the weights (default 0.998)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    parser.add_argument("--checkpoint-every", type=positive_int, default=500,
                        help="steps between checkpoints")
    parser.add_argument("--threads", type=positive_int,
                        help="CPU threads for torch (default: torch's; 1 is fastest on a busy machine)")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                        help="precision of the forward pass: auto (default, or SCORETUTOR_PRECISION) = bf16 "
                             "autocast on CUDA GPUs with bf16 and CPUs with AMX or AVX-512 BF16, else fp32")
    parser.add_argument("--time-limit", type=positive_float,
                        help="stop after this many minutes even if --steps are not done (resumable)")
    parser.add_argument("--conditional", action="store_true",
                        help="a class-conditional model (notebook 08: classifier-free guidance), trained "
                             "with labels dropped to the null label at rate --label-dropout")
    parser.add_argument("--label-dropout", type=unit_interval,
                        help="--conditional only: share of labels replaced by the null label (default 0.1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--download", action="store_true",
                        help="download the full 60,000 training digits if not cached (default: cache or the "
                             "10,000 shipped digits)")


def run(args: argparse.Namespace) -> int:
    from scoretutor.errors import UsageError

    if args.label_dropout is not None and not args.conditional:
        raise UsageError("--label-dropout is for --conditional training")
    if args.sigma_min is not None and args.sigma_max is not None and not args.sigma_min < args.sigma_max:
        raise UsageError(f"need --sigma-min < --sigma-max, got {args.sigma_min} and {args.sigma_max}")

    import torch

    from scoretutor import mnist
    from scoretutor.device import get_device, resolve_precision
    from scoretutor.mnist.data import load_mnist

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    precision = resolve_precision(args.precision, device)
    with warnings.catch_warnings():  # which digits are used is said in the line below
        warnings.simplefilter("ignore", UserWarning)
        images, labels = load_mnist("train", download=args.download)
    source = "shipped 10,000 training digits" if images.shape[0] == 10_000 else "official training set"
    print(f"training on {images.shape[0]} MNIST training digits ({source}) on {device} ({precision}), "
          f"{torch.get_num_threads()} CPU thread(s); writing {args.out}", flush=True)
    stop = threading.Event()
    with _stop_on_sigint(stop):
        _, card = mnist.train(
            args.out, args.steps, images, batch_size=args.batch_size, lr=args.lr,
            sigma_min=args.sigma_min if args.sigma_min is not None else mnist.SIGMA_MIN,
            sigma_max=args.sigma_max, ema_decay=args.ema if args.ema is not None else mnist.EMA_DECAY,
            seed=args.seed, device=device, resume=args.resume, checkpoint_every=args.checkpoint_every,
            progress=False if args.quiet else None,
            data_info={"name": "mnist", "split": "train", "count": int(images.shape[0]), "source": source},
            command=getattr(args, "command_line", None), lr_schedule=args.lr_schedule, compile=args.compile,
            precision=precision, stop=stop.is_set, labels=labels if args.conditional else None,
            label_dropout=args.label_dropout if args.label_dropout is not None else mnist.LABEL_DROPOUT,
            time_limit_s=None if args.time_limit is None else 60 * args.time_limit)
    if stop.is_set() and card["steps"] < args.steps:
        print(f"interrupted at step {card['steps']} of {args.steps}; the checkpoint in {args.out} is saved. "
              f"To continue to step {args.steps}: {_resume_command(args)}", file=sys.stderr, flush=True)
        return 130
    print(f"done: {card['steps']} steps in {card['wall_time_s']:.0f} s (σ ∈ [{card['sigma_min']:.3g}, "
          f"{card['sigma_max']:.3g}]); checkpoint in {args.out}")
    return 0


@contextlib.contextmanager
def _stop_on_sigint(stop: threading.Event):
    """While inside: the first Ctrl-C sets ``stop`` (training ends after the step under way and saves);
    a second one interrupts at once (the checkpoint is still written)."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nCtrl-C: stopping after this step and saving (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run: the one given, with ``--resume`` added."""
    line = getattr(args, "command_line", None)
    line = line or f"scoretutor train mnist --steps {args.steps} --out {args.out}"
    return line if args.resume else line + " --resume"
