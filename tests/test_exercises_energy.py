"""Notebook 01's predict-then-check exercise: which changes of f change the density, which the score."""

import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.lecture.exercises.energy import (
    ASPECTS,
    TRANSFORMS,
    check_transformations,
    transformation_effects,
)

RIGHT = {
    "f(x) + 3": {"density changes": False, "score changes": False},
    "2 f(x)": {"density changes": True, "score changes": True},
    "f(x − a), a = (1, 0)": {"density changes": True, "score changes": True},
    "f(x) + 0.5·x₁": {"density changes": True, "score changes": True},
}


def test_measured_effects_match_the_closed_forms():
    # mixture energy: a constant changes nothing (to rounding); 2f doubles the score, so ‖Δs‖ = ‖s‖, whose
    # maximum over the kept points is large; the tilt changes the score by exactly (0.5, 0) everywhere.
    effects = transformation_effects(ncsn_mixture(dtype=torch.float64).energy)
    assert effects["f(x) + 3"]["density changes"] < 1e-12 and effects["f(x) + 3"]["score changes"] == 0
    assert abs(effects["f(x) + 0.5·x₁"]["score changes"] - 0.5) < 1e-12
    assert abs(effects["f(x − a), a = (1, 0)"]["score changes"] - 1.0) < 1e-9  # Gaussian modes: Δs = a
    assert all(effects[n][a] > 1e-3 for n in RIGHT for a in ASPECTS if RIGHT[n][a])
    assert set(RIGHT) == set(TRANSFORMS)


def test_checker_accepts_right_predictions_and_explains_wrong_ones(capsys):
    assert check_transformations(RIGHT)
    assert "8 of 8" in capsys.readouterr().out
    trap = {**RIGHT, "f(x) + 0.5·x₁": {"density changes": True, "score changes": False}}
    assert not check_transformations(trap)
    out = capsys.readouterr().out
    assert "7 of 8" in out and "linear tilt" in out


def test_checker_reports_unattempted_and_malformed_answers(capsys):
    assert not check_transformations({n: {a: ... for a in ASPECTS} for n in RIGHT})
    assert "Not attempted" in capsys.readouterr().out
    assert not check_transformations({n: {a: "yes" for a in ASPECTS} for n in RIGHT})
    assert "True" in capsys.readouterr().out
    assert not check_transformations({"f + 3": {}})
    assert "exactly these" in capsys.readouterr().out
