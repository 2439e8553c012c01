"""Notebook 06 checkers accept correct answers and name the common slips."""

import math

from scoretutor.lecture.exercises.diffusion import (
    check_eps_score,
    check_ode_vs_sde,
    check_reverse_sde_step,
    colleagues_reverse_sde_step,
    ode_vs_sde_experiment,
)


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


def test_debug_mode_shows_the_symptom_not_the_slip(capsys):
    assert not check_reverse_sde_step(colleagues_reverse_sde_step, debug=True)
    out = capsys.readouterr().out
    assert "Still the colleague's step" in out and "wrong sign" not in out and "backwards" not in out
    spread = float(out.split("spread of ")[1].split(" ")[0])
    assert spread > 100  # run forwards in time, the samples fly apart (the data's spread is 4.1)
    # other slips are still named in debug mode, and the fix passes
    no_sqrt = lambda x, f, g, s, dt, z: x - (f - g**2 * s) * dt + g * dt * z
    assert not check_reverse_sde_step(no_sqrt, debug=True)
    assert "√dt" in capsys.readouterr().out
    assert check_reverse_sde_step(lambda x, f, g, s, dt, z: x - (f - g**2 * s) * dt + g * math.sqrt(dt) * z,
                                  debug=True)


def test_ode_vs_sde_experiment_same_law_different_points():
    r = ode_vs_sde_experiment()
    assert abs(r["ode"] - r["sde"]) < 4 * math.sqrt(2) * r["se"]  # one law: shares agree within 4 se
    for share in (r["ode"], r["sde"]):
        assert abs(share - 0.2) < 4 * r["se"]
    # independent draws share a mode 0.2² + 0.8² = 0.68 of the time; the same map would give 1
    assert abs(r["same_mode"] - 0.68) < 0.05 and r["same_mode"] < 1 - 10 * r["se_same"]


def test_ode_vs_sde_predictions(capsys):
    assert not check_ode_vs_sde(None, None)
    assert "Not attempted" in capsys.readouterr().out
    assert not check_ode_vs_sde("yes", 0.7)
    assert "True or False" in capsys.readouterr().out
    assert check_ode_vs_sde(True, 0.7)
    out = capsys.readouterr().out
    assert out.count("✓") == 2 and "0.68" in out
    assert not check_ode_vs_sde(True, 1.0)  # "the ODE and the SDE are the same map": it is not
    out = capsys.readouterr().out
    assert "✗ Same points" in out and "✓ Same law" in out
    assert not check_ode_vs_sde(False, 0.7)
    assert "✗ Same law" in capsys.readouterr().out
