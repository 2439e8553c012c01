"""The shared input checks: one wording for every bad count, scale, batch, noise level or score."""

import pytest
import torch

from scoretutor import checks
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


def test_batch_accepts_float_batches_and_names_what_is_wrong():
    x = torch.zeros(3, 1, 2, 2)
    assert checks.batch(x) is x
    assert checks.batch(torch.zeros(4), "x0", min_ndim=1).shape == (4,)
    for bad, match in [([[0.0]], "x must be a torch.Tensor of shape \\(N, ...\\), got list"),
                       (torch.zeros(3), "x must have shape \\(N, ...\\) with N >= 1 and features, got"),
                       (torch.zeros(0, 2), "got \\(0, 2\\)"),
                       (torch.zeros(3, 2, dtype=torch.long), "x must be a floating-point tensor, got dtype")]:
        with pytest.raises(ValueError, match=match):
            checks.batch(bad)


def test_sigma_is_one_level_or_one_per_example():
    x = torch.zeros(4, 2, dtype=torch.float64)
    assert torch.equal(checks.sigma(0.5, x), torch.full((4,), 0.5, dtype=torch.float64))
    assert torch.equal(checks.sigma(torch.tensor([0.5]), x), torch.full((4,), 0.5, dtype=torch.float64))
    per = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert torch.equal(checks.sigma(per, x), per.double())
    for bad, match in [(0.0, "sigma must be positive and finite, got \\[0.0"),
                       (float("nan"), "positive and finite"),
                       (torch.tensor([0.1, -0.2, 0.3, 0.4]), "positive and finite"),
                       (torch.ones(3), "sigma must be a positive number or an \\(4,\\) tensor"),
                       ("big", "sigma must be a positive number")]:
        with pytest.raises(ValueError, match=match):
            checks.sigma(bad, x)


def test_sigmas_must_decrease_unless_told_otherwise():
    assert checks.sigmas(torch.tensor([3.0, 2.0, 1.0])) == [3.0, 2.0, 1.0]
    assert checks.sigmas([0.1, 1.0], decreasing=False) == [0.1, 1.0]
    for bad, match in [([1.0, 2.0], "strictly decreasing \\(σ_max first"),
                       ([1.0, 1.0], "strictly decreasing"),
                       ([], "at least one"), ([2.0, -1.0], "positive and finite"),
                       ([float("inf"), 1.0], "positive and finite"), ("abc", "sequence of positive")]:
        with pytest.raises(ValueError, match=match):
            checks.sigmas(bad)


def test_call_score_checks_the_shape_and_sq_norm_is_per_example():
    x = torch.arange(12.0).reshape(3, 2, 2)
    assert torch.equal(checks.call_score(lambda y, c: c * y, x, 2.0), 2 * x)
    with pytest.raises(ValueError, match=r"model must return a tensor shaped like x \(3, 2, 2\), got \(3, 4"):
        checks.call_score(lambda y: y.reshape(3, 4), x, name="model")
    with pytest.raises(ValueError, match="got float"):
        checks.call_score(lambda y: 1.0, x)
    assert checks.sq_norm(x).tolist() == [sum(v * v for v in row) for row in x.reshape(3, 4).tolist()]
