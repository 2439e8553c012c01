"""Flow matching on the linear (rectified-flow, conditional-OT) path: the probability-flow ODE, learned.

Convention (the SDEs' direction: data at t = 0, noise at t = 1):

    x_t = (1 − t) x₀ + t z,    x₀ ~ p_data,  z ~ N(0, I),  t ∈ [0, 1],

so each pair (x₀, z) moves on a straight line with the constant velocity u = z − x₀. Flow matching
(Lipman et al. 2023; Liu et al. 2023; Albergo & Vanden-Eijnden 2023) regresses a field on it,

    L(θ) = E_{t, x₀, z} ½ ‖v_θ(x_t, t) − (z − x₀)‖²,     minimiser v*(x, t) = E[z − x₀ | x_t = x],

the **marginal velocity**, whose ODE dx/dt = v*(x, t) carries p_t to p_s for every t, s (it satisfies
the continuity equation ∂_t p_t + ∇·(p_t v*) = 0). Sample by solving it from t = 1 (z ~ N(0, I)) to 0.

The path is Gaussian with α_t = 1 − t and σ_t = t, i.e. the SDE :class:`LinearPath` with
f = (α'/α) x = −x/(1 − t) and g² = dσ²/dt − 2(α'/α)σ² = 2t/(1 − t). Its probability-flow ODE is
dx/dt = f − ½ g² ∇log p_t, hence

    v*(x, t) = a(t) x + b(t) ∇ log p_t(x),     a(t) = −1/(1 − t),  b(t) = −t/(1 − t),

and conversely ∇ log p_t = −(x + (1 − t) v*)/t and E[x₀ | x_t] = x − t v*. A velocity model *is* a
score model of this path, and a score model's probability-flow ODE *is* a flow: only the training
target differs. For Gaussian-mixture data v* is known in closed form (:func:`mixture_velocity_fn`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from scoretutor.config import fast_mode
from scoretutor.densities import GaussianMixture
from scoretutor.device import generator_device
from scoretutor.diffusion.sde import SDE, check_time
from scoretutor.training import cache_path, fit

Tensor = torch.Tensor
VelocityFn = Callable[[Tensor, Tensor], Tensor]

__all__ = [
    "LinearPath", "flow_matching_loss", "mixture_velocity_fn", "velocity_from_score", "score_from_velocity",
    "velocity_coefficients", "denoiser_from_velocity", "VelocityMLP", "train_velocity_model", "VelocityODE",
    "straightness",
]

_VERSION = 1  # bump when the loss or the model changes, so old checkpoints are not reused


class LinearPath(SDE):
    """x_t = (1 − t) x₀ + t z as a forward SDE: f = −x/(1 − t), g² = 2t/(1 − t), prior N(0, I).

    Valid for t < 1 (f blows up at t = 1, where x₁ = z exactly); :func:`marginal_mixture` and
    :func:`mixture_score_fn` of :mod:`scoretutor.diffusion.sde` work with it on all of [0, 1].
    """

    t_min = 0.0

    def __repr__(self) -> str:
        return "LinearPath()"

    def drift_coef(self, t: Tensor) -> Tensor:
        return -1.0 / (1.0 - t)

    def diffusion(self, t: Tensor) -> Tensor:
        return (2 * t / (1.0 - t)).sqrt()

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        t = check_time(t, device=t.device if isinstance(t, Tensor) else None)
        return 1.0 - t, t.clone()

    def prior_std(self) -> float:
        return 1.0


def flow_matching_loss(model: Callable[[Tensor, Tensor], Tensor], x0: Tensor,
                       generator: torch.Generator | None = None) -> Tensor:
    """Conditional flow matching: E_{t ~ U[0,1], z} ½ ‖v_θ((1 − t) x₀ + t z, t) − (z − x₀)‖² (batch mean)."""
    dev = generator_device(generator, x0.device)
    t = torch.rand(x0.shape[0], generator=generator, dtype=x0.dtype, device=dev).to(x0.device)
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=dev).to(x0.device)
    xt = (1 - t[:, None]) * x0 + t[:, None] * z
    return 0.5 * (model(xt, t) - (z - x0)).pow(2).sum(-1).mean()


def mixture_velocity_fn(mixture: GaussianMixture) -> VelocityFn:
    """The exact marginal velocity v*(x, t) = E[z − x₀ | x_t = x] of Gaussian-mixture data, t ∈ [0, 1].

    Given component k (x₀ ~ N(μ_k, Σ_k)), x_t ~ N(m_k, C_k), m_k = (1 − t)μ_k, C_k = (1 − t)² Σ_k + t² I,
    and (x₀, z, x_t) are jointly Gaussian, so
        E[z | x_t, k] = t C_k⁻¹ (x − m_k),   E[x₀ | x_t, k] = μ_k + (1 − t) Σ_k C_k⁻¹ (x − m_k);
    v* = Σ_k r_k(x) (E[z | x_t, k] − E[x₀ | x_t, k]) with r_k ∝ w_k N(x; m_k, C_k).
    """
    means, covs = mixture.means.double().cpu(), mixture.covs.double().cpu()
    log_w = mixture.weights.double().cpu().log()
    eye = torch.eye(mixture.dim, dtype=torch.float64)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        tt = check_time(t, x.shape[0], torch.float64, "cpu")[:, None, None, None]     # (N, 1, 1, 1)
        xd = x.double().cpu()
        c = (1 - tt) ** 2 * covs + tt**2 * eye                        # (N, K, d, d)
        prec = torch.linalg.inv(c)
        diff = xd[:, None, :] - (1 - tt[..., 0]) * means                # (N, K, d): x − m_k
        pd = (prec @ diff[..., None])[..., 0]                           # C_k⁻¹ (x − m_k)
        log_r = log_w - 0.5 * torch.logdet(c) - 0.5 * (diff * pd).sum(-1)
        r = (log_r - torch.logsumexp(log_r, -1, keepdim=True)).exp()
        e_z = tt[..., 0] * pd
        e_x0 = means + (1 - tt[..., 0]) * (covs @ pd[..., None])[..., 0]
        return (r[..., None] * (e_z - e_x0)).sum(1).to(x.device, x.dtype)

    return velocity


def velocity_coefficients(t) -> tuple[Tensor, Tensor]:
    """(a(t), b(t)) = (−1/(1 − t), −t/(1 − t)) of v = a x + b ∇log p_t on the linear path (t < 1)."""
    t = check_time(t)
    if (t >= 1).any():
        raise ValueError("a(t) and b(t) are infinite at t = 1 (there v* = x − E[x₀]); take t < 1")
    return -1 / (1 - t), -t / (1 - t)


def velocity_from_score(score_fn: Callable[[Tensor, Tensor], Tensor]) -> VelocityFn:
    """v(x, t) = a(t) x + b(t) s(x, t): the linear path's probability-flow ODE from its score (t < 1)."""
    def velocity(x: Tensor, t: Tensor) -> Tensor:
        a, b = (c.to(x.dtype).reshape(-1, 1) for c in velocity_coefficients(t))
        return a * x + b * score_fn(x, t)
    return velocity


def score_from_velocity(velocity_fn: VelocityFn) -> Callable[[Tensor, Tensor], Tensor]:
    """s(x, t) = −(x + (1 − t) v(x, t))/t: the score a velocity field implies (t > 0)."""
    def score(x: Tensor, t: Tensor) -> Tensor:
        tt = check_time(t, x.shape[0], x.dtype, x.device).reshape(-1, 1)
        return -(x + (1 - tt) * velocity_fn(x, t)) / tt
    return score


def denoiser_from_velocity(velocity_fn: VelocityFn) -> Callable[[Tensor, Tensor], Tensor]:
    """D(x, t) = x − t v(x, t) = E[x₀ | x_t = x] (as x_t − t (z − x₀) = x₀ on every line); fine at t = 1."""
    def denoise(x: Tensor, t: Tensor) -> Tensor:
        return x - check_time(t, x.shape[0], x.dtype, x.device).reshape(-1, 1) * velocity_fn(x, t)
    return denoise


class VelocityMLP(nn.Module):
    """v_θ(x, t): an MLP on [x, φ(t)], φ(t) = (cos(π k t), sin(π k t))_{k=0…K−1} (K = ``n_freq``)."""

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3, n_freq: int = 8):
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("freqs", math.pi * torch.arange(n_freq, dtype=torch.float32))
        widths = [self.dim + 2 * n_freq] + [hidden] * n_layers
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, self.dim))

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        angles = t[:, None] * self.freqs.to(x.dtype)
        return self.net(torch.cat([x, angles.cos(), angles.sin()], dim=-1))


def train_velocity_model(data: Callable[[int, torch.Generator], Tensor], data_name: str, n_steps: int = 4000,
                         hidden: int = 128, n_layers: int = 3, batch_size: int = 512, lr: float = 2e-3,
                         seed: int = 0, device=None, cache: bool | None = None,
                         progress: bool | None = None) -> tuple[VelocityMLP, list[float]]:
    """A flow-matching velocity MLP trained with :func:`~scoretutor.training.fit` on ``flow_matching_loss``.

    As :func:`scoretutor.diffusion.toy_models.train_ve_model`: ``data`` is a sampler ``(n, generator)``,
    the run is cached under ``training.cache_path`` (in full mode by default) and returned in eval mode.
    """
    dim = data(2, torch.Generator().manual_seed(0)).shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VelocityMLP(dim=dim, hidden=hidden, n_layers=n_layers)
    use_cache = (not fast_mode()) if cache is None else bool(cache)
    settings = dict(data=data_name, n_steps=n_steps, hidden=hidden, n_layers=n_layers, batch_size=batch_size,
                    lr=lr, seed=seed, dim=dim)
    path = cache_path(f"fm-{data_name}", version=_VERSION, **settings) if use_cache else None
    history = fit(model, flow_matching_loss, data, n_steps=n_steps, batch_size=batch_size, lr=lr, seed=seed,
                  device=device, progress=progress, checkpoint_path=path, desc=f"flow matching ({data_name})")
    return model, history


class VelocityODE:
    """The flow dx/dt = v(x, t) on t ∈ [0, 1] with prior N(0, I), in the shape ``likelihood.log_likelihood``
    expects of an SDE: pass the velocity where it takes the score, ``log_likelihood(v, VelocityODE(), x)``,
    and it integrates log p₀(x₀) = log N(x₁; 0, I) + ∫₀¹ ∇·v(x_t, t) dt — the same divergence integral."""

    t_min = 0.0

    def __repr__(self) -> str:
        return "VelocityODE()"

    def ode_drift(self, x: Tensor, t, v: Tensor) -> Tensor:
        return v

    def prior_log_prob(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        return -0.5 * flat.pow(2).sum(-1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


def straightness(trajectory: Tensor) -> Tensor:
    """‖x_end − x_start‖ / Σ_k ‖x_{k+1} − x_k‖ per path: 1 for a straight path, less the more it bends.

    ``trajectory``: (K + 1, N, d) iterates of N paths. Invariant to how time is parametrised, so it compares
    paths of different ODEs (VP and flow matching) on equal terms.
    """
    if trajectory.ndim != 3 or trajectory.shape[0] < 2:
        raise ValueError(f"trajectory must be (K + 1, N, d) with K >= 1, got {tuple(trajectory.shape)}")
    length = (trajectory[1:] - trajectory[:-1]).norm(dim=-1).sum(0)
    return (trajectory[-1] - trajectory[0]).norm(dim=-1) / length.clamp_min(1e-300)
