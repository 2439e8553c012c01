"""Maximum likelihood for an energy-based model with Langevin negative samples (contrastive divergence).

For p_θ(x) = e^{−f_θ(x)}/Z_θ the gradient of the average log-likelihood of data x_1 … x_N is

    ∇_θ (1/N) Σ_i log p_θ(x_i) = −(1/N) Σ_i ∇_θ f_θ(x_i) + E_{x∼p_θ}[∇_θ f_θ(x)],

because ∇_θ log Z_θ = −E_{p_θ}[∇_θ f_θ]. Contrastive divergence (Hinton 2002) replaces the model
expectation by an average over samples x⁻ of K steps of Langevin dynamics on f_θ,

    x ← x − ε ∇_x f_θ(x) + √(2ε) z,   z ∼ N(0, I),

started from noise (short-run chains) or from where the chains stopped at the previous update
(persistent chains, a replay buffer: Tieleman 2008; Du & Mordatch 2019; the UvA deep-learning
tutorial 8). Each update costs K energy gradients in x plus one forward/backward pass on the data and
the negatives — score matching costs one. The surrogate loss :func:`cd_loss` has exactly this
gradient; :func:`grid_log_likelihood` gives the exact log-likelihood of a 2-D model on a grid, to
check it against.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from scoretutor.checks import count, positive
from scoretutor.device import generator_device
from scoretutor.ebm import score_from_energy
from scoretutor.sampling import langevin

Tensor = torch.Tensor
EnergyFn = Callable[[Tensor], Tensor]


def langevin_negatives(energy: EnergyFn, x0: Tensor, step_size: float, n_steps: int,
                       generator: torch.Generator | None = None) -> Tensor:
    """K steps of unadjusted Langevin on p ∝ e^{−f}: x ← x − ε ∇_x f(x) + √(2ε) z, detached — the
    package's :func:`~scoretutor.sampling.langevin` with the score −∇_x f of
    :func:`~scoretutor.ebm.score_from_energy`.

    The parameters of ``energy`` receive no gradient from these steps (the negatives are constants
    in the CD loss). Raises :class:`~scoretutor.sampling.LangevinDivergenceError` (a FloatingPointError)
    if a chain becomes non-finite.
    """
    return langevin(score_from_energy(energy), x0.detach(), step_size, n_steps, generator,
                    progress=False).x.detach()


def cd_loss(energy: EnergyFn, x_data: Tensor, x_model: Tensor, alpha: float = 0.0) -> Tensor:
    """L(θ) = mean_i f_θ(x_i) − mean_j f_θ(x⁻_j) + α (mean_i f_θ(x_i)² + mean_j f_θ(x⁻_j)²).

    With α = 0 and x⁻ ∼ p_θ, ∇_θ L is an unbiased estimate of −∇_θ (1/N) Σ_i log p_θ(x_i), the
    gradient of the negative log-likelihood (the x⁻ are treated as constants). L itself is not a
    likelihood: it is unchanged by f → f + c, so without α the energy's level can drift; the α
    term (Du & Mordatch 2019) keeps the energies near 0.
    """
    f_data, f_model = energy(x_data), energy(x_model.detach())
    loss = f_data.mean() - f_model.mean()
    if alpha:
        loss = loss + alpha * ((f_data**2).mean() + (f_model**2).mean())
    return loss


def _grid(lim: float, n_per_axis: int, dtype: torch.dtype, device=None) -> tuple[Tensor, float]:
    h = 2 * lim / n_per_axis
    axis = -lim + h * (torch.arange(n_per_axis, dtype=dtype, device=device) + 0.5)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1), h


def grid_log_normaliser(energy: EnergyFn, lim: float = 12.0, n_per_axis: int = 200,
                        dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """log Z_θ = log ∫ e^{−f_θ(x)} dx for a 2-D energy, by the midpoint rule on [−lim, lim]²
    (``n_per_axis``² points, in ``dtype``); differentiable in θ."""
    grid, h = _grid(lim, n_per_axis, dtype, device)
    return torch.logsumexp(-energy(grid), 0) + 2 * math.log(h)


def grid_log_likelihood(energy: EnergyFn, x: Tensor, lim: float = 12.0, n_per_axis: int = 200) -> Tensor:
    """(1/N) Σ_i log p_θ(x_i) = −mean_i f_θ(x_i) − log Z_θ for a 2-D energy, Z_θ by
    :func:`grid_log_normaliser`. Differentiable in θ: the exact gradient that CD estimates."""
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2), got {tuple(x.shape)}")
    return -energy(x).mean() - grid_log_normaliser(energy, lim, n_per_axis, x.dtype, x.device)


class ContrastiveDivergence(nn.Module):
    """An energy network trained by contrastive divergence; ``loss(x, generator)`` is one update's loss.

    Every call picks ``batch`` chains, restarts a fraction ``restart`` of them (all of them for
    short-run CD, ``persistent=False``) from uniform noise on [−box, box]ᵈ, runs
    :func:`langevin_negatives` for ``n_steps`` steps, stores the chains back (the replay buffer) and
    returns :func:`cd_loss`. The chains are a registered buffer, so ``fit(checkpoint_path=...)``
    saves and restores them with the weights. ``forward`` is the energy f_θ(x).
    """

    def __init__(self, energy: nn.Module, dim: int = 2, n_chains: int = 4096, box: float = 10.0,
                 step_size: float = 0.05, n_steps: int = 20, persistent: bool = True,
                 restart: float = 0.05, alpha: float = 0.1, seed: int = 0):
        super().__init__()
        self.energy, self.dim, self.box = energy, count(dim, "dim", 1), positive(box, "box")
        self.step_size, self.n_steps = positive(step_size, "step_size"), count(n_steps, "n_steps", 0)
        self.persistent, self.alpha = persistent, float(alpha)
        if not 0 <= restart <= 1:
            raise ValueError(f"restart must lie in [0, 1], got {restart}")
        self.restart = float(restart) if persistent else 1.0
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("chains", self._noise(count(n_chains, "n_chains", 1), g, torch.float32, "cpu"))

    def _noise(self, n: int, generator: torch.Generator | None, dtype, device) -> Tensor:
        where = generator_device(generator, device)
        u = torch.rand(n, self.dim, generator=generator, dtype=dtype, device=where)
        return ((2 * u - 1) * self.box).to(device)

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x)

    def negatives(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(indices, x⁻): ``n`` chains advanced by K Langevin steps (restarted ones from noise)."""
        idx = torch.randint(0, self.chains.shape[0], (n,), generator=generator,
                            device=generator_device(generator, self.chains.device)).to(self.chains.device)
        x0 = self.chains[idx]
        u = torch.rand(n, generator=generator, device=generator_device(generator, x0.device))
        fresh = (u < self.restart).to(x0.device)
        x0 = torch.where(fresh[:, None], self._noise(n, generator, x0.dtype, x0.device), x0)
        return idx, langevin_negatives(self.energy, x0, self.step_size, self.n_steps, generator)

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """:func:`cd_loss` on the data batch x and as many negatives; updates the replay buffer."""
        idx, x_model = self.negatives(x.shape[0], generator)
        self.chains[idx] = x_model.to(self.chains.dtype)
        return cd_loss(self.energy, x, x_model.to(x.dtype), self.alpha)



def fit_tracked(model: nn.Module, loss_fn: Callable, data, n_steps: int, every: int,
                probe: Callable[[], dict[str, float]], **fit_kwargs) -> dict:
    """:func:`~scoretutor.training.fit` from scratch, calling ``probe()`` every ``every`` updates (and before
    the first): {"steps": [0, every, …], "state": the final state_dict, key: [probe values] …}.

    The result is plain tensors and lists, so :func:`~scoretutor.training.cached` can store it; the
    checkpoints that drive ``on_checkpoint`` go to a temporary folder and are deleted.
    """
    import tempfile
    from pathlib import Path

    from scoretutor.training import fit

    trace: dict[str, list] = {"steps": []}

    def record(step: int) -> None:
        if trace["steps"] and trace["steps"][-1] == step:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            values = probe()
        model.train(was_training)
        trace["steps"].append(step)
        for key, value in values.items():
            trace.setdefault(key, []).append(float(value))

    record(0)
    with tempfile.TemporaryDirectory() as folder:
        fit(model, loss_fn, data, n_steps, checkpoint_path=Path(folder) / "run.pt", checkpoint_every=every,
            on_checkpoint=record, **fit_kwargs)
    return {**trace, "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def grid_mode_weights(energy: EnergyFn, means: Tensor, lim: float = 12.0, n_per_axis: int = 200) -> Tensor:
    """The mass p_θ = e^{−f_θ}/Z_θ puts nearest to each of the (K, 2) ``means`` (midpoint rule on
    [−lim, lim]², in the dtype of ``means``)."""
    grid, _ = _grid(lim, n_per_axis, means.dtype, means.device)
    with torch.no_grad():
        probs = torch.softmax(-energy(grid).to(means.dtype), 0)
    nearest = torch.cdist(grid, means).argmin(1)
    return torch.zeros(len(means), dtype=means.dtype, device=means.device).index_add_(0, nearest, probs)
