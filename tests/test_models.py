"""Networks: shapes (points and images), σ-conditioning, and the energy model's score = −∇f."""

from __future__ import annotations

import pytest
import torch

from scoretutor.models import EnergyMLP, NoiseConditionalScoreMLP, ScoreMLP, frozen_sigma_score

DT = torch.float64


@pytest.mark.parametrize("shape,dim", [((7, 2), 2), ((5, 1, 3, 3), 9)])
def test_output_shapes_match_input(shape, dim):
    x = torch.randn(*shape)
    assert ScoreMLP(dim, hidden=8, n_layers=1)(x).shape == x.shape
    assert NoiseConditionalScoreMLP(dim, hidden=8, n_layers=1, embed_dim=4)(x, 0.5).shape == x.shape
    energy = EnergyMLP(dim, hidden=8, n_layers=1)
    assert energy(x).shape == (shape[0],)
    assert energy.score(x).shape == x.shape


def test_energy_score_is_minus_gradient_by_finite_differences():
    # Central differences have error O(h²·f''') ≈ 1e-10 for h = 1e-4 in float64; allow 1e-6.
    torch.manual_seed(0)
    energy = EnergyMLP(2, hidden=16, n_layers=2).to(DT)
    x = torch.randn(6, 2, dtype=DT)
    h = 1e-4
    fd = torch.stack([(energy(x + h * e) - energy(x - h * e)) / (2 * h)
                      for e in torch.eye(2, dtype=DT)], dim=-1)
    torch.testing.assert_close(energy.score(x), -fd, atol=1e-6, rtol=0)


def test_energy_score_inside_and_outside_no_grad():
    torch.manual_seed(0)
    energy = EnergyMLP(2, hidden=8, n_layers=1)
    x = torch.randn(4, 2)
    s_train = energy.score(x)
    assert s_train.requires_grad  # graph kept for training
    s_train.pow(2).sum().backward()
    assert energy.net[0].weight.grad is not None
    with torch.no_grad():
        s_eval = energy.score(x)
    assert not s_eval.requires_grad
    torch.testing.assert_close(s_eval, s_train.detach())


def test_noise_conditional_accepts_float_scalar_and_per_example_sigma():
    torch.manual_seed(0)
    model = NoiseConditionalScoreMLP(2, hidden=16, n_layers=2).to(DT)
    x = torch.randn(5, 2, dtype=DT)
    a = model(x, 0.3)
    torch.testing.assert_close(model(x, torch.tensor(0.3, dtype=DT)), a)
    torch.testing.assert_close(model(x, torch.full((5,), 0.3, dtype=DT)), a)
    mixed = model(x, torch.tensor([0.3, 1.0, 0.3, 2.0, 0.3], dtype=DT))
    torch.testing.assert_close(mixed[[0, 2, 4]], a[[0, 2, 4]])
    assert not torch.allclose(mixed[1], a[1])  # the level really conditions the output


def test_scale_by_sigma_divides_the_output_by_sigma():
    torch.manual_seed(0)
    scaled = NoiseConditionalScoreMLP(2, hidden=16, n_layers=2, scale_by_sigma=True).to(DT)
    plain = NoiseConditionalScoreMLP(2, hidden=16, n_layers=2, scale_by_sigma=False).to(DT)
    plain.load_state_dict(scaled.state_dict())
    x = torch.randn(5, 2, dtype=DT)
    sig = torch.tensor([0.01, 0.1, 1.0, 10.0, 50.0], dtype=DT)
    torch.testing.assert_close(scaled(x, sig) * sig[:, None], plain(x, sig))


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="dim"):
        ScoreMLP(0)
    with pytest.raises(ValueError, match="hidden"):
        EnergyMLP(2, hidden=-3)
    with pytest.raises(ValueError, match="embed_dim"):
        NoiseConditionalScoreMLP(2, embed_dim=5)
    model = NoiseConditionalScoreMLP(2, hidden=8, n_layers=1)
    with pytest.raises(ValueError, match="sigma"):
        model(torch.randn(3, 2), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        model(torch.randn(3, 2), torch.ones(4))
    with pytest.raises(ValueError, match="expected x of shape"):
        ScoreMLP(2)(torch.randn(3, 3))


def test_frozen_sigma_score_equals_the_model():
    torch.manual_seed(0)
    for scale in (True, False):
        model = NoiseConditionalScoreMLP(hidden=32, n_layers=3, embed_dim=8, scale_by_sigma=scale)
        fast = frozen_sigma_score(model)
        x = torch.randn(50, 2)
        for sigma in (20.0, 3.3, 1.0, 0.05):
            with torch.no_grad():
                assert torch.allclose(fast(x, sigma), model(x, sigma), rtol=1e-5, atol=1e-6)
    other = lambda x, s: -x / s**2
    assert torch.equal(frozen_sigma_score(other)(torch.ones(3, 2), 2.0), torch.full((3, 2), -0.25))
