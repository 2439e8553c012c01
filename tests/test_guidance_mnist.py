"""Guidance on MNIST (notebook 08): the guided score's formula, its errors, seeding."""

from __future__ import annotations

import pytest
import torch

from scoretutor.errors import UsageError
from scoretutor.mnist import make_model
from scoretutor.mnist.guidance import GuidedScore, check_labels, sample_guided

TINY = {"channels": (4, 8, 8), "blocks": (0, 1, 1)}


@pytest.fixture(scope="module")
def conditional():
    torch.manual_seed(0)
    model = make_model(n_classes=10, **TINY).eval()
    with torch.no_grad():  # no zero-initialised layers left, so the label really changes the output
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_classifier_free_guidance_is_the_weighted_difference(conditional):
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y, sigma = torch.tensor([0, 1, 2, 3, 4, 5]), torch.full((6,), 0.7)
    with torch.no_grad():
        cond, uncond = conditional(x, sigma, y), conditional(x, sigma)
        for w in (0.0, 1.0, 2.5):
            guided = GuidedScore(conditional, y, w)(x, sigma)
            expected = w * cond - (w - 1) * uncond  # = uncond + w · (cond − uncond)
            torch.testing.assert_close(guided, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    assert (cond - uncond).abs().max() > 1e-3, "the test needs a model whose label matters"


def test_guided_score_equals_score_plus_classifier_gradient():
    from scoretutor.mnist.noisy_classifier import NoisyDigitClassifier

    torch.manual_seed(0)
    score_model, classifier = make_model(**TINY).eval(), NoisyDigitClassifier().eval()
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    y, sigma, w = torch.tensor([7, 1, 3]), torch.full((3,), 0.5), 3.0
    xr = x.clone().requires_grad_(True)
    log_p = classifier(xr, sigma).log_softmax(-1)[torch.arange(3), y].sum()
    (grad,) = torch.autograd.grad(log_p, xr)
    with torch.no_grad():
        guided = GuidedScore(score_model, y, w, guide="classifier", classifier=classifier)(x, sigma)
        expected = score_model(x, sigma) + w * grad
    torch.testing.assert_close(guided, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("labels, word", [([10], "0..9"), ([-1], "0..9"), ([1, 2], "classes")])
def test_bad_labels_name_what_is_allowed(labels, word):
    with pytest.raises(UsageError, match=word):
        check_labels(labels, 3)


def test_bad_guidance_and_mismatched_models(conditional):
    with pytest.raises(UsageError, match=">= 0"):
        GuidedScore(conditional, [1], -0.5)
    with pytest.raises(UsageError, match="class-conditional"):
        GuidedScore(make_model(**TINY), [1], 2.0)
    with pytest.raises(UsageError, match="guide must be one of"):
        GuidedScore(conditional, [1], 2.0, guide="oracle")


def test_sample_guided_is_seeded(conditional):
    card = {"sigma_min": 0.01, "sigma_max": 15.0}
    a, b = (sample_guided(conditional, card, [3, 5], 2.0, n_calls=6, seed=4) for _ in range(2))
    c = sample_guided(conditional, card, [3, 5], 2.0, n_calls=6, seed=5)
    assert a.shape == (2, 1, 28, 28) and torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("guide", ["free", "classifier"])
def test_command_line_draws_guided_digits_of_the_asked_class(guide, tmp_path):
    """Through a subprocess, with the shipped models: 10 digits of class 7, read as 7 by judge B."""
    import subprocess
    import sys

    import numpy as np

    from scoretutor.mnist.classifier import classify, load_judges

    out = tmp_path / "sevens.npy"
    proc = subprocess.run([sys.executable, "-m", "scoretutor", "sample", "mnist", "--n", "10", "--class", "7",
                           "--guide", guide, "--nfe", "20", "--out", str(out), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "digit 7" in proc.stdout and "guidance" in proc.stdout
    x = torch.from_numpy(np.load(out))
    assert x.shape == (10, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    # the default scales read ≥ 99 % as the asked class at 50 calls (docs/mnist-model.md); at 20 calls and
    # n = 10, 7 or more right is a loose floor (a binomial with p = 0.9 gives < 7 with probability 1.3 %)
    read = (classify(load_judges()["judge B"], x)[0].argmax(1) == 7).sum().item()
    assert read >= 7, f"{read}/10 read as 7"


def test_the_shipped_defaults_meet_the_cli_figure_under_both_judges():
    """benchmarks/mnist_guidance.py's measurement of the defaults (n = 1,000, 100 per class): read as asked
    ≥ 95 % overall and ≥ 85 % in the worst class, confident more often than real digits of the same classes,
    and no closer to the training digits than real test digits are (median distance, within 2 sd)."""
    import json

    from scoretutor.mnist.guidance import GUIDANCE, conditional_checkpoint_dir
    from scoretutor.mnist.quality import GUIDANCE_SWEEP_FILE

    table = json.loads((conditional_checkpoint_dir() / GUIDANCE_SWEEP_FILE).read_text(encoding="utf-8"))
    for guide in ("free", "classifier"):
        rows = table[f"default_{guide}"]["results"]
        assert {r["judge"] for r in rows} == {"judge A", "judge B"}
        for r in rows:
            s, real = r["samples"], r["real"]
            where = f"{guide}, γ = {r['guidance']}, {r['judge']}"
            assert r["guidance"] == GUIDANCE[guide], f"{where}: the default changed; re-measure it"
            assert r["n"] == 1000 and s["accuracy"] >= 0.95 and s["worst_class"] >= 0.85, where
            assert s["confident"] > real["confident"][0], where
            assert s["nearest_train"] >= real["nearest_train"][0] - 2 * real["nearest_train"][1], where
