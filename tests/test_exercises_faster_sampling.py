"""Notebook 07 checkers accept correct answers and name the common slips."""

from scoretutor.lecture.exercises.faster_sampling import (
    check_heun_slope,
    check_score_from_velocity,
    order_experiment,
)


def test_heun_slope_experiment_is_second_order():
    r = order_experiment()
    assert abs(r["order"] - 2) < 0.2 and r["se"] < 0.05


def test_heun_slope_prediction(capsys):
    assert check_heun_slope(-2.0)
    assert "Right" in capsys.readouterr().out
    assert not check_heun_slope(2.0)
    assert "negative" in capsys.readouterr().out
    assert not check_heun_slope(-1.0)
    assert "Euler's slope" in capsys.readouterr().out
    assert not check_heun_slope(-4.0)
    assert "Count the order" in capsys.readouterr().out
    assert not check_heun_slope(None)
    assert "Not attempted" in capsys.readouterr().out


def test_score_from_velocity_correct_and_slips(capsys):
    assert check_score_from_velocity(lambda x, t, v: -(x + (1 - t) * v) / t)
    assert "Correct!" in capsys.readouterr().out
    assert not check_score_from_velocity(lambda x, t, v: (x + (1 - t) * v) / t)
    assert "sign" in capsys.readouterr().out
    assert not check_score_from_velocity(lambda x, t, v: -(x + t * v) / (1 - t))
    assert "swapped" in capsys.readouterr().out
    assert not check_score_from_velocity(lambda x, t, v: x + (1 - t) * v)
    assert "predicted noise" in capsys.readouterr().out
    assert not check_score_from_velocity(lambda x, t, v: v)
    assert "Tweedie" in capsys.readouterr().out


def test_not_attempted(capsys):
    def todo(*args):
        raise NotImplementedError
    assert not check_score_from_velocity(todo)
    assert "Not attempted" in capsys.readouterr().out
