"""Toy score models in continuous time, trained once and cached: a VE score model and a VP ε-model.

Both are the package's :class:`~scoretutor.models.NoiseConditionalScoreMLP`, trained by
:func:`~scoretutor.training.fit` on the continuous-time losses of :mod:`scoretutor.diffusion.sde` (which are
``losses.ncsn_loss`` with one noise level per example):

- ``train_ve_model``: s_θ(x, σ) with σ = σ(t), t ~ U[0, 1] (``sde.ve_loss``); use it on the VE SDE
  through ``sde.sigma_model_score_fn(model, sde)``.
- ``train_vp_eps_model``: ε_θ(x, σ_t) (``scale_by_sigma=False``) with DDPM's ε-prediction loss
  (``sde.vp_eps_loss``); its score is ``sde.eps_model_score_fn(model, sde)`` = −ε_θ/σ_t.

Training is checkpointed to ``training.cache_path(name, **settings)`` (``fit``'s
``checkpoint_path``): a second call with the same settings loads the finished run instantly, an
interrupted one resumes. By default the cache is used in full mode only (fast-mode runs are short,
and CI should not depend on leftovers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoretutor.config import fast_mode
from scoretutor.diffusion.sde import VESDE, VPSDE, ve_loss, vp_eps_loss
from scoretutor.models import NoiseConditionalScoreMLP
from scoretutor.training import cache_path, fit

Tensor = torch.Tensor
_VERSION = 1  # bump when the losses or models change, so old checkpoints are not reused

__all__ = ["train_ve_model", "train_vp_eps_model"]


def _train(kind: str, model: NoiseConditionalScoreMLP, loss, data: Callable[[int, torch.Generator], Tensor],
           data_name: str, settings: dict, n_steps: int, batch_size: int, lr: float, seed: int, device,
           cache: bool | None, progress: bool | None) -> tuple[NoiseConditionalScoreMLP, list[float]]:
    use_cache = (not fast_mode()) if cache is None else bool(cache)
    all_settings = dict(settings, data=data_name, n_steps=n_steps, batch_size=batch_size, lr=lr, seed=seed)
    path = cache_path(f"{kind}-{data_name}", version=_VERSION, **all_settings) if use_cache else None
    history = fit(model, loss, data, n_steps=n_steps, batch_size=batch_size, lr=lr, seed=seed,
                  device=device, progress=progress, checkpoint_path=path, desc=f"{kind} ({data_name})")
    return model, history


def train_ve_model(data: Callable[[int, torch.Generator], Tensor], data_name: str, sde: VESDE,
                   n_steps: int = 4000, hidden: int = 128, n_layers: int = 3, batch_size: int = 512,
                   lr: float = 2e-3, seed: int = 0, device=None, cache: bool | None = None,
                   progress: bool | None = None) -> tuple[NoiseConditionalScoreMLP, list[float]]:
    """A 2-D noise-conditional score model s_θ(x, σ) trained with σ continuous in [σ_min, σ_max].

    ``data``: a sampler ``(n, generator) -> (n, d)``, e.g. ``mixture.sample``; ``data_name`` names it
    in the cache key. Returns the model (in eval mode) and its loss history.
    """
    if not isinstance(sde, VESDE):
        raise ValueError(f"train_ve_model needs a VESDE, got {sde!r}")
    dim = data(2, torch.Generator().manual_seed(0)).shape[1]
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the global RNG is restored after
        torch.manual_seed(seed)
        model = NoiseConditionalScoreMLP(dim=dim, hidden=hidden, n_layers=n_layers, scale_by_sigma=True)
    settings = dict(sde=repr(sde), hidden=hidden, n_layers=n_layers, dim=dim)
    return _train("ve", model, lambda m, x, g: ve_loss(m, x, sde, generator=g), data, data_name, settings,
                  n_steps, batch_size, lr, seed, device, cache, progress)


def train_vp_eps_model(data: Callable[[int, torch.Generator], Tensor], data_name: str, sde: VPSDE,
                       n_steps: int = 4000, hidden: int = 128, n_layers: int = 3, batch_size: int = 512,
                       lr: float = 2e-3, seed: int = 0, device=None, cache: bool | None = None,
                       progress: bool | None = None) -> tuple[NoiseConditionalScoreMLP, list[float]]:
    """A 2-D ε-prediction model ε_θ(x, σ_t) on the VP SDE (DDPM's objective, in continuous time)."""
    if not isinstance(sde, VPSDE):
        raise ValueError(f"train_vp_eps_model needs a VPSDE, got {sde!r}")
    dim = data(2, torch.Generator().manual_seed(0)).shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NoiseConditionalScoreMLP(dim=dim, hidden=hidden, n_layers=n_layers, scale_by_sigma=False)
    settings = dict(sde=repr(sde), hidden=hidden, n_layers=n_layers, dim=dim)
    return _train("vp-eps", model, lambda m, x, g: vp_eps_loss(m, x, sde, generator=g), data, data_name,
                  settings, n_steps, batch_size, lr, seed, device, cache, progress)


