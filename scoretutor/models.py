"""Small networks for score-based modelling of toy data.

- ``ScoreMLP``: s_θ(x): R^d → R^d, a plain MLP that outputs the score directly.
- ``NoiseConditionalScoreMLP``: s_θ(x, σ), conditioned on the noise level through an embedding of
  log σ; with ``scale_by_sigma`` the output is net(x, σ)/σ (the 1/σ scaling of NCSNv2, Song & Ermon 2020,
  which itself uses an unconditional net(x)); ``model.frozen_score()`` is the same function for
  a sampler, faster for a fixed σ.
- ``StackedScoreMLP``: K independent score MLPs, one per noise level σ_k, run as one batched net.
- ``EnergyMLP``: a scalar energy f_θ(x) with score s_θ(x) = −∇ₓ f_θ(x) (the score of
  p_θ = e^{−f_θ}/Z_θ, since ∇ₓ log Z_θ = 0), computed by autograd.

Every network accepts x of shape (N, d) or (N, ...) with prod(...) = d (images are flattened
internally) and returns outputs of the same shape as x. SiLU activations keep the networks
smooth, so tr(∇ₓ s_θ) in implicit score matching is informative (a ReLU MLP's Jacobian is
piecewise constant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scoretutor import checks

Tensor = torch.Tensor


def _mlp(d_in: int, hidden: int, d_out: int, n_layers: int) -> nn.Sequential:
    """n_layers hidden Linear+SiLU blocks, then a Linear to d_out."""
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


def _check_sizes(dim: int, hidden: int, n_layers: int) -> None:
    for name, value in (("dim", dim), ("hidden", hidden), ("n_layers", n_layers)):
        checks.count(value, name, 1)


def _flatten(x: Tensor, dim: int) -> Tensor:
    """(N, ...) → (N, dim), checking that the trailing dimensions hold exactly dim numbers."""
    if x.ndim < 2 or math.prod(x.shape[1:]) != dim:
        raise ValueError(
            f"expected x of shape (N, {dim}) or (N, ...) with {dim} numbers per example, "
            f"got {tuple(x.shape)}"
        )
    return x.reshape(x.shape[0], dim)


class ScoreMLP(nn.Module):
    """s_θ(x): R^d → R^d, an MLP with ``n_layers`` hidden SiLU layers of width ``hidden``."""

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3):
        super().__init__()
        _check_sizes(dim, hidden, n_layers)
        self.dim = int(dim)
        self.net = _mlp(self.dim, hidden, self.dim, n_layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_flatten(x, self.dim)).reshape(x.shape)


class SigmaEmbedding(nn.Module):
    """Fourier features of log σ followed by a small MLP: σ ↦ e(σ) ∈ R^embed_dim.

    Features are [sin(ω_k log σ), cos(ω_k log σ)] with fixed frequencies ω_k spread geometrically
    over [0.1, 10], which resolves noise levels from about 10⁻³ to 10³ without a lookup table,
    so the network also accepts levels it was not trained on.
    """

    def __init__(self, embed_dim: int = 32):
        super().__init__()
        if int(embed_dim) != embed_dim or embed_dim < 2 or embed_dim % 2:
            raise ValueError(f"embed_dim must be an even integer >= 2, got {embed_dim!r}")
        freqs = torch.logspace(-1, 1, embed_dim // 2)
        self.register_buffer("freqs", freqs)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, sigma: Tensor) -> Tensor:
        angles = torch.log(sigma)[:, None] * self.freqs.to(sigma.dtype)
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class NoiseConditionalScoreMLP(nn.Module):
    """s_θ(x, σ) ≈ ∇ₓ log p_σ(x): an MLP whose every hidden layer is shifted by a σ-embedding.

    h_{l+1} = SiLU(W_l h_l + U_l e(σ) + b_l); with ``scale_by_sigma`` the output is
    s_θ(x, σ) = net(x, σ)/σ, matching the ∝ 1/σ size of the true perturbed score (NCSNv2's scaling;
    NCSNv2 itself drops the σ-embedding and uses an unconditional net(x)/σ).
    ``sigma`` may be a float, a 0-d tensor, or an (N,) tensor with one level per example.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3, embed_dim: int = 32,
                 scale_by_sigma: bool = True):
        super().__init__()
        _check_sizes(dim, hidden, n_layers)
        self.dim = int(dim)
        self.scale_by_sigma = bool(scale_by_sigma)
        self.embed = SigmaEmbedding(embed_dim)
        widths = [self.dim] + [hidden] * n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.cond = nn.ModuleList(nn.Linear(embed_dim, hidden) for _ in range(n_layers))
        self.out = nn.Linear(hidden, self.dim)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        h = _flatten(x, self.dim)
        sigma = checks.sigma(sigma, x)
        e = self.embed(sigma)
        for layer, cond in zip(self.layers, self.cond, strict=True):
            h = self.act(layer(h) + cond(e))
        out = self.out(h)
        if self.scale_by_sigma:
            out = out / sigma[:, None]
        return out.reshape(x.shape)

    def frozen_score(self) -> Callable[[Tensor, float], Tensor]:
        """score(x, σ) = self(x, σ) for a float σ, with the σ-conditioning precomputed once per σ.

        Every hidden layer adds U_l e(σ); for a fixed σ that is a constant bias, so per σ we fold
        b_l + U_l e(σ) into one vector and run a plain MLP (about 2× faster in a sampler that calls
        the model thousands of times with a handful of σ values). The folded biases are a
        snapshot of the current weights: call again after further training.
        """
        cache: dict[tuple[float, torch.dtype, torch.device], list[Tensor]] = {}

        @torch.no_grad()
        def score(x: Tensor, sigma: float) -> Tensor:
            key = (float(sigma), x.dtype, x.device)
            if key not in cache:
                e = self.embed(torch.full((1,), float(sigma), dtype=x.dtype, device=x.device))
                pairs = zip(self.layers, self.cond, strict=True)
                cache[key] = [layer.bias + cond(e)[0] for layer, cond in pairs]
            h = _flatten(x, self.dim)
            for layer, bias in zip(self.layers, cache[key], strict=True):
                h = self.act(torch.addmm(bias, h, layer.weight.T))
            out = self.out(h)
            if self.scale_by_sigma:
                out = out / float(sigma)
            return out.reshape(x.shape)

        return score


class StackedScoreMLP(nn.Module):
    """K independent score MLPs s_k(x) ≈ ∇log p_{σ_k}(x), evaluated together with batched matmuls.

    ``forward(x)`` takes x of shape (K, N, d) (or (N, d), broadcast to every model) and returns
    (K, N, d). Output k is divided by σ_k (NCSNv2's scaling s(x)/σ). The K parameter sets share
    nothing, so training them on a summed loss is K separate trainings run at once. Weights start
    from nn.Linear's default U(−1/√fan_in, 1/√fan_in), drawn from ``generator``.
    """

    def __init__(self, sigmas: Sequence[float] | Tensor, dim: int = 2, hidden: int = 64, n_layers: int = 2,
                 generator: torch.Generator | None = None):
        super().__init__()
        sigmas = torch.tensor(checks.sigmas(sigmas, decreasing=False), dtype=torch.get_default_dtype())
        _check_sizes(dim, hidden, n_layers)
        self.register_buffer("sigmas", sigmas)
        k, widths = sigmas.numel(), [dim] + [hidden] * n_layers + [dim]
        uniform = lambda *shape, bound: (2 * torch.rand(*shape, generator=generator) - 1) * bound
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            self.weights.append(nn.Parameter(uniform(k, a, b, bound=1 / math.sqrt(a))))
            self.biases.append(nn.Parameter(uniform(k, 1, b, bound=1 / math.sqrt(a))))

    def forward(self, x: Tensor) -> Tensor:
        k = self.sigmas.numel()
        h = x.expand(k, *x.shape) if x.ndim == 2 else x
        if h.ndim != 3 or h.shape[0] != k:
            raise ValueError(f"x must have shape (N, d) or ({k}, N, d), got {tuple(x.shape)}")
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = F.silu(h)
        return h / self.sigmas[:, None, None]


class EnergyMLP(nn.Module):
    """An energy f_θ(x) ∈ R (``forward``, shape (N,)) with score s_θ(x) = −∇ₓ f_θ(x) (``score``).

    ``score`` differentiates through autograd with ``create_graph=True`` whenever gradients are
    enabled, so score-matching losses (which need ∂s/∂θ and, for ISM, ∂s/∂x) can train the energy.
    Under ``torch.no_grad()`` it still works (gradients are switched on locally) and returns a
    detached tensor, so plotting helpers can call it.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3):
        super().__init__()
        _check_sizes(dim, hidden, n_layers)
        self.dim = int(dim)
        self.net = _mlp(self.dim, hidden, 1, n_layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_flatten(x, self.dim)).squeeze(-1)

    def score(self, x: Tensor) -> Tensor:
        """s_θ(x) = −∇ₓ f_θ(x), same shape as x."""
        training = torch.is_grad_enabled()
        with torch.enable_grad():
            x_in = x if x.requires_grad else x.detach().requires_grad_(True)
            energy = self(x_in).sum()
            (grad,) = torch.autograd.grad(energy, x_in, create_graph=training)
        return -grad if training else -grad.detach()
