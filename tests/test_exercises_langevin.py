"""Notebook 03's checkers accept the right answers and name the usual mistakes."""

import math

import pytest
import torch

from scoretutor.lecture.exercises.langevin import check_langevin_step, check_stationary_variance
from scoretutor.sampling import langevin


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
