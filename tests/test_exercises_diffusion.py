"""Notebook 06 checkers accept correct answers and name the common slips."""

import math

from scoretutor.lecture.exercises.diffusion import check_eps_score, check_reverse_sde_step


def test_reverse_step_correct_and_slips(capsys):
    assert check_reverse_sde_step(lambda x, f, g, s, dt, z: x - (f - g**2 * s) * dt + g * math.sqrt(dt) * z)
    assert "Correct!" in capsys.readouterr().out
    wrong_sign = lambda x, f, g, s, dt, z: x - (f + g**2 * s) * dt + g * math.sqrt(dt) * z
    assert not check_reverse_sde_step(wrong_sign)
    assert "wrong sign" in capsys.readouterr().out
    assert not check_reverse_sde_step(lambda x, f, g, s, dt, z: x - (f - g**2 * s) * dt + g * dt * z)
    assert "√dt" in capsys.readouterr().out
    assert not check_reverse_sde_step(lambda x, f, g, s, dt, z: x - (f - 0.5 * g**2 * s) * dt)
    assert "probability-flow" in capsys.readouterr().out
    assert not check_reverse_sde_step(lambda x, f, g, s, dt, z: x)
    assert "differs" in capsys.readouterr().out


def test_not_attempted(capsys):
    def todo(*args):
        raise NotImplementedError
    assert not check_reverse_sde_step(todo)
    assert not check_eps_score(todo, todo)
    assert capsys.readouterr().out.count("Not attempted") == 2


def test_eps_score_correct_and_slips(capsys):
    assert check_eps_score(lambda e, s: -e / s, lambda sc, s: -s * sc)
    assert "Correct!" in capsys.readouterr().out
    assert not check_eps_score(lambda e, s: e / s, lambda sc, s: -s * sc)
    assert "wrong sign" in capsys.readouterr().out
    assert not check_eps_score(lambda e, s: -e / s**2, lambda sc, s: -s * sc)
    assert "σ_t²" in capsys.readouterr().out
    assert not check_eps_score(lambda e, s: -e / s, lambda sc, s: -sc / s)
    assert "multiply by σ_t" in capsys.readouterr().out
