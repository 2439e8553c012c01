"""The noise-conditional classifier p_φ(y | x + σz, σ) of classifier guidance (notebook 08).

The shipped checkpoint is checked against the maths of noisy classification: near-perfect at small σ; at
σ_max an information bound (data processing + the Gaussian channel) caps what any classifier can know about
the label, and Fano's inequality turns that cap into a ceiling on its accuracy. The gradient is checked
against central finite differences, the training loop for reproducibility.
"""

import copy
import math

import pytest
import torch

from scoretutor.checks import sq_norm
from scoretutor.mnist import load_pretrained
from scoretutor.mnist.checkpoints import read_card
from scoretutor.mnist.data import load_shipped_mnist
from scoretutor.mnist.noisy_classifier import (
    EVAL_SIGMAS,
    NoisyDigitClassifier,
    _default_dir,
    accuracy_at,
    classifier_log_prob_grad,
    load_noisy_classifier,
    log_probs,
    make_noisy_classifier,
    train_noisy_classifier,
)

N_TEST = 1000


@pytest.fixture(scope="module")
def clf():
    return load_noisy_classifier(device="cpu")


@pytest.fixture(scope="module")
def test_digits():
    x, y = load_shipped_mnist("test")
    return x[:N_TEST], y[:N_TEST]


@pytest.fixture(scope="module")
def train_digits():
    return load_shipped_mnist("train")


@pytest.fixture(scope="module")
def sigma_max():
    return read_card(_default_dir())["sigma_max"]


def _noisy(x, sigma, seed=0):
    return x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


# -- the shipped checkpoint -------------------------------------------------------------------------
def test_shipped_checkpoint_loads_with_its_training_record(clf):
    assert isinstance(clf, NoisyDigitClassifier) and not clf.training
    assert not any(p.requires_grad for p in clf.parameters())
    n_params = sum(p.numel() for p in clf.parameters())
    assert 50_000 <= n_params <= 150_000
    card = read_card(_default_dir())
    _, score_card = load_pretrained(device="cpu")
    assert (card["sigma_min"], card["sigma_max"]) == (score_card["sigma_min"], score_card["sigma_max"])
    assert card["parameters"] == n_params and card["trained_on"]["count"] == 10_000
    curve = card["test_accuracy_vs_sigma"]["accuracy"]
    assert len(curve) == len(EVAL_SIGMAS) and {"steps", "wall_time_s", "command", "git_commit"} <= set(card)


def test_accuracy_is_high_at_small_sigma(clf, test_digits):
    assert accuracy_at(clf, *test_digits, sigma=0.1, seed=0) >= 0.95


def test_at_sigma_max_the_posterior_is_near_the_prior(clf, test_digits, train_digits, sigma_max):
    # Y → X → X̃ = X + σZ, so I(Y; X̃) ≤ I(X; X̃) ≤ ½ log det(I + Σ_x/σ²) ≤ tr Σ_x / (2σ²) (a Gaussian
    # has the largest entropy for its covariance): ≈ 0.10 nats of the label's 2.30 at σ_max. The mean
    # KL(p(·|x̃) ‖ p(y)) of a calibrated classifier is that information (more if its mean is off the prior).
    x_train, y_train = train_digits
    info_bound = x_train.flatten(1).double().var(0).sum().item() / (2 * sigma_max**2)
    prior = torch.bincount(y_train, minlength=10).double() / len(y_train)
    x, y = test_digits
    logp = log_probs(clf, _noisy(x, sigma_max).double(), sigma_max)
    kl = (logp.exp() * (logp - prior.log())).sum(1)
    assert kl.mean() <= info_bound + 4 * kl.std() / math.sqrt(N_TEST)
    # the mean prediction is the label distribution (total probability: E p(k | x̃) = p(k)); binomial SEs
    freq = torch.bincount(y, minlength=10).double() / N_TEST
    se = (freq * (1 - freq) / N_TEST).sqrt()
    assert ((logp.exp().mean(0) - freq).abs() <= 4 * se).all()


def test_accuracy_at_sigma_max_is_below_fanos_ceiling(clf, test_digits, train_digits, sigma_max):
    # Fano: H(Y | X̃) ≤ h(P_e) + P_e log 9 with H(Y | X̃) ≥ H(Y) − I and I ≤ tr Σ_x/(2σ²): no classifier
    # beats accuracy 1 − P_e* (≈ 0.26; chance is 0.10, the empirical Bayes posterior reaches ≈ 0.18).
    x_train, y_train = train_digits
    info_bound = x_train.flatten(1).double().var(0).sum().item() / (2 * sigma_max**2)
    prior = torch.bincount(y_train, minlength=10).double() / len(y_train)
    h_y = -(prior * prior.log()).sum().item()
    fano = lambda pe: -pe * math.log(pe) - (1 - pe) * math.log(1 - pe) + pe * math.log(9)
    lo, hi = 0.5, 0.9  # fano rises on [0.5, 0.9]: bisect for fano(P_e*) = H(Y) − I
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fano(mid) < h_y - info_bound else (lo, mid)
    ceiling = 1 - lo
    assert 0.15 < ceiling < 0.35
    acc = accuracy_at(clf, *test_digits, sigma=sigma_max, seed=0)
    assert acc <= ceiling + 4 * math.sqrt(ceiling * (1 - ceiling) / N_TEST)
    assert acc >= 0.1 - 4 * math.sqrt(0.1 * 0.9 / N_TEST)  # and not below chance


# -- the gradient -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.05, 1.0, 10.0])
def test_gradient_matches_central_finite_differences(clf, test_digits, sigma):
    model = copy.deepcopy(clf).double()
    g = torch.Generator().manual_seed(1)
    x = _noisy(test_digits[0][:3], sigma).double()
    labels = torch.tensor([3, 7, 0])
    grad = classifier_log_prob_grad(model, x, sigma, labels)
    logp = lambda z: log_probs(model, z, sigma).gather(1, labels[:, None]).squeeze(1)
    # each image's log p depends on its own pixels only, so one direction per image tests the whole batch
    h = 1e-4 * sigma  # truncation error h²/6 · f''' (the net's length scale is ~σ), rounding ε/h ≈ 1e-12
    for _ in range(3):
        v = torch.randn(x.shape, generator=g, dtype=torch.float64)
        v = v / sq_norm(v).sqrt()[:, None, None, None]
        fd = (logp(x + h * v) - logp(x - h * v)) / (2 * h)
        exact = (grad * v).flatten(1).sum(1)
        assert torch.allclose(exact, fd, rtol=1e-6, atol=1e-9 / sigma)


def test_gradient_shape_dtype_and_no_grad(clf, test_digits):
    x = _noisy(test_digits[0][:4], 0.5)
    with torch.no_grad():
        grad = classifier_log_prob_grad(clf, x, torch.full((4,), 0.5), 2)
    assert grad.shape == x.shape and grad.dtype == torch.float32 and not grad.requires_grad
    grad64 = classifier_log_prob_grad(clf, x.double(), 0.5, 2)  # a float64 caller gets float64
    assert grad64.dtype == torch.float64 and torch.allclose(grad64.float(), grad)
    assert torch.allclose(log_probs(clf, x, 0.5).logsumexp(1), torch.zeros(4), atol=1e-6)


def test_bad_labels_and_bad_sigma_are_named(clf):
    x = torch.rand(2, 1, 28, 28)
    for labels in (10, -1, torch.tensor([0, 10])):
        with pytest.raises(ValueError, match=r"labels must lie in 0\.\.9"):
            classifier_log_prob_grad(clf, x, 1.0, labels)
    with pytest.raises(ValueError, match="labels must be integers"):
        classifier_log_prob_grad(clf, x, 1.0, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"one per image"):
        classifier_log_prob_grad(clf, x, 1.0, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="labels must be an integer"):
        classifier_log_prob_grad(clf, x, 1.0, True)
    for sigma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma must be positive"):
            classifier_log_prob_grad(clf, x, sigma, 1)
    with pytest.raises(ValueError, match="sigma must be a positive number or an"):
        classifier_log_prob_grad(clf, x, torch.ones(3), 1)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\)"):
        clf(torch.rand(2, 1, 14, 14), 1.0)


def test_training_is_seeded_and_learns(train_digits):
    x, y = train_digits[0][:64], train_digits[1][:64]
    run = lambda seed, steps: train_noisy_classifier(x, y, steps, sigma_min=0.01, sigma_max=0.02,
                                                     batch_size=32, augmentation=False, seed=seed,
                                                     device="cpu", progress=False)
    (m1, h1), (m2, h2), (_, h3) = run(0, 15), run(0, 15), run(1, 2)
    assert all(math.isfinite(v) for v in h1) and h1 == h2 and h1[:2] != h3
    pairs = zip(m1.state_dict().values(), m2.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    # 64 nearly clean digits, 15 Adam steps: the cross-entropy falls from about log 10 ≈ 2.30 (the start)
    assert sum(h1[:3]) / 3 > 2.0 and sum(h1[-3:]) / 3 < sum(h1[:3]) / 3 - 0.4
    with pytest.raises(ValueError, match="labels must be an"):
        train_noisy_classifier(x, y[:10], 1, sigma_min=0.01, sigma_max=1.0, device="cpu")
    with pytest.raises(ValueError, match="need sigma_min < sigma_max"):
        train_noisy_classifier(x, y, 1, sigma_min=1.0, sigma_max=0.5, device="cpu")


def test_fresh_classifier_is_seeded_and_sigma_conditioned():
    a, b = make_noisy_classifier(0), make_noisy_classifier(0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert a(x, 0.1).shape == (2, 10)
        assert not torch.allclose(a(x, 0.1), a(x, 5.0))  # σ enters through c_in and the embedding
