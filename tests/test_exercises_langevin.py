"""Notebook 03's checkers accept the right answers and name the usual mistakes."""

import math

import pytest
import torch

from scoretutor.lecture.exercises.langevin import (
    check_langevin_step,
    check_stationary_variance,
    check_variance_prediction,
)
from scoretutor.sampling import langevin, ula_stationary_variance


def correct_step(x, score_fn, eps, z):
    return x + eps * score_fn(x) + math.sqrt(2 * eps) * z


def test_correct_step_passes_and_matches_the_package_sampler(capsys):
    assert check_langevin_step(correct_step) is True
    assert "Correct" in capsys.readouterr().out
    # the reference the checker uses is the sampler's update: one step with the same noise
    x0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    score = lambda x: -x / 2
    one = langevin(score, x0, 0.3, 1, generator=torch.Generator().manual_seed(1)).x
    torch.testing.assert_close(one, correct_step(x0, score, 0.3, z))


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, s, e, z: x + e * s(x), "noise is missing"),
    (lambda x, s, e, z: x + e * s(x) + math.sqrt(e) * z, "not √ε"),
    (lambda x, s, e, z: x - e * s(x) + math.sqrt(2 * e) * z, "+ε·s(x)"),
    (lambda x, s, e, z: x + e / 2 * s(x) + math.sqrt(2 * e) * z, "(ε/2)"),
    (lambda x, s, e, z: x + e * s(x) + math.sqrt(2 * e) * z + 0.01, "Hint: x_{i+1}"),
    (lambda x, s, e, z: (x + e * s(x))[:, 0], "a tensor of shape"),
])
def test_wrong_steps_fail_with_a_specific_hint(wrong, hint, capsys):
    assert check_langevin_step(wrong) is False
    assert hint in capsys.readouterr().out


def test_not_attempted(capsys):
    def todo(*args):
        raise NotImplementedError

    assert check_langevin_step(todo) is False
    assert check_stationary_variance(todo) is False
    assert capsys.readouterr().out.count("Not attempted") == 2


def test_stationary_variance_checker(capsys):
    assert check_stationary_variance(lambda e, s2: s2 / (1 - e / (2 * s2))) is True
    assert check_stationary_variance(lambda e, s2: s2) is False
    assert "target's variance" in capsys.readouterr().out
    assert check_stationary_variance(lambda e, s2: s2 + e) is False
    # the reference is sampling.ula_stationary_variance, tested against the variance recursion there



def test_variance_prediction_runs_the_chain_and_accepts_the_derived_value(capsys):
    # the measurement agrees with the closed form: the right prediction passes at several settings
    for eps, tau2 in ((0.5, 1.0), (0.1, 1.0), (1.5, 2.0)):
        assert check_variance_prediction(ula_stationary_variance(eps, math.sqrt(tau2)), eps, tau2) is True
    out = capsys.readouterr().out
    assert out.count("Well predicted") == 3 and "1.3" in out  # 4/3 at ε = 0.5, τ² = 1


@pytest.mark.parametrize("guess, says", [
    (1.0, "target's variance"),
    (0.7, "not narrower"),
    (1.15, "by more than you thought"),
    (2.0, "by less than you thought"),
    (None, "Not attempted"),
    ("big", "as a number"),
])
def test_variance_prediction_says_what_happened(guess, says, capsys):
    assert check_variance_prediction(guess) is False
    out = capsys.readouterr().out
    assert says in out
    if isinstance(guess, float):
        assert "settle" in out and "variance 1.3" in out  # what the experiment measured


def test_variance_prediction_refuses_an_unstable_step(capsys):
    assert check_variance_prediction(3.0, eps=2.5, tau2=1.0) is False
    assert "diverges" in capsys.readouterr().out
