"""The MNIST judge (shipped classifier), the image-quality metrics and the quality-table protocol.

Each metric is checked against an independent computation: closed forms for the Fréchet distance
of Gaussians, hand-computed entropies and fractions, brute-force nearest neighbours.
"""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from scoretutor import metrics
from scoretutor.errors import CheckpointError
from scoretutor.mnist.checkpoints import CARD, WEIGHTS, load_checkpoint
from scoretutor.mnist.classifier import (
    DigitClassifier,
    _default_dir,
    accuracy,
    augment,
    classify,
    load_classifier,
    save_classifier,
)
from scoretutor.mnist.data import load_shipped_mnist
from scoretutor.mnist.quality import format_quality_comparison, format_quality_table, mnist_quality


@pytest.fixture(scope="module")
def test_digits():
    return load_shipped_mnist("test")


@pytest.fixture(scope="module")
def train_digits():
    return load_shipped_mnist("train")


@pytest.fixture(scope="module")
def judge():
    return load_classifier(device="cpu")


# -- metrics against independent computations ------------------------------------------------------
def test_confident_fraction_counts_strictly_above_the_threshold():
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.5, 0.5], [0.01, 0.99]])
    assert metrics.confident_fraction(probs, 0.9) == 0.5  # 0.95 and 0.99; 0.9 is not > 0.9
    assert metrics.confident_fraction(probs, 0.0) == 1.0
    with pytest.raises(ValueError, match="threshold"):
        metrics.confident_fraction(probs, 1.0)
    with pytest.raises(ValueError, match="probs must be"):
        metrics.confident_fraction(torch.ones(3))


def test_label_entropy_of_known_histograms():
    assert metrics.label_entropy(torch.arange(10).repeat(7)) == pytest.approx(1.0, abs=1e-12)
    assert metrics.label_entropy(torch.full((50,), 3)) == 0.0
    # h = (1/3, 2/3) on two of ten classes: H = log 3 − (2/3) log 2
    h = (math.log(3) - 2 / 3 * math.log(2)) / math.log(10)
    assert metrics.label_entropy(torch.tensor([4, 7, 7, 4, 7, 7])) == pytest.approx(h, abs=1e-12)
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        metrics.label_entropy(torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="integer"):
        metrics.label_entropy(torch.tensor([0.0, 1.0]))


def test_gaussian_fit_matches_numpy():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    mu, cov = metrics.gaussian_fit(x)
    assert np.allclose(mu.numpy(), x.double().numpy().mean(0))
    assert np.allclose(cov.numpy(), np.cov(x.double().numpy(), rowvar=False))


def test_frechet_distance_in_one_dimension_is_the_closed_form():
    # W₂²(N(m₁, s₁²), N(m₂, s₂²)) = (m₁ − m₂)² + (s₁ − s₂)²
    d = metrics.frechet_distance_gaussians(torch.tensor([1.0]), torch.tensor([[4.0]]),
                                           torch.tensor([-0.5]), torch.tensor([[0.25]]))
    assert d == pytest.approx(1.5**2 + (2 - 0.5) ** 2, rel=1e-12)


def test_frechet_distance_of_commuting_covariances():
    # diagonal Σ₁ = diag(a), Σ₂ = diag(b): d² = ‖μ₁ − μ₂‖² + Σ_k (√a_k − √b_k)², also after a
    # common rotation Q (which leaves d² unchanged but makes the matrices non-diagonal)
    g = torch.Generator().manual_seed(1)
    draw = lambda f: f(6, generator=g, dtype=torch.float64)
    a, b, mu1, mu2 = draw(torch.rand) + 0.1, draw(torch.rand), draw(torch.randn), draw(torch.randn)
    expected = ((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    got = metrics.frechet_distance_gaussians(q @ mu1, q @ a.diag() @ q.T, q @ mu2, q @ b.diag() @ q.T)
    assert got == pytest.approx(expected.item(), rel=1e-10)


def test_frechet_distance_of_non_commuting_2x2_covariances():
    # For a 2×2 matrix M with nonnegative eigenvalues, tr √M = √(tr M + 2√det M)
    # (√M = (M + √det M · I)/√(tr M + 2√det M)); here M = Σ₁Σ₂, whose eigenvalues are ≥ 0.
    s1 = torch.tensor([[2.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    s2 = torch.tensor([[0.5, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    mu1, mu2 = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    m = s1 @ s2
    tr_sqrt = math.sqrt(m.trace().item() + 2 * math.sqrt(torch.linalg.det(m).item()))
    expected = ((mu1 - mu2) ** 2).sum().item() + s1.trace().item() + s2.trace().item() - 2 * tr_sqrt
    got = metrics.frechet_distance_gaussians(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-10)
    assert metrics.frechet_distance_gaussians(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-10)
    assert metrics.frechet_distance_gaussians(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-12)


def test_frechet_distance_of_samples_uses_their_gaussian_fits():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(300, 3, generator=g), 2 + torch.randn(200, 3, generator=g) * 0.5
    fit = lambda z: (torch.tensor(z.mean(0)), torch.tensor(np.cov(z, rowvar=False)))
    expected = metrics.frechet_distance_gaussians(*fit(x.double().numpy()), *fit(y.double().numpy()))
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="same number of features"):
        metrics.frechet_distance(x, y[:, :2])


def test_nearest_distances_match_brute_force():
    g = torch.Generator().manual_seed(3)
    x, ref = torch.rand(37, 1, 28, 28, generator=g), torch.rand(101, 1, 28, 28, generator=g)
    ref[5] = x[7]  # an exact copy has distance 0
    got = metrics.nearest_distances(x, ref, chunk=10)
    xs, rs = x.flatten(1).double().numpy(), ref.flatten(1).double().numpy()
    brute = np.array([min(np.sqrt(((xi - r) ** 2).sum()) for r in rs) for xi in xs])
    # float32 sums of 784 squares ~0.1 each: relative rounding ~1e-6
    assert np.allclose(got.numpy(), brute, rtol=1e-5, atol=0)
    assert got[7] == 0


# -- the shipped classifier --------------------------------------------------------------------
def test_shipped_classifier_is_small_and_documented(judge):
    folder = _default_dir()
    size = (folder / WEIGHTS).stat().st_size + (folder / CARD).stat().st_size
    assert size < 400_000
    meta = json.loads((folder / CARD).read_text())
    assert meta["format"] == "scoretutor-checkpoint" and meta["model"]["class"] == "DigitClassifier"
    assert meta["trained_on"]["count"] == 10_000 and meta["trained_on"]["split"] == "train"
    assert meta["parameters"] == sum(p.numel() for p in judge.parameters()) < 100_000
    assert meta["test_accuracy"] >= 0.98


def test_shipped_classifier_test_accuracy(judge, test_digits):
    # Measured again on all 10,000 test digits (never seen in training); the figure in the
    # metadata was measured the same way, so only CPU-kernel rounding can move it (a few digits).
    acc = accuracy(judge, *test_digits)
    meta = json.loads((_default_dir() / CARD).read_text())
    assert acc >= 0.98
    assert abs(acc - meta["test_accuracy"]) <= 5e-4


def test_classify_returns_probabilities_and_features(judge, test_digits):
    probs, feats = classify(judge, test_digits[0][:64], batch_size=25)
    assert probs.shape == (64, 10) and feats.shape == (64, judge.config["n_features"])
    assert torch.allclose(probs.sum(1), torch.ones(64), atol=1e-5) and (feats >= 0).all()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        judge.features(torch.zeros(2, 28, 28))


def test_save_and_load_round_trip_and_mismatch(tmp_path, judge):
    save_classifier(judge, tmp_path / "c", {"note": "test"})
    again = load_classifier(tmp_path / "c", device="cpu")
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again(x), judge.cpu()(x))
    meta = json.loads((tmp_path / "c" / CARD).read_text())
    assert meta["note"] == "test" and meta["model"]["class"] == "DigitClassifier"
    built, _ = load_checkpoint(tmp_path / "c", device="cpu")  # the generic loader builds the judge too
    assert isinstance(built, DigitClassifier) and torch.equal(built(x), again(x))
    meta["model"]["class"] = "ScoreUNet"
    (tmp_path / "c" / CARD).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="holds a ScoreUNet, not a DigitClassifier"):
        load_classifier(tmp_path / "c")
    meta["model"]["class"] = "DigitClassifier"
    meta["model"]["config"]["n_features"] = 32  # the card no longer describes the weights
    (tmp_path / "c" / CARD).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="n_features"):
        load_classifier(tmp_path / "c")
    meta["model"]["config"] = {"width": 16, "depth": 3}  # a key the classifier does not take
    (tmp_path / "c" / CARD).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="depth"):
        load_classifier(tmp_path / "c")
    shutil.rmtree(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        load_classifier(tmp_path / "c")


def test_augment_without_distortion_is_the_identity():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    same = augment(x, torch.Generator().manual_seed(1), max_shift=0, max_degrees=0, max_zoom=0)
    # grid coordinates are rounded in float32 (~28·6e-8 px), pixel differences are ≤ 1 per px
    assert torch.allclose(same, x, atol=1e-5)
    moved = augment(x, torch.Generator().manual_seed(1))
    assert moved.shape == x.shape and not torch.allclose(moved, x)


def test_classifier_init_is_seeded_and_leaves_the_global_rng_alone():
    from scoretutor.mnist.classifier import train_classifier

    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8)
    state = torch.get_rng_state()
    a = train_classifier(x, y, epochs=1, batch_size=4, seed=5, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)
    b = train_classifier(x, y, epochs=1, batch_size=4, seed=5, device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert isinstance(a, DigitClassifier)


# -- the quality table protocol ----------------------------------------------------------------------
def _quality(samples, judge, train_digits, test_digits, **kw):
    return {r["metric"]: r for r in mnist_quality(samples, train_images=train_digits[0], classifier=judge,
                                                  test_images=test_digits[0], **kw)}


@pytest.fixture(scope="module")
def few(train_digits, test_digits):
    """Fewer digits for the protocol tests that need no full-size figures (faster): 3,000 training
    and 2,000 test digits (reference and baseline halves of 1,000)."""
    return (train_digits[0][:3000], None), (test_digits[0][:2000], None)


def test_real_test_digits_score_like_the_real_baseline(judge, few):
    # Samples = 300 test digits of the baseline half, drawn like the baseline subsets: their figures
    # are one more draw of the same statistics. (x − mean)/sd over 6 subsets is then ≈ √(7/6)·t₅,
    # and P(|t₅| > 5/√(7/6) = 4.6) ≈ 0.6 % per figure: a 5-sd bound fails only for a broken protocol.
    from scoretutor.mnist.data import mnist_split_indices

    _, base = mnist_split_indices(2000, seed=0)  # the protocol's split of the 2,000 test digits
    idx = base[torch.randperm(len(base), generator=torch.Generator().manual_seed(99))[:300]]
    rows = _quality(few[1][0][idx], judge, *few, n_subsets=6)
    for key in ["confident", "entropy", "frechet", "nearest_train"]:
        r = rows[key]
        assert r["n"] == 300 and r["n_subsets"] == 6 and r["real_min"] <= r["real_mean"] <= r["real_max"]
        assert abs(r["samples"] - r["real_mean"]) <= 5 * r["real_std"] + 1e-9, (key, r)
    assert rows["confident"]["real_mean"] > 0.8 and rows["entropy"]["real_mean"] > 0.97
    table = format_quality_table(list(rows.values()))
    assert table.count("\n") == 5 and "Fréchet" in table and "6 subsets of 300" in table


def test_quality_table_flags_noise_and_copies(judge, few):
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(200, 1, 28, 28, generator=g)
    rows = _quality(noise, judge, *few, n_subsets=3)
    assert rows["frechet"]["samples"] > 5 * rows["frechet"]["real_mean"]
    assert rows["confident"]["samples"] < rows["confident"]["real_min"]
    copies = few[0][0][torch.randperm(3000, generator=g)[:200]]
    rows = _quality(copies, judge, *few, n_subsets=3)
    assert rows["nearest_train"]["samples"] == 0 < rows["nearest_train"]["real_min"]


def test_quality_judges_copying_against_the_shipped_training_digits(judge, monkeypatch):
    # By default the table compares with the 10,000 digits the shipped model was trained on, never
    # with a download: any other loader fails here, and copies of shipped training digits score 0.
    import scoretutor.mnist.data as data

    def no_download(*args, **kwargs):
        raise AssertionError("mnist_quality must not call load_mnist")

    monkeypatch.setattr(data, "load_mnist", no_download)
    train, _ = data.load_shipped_mnist("train")
    copies = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:50]]
    rows = {r["metric"]: r for r in mnist_quality(copies, classifier=judge, n_subsets=2)}
    assert rows["nearest_train"]["samples"] == 0 < rows["nearest_train"]["real_min"]


def test_quality_validates_samples(judge, few):
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        _quality(torch.zeros(10, 28, 28), judge, *few)
    with pytest.raises(ValueError, match="<= 1000"):
        _quality(torch.zeros(1001, 1, 28, 28), judge, *few)
    with pytest.raises(ValueError, match="non-finite"):
        _quality(torch.full((10, 1, 28, 28), math.nan), judge, *few)
    with pytest.raises(ValueError, match="no rows"):
        format_quality_table([])


def _row(metric, samples, real, n=256):
    return {"metric": metric, "label": metric, "better": "higher", "samples": samples, "real_mean": real,
            "real_std": 0.01, "real_min": real, "real_max": real, "ratio": samples / real, "n": n,
            "n_subsets": 10}


def test_quality_comparison_puts_samplers_side_by_side():
    a = [_row("confident", 0.8, 0.98), _row("frechet", 30.0, 20.0)]
    b = [_row("confident", 0.9, 0.98), _row("frechet", 25.0, 20.0)]
    lines = format_quality_comparison({"Langevin": a, "PC": b}).splitlines()
    assert lines[0].startswith("| metric (n = 256) | real test digits | Langevin | / real | PC | / real |")
    assert len(lines) == 4 and lines[1].count("|") == lines[0].count("|")
    assert lines[3] == "| frechet | 20.000 ± 0.010 | 30.000 | 1.50 | 25.000 | 1.25 | higher |"
    with pytest.raises(ValueError, match="same metrics at the same n"):
        format_quality_comparison({"Langevin": a, "PC": [_row("confident", 0.9, 0.98, n=100), b[1]]})
    with pytest.raises(ValueError, match="at least one sampler"):
        format_quality_comparison({})


def test_sampler_comparison_gathers_every_seed_and_formats_the_spread(judge, few):
    # two "samplers": real baseline-half digits (should sit on the real baseline) and uniform noise
    from scoretutor.lecture.plotting import plot_sampler_comparison
    from scoretutor.mnist.quality import format_sampler_comparison, sampler_comparison

    pool = few[1][0]

    def real(n, seed):
        return pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]]

    def noise(n, seed):
        return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))

    kw = dict(train_images=few[0][0], classifier=judge, test_images=pool, n_subsets=3)
    table = sampler_comparison({"real": real, "noise": noise}, seeds=[0, 1], n=100, **kw)
    assert table["n"] == 100 and table["seeds"] == [0, 1] and list(table["samplers"]) == ["real", "noise"]
    one = {r["metric"]: r["samples"] for r in mnist_quality(noise(100, 1), **kw)}
    assert all(table["samplers"]["noise"][k][1] == one[k] for k in one)  # the same judge, seed by seed
    assert min(table["samplers"]["noise"]["frechet"]) > 5 * max(table["samplers"]["real"]["frechet"])
    text = format_sampler_comparison(table)
    assert text.count("\n") == 5 and "(2 seeds)" in text and text.count(" ± ") == 4 * 3
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plot_sampler_comparison(ax, table)
    assert len(ax.get_xticklabels()) == 2
    plt.close(fig)


def test_shipped_table_belongs_to_the_shipped_model():
    # notebook 05 §7 shows this precomputed table: it must be the shipped weights', at n = 1,000
    from scoretutor.mnist.quality import METRICS, shipped_table

    table, current = shipped_table()
    assert current, "rerun benchmarks/mnist_sampler_comparison.py: the table is for other weights"
    assert table["n"] == 1000 and len(table["seeds"]) >= 3
    assert set(table["samplers"]) == {"annealed Langevin", "predictor–corrector"}
    for figures in table["samplers"].values():
        assert all(len(figures[k]) == len(table["seeds"]) for k in METRICS)
    assert 0 < table["real"]["frechet"][1] < table["real"]["frechet"][0]  # sd below the mean


def test_format_ode_target_compares_means_and_says_which_targets_are_met():
    from scoretutor.mnist.quality import format_ode_target

    curve = {"n": 1000, "at_50": {"solver": "DDIM", "seeds": [0, 1, 2], "frechet": [11.0, 12.0, 13.0],
                                  "confident": [0.80, 0.82, 0.84]},
             "pc": {"frechet": [9.0, 10.0, 11.0], "confident": [0.86, 0.87, 0.88]},
             "seconds_per_1000": {"predictor–corrector (285 calls)": 300.0, "DDIM (50 calls)": 60.0}}
    lines = format_ode_target(curve).splitlines()
    assert len(lines) == 5 and "12.000 ± 1.000" in lines[2] and "10.000 ± 1.000" in lines[2]
    assert "(1.20×) | yes" in lines[2]  # 12/10 = 1.2 is within the target
    assert "(-0.050) | yes" in lines[3]  # 0.82 − 0.87
    assert "(5.0×) | yes" in lines[4]
    curve["at_50"]["frechet"] = [12.0, 13.0, 14.0]
    assert "(1.30×) | **no**" in format_ode_target(curve).splitlines()[2]


def test_shipped_ode_curve_belongs_to_the_shipped_model_and_covers_every_ode_solver():
    # notebook 07 §3 shows this precomputed curve (benchmarks/mnist_ode.py)
    from scoretutor.diffusion.solvers import SOLVERS
    from scoretutor.mnist.quality import ODE_CURVE_FILE, shipped_table

    curve, current = shipped_table(ODE_CURVE_FILE)
    assert current, "rerun benchmarks/mnist_ode.py: the curve is for other weights"
    assert set(curve["curve"]) == {k for k, v in SOLVERS.items() if v[0] == "ode"} and curve["n"] == 1000
    assert all(set(points) == {str(c) for c in curve["calls"]} for points in curve["curve"].values())
    assert len(curve["at_50"]["frechet"]) == len(curve["pc"]["frechet"]) == 3


def test_batched_draws_seed_each_batch_from_the_draws_seed():
    from scoretutor.mnist.quality import batched

    calls = []

    def draw(m, s):
        calls.append((m, s))
        return torch.full((m,), float(s))

    x = batched(draw, 600, 2, batch=250)
    assert calls == [(250, 2000), (250, 2001), (100, 2002)] and x.shape == (600,)
