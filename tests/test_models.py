"""Networks: shapes (points and images), σ-conditioning, and the energy model's score = −∇f."""

from __future__ import annotations

import pytest
import torch

from scoretutor.models import EnergyMLP, NoiseConditionalScoreMLP, ScoreMLP, StackedScoreMLP

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


def test_frozen_score_equals_the_model():
    # Same arithmetic regrouped (b + U e(σ) folded once): float32 rounding only, ~1e-7 relative.
    torch.manual_seed(0)
    for scale in (True, False):
        model = NoiseConditionalScoreMLP(hidden=32, n_layers=3, embed_dim=8, scale_by_sigma=scale)
        fast = model.frozen_score()
        x = torch.randn(50, 2)
        for sigma in (20.0, 3.3, 1.0, 0.05):
            with torch.no_grad():
                assert torch.allclose(fast(x, sigma), model(x, sigma), rtol=1e-5, atol=1e-6)
    # images: (N, C, H, W) in and out, like forward
    model = NoiseConditionalScoreMLP(dim=4, hidden=8, n_layers=1, embed_dim=4)
    x = torch.randn(3, 1, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.frozen_score()(x, 0.5), model(x, 0.5))


def test_stacked_models_are_independent_mlps_scaled_by_their_sigma():
    g = torch.Generator().manual_seed(0)
    model = StackedScoreMLP([0.5, 1.0, 2.0], hidden=8, generator=g).double()
    x = torch.randn(5, 2, dtype=DT)
    out = model(x)
    assert out.shape == (3, 5, 2)
    for k, sigma in enumerate((0.5, 1.0, 2.0)):  # model k by hand: SiLU MLP with its own weights, / σ_k
        w, b = [p[k] for p in model.weights], [p[k] for p in model.biases]
        h = torch.nn.functional.silu(x @ w[0] + b[0])
        h = torch.nn.functional.silu(h @ w[1] + b[1])
        torch.testing.assert_close(out[k], (h @ w[2] + b[2]) / sigma)
    # same generator seed, same weights; the global RNG is not used
    again = StackedScoreMLP([0.5, 1.0, 2.0], hidden=8, generator=torch.Generator().manual_seed(0)).double()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(), strict=True))
    out[1].sum().backward()  # a loss on model 1 only must not touch models 0 and 2
    for w in model.weights:
        assert w.grad[0].abs().sum() == 0 and w.grad[2].abs().sum() == 0 and w.grad[1].abs().sum() > 0
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(2, 5, 2, dtype=DT))
    with pytest.raises(ValueError, match="sigmas"):
        StackedScoreMLP([])
