"""Judge B, the second MNIST judge (:class:`~scoretutor.mnist.classifier.StridedClassifier`): shipped,
accurate, built differently from judge A, and in agreement with it on real digits."""

import json
import math

import pytest
import torch
from torch import nn

from scoretutor.errors import CheckpointError
from scoretutor.mnist.checkpoints import CARD, WEIGHTS, load_checkpoint
from scoretutor.mnist.classifier import (
    DigitClassifier,
    StridedClassifier,
    classify,
    load_classifier,
    load_judges,
    random_shift,
    save_classifier,
    second_judge_dir,
    train_second_judge,
)
from scoretutor.mnist.data import load_shipped_mnist

N_SUBSET = 2000


@pytest.fixture(scope="module")
def judges():
    return load_judges(device="cpu")


@pytest.fixture(scope="module")
def subset():
    """A fixed random subset of 2,000 test digits (random, not the first ones: the writers are grouped)."""
    x, y = load_shipped_mnist("test")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:N_SUBSET]
    return x[idx], y[idx]


@pytest.fixture(scope="module")
def judged(judges, subset):
    """(probs, features) of the subset under each judge."""
    return {name: classify(judge, subset[0]) for name, judge in judges.items()}


def test_load_judges_returns_both_classes_frozen(judges):
    assert list(judges) == ["judge A", "judge B"]
    assert type(judges["judge A"]) is DigitClassifier and type(judges["judge B"]) is StridedClassifier
    for judge in judges.values():
        assert not judge.training and not any(p.requires_grad for p in judge.parameters())


def test_shipped_second_judge_is_small_and_documented(judges):
    folder = second_judge_dir()
    assert (folder / WEIGHTS).stat().st_size + (folder / CARD).stat().st_size < 1_000_000
    card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    assert card["model"]["class"] == "StridedClassifier"
    assert card["trained_on"] == {"split": "train", "files": ["train-10k-images-idx3-ubyte.gz",
                                                             "train-10k-labels-idx1-ubyte.gz"],
                                  "count": 10_000}
    assert card["parameters"] == sum(p.numel() for p in judges["judge B"].parameters())
    assert card["test_accuracy"] >= 0.985
    assert card["seed"] != json.loads((folder.parent / "classifier" / CARD).read_text())["seed"]
    for key in ("epochs", "wall_time_s", "command", "git_commit", "optimiser", "augmentation"):
        assert key in card, key


def test_second_judge_accuracy_on_a_test_subset(judges, judged, subset):
    # The card's figure is on all 10,000 test digits; the subset's accuracy is a draw of 2,000 of them
    # without replacement, standard error √(p(1−p)/n · (1 − n/N)) ≈ 0.2 %: 4 standard errors bound it.
    acc = (judged["judge B"][0].argmax(1) == subset[1]).double().mean().item()
    card = json.loads((second_judge_dir() / CARD).read_text(encoding="utf-8"))
    p = card["test_accuracy"]
    se = math.sqrt(p * (1 - p) / N_SUBSET * (1 - N_SUBSET / 10_000))
    assert acc >= 0.98
    assert abs(acc - p) <= 4 * se + 1e-12, (acc, p, se)


def test_second_judge_features_and_probabilities(judges, judged):
    probs, feats = judged["judge B"]
    assert judges["judge B"].config["n_features"] == 128
    assert probs.shape == (N_SUBSET, 10) and feats.shape == (N_SUBSET, 128)
    assert torch.allclose(probs.sum(1), torch.ones(N_SUBSET), atol=1e-5) and (feats >= 0).all()
    # the features are no degenerate space: many of the 128 directions carry variance
    eig = torch.linalg.eigvalsh(torch.cov(feats.double().T))
    assert (eig > 1e-3 * eig.max()).sum() >= 10
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        judges["judge B"].features(torch.zeros(2, 28, 28))


def test_the_two_judges_agree_on_real_digits(judged):
    # Each is right on ≥ 98 % of test digits, so they can disagree on at most ~4 %; they agree on ≥ 97 %.
    a, b = (judged[k][0].argmax(1) for k in ("judge A", "judge B"))
    assert (a == b).double().mean().item() >= 0.97


def test_the_two_judges_are_built_differently(judges):
    a, b = judges["judge A"], judges["judge B"]
    types = lambda m: {type(x) for x in m.modules()}
    assert nn.MaxPool2d in types(a) and nn.MaxPool2d not in types(b)
    assert {nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout, nn.AdaptiveAvgPool2d} <= types(b)
    assert not types(a) & {nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout}
    conv = lambda m: [(c.kernel_size, c.stride) for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert set(conv(a)) == {((3, 3), (1, 1))} and ((5, 5), (2, 2)) in conv(b)
    assert a.config["n_features"] == 64 and b.config["n_features"] == 128
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(b) > 2 * count(a)
    cards = [json.loads((d / CARD).read_text()) for d in (second_judge_dir().parent / "classifier",
                                                           second_judge_dir())]
    assert "AdamW" not in cards[1]["optimiser"] and "SGD" in cards[1]["optimiser"]


def test_random_shift_is_a_crop_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 1, 28, 28, generator=g)
    out = random_shift(x, torch.Generator().manual_seed(1), max_shift=2)
    shifts = torch.randint(0, 5, (50, 2), generator=torch.Generator().manual_seed(1))  # the same draw
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i, (dy, dx) in enumerate(shifts.tolist()):  # brute force, image by image
        assert torch.equal(out[i], padded[i, :, dy:dy + 28, dx:dx + 28])
    assert len({tuple(s) for s in shifts.tolist()}) > 15  # many of the 25 shifts occur
    assert torch.equal(random_shift(x, g, max_shift=0), x)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(x, g, max_shift=-1)


def test_second_judge_training_is_seeded_and_leaves_the_global_rng_alone():
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8)
    state = torch.get_rng_state()
    a = train_second_judge(x, y, epochs=1, batch_size=4, seed=5, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)
    b = train_second_judge(x, y, epochs=1, batch_size=4, seed=5, device="cpu")
    c = train_second_judge(x, y, epochs=1, batch_size=4, seed=6, device="cpu")
    same = lambda m, n: all(torch.equal(p, q) for p, q in zip(m.state_dict().values(),
                                                               n.state_dict().values(), strict=True))
    assert same(a, b) and not same(a, c) and isinstance(a, StridedClassifier) and not a.training
    with pytest.raises(ValueError, match="dropout"):
        StridedClassifier(dropout=1.0)


def test_second_judge_round_trip_and_loader_errors(tmp_path, judges):
    save_classifier(judges["judge B"], tmp_path / "b", {"note": "test"})
    again = load_classifier(tmp_path / "b", device="cpu")
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert type(again) is StridedClassifier and torch.equal(again(x), judges["judge B"](x))
    built, card = load_checkpoint(tmp_path / "b", device="cpu")  # the generic loader knows the class
    assert type(built) is StridedClassifier and card["note"] == "test"
    card["model"]["class"] = "ScoreUNet"
    (tmp_path / "b" / CARD).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="ScoreUNet, not a DigitClassifier or a StridedClassifier"):
        load_classifier(tmp_path / "b")


def test_cli_trains_either_arch(tmp_path, monkeypatch, capsys):
    import scoretutor.mnist.data as data
    from scoretutor.mnist.classifier import main

    g = torch.Generator().manual_seed(0)
    tiny = {"train": (torch.rand(16, 1, 28, 28, generator=g), torch.arange(16) % 10),
            "test": (torch.rand(8, 1, 28, 28, generator=g), torch.arange(8))}
    monkeypatch.setattr(data, "load_shipped_mnist", lambda split: tiny[split])
    assert main(["--arch", "B", "--epochs", "1", "--out", str(tmp_path / "b"), "--device", "cpu"]) == 0
    card = json.loads((tmp_path / "b" / CARD).read_text())
    assert card["model"]["class"] == "StridedClassifier" and card["epochs"] == 1 and card["seed"] == 1
    assert "SGD" in card["optimiser"] and card["lr"] == 0.05
    assert main(["--epochs", "1", "--out", str(tmp_path / "a"), "--device", "cpu"]) == 0  # --arch A default
    card = json.loads((tmp_path / "a" / CARD).read_text())
    assert card["model"]["class"] == "DigitClassifier" and card["seed"] == 0 and "AdamW" in card["optimiser"]
    assert "test accuracy" in capsys.readouterr().out
