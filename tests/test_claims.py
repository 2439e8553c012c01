import math

import pytest

from scoretutor.lecture.claims import ClaimError, check, check_greater, check_less, check_true


def test_check_passes_within_tolerance_and_prints_one_line(capsys):
    assert check("Fisher − ISM is constant", 1.991, 2.0, 0.02) == 1.991
    out = capsys.readouterr().out
    assert out == "✓ Fisher − ISM is constant: 1.991 (expected 2 ± 0.02)\n"


@pytest.mark.parametrize("measured", [2.03, 1.97, math.nan, math.inf])
def test_check_fails_outside_tolerance_or_non_finite(measured):
    with pytest.raises(ClaimError, match="✗ c: "):
        check("c", measured, 2.0, 0.02)
    assert issubclass(ClaimError, AssertionError)  # nbmake/pytest report it as a failed assertion


def test_check_rejects_bad_tolerance():
    with pytest.raises(ValueError, match="tol must be"):
        check("c", 1.0, 1.0, -1)


def test_bounds_and_true(capsys):
    check_less("a", 0.1, 0.2)
    check_greater("b", 0.3, 0.2)
    check_true("c", True, "3 of 3")
    assert capsys.readouterr().out.splitlines() == [
        "✓ a: 0.1 (must be < 0.2)", "✓ b: 0.3 (must be > 0.2)", "✓ c: 3 of 3"]
    with pytest.raises(ClaimError):
        check_less("a", 0.2, 0.2)
    with pytest.raises(ClaimError):
        check_greater("b", math.nan, 0.2)
    with pytest.raises(ClaimError, match="✗ c"):
        check_true("c", False)
