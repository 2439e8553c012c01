"""Notebook 02's DSM checker: accepts a right answer, diagnoses the usual slips."""

from __future__ import annotations

import torch

from scoretutor.lecture.exercises.score_matching import check_debugged_dsm, check_dsm


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


# -- the debugging exercise: a DSM loss with two slips ----------------------------------------------
def _debug(score_fn, x, sigma, generator, fresh=True, last_axis=True):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    x_noisy = x + sigma * z
    if fresh:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    residual = score_fn(x_noisy) + z / sigma
    sq = residual.pow(2).sum(-1) if last_axis else residual.reshape(len(x), -1).pow(2).sum(-1)
    return 0.5 * sq.mean()


def test_debug_checker_names_the_slips_that_remain(capsys):
    assert not check_debugged_dsm(_debug)
    out = capsys.readouterr().out
    assert "2 slips left" in out and "fresh draw" in out and "last axis" in out
    assert not check_debugged_dsm(lambda *a: _debug(*a, fresh=False))
    out = capsys.readouterr().out
    assert "1 slip left" in out and "last axis" in out and "fresh" not in out
    assert not check_debugged_dsm(lambda *a: _debug(*a, last_axis=False))
    out = capsys.readouterr().out
    assert "1 slip left" in out and "fresh draw" in out and "last axis" not in out


def test_debug_checker_accepts_the_fix_and_falls_back_to_the_dsm_checker(capsys):
    assert check_debugged_dsm(lambda *a: _debug(*a, fresh=False, last_axis=False))
    assert "Correct" in capsys.readouterr().out
    assert not check_debugged_dsm(lambda f, x, s, g: 2 * right(f, x, s, g))  # another slip: check_dsm's hint
    assert "factor ½" in capsys.readouterr().out
    assert not check_dsm(lambda *a: _debug(*a, last_axis=False))  # check_dsm knows the fresh-noise slip too
    assert "fresh draw" in capsys.readouterr().out


def test_fresh_noise_in_the_target_makes_zero_the_best_score():
    # the hint's claim: with an independent z′ the loss is minimised by s ≡ 0 (Monte Carlo, Gaussian data)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 2, generator=g, dtype=torch.float64)
    loss = lambda c: _debug(lambda y: -c * y / 1.25, x, 0.5, torch.Generator().manual_seed(1), True, False)
    losses = {c: loss(c).item() for c in (0.0, 0.5, 1.0)}
    assert losses[0.0] < losses[0.5] < losses[1.0]
