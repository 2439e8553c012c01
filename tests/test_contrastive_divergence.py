"""Notebook 01's contrastive-divergence deep dive: the CD gradient is the log-likelihood gradient."""

import math

import pytest
import torch

from scoretutor.contrastive_divergence import (
    ContrastiveDivergence,
    cd_loss,
    grid_log_likelihood,
    grid_log_normaliser,
    grid_mode_weights,
    langevin_negatives,
)
from scoretutor.training import fit


class QuadraticEnergy(torch.nn.Module):
    """f_θ(x) = ½‖x − μ‖²/v with θ = (μ, log v): p_θ = N(μ, vI), so E_{p_θ} is known in closed form."""

    def __init__(self, mu=(0.5, -0.3), log_v=0.2):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.tensor(mu, dtype=torch.float64))
        self.log_v = torch.nn.Parameter(torch.tensor(log_v, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * ((x - self.mu) ** 2).sum(-1) / self.log_v.exp()


def _grads(loss, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


def test_grid_log_likelihood_of_a_gaussian_energy_is_the_gaussian_log_density():
    f = QuadraticEnergy()
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v = f.log_v.exp()
    exact = (-0.5 * ((x - f.mu) ** 2).sum(-1) / v - torch.log(2 * math.pi * v)).mean()
    # midpoint rule with h = 0.12 ≪ √v ≈ 1.1 is spectrally accurate; the box ±12 cuts e^{-60}
    got = grid_log_likelihood(f, x, lim=12.0, n_per_axis=200).item()
    assert got == pytest.approx(exact.item(), abs=1e-10)


def test_cd_gradient_with_exact_model_samples_is_the_log_likelihood_gradient_in_expectation():
    # Data from N((1, 0), 0.7 I); model N(μ, vI). With negatives drawn exactly from p_θ, ∇θ cd_loss is
    # an unbiased estimate of −∇θ mean log p_θ(data), the gradient of the grid log-likelihood (autograd).
    g = torch.Generator().manual_seed(0)
    f = QuadraticEnergy()
    x_data = torch.tensor([1.0, 0.0], dtype=torch.float64) + 0.7**0.5 * torch.randn(400, 2, generator=g,
                                                                                     dtype=torch.float64)
    exact = -_grads(grid_log_likelihood(f, x_data, lim=12.0, n_per_axis=200), list(f.parameters()))
    with torch.no_grad():
        sd = f.log_v.exp().sqrt()
    exact_samples = lambda: f.mu.detach() + sd * torch.randn(2000, 2, generator=g, dtype=torch.float64)
    params = list(f.parameters())
    reps = torch.stack([_grads(cd_loss(f, x_data, exact_samples()), params) for _ in range(200)])
    mean, se = reps.mean(0), reps.std(0) / math.sqrt(len(reps))
    assert ((mean - exact).abs() < 4 * se).all(), (mean, exact, se)
    assert (exact.abs() > 10 * se).all()  # the test can tell a wrong gradient from a right one


def test_cd_gradient_with_langevin_negatives_of_a_small_network():
    # A small energy network: the exact ∇θ log-likelihood on a grid vs CD with long Langevin chains started
    # at exact samples of p_θ (drawn on the grid); the ULA bias of ε = 0.01 is O(ε) and below the MC error.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()
    energy = lambda x: net(x).squeeze(-1) + 0.25 * (x**2).sum(-1)
    g = torch.Generator().manual_seed(1)
    x_data = torch.randn(300, 2, generator=g, dtype=torch.float64) * 1.5
    params = list(net.parameters())
    exact = -_grads(grid_log_likelihood(energy, x_data, lim=10.0, n_per_axis=300), params)
    h, n = 20.0 / 300, 300
    axis = -10 + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    pts = torch.stack([c.reshape(-1) for c in torch.meshgrid(axis, axis, indexing="xy")], -1)
    with torch.no_grad():
        probs = torch.softmax(-energy(pts), 0)
    reps = []
    for _ in range(40):
        start = pts[torch.multinomial(probs, 2000, replacement=True, generator=g)]
        start = start + h * (torch.rand(start.shape, generator=g, dtype=torch.float64) - 0.5)
        x_model = langevin_negatives(energy, start, 0.01, 20, generator=g)
        reps.append(_grads(cd_loss(energy, x_data, x_model), params))
    reps = torch.stack(reps)
    mean, se = reps.mean(0), reps.std(0) / math.sqrt(len(reps))
    err = (mean - exact).abs() / (se + 1e-3 * exact.abs().max())
    assert err.max() < 5, err.max()


def test_langevin_negatives_leave_the_parameters_alone_and_are_reproducible():
    f = QuadraticEnergy()
    x0 = torch.zeros(8, 2, dtype=torch.float64)
    a = langevin_negatives(f, x0, 0.1, 5, generator=torch.Generator().manual_seed(3))
    b = langevin_negatives(f, x0, 0.1, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not a.requires_grad
    assert all(p.grad is None for p in f.parameters())
    with pytest.raises(FloatingPointError, match="smaller"):
        langevin_negatives(lambda x: -(x**4).sum(-1), torch.ones(2, 2), 1.0, 50)


def test_cd_loss_ignores_constants_without_regularisation():
    f = QuadraticEnergy()
    x, y = torch.randn(10, 2, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64)
    shifted = lambda z: f(z) + 5.0
    assert cd_loss(shifted, x, y).item() == pytest.approx(cd_loss(f, x, y).item(), abs=1e-12)
    assert cd_loss(shifted, x, y, alpha=0.1).item() > cd_loss(f, x, y, alpha=0.1).item()


def test_persistent_cd_keeps_its_chains_in_the_checkpoint_and_resumes_exactly(tmp_path):
    def run(n_steps, path):
        torch.manual_seed(0)
        model = ContrastiveDivergence(torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.SiLU(),
                                                          torch.nn.Linear(8, 1)),
                                      n_chains=64, n_steps=3, step_size=0.05)
        data = torch.randn(256, 2) + 2
        fit(model, lambda m, x, g: m.loss(x, g), data, n_steps, batch_size=16, device="cpu",
            progress=False, checkpoint_path=path, checkpoint_every=2)
        return model

    straight = run(6, tmp_path / "a.pt")
    run(3, tmp_path / "b.pt")
    resumed = run(6, tmp_path / "b.pt")
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value)
    assert "chains" in straight.state_dict()
    short_run = ContrastiveDivergence(torch.nn.Linear(2, 1), persistent=False, restart=0.05)
    assert short_run.restart == 1.0


def test_grid_mode_weights_of_the_mixture_energy_are_its_weights():
    from scoretutor.densities import ncsn_mixture

    mix = ncsn_mixture(dtype=torch.float64)
    w = grid_mode_weights(mix.energy, mix.means, lim=14.0, n_per_axis=400)
    # each mode lies 5√2 ≈ 7.1 std from the bisector: the mass on the wrong side is Φ(−7.1) ≈ 1e-12
    torch.testing.assert_close(w, mix.weights, atol=1e-8, rtol=0)
    log_z = grid_log_normaliser(mix.energy, lim=14.0, n_per_axis=400, dtype=torch.float64).item()
    assert log_z == pytest.approx(math.log(2 * math.pi), abs=1e-8)
