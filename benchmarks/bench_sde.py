"""SDE samplers at equal quality, and the cost of exact log-likelihoods.

    python benchmarks/bench_sde.py                 # on get_device() (SCORETUTOR_DEVICE to override)
    python benchmarks/bench_sde.py --n 20000 --digits 4

1. Equal quality (2-D, exact scores of the NCSN mixture on VESDE(0.1, 50), started from the exact p₁
   so that no sampler is limited by the prior): for each sampler the smallest budget on a doubling
   grid whose (−5,−5) share is within ``--target`` of 0.2, with its score evaluations per sample and
   samples per second. Annealed Langevin uses 20 levels σ(t_i) (γ ≈ 1.4) with NCSNv2's step size.
2. The same budgets with a NoiseConditionalScoreMLP (untrained: timing does not depend on the
   weights): samples per second when the score is a network.
3. log_likelihood: seconds per 2-D point (MLP, exact and Hutchinson trace, 200 points per call) and
   per MNIST digit (Hutchinson; the shipped MNIST model if ``scoretutor.mnist.load_pretrained`` works, else a
   784-D MLP stand-in, which is said in the output).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.device import get_device, make_generator
from scoretutor.diffusion.likelihood import log_likelihood
from scoretutor.diffusion.samplers import predictor_corrector, probability_flow, reverse_sde
from scoretutor.diffusion.sde import VESDE, marginal_mixture, mixture_score_fn, sigma_model_score_fn
from scoretutor.metrics import mode_fractions
from scoretutor.models import NoiseConditionalScoreMLP
from scoretutor.sampling import annealed_langevin
from scoretutor.schedules import geometric_sigmas, ncsnv2_step_size

SAMPLERS = ("annealed Langevin", "reverse SDE", "predictor–corrector", "probability flow")
GRID = (25, 50, 100, 200, 400, 800, 1600, 3200)
ODE_TOLS = {25: 1e-1, 50: 1e-2, 100: 1e-3, 200: 1e-4, 400: 1e-5, 800: 1e-6, 1600: 1e-7, 3200: 1e-8}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(name: str, budget: int, score_t, score_sigma, sde: VESDE, x_T: torch.Tensor, device) -> tuple:
    """(samples, score evaluations, seconds) of one sampler at about ``budget`` evaluations."""
    g = make_generator(1, device)
    sigmas = geometric_sigmas(sde.sigma_max, sde.sigma_min, 20).tolist()
    _sync(device)
    t0 = time.perf_counter()
    if name == "annealed Langevin":
        T = max(1, budget // 20)
        eps = ncsnv2_step_size(T, sigmas[0] / sigmas[1], sde.sigma_min)
        out = annealed_langevin(score_sigma, x_T, sigmas, eps, T, generator=g, progress=False)
    elif name == "reverse SDE":
        out = reverse_sde(score_t, sde, x_T, budget, generator=g, progress=False)
    elif name == "predictor–corrector":
        out = predictor_corrector(score_t, sde, x_T, max(1, budget // 2), generator=g, progress=False)
    else:
        out = probability_flow(score_t, sde, x_T, rtol=ODE_TOLS[budget], atol=ODE_TOLS[budget])
    _sync(device)
    return out.x, out.n_score_evals, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per run")
    parser.add_argument("--target", type=float, default=0.01, help="allowed |share − 0.2|")
    parser.add_argument("--digits", type=int, default=2, help="MNIST digits for the likelihood timing")
    args = parser.parse_args()
    device = get_device()
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")

    mix = ncsn_mixture(dtype=torch.float32, device=device)
    sde = VESDE(0.1, 50.0)
    exact_t = mixture_score_fn(mix, sde)
    exact_sigma = mix.noise_conditional_score()
    x_T = marginal_mixture(mix, sde, 1.0).sample(args.n, make_generator(0, device)).to(device)
    se = math.sqrt(0.16 / args.n)
    print(f"\n1. Equal quality with exact scores: |share − 0.2| <= {args.target} (se of a share: {se:.4f})")
    print(f"{'sampler':<21}{'budget':>7}{'evals/sample':>14}{'share':>8}{'samples/s':>11}")
    chosen = {}
    for name in SAMPLERS:
        for budget in GRID:
            x, evals, sec = run(name, budget, exact_t, exact_sigma, sde, x_T, device)
            share = mode_fractions(x, mix).fractions[0].item()
            if abs(share - 0.2) <= args.target or budget == GRID[-1]:
                chosen[name] = budget
                print(f"{name:<21}{budget:>7}{evals:>14}{share:>8.3f}{args.n / sec:>11.0f}")
                break

    print("\n2. Same budgets, score = NoiseConditionalScoreMLP(hidden=128, 3 layers)")
    model = NoiseConditionalScoreMLP().to(device).eval()
    net_t, net_sigma = sigma_model_score_fn(model, sde), model.frozen_score()
    x_T32 = x_T.float()
    print(f"{'sampler':<21}{'evals/sample':>14}{'samples/s':>11}{'ms/eval':>9}")
    with torch.no_grad():
        for name in SAMPLERS:
            _, evals, sec = run(name, chosen[name], net_t, net_sigma, sde, x_T32, device)
            print(f"{name:<21}{evals:>14}{args.n / sec:>11.0f}{1e3 * sec / evals:>9.2f}")

    print("\n3. log_likelihood (rtol = atol = 1e-5)")
    pts = mix.sample(200, make_generator(2, device)).float()
    for trace in ("exact", "hutchinson"):
        t0 = time.perf_counter()
        _, nfev = log_likelihood(net_t, sde, pts, trace=trace, generator=make_generator(3, device),
                                 return_nfev=True)
        sec = time.perf_counter() - t0
        print(f"2-D, {trace:<10}: {1e3 * sec / len(pts):7.2f} ms per point ({nfev} evaluations, "
              "200 points per call)")
    try:
        from scoretutor.mnist import load_pretrained

        mnist, card = load_pretrained(device=device)
        mnist_sde, label = VESDE(card["sigma_min"], card["sigma_max"]), "shipped MNIST model"
    except (ImportError, OSError):
        mnist = NoiseConditionalScoreMLP(dim=784, hidden=512, n_layers=3).to(device).eval()
        mnist_sde, label = VESDE(0.01, 50.0), "784-D MLP stand-in (no shipped scoretutor.mnist model)"
    digits = torch.rand(args.digits, 1, 28, 28, generator=make_generator(4, device), device=device)
    t0 = time.perf_counter()
    _, nfev = log_likelihood(sigma_model_score_fn(mnist, mnist_sde), mnist_sde, digits, trace="hutchinson",
                             generator=make_generator(5, device), return_nfev=True)
    sec = time.perf_counter() - t0
    print(f"MNIST ({label}), hutchinson: {sec / args.digits:.2f} s per digit ({nfev} evaluations, "
          f"{args.digits} digits per call)")


if __name__ == "__main__":
    main()
