"""Cached continuous-time toy models (scoretutor.diffusion.toy_models)."""

from __future__ import annotations

import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.diffusion.sde import VESDE, VPSDE
from scoretutor.diffusion.toy_models import train_ve_model, train_vp_eps_model
from scoretutor.training import fingerprint


def test_training_is_cached_by_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORETUTOR_CACHE", str(tmp_path))
    mix, sde = ncsn_mixture(), VESDE(0.01, 20.0)
    model, hist = train_ve_model(mix.sample, "ncsn", sde, n_steps=5, hidden=16, batch_size=32, device="cpu",
                                 cache=True)
    files = list(tmp_path.glob("ve-ncsn-*.pt"))
    assert len(files) == 1 and len(hist) == 5
    again, hist2 = train_ve_model(mix.sample, "ncsn", sde, n_steps=5, hidden=16, batch_size=32, device="cpu",
                                  cache=True)
    assert hist2 == hist  # loaded, not retrained (same losses, same weights)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    _, h = train_vp_eps_model(mix.sample, "ncsn", VPSDE(), n_steps=3, hidden=16, batch_size=32, device="cpu",
                              cache=False)
    assert len(h) == 3 and len(list(tmp_path.glob("*.pt"))) == 1
    with pytest.raises(ValueError, match="VESDE"):
        train_ve_model(mix.sample, "ncsn", VPSDE(), n_steps=1)


def test_fingerprint_names_the_weights():
    mix, sde = ncsn_mixture(), VESDE(0.01, 20.0)
    settings = dict(n_steps=2, hidden=8, batch_size=16, device="cpu", cache=False)
    a, _ = train_ve_model(mix.sample, "ncsn", sde, **settings)
    b, _ = train_ve_model(mix.sample, "ncsn", sde, **settings)
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 16  # seeded: the same weights
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-6
    assert fingerprint(a) != fingerprint(b)
