"""Notebook 02's DSM checker: accepts a right answer, diagnoses the usual slips."""

from __future__ import annotations

import torch

from scoretutor.lecture.exercises.score_matching import check_dsm


def right(score_fn, x, sigma, generator):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    xt = x + sigma * z
    return 0.5 * ((score_fn(xt) + (xt - x) / sigma**2) ** 2).reshape(x.shape[0], -1).sum(-1).mean()


def test_accepts_a_correct_implementation(capsys):
    assert check_dsm(right)
    assert "Correct" in capsys.readouterr().out


def test_reports_not_attempted(capsys):
    def todo(score_fn, x, sigma, generator):
        raise NotImplementedError

    assert not check_dsm(todo)
    assert "Not attempted" in capsys.readouterr().out


def test_names_the_missing_half_and_the_sign_and_sigma_squared(capsys):
    slips = {
        "factor ½": lambda f, x, s, g: 2 * right(f, x, s, g),
        "wrong sign": lambda f, x, s, g: _variant(f, x, s, g, sign=-1.0),
        "not σ": lambda f, x, s, g: _variant(f, x, s, g, power=1),
        "mean": lambda f, x, s, g: right(f, x, s, g) * x.shape[0],
    }
    for phrase, fn in slips.items():
        assert not check_dsm(fn)
        assert phrase in capsys.readouterr().out, phrase


def _variant(score_fn, x, sigma, generator, sign=1.0, power=2):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    xt = x + sigma * z
    return 0.5 * ((score_fn(xt) + sign * (xt - x) / sigma**power) ** 2).reshape(x.shape[0], -1).sum(-1).mean()


def test_recognises_right_in_expectation_but_other_noise(capsys):
    def own_noise(score_fn, x, sigma, generator):
        # ignores the generator's stream order by drawing an extra number first
        torch.randn(1, generator=generator)
        return right(score_fn, x, sigma, generator)

    assert not check_dsm(own_noise, n_mc=100)
    assert "right on average" in capsys.readouterr().out


def test_rejects_a_detached_loss(capsys):
    assert not check_dsm(lambda f, x, s, g: right(f, x, s, g).detach())
    assert "no gradient" in capsys.readouterr().out
