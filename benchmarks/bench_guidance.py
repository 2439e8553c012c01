"""Guidance on notebook 08's 2-D example: which sampler reaches the tilted density p(x) p(y | x)^γ?

    python benchmarks/bench_guidance.py                       # n = 10 000, about 15 minutes on one CPU thread
    python benchmarks/bench_guidance.py --n 4000 --gamma 0 1 3

For ``overlapping_classes()`` (two classes of two unit Gaussians each, the inner pair overlapping), label
y = 0, exact scores on VESDE(0.01, 50), and each guidance scale γ:

1. **exact**: the tilted π_γ ∝ p_{t_min}(x) p_{t_min}(y | x)^γ on a 400×400 grid (``tilted_density``);
2. **reverse SDE** (Euler–Maruyama), **PC** (reverse diffusion + one Langevin corrector, snr 0.16) and
   **ODE** (probability flow, RK45, rtol = atol = 1e-6), all with the guided score s_t + γ ∇log p_t(y | x),
   from the tilted density at t = 1, π_{γ,1} (``tilted_prior_sample``; p_1(x | y) at γ = 1), so that the
   prior is not what differs; one more reverse-SDE row starts from the SDE's prior N(0, 50² I), as a
   sampler does in practice;
3. **Langevin (σ fixed)**: ULA at σ = σ_min = 0.01 with the guided score of p_σ, started from the reverse
   SDE's samples, ε = 0.01, ``--langevin-steps`` steps (with ``--mala`` also MALA, which has no O(ε) bias,
   at about three times the cost).

Printed per row: the soft mode weights E[r_k(x)] of the four components (class 0: k = 0, 1; class 1:
k = 2, 3) and the class-0 weight E[p(0 | x)], each ± its standard error (sd/√n), and the sliced Wasserstein
distance SW₂ to n exact draws of π_γ (the floor: SW₂ between two independent exact draws). A second table
gives the reverse SDE's step bias at γ = 1 (from p_1(x | y)), where the guided score is the exact
conditional score.
"""

from __future__ import annotations

import argparse
import time

import torch

from scoretutor.diffusion.guidance import (
    guided_langevin,
    guided_sample,
    overlapping_classes,
    tilted_density,
    tilted_prior_sample,
)
from scoretutor.diffusion.sde import VESDE
from scoretutor.metrics import sliced_wasserstein

F64 = torch.float64


def _row(name: str, lm, x, exact, seconds: float | None = None) -> str:
    mw, cw = lm.mode_weights(x), lm.mode_weights(x, by_class=True)
    parts = [f"{m:.3f}±{s:.3f}" for m, s in zip(mw.weights.tolist(), mw.stderr.tolist(), strict=True)]
    sw = sliced_wasserstein(x, exact, 256, generator=torch.Generator().manual_seed(7))
    secs = f"{seconds:7.1f}" if seconds is not None else "      -"
    return (f"{name:<22} {'  '.join(parts)}   {cw.weights[0]:.3f}±{cw.stderr[0]:.3f}   {sw:6.3f}  {secs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--gamma", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    ap.add_argument("--steps", type=int, default=500, help="reverse SDE and PC steps")
    ap.add_argument("--langevin-steps", type=int, default=2000)
    ap.add_argument("--mala", action="store_true", help="add a MALA row (Metropolis-adjusted Langevin)")
    ap.add_argument("--bias-steps", type=int, nargs="*", default=[50, 100, 200, 500])
    args = ap.parse_args()
    torch.set_num_threads(1)
    lm, sde, y = overlapping_classes(F64), VESDE(0.01, 50.0), 0
    end = lm.marginal(sde, sde.t_min)  # the samplers' target level, σ = σ_min = 0.01
    print(f"{lm}; y = {y}; {sde}; n = {args.n}; {args.steps} steps (reverse SDE, PC); "
          f"Langevin at σ = {sde.sigma_min}, ε = 0.01, {args.langevin_steps} steps; fp64, 1 thread\n")
    head = (f"{'γ / sampler':<22} {'m_0 (−3,0)':<12} {'m_1 (0,1)':<12} {'m_2 (3,0)':<12} {'m_3 (0,−1)':<12}"
            f" {'class 0':<12} {'SW₂':>6}  {'seconds':>7}")
    for gamma in args.gamma:
        td = tilted_density(end, y, gamma)
        exact = td.sample(args.n, torch.Generator().manual_seed(100))
        floor = sliced_wasserstein(exact, td.sample(args.n, torch.Generator().manual_seed(101)), 256,
                                   generator=torch.Generator().manual_seed(7))
        print(f"γ = {gamma:g}   (log Z(γ) = {td.log_normaliser:.4f}; "
              f"SW₂ floor between two exact draws: {floor:.3f})")
        print(head)
        ew = "  ".join(f"{m:.3f}      " for m in td.weights.tolist())
        print(f"{'exact π_γ (grid)':<22} {ew} {td.class_weights[0]:.3f}")
        start = tilted_prior_sample(lm, sde, y, gamma, args.n, torch.Generator().manual_seed(1))
        outs = {}
        for name, sampler, x_T, seed, kw in (  # the prior row has its own noise: the same noise a step
                ("reverse SDE (prior)", "reverse_sde", None, 11, {}),  # apart gives nearly the same samples
                ("reverse SDE", "reverse_sde", start, 1, {}),
                ("PC", "predictor_corrector", start, 1, {}),
                ("ODE", "probability_flow", start, 1, {"rtol": 1e-6, "atol": 1e-6})):
            t0 = time.perf_counter()
            out = guided_sample(lm, sde, y, gamma, args.n, sampler, args.steps, x_T=x_T,
                                generator=torch.Generator().manual_seed(seed), **kw)
            outs[name] = out.x
            print(_row(name, end, out.x, exact, time.perf_counter() - t0), flush=True)
        for name, mh in (("Langevin (σ fixed)", False), ("MALA (σ fixed)", True))[:1 + args.mala]:
            t0 = time.perf_counter()
            out = guided_langevin(lm, y, gamma, sde.sigma_min, outs["reverse SDE"], 0.01, args.langevin_steps,
                                  generator=torch.Generator().manual_seed(2), metropolis=mh)
            print(_row(name, end, out.x, exact, time.perf_counter() - t0), flush=True)
        print()
    if args.bias_steps:
        td = tilted_density(end, y, 1.0)
        start1 = lm.marginal(sde, 1.0).conditional(y).sample(args.n, torch.Generator().manual_seed(1))
        print(f"Reverse SDE at γ = 1 (exact conditional score, from p_1(x | y)): bias of the class-0 weight, "
              f"exact {td.class_weights[0]:.4f}, and of m_0, exact {td.weights[0]:.4f}")
        for steps in args.bias_steps:
            x = guided_sample(lm, sde, y, 1.0, args.n, "reverse_sde", steps, x_T=start1,
                              generator=torch.Generator().manual_seed(3)).x
            mw, cw = end.mode_weights(x), end.mode_weights(x, by_class=True)
            print(f"  {steps:5d} steps: class 0 {cw.weights[0] - td.class_weights[0]:+.4f} ± "
                  f"{cw.stderr[0]:.4f}, m_0 {mw.weights[0] - td.weights[0]:+.4f} ± {mw.stderr[0]:.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
