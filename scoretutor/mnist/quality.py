"""The MNIST quality table of issue 9: generated digits judged against real test digits.

Protocol (every figure on digits that neither the score model nor the judge has seen):

- the judge is the shipped classifier (:func:`scoretutor.mnist.classifier.load_classifier`), trained on
  the 10,000 shipped training digits;
- the 10,000 test digits are split once at random (:func:`scoretutor.mnist.data.mnist_split_indices`,
  seed 0) into a *reference* half, the Fréchet reference, and a *baseline* half;
- the real-digit baseline of every figure is computed on ``n_subsets`` random subsets (seeded, not
  contiguous blocks: the test set's writers are grouped) of the baseline half, each of the same
  size n as the samples, and reported as mean ± standard deviation over the subsets;
- memorisation: the median distance of each sample to its nearest training digit, next to the same
  for the real test digits of the subsets.

``rows = mnist_quality(samples)`` returns a list of dicts; ``format_quality_table(rows)`` renders
them as a Markdown table for a README or a notebook.
"""

from __future__ import annotations

import statistics

import torch

from scoretutor.checks import count
from scoretutor.device import model_device
from scoretutor.metrics import (
    confident_fraction,
    frechet_distance_gaussians,
    gaussian_fit,
    label_entropy,
    nearest_distances,
)

Tensor = torch.Tensor
SPLIT_SEED = 0  # the fixed test-set split of the protocol
CONFIDENCE = 0.9

METRICS = {  # key -> (label in the table, which direction is better)
    "confident": (f"confident fraction (p > {CONFIDENCE})", "higher"),
    "entropy": ("label entropy / log 10", "higher"),
    "frechet": ("Fréchet distance to reference half", "lower"),
    "nearest_train": ("median distance to nearest training digit", "not lower than real"),
}


def _figures(probs: Tensor, feats: Tensor, nearest: Tensor, ref_fit) -> dict[str, float]:
    return {
        "confident": confident_fraction(probs, CONFIDENCE),
        "entropy": label_entropy(probs.argmax(1)),
        "frechet": frechet_distance_gaussians(*gaussian_fit(feats), *ref_fit),
        "nearest_train": nearest.median().item(),
    }


def mnist_quality(samples: Tensor, train_images: Tensor | None = None, classifier=None,
                  n_subsets: int = 10, seed: int = 0, test_images: Tensor | None = None
                  ) -> list[dict]:
    """The quality table of ``samples`` (N, 1, 28, 28) in [0, 1] (clamped) against real test digits.

    Args:
        train_images: the digits the score model was trained on (for memorisation); default the
            10,000 shipped training digits of the shipped model (``load_shipped_mnist("train")``),
            never a download.
        classifier: the judge; default the shipped one.
        n_subsets: number of random baseline subsets of size N (N ≤ 5,000, the baseline half).
            The Fréchet distance of real digits varies a lot between subsets (in this judge's
            features, sd ≈ 35 % of the mean at N = 1,000: its 64 features have an effective
            dimension of ~7, dominated by the class structure, so a subset's class mix moves it);
            10 subsets put the mean within ~11 % (one sd).
        seed: seed of the subset draws.
        test_images: default the shipped official test set (``load_shipped_mnist("test")``).

    Returns one dict per metric: ``metric`` (key), ``label``, ``better``, ``samples`` (the
    samples' figure), ``real_mean``, ``real_std`` (standard deviation over the subsets),
    ``real_min``, ``real_max``, ``ratio`` (samples / real_mean), ``n``, ``n_subsets``.
    """
    from scoretutor.mnist.classifier import classify, load_classifier
    from scoretutor.mnist.data import load_shipped_mnist, mnist_split_indices

    if not isinstance(samples, Tensor) or samples.ndim != 4 or samples.shape[1:] != (1, 28, 28):
        raise ValueError(f"samples must be a tensor of shape (N, 1, 28, 28), got "
                         f"{tuple(getattr(samples, 'shape', ())) or type(samples).__name__}")
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain non-finite values (nan or inf)")
    n_subsets = count(n_subsets, "n_subsets", 2)
    samples = samples.detach().float().clamp(0, 1).cpu()
    if test_images is None:
        test_images, _ = load_shipped_mnist("test")
    if train_images is None:
        train_images, _ = load_shipped_mnist("train")
    ref_idx, base_idx = mnist_split_indices(len(test_images), seed=SPLIT_SEED)
    n = samples.shape[0]
    if not 2 <= n <= len(base_idx):
        raise ValueError(f"need 2 <= number of samples <= {len(base_idx)} (the baseline half of the "
                         f"test set), got {n}")
    clf = classifier if classifier is not None else load_classifier()
    device = model_device(clf)
    train = train_images.to(device).flatten(1)

    _, ref_feats = classify(clf, test_images[ref_idx])
    ref_fit = gaussian_fit(ref_feats)
    probs, feats = classify(clf, samples)
    ours = _figures(probs, feats, nearest_distances(samples.to(device), train).cpu(), ref_fit)

    g = torch.Generator().manual_seed(int(seed))
    real = {k: [] for k in METRICS}
    for _ in range(n_subsets):
        idx = base_idx[torch.randperm(len(base_idx), generator=g)[:n]]
        x = test_images[idx]
        p, f = classify(clf, x)
        for k, v in _figures(p, f, nearest_distances(x.to(device), train).cpu(), ref_fit).items():
            real[k].append(v)

    rows = []
    for key, (label, better) in METRICS.items():
        values = real[key]
        mean = statistics.fmean(values)
        rows.append({"metric": key, "label": label, "better": better, "samples": ours[key],
                     "real_mean": mean, "real_std": statistics.stdev(values),
                     "real_min": min(values), "real_max": max(values),
                     "ratio": ours[key] / mean if mean else float("nan"),
                     "n": n, "n_subsets": n_subsets})
    return rows


def format_quality_table(rows: list[dict], digits: int = 3) -> str:
    """A Markdown table of :func:`mnist_quality` rows: metric, samples, real digits (mean ± sd over
    the subsets, with their range), ratio."""
    if not rows:
        raise ValueError("no rows to format")
    n, k = rows[0]["n"], rows[0]["n_subsets"]
    lines = [f"| metric | samples (n = {n}) | real test digits (mean ± sd over {k} subsets of {n}) "
             "| samples / real | better |",
             "|---|---|---|---|---|"]
    for r in rows:
        fmt = f"{{:.{digits}f}}"
        real = (f"{fmt.format(r['real_mean'])} ± {fmt.format(r['real_std'])} "
                f"({fmt.format(r['real_min'])}–{fmt.format(r['real_max'])})")
        lines.append(f"| {r['label']} | {fmt.format(r['samples'])} | {real} | {r['ratio']:.2f} "
                     f"| {r['better']} |")
    return "\n".join(lines)


def format_quality_comparison(named_rows: dict[str, list[dict]], digits: int = 3) -> str:
    """A Markdown table of several samplers' :func:`mnist_quality` rows side by side (same n): per
    metric, the real digits' mean ± sd, then each sampler's figure and its ratio to real."""
    if not named_rows or any(not rows for rows in named_rows.values()):
        raise ValueError("need at least one sampler with rows, got "
                         f"{ {k: len(v) for k, v in named_rows.items()} }")
    names = list(named_rows)
    first = named_rows[names[0]]
    for name, rows in named_rows.items():
        if [r["metric"] for r in rows] != [r["metric"] for r in first] or rows[0]["n"] != first[0]["n"]:
            raise ValueError(f"{name!r}: rows must cover the same metrics at the same n as {names[0]!r}")
    fmt = f"{{:.{digits}f}}".format
    n = first[0]["n"]
    head = " | ".join(f"{name} | / real" for name in names)
    lines = [f"| metric (n = {n}) | real test digits | {head} | better |",
             "|---|---|" + "---|---|" * len(names) + "---|"]
    for i, r in enumerate(first):
        cells = " | ".join(f"{fmt(named_rows[k][i]['samples'])} | {named_rows[k][i]['ratio']:.2f}"
                           for k in names)
        real = f"{fmt(r['real_mean'])} ± {fmt(r['real_std'])}"
        lines.append(f"| {r['label']} | {real} | {cells} | {r['better']} |")
    return "\n".join(lines)


COMPARISON_FILE = "sampler_comparison.json"  # in the shipped model's folder
ODE_CURVE_FILE = "ode_curve.json"


def sampler_comparison(samplers: dict, seeds: list[int], n: int, **quality_kwargs) -> dict:
    """Judge each sampler (name → ``draw(n, seed)`` returning (n, 1, 28, 28) images) on ``n`` samples for
    every seed; returns ``{"n", "seeds", "real": {metric: (mean, sd)}, "samplers": {name: {metric:
    [figure per seed]}}}``, the precomputed table of notebook 05 §7 (the seed-to-seed spread is the point)."""
    out = {"n": n, "seeds": list(seeds), "real": {}, "samplers": {}}
    for name, draw in samplers.items():
        per_metric = {key: [] for key in METRICS}
        for s in seeds:
            rows = mnist_quality(draw(n, s), **quality_kwargs)
            for r in rows:
                per_metric[r["metric"]].append(r["samples"])
                out["real"][r["metric"]] = (r["real_mean"], r["real_std"])
        out["samplers"][name] = per_metric
    return out


BATCH = 250  # images drawn at once by :func:`batched`


def batched(draw, n: int, seed: int, batch: int = BATCH) -> Tensor:
    """``draw(m, s)`` called for batches of at most ``batch`` images, batch k seeded 1000·seed + k, and
    concatenated: bounded memory, and ``seed`` fixes the whole draw (the precomputed tables' seeding)."""
    return torch.cat([draw(min(batch, n - i), 1000 * seed + i // batch) for i in range(0, n, batch)])


def shipped_weights_sha256() -> str:
    """sha256 of the shipped score model's weights, recorded with every precomputed table."""
    import hashlib

    from scoretutor.mnist.training import shipped_checkpoint_dir

    return hashlib.sha256((shipped_checkpoint_dir() / "model.safetensors").read_bytes()).hexdigest()


def shipped_table(name: str = COMPARISON_FILE) -> tuple[dict, bool]:
    """A precomputed table shipped beside the MNIST model — ``sampler_comparison.json`` (notebook 05 §7,
    ``benchmarks/mnist_sampler_comparison.py``) or ``ode_curve.json`` (notebook 07,
    ``benchmarks/mnist_ode.py``) — and whether it belongs to the shipped weights (their sha256 matches the
    one recorded with it)."""
    import json

    from scoretutor.mnist.training import shipped_checkpoint_dir

    table = json.loads((shipped_checkpoint_dir() / name).read_text(encoding="utf-8"))
    return table, table.get("checkpoint_sha256") == shipped_weights_sha256()


def format_sampler_comparison(table: dict, digits: int = 3) -> str:
    """A Markdown table of :func:`sampler_comparison`: per metric the real digits' mean ± sd (over
    random subsets of n) and each sampler's mean ± sd over its seeds, with its ratio to real."""
    names = list(table["samplers"])
    fmt = f"{{:.{digits}f}}".format
    lines = [f"| metric (n = {table['n']:,}) | real test digits | "
             + " | ".join(f"{name} ({len(table['seeds'])} seeds) | / real" for name in names) + " | better |",
             "|---|---|" + "---|---|" * len(names) + "---|"]
    for key, (label, better) in METRICS.items():
        mean, sd = table["real"][key]
        cells = []
        for name in names:
            values = table["samplers"][name][key]
            m = statistics.fmean(values)
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{fmt(m)} ± {fmt(spread)} | {m / mean:.2f}")
        lines.append(f"| {label} | {fmt(mean)} ± {fmt(sd)} | " + " | ".join(cells) + f" | {better} |")
    return "\n".join(lines)


def format_ode_target(curve: dict) -> str:
    """A Markdown table of ``ode_curve.json`` (``benchmarks/mnist_ode.py``) against issue 22's target: the
    best ODE solver at 50 calls beside predictor–corrector (285 calls) on the same seeds, mean ± sd, with its
    wall time per 1,000 digits measured side by side."""
    at, pc = curve["at_50"], curve["pc"]
    ms = lambda v: f"{statistics.fmean(v):.3f} ± {statistics.stdev(v):.3f}"
    frechet = statistics.fmean(at["frechet"]) / statistics.fmean(pc["frechet"])
    confident = statistics.fmean(at["confident"]) - statistics.fmean(pc["confident"])
    times = curve["seconds_per_1000"]
    t_pc = next(v for k, v in times.items() if k.startswith("predictor"))
    t_ode = next(v for k, v in times.items() if k.startswith(at["solver"]))
    rows = [f"| (n = {curve['n']:,}, seeds {', '.join(map(str, at['seeds']))}) | {at['solver']}, 50 calls "
            "| predictor–corrector, 285 calls | target | met? |", "|---|---|---|---|---|",
            f"| Fréchet distance | {ms(at['frechet'])} | {ms(pc['frechet'])} | ≤ 1.2 × PC ({frechet:.2f}×) "
            f"| {'yes' if round(frechet, 3) <= 1.2 else '**no**'} |",
            f"| confident fraction | {ms(at['confident'])} | {ms(pc['confident'])} | within 0.05 of PC "
            f"({confident:+.3f}) | {'yes' if round(confident, 3) >= -0.05 else '**no**'} |",
            f"| seconds per 1,000 digits | {t_ode:.0f} | {t_pc:.0f} | ≥ 4× faster ({t_pc / t_ode:.1f}×) "
            f"| {'yes' if t_pc / t_ode >= 4 else '**no**'} |"]
    return "\n".join(rows)


# -- class-conditional digits (notebook 08) ---------------------------------------------------------
GUIDANCE_SWEEP_FILE = "guidance_sweep.json"  # in the shipped conditional model's folder
CLASS_METRICS = {  # key -> (label, which direction is better)
    "accuracy": ("read as the asked class", "higher"),
    "worst_class": ("worst class's accuracy", "higher"),
    "confident": (f"confident fraction (p > {CONFIDENCE})", "higher"),
    "frechet_within": ("Fréchet distance within a class (mean over classes)", "lower"),
    "spread": ("pixel spread within a class (mean distance to class mean)", "as real"),
    "nearest_train": ("median distance to nearest training digit", "not lower than real"),
}


def _class_figures(images: Tensor, labels: Tensor, probs: Tensor, feats: Tensor, ref: dict, train: Tensor
                   ) -> dict[str, float]:
    pred = probs.argmax(1)
    per_class = [(pred[labels == k] == k).float().mean().item() for k in range(10) if (labels == k).any()]
    frechet, spread = [], []
    for k in range(10):
        mask = labels == k
        if mask.sum() < 2:
            continue
        frechet.append(frechet_distance_gaussians(*gaussian_fit(feats[mask]), *ref[k]))
        x = images[mask].flatten(1)
        spread.append((x - x.mean(0)).norm(dim=1).mean().item())
    return {"accuracy": (pred == labels).float().mean().item(), "worst_class": min(per_class),
            "per_class": per_class, "confident": confident_fraction(probs, CONFIDENCE),
            "frechet_within": statistics.fmean(frechet), "spread": statistics.fmean(spread),
            "nearest_train": nearest_distances(images, train).median().item()}


def class_quality(samples: Tensor, labels: Tensor, classifier=None, n_subsets: int = 5, seed: int = 0,
                  train_images: Tensor | None = None) -> dict:
    """Figures of class-conditional ``samples`` (N, 1, 28, 28) drawn for ``labels`` (N,), with real test
    digits of the same classes, as many per class, as the baseline (mean ± sd over ``n_subsets`` subsets).

    ``accuracy``: share the judge reads as the asked class; ``worst_class``: the lowest per-class share;
    ``confident``: max probability > 0.9; ``frechet_within``: squared Fréchet distance, in the judge's
    features, between each class's samples and that class's reference-half test digits, averaged over classes
    (fidelity *and* diversity: sharpened classes that lose their variety move away); ``spread``: mean pixel
    distance to the class mean (a judge-free diversity figure); ``nearest_train``: median distance to the
    nearest training digit (copying would pull it below the real digits'). Returns
    ``{"samples": {...}, "real": {key: (mean, sd)}, "n": N}``.
    """
    from scoretutor.mnist.classifier import classify, load_classifier
    from scoretutor.mnist.data import load_shipped_mnist, mnist_split_indices

    if not isinstance(samples, Tensor) or samples.ndim != 4 or samples.shape[1:] != (1, 28, 28):
        raise ValueError(f"samples must be a tensor of shape (N, 1, 28, 28), got {tuple(samples.shape)}")
    labels = torch.as_tensor(labels).long().cpu()
    if labels.shape != samples.shape[:1] or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"labels must be N = {samples.shape[0]} digits 0..9, "
                         f"got shape {tuple(labels.shape)}")
    samples = samples.detach().float().clamp(0, 1).cpu()
    clf = classifier if classifier is not None else load_classifier()
    test_images, test_labels = load_shipped_mnist("test")
    train = (train_images if train_images is not None else load_shipped_mnist("train")[0]).flatten(1)
    ref_idx, base_idx = mnist_split_indices(len(test_images), seed=SPLIT_SEED)
    _, ref_feats = classify(clf, test_images[ref_idx])
    ref = {k: gaussian_fit(ref_feats[test_labels[ref_idx] == k]) for k in range(10)}
    probs, feats = classify(clf, samples)
    ours = _class_figures(samples, labels, probs, feats, ref, train)
    g = torch.Generator().manual_seed(int(seed))
    real: dict[str, list[float]] = {k: [] for k in CLASS_METRICS}
    base_labels = test_labels[base_idx]
    for _ in range(count(n_subsets, "n_subsets", 2)):
        idx = torch.cat([base_idx[base_labels == k][torch.randperm(int((base_labels == k).sum()), generator=g)
                                                    [:int((labels == k).sum())]] for k in range(10)])
        x = test_images[idx]
        p, f = classify(clf, x)
        for k, v in _class_figures(x, test_labels[idx], p, f, ref, train).items():
            if k in real:
                real[k].append(v)
    return {"samples": ours, "n": int(samples.shape[0]),
            "real": {k: (statistics.fmean(v), statistics.stdev(v)) for k, v in real.items()}}
