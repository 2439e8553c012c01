"""The shared input checks: one wording for every bad count or scale."""

import pytest

from scoretutor.checks import count, positive


@pytest.mark.parametrize("value", [-1, 2.5, True, "3", None, float("nan")])
def test_count_refuses_non_counts(value):
    with pytest.raises(ValueError, match=r"k must be an integer >= 0, got"):
        count(value, "k")


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "x", None])
def test_positive_refuses_non_positive(value):
    with pytest.raises(ValueError, match=r"s must be a positive finite number, got"):
        positive(value, "s")


def test_checks_pass_good_values_through():
    assert count(3.0, "k", 1) == 3 and isinstance(count(3.0, "k"), int)
    assert positive("0.5", "s") == 0.5
