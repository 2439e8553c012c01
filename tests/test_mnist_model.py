"""The MNIST score model: the network's call, checkpoints, training with EMA and exact resume, sampling,
inpainting and the command line. Tiny networks and few steps keep every test fast."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from scoretutor import mnist
from scoretutor.cli import main
from scoretutor.losses import continuous_ncsn_loss, log_uniform_sigmas, ncsn_loss
from scoretutor.mnist import training as mnist_training
from scoretutor.mnist.checkpoints import load_checkpoint, read_card, save_checkpoint
from scoretutor.mnist.unet import ScoreUNet
from scoretutor.schedules import ncsnv2_gamma, ncsnv2_step_size, num_levels
from scoretutor.training import fit

TINY = {"channels": (4, 8, 8), "blocks": (0, 1, 1), "embed_dim": 8, "groups": 2}


def tiny(seed: int = 0, **kw) -> ScoreUNet:
    torch.manual_seed(seed)
    model = ScoreUNet(**{**TINY, **kw})
    for p in model.parameters():  # the zero-initialised output layers would make every output 0
        p.data.add_(0.05 * torch.randn_like(p))
    return model


def digits(n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)).round()


# -- the network ---------------------------------------------------------------------------------
def test_shape_and_every_form_of_sigma():
    model, x = tiny(), digits(5)
    out = model(x, 0.3)
    assert out.shape == x.shape
    torch.testing.assert_close(model(x, torch.tensor(0.3)), out)
    torch.testing.assert_close(model(x, torch.full((5,), 0.3)), out)
    per_example = model(x, torch.tensor([0.1, 0.3, 1.0, 3.0, 10.0]))
    torch.testing.assert_close(per_example[1], out[1])  # examples do not interact (GroupNorm is per example)
    for bad in (torch.ones(4), -1.0, 0.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            model(x, bad)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.zeros(2, 1, 27, 27), 1.0)


def test_output_is_the_last_layer_divided_by_sigma():
    # s_θ(x, σ) = F(x, σ)/σ: capture F from the output convolution with a hook and compare.
    model, x = tiny(), digits(3)
    sigma = torch.tensor([0.05, 1.0, 12.0])
    captured = {}
    model.out.register_forward_hook(lambda mod, inp, out: captured.update(F=out))
    s = model(x, sigma)
    torch.testing.assert_close(s, captured["F"] / sigma[:, None, None, None])


def test_c_skip_output_is_the_gaussian_score_plus_the_damped_last_layer():
    # s_θ = −x/(σ² + σ_d²) + σ_d/√(σ² + σ_d²) · F/σ, with F captured from the output convolution.
    model, x = tiny(c_skip=True), digits(3)
    sigma, sd = torch.tensor([0.05, 1.0, 12.0]), model.sigma_data
    captured = {}
    model.out.register_forward_hook(lambda mod, inp, out: captured.update(F=out))
    s = model(x, sigma)
    var = (sigma**2 + sd**2)[:, None, None, None]
    expected = -x / var + sd / var.sqrt() * captured["F"] / sigma[:, None, None, None]
    torch.testing.assert_close(s, expected)
    assert not torch.allclose(s, captured["F"] / sigma[:, None, None, None])  # the plain form differs


def test_untrained_c_skip_model_is_the_score_of_the_perturbed_gaussian():
    # Zero-initialised output layer: s_θ(x, σ) is the exact score of N(0, σ_d²) ∗ N(0, σ²) = N(0, σ_d² + σ²).
    from scoretutor.densities import gaussian_score

    model, x = mnist.make_model(), digits(4) * 3 - 1
    assert model.config["c_skip"]
    for sigma in (0.01, 0.7, 15.0):
        torch.testing.assert_close(model(x, sigma), gaussian_score(0.0, model.sigma_data**2 + sigma**2)(x))


def test_unit_output_weighting_fits_the_last_layer_with_weight_one():
    # λ(σ) · ½‖s − s*‖² with λ = σ²(σ² + σ_d²)/σ_d² equals ½‖F − F*‖², where s* = −z/σ and
    # F* = √(σ² + σ_d²)/σ_d · (σ x̃/(σ² + σ_d²) − z) solves s_θ = s* for F.
    from scoretutor.losses import unit_output_weighting

    model, x = tiny(c_skip=True), digits(4)
    sigmas, sd = torch.tensor([0.02, 0.5, 3.0, 14.0]), model.sigma_data
    captured = {}
    model.out.register_forward_hook(lambda mod, inp, out: captured.update(F=out))
    loss = ncsn_loss(model, x, sigmas, weighting=unit_output_weighting(sd), levels=torch.arange(4),
                     generator=torch.Generator().manual_seed(5))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    sig = sigmas[:, None, None, None]
    var = sig**2 + sd**2
    target = var.sqrt() / sd * (sig * (x + sig * z) / var - z)
    torch.testing.assert_close(loss, (0.5 * ((captured["F"] - target) ** 2).sum((1, 2, 3))).mean())
    with pytest.raises(ValueError, match="sigma_data"):
        unit_output_weighting(0.0)


def test_default_model_is_the_shipped_architecture_with_a_zero_last_layer():
    model = mnist.make_model()
    assert model.config["channels"] == list(mnist.MODEL_CONFIG["channels"])
    assert torch.count_nonzero(model.out.weight) == 0 and torch.count_nonzero(model.out.bias) == 0
    plain = mnist.make_model(c_skip=False)
    assert torch.count_nonzero(plain(digits(2), 1.0)) == 0  # without c_skip it starts at s = 0


# -- the continuous-σ loss -----------------------------------------------------------------------
def test_log_uniform_sigmas_have_uniform_logs():
    # log σ ~ U[a, b]: mean (a+b)/2, sd (b−a)/√12; with n = 20,000 the mean's standard error is
    # (b−a)/√(12n) ≈ 0.016 for b − a = 7.6; allow 4 standard errors.
    s = log_uniform_sigmas(20_000, 0.01, 20.0, torch.Generator().manual_seed(0))
    a, b = math.log(0.01), math.log(20.0)
    assert s.min() >= 0.01 and s.max() <= 20.0
    assert abs(s.log().mean().item() - (a + b) / 2) < 4 * (b - a) / math.sqrt(12 * 20_000)
    assert abs(s.log().std().item() - (b - a) / math.sqrt(12)) < 0.05


def test_continuous_loss_is_the_sigma2_weighted_dsm_at_the_drawn_sigmas():
    model, x = tiny(), digits(6)
    loss = continuous_ncsn_loss(model, x, 0.01, 15.0, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # replay the same draws: σ first, then z
    sig = log_uniform_sigmas(6, 0.01, 15.0, g)
    z = torch.randn(x.shape, generator=g)
    x_noisy = x + sig[:, None, None, None] * z
    per_example = 0.5 * ((model(x_noisy, sig) + z / sig[:, None, None, None]) ** 2).sum((1, 2, 3))
    direct = (sig**2 * per_example).mean()
    torch.testing.assert_close(loss, direct)
    same = ncsn_loss(model, x, sig, levels=torch.arange(6), generator=torch.Generator().manual_seed(99))
    assert same.shape == ()


# -- checkpoints -----------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    model, x = tiny(), digits(3)
    save_checkpoint(tmp_path, model, sigma_min=0.01, sigma_max=15.0, steps=7)
    loaded, card = load_checkpoint(tmp_path, device="cpu")
    assert card["steps"] == 7 and card["model"]["config"]["channels"] == [4, 8, 8]
    torch.testing.assert_close(loaded(x, 0.5), model(x, 0.5), rtol=0, atol=0)
    into, _ = load_checkpoint(tmp_path, model=tiny(seed=5), device="cpu")  # same config, other weights
    torch.testing.assert_close(into(x, 0.5), model(x, 0.5), rtol=0, atol=0)


def test_checkpoint_mismatches_are_named(tmp_path):
    save_checkpoint(tmp_path, tiny(), sigma_min=0.01, sigma_max=15.0)
    with pytest.raises(ValueError, match=r"channels: model \[4, 8, 16\], checkpoint \[4, 8, 8\]"):
        load_checkpoint(tmp_path, model=ScoreUNet(**{**TINY, "channels": (4, 8, 16)}))
    card = json.loads((tmp_path / "model.json").read_text())
    card["model"]["config"]["blocks"] = [0, 1, 2]  # a card that does not describe the weights
    (tmp_path / "model.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="was saved for"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_card(tmp_path)


# -- training ------------------------------------------------------------------------------------
def test_fit_ema_follows_its_recursion(tmp_path):
    # θ̄_1 = θ_1 (AveragedModel copies at its first update), then θ̄_k = β θ̄_(k−1) + (1 − β) θ_k.
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    model, beta = tiny(), 0.7
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(beta), use_buffers=True)
    thetas = []
    loss = lambda m, x, g: continuous_ncsn_loss(m, x, 0.01, 15.0, generator=g)
    fit(model, loss, digits(16), 4, batch_size=4, device="cpu", ema=ema, checkpoint_path=tmp_path / "s.pt",
        checkpoint_every=1, on_checkpoint=lambda k: thetas.append(model.out.weight.detach().clone()))
    expected = thetas[0]
    for theta in thetas[1:4]:
        expected = beta * expected + (1 - beta) * theta
    assert ema.n_averaged.item() == 4
    torch.testing.assert_close(ema.module.out.weight, expected)
    assert not torch.equal(ema.module.out.weight, model.out.weight)


def test_train_picks_the_weighting_of_the_parametrisation(tmp_path, monkeypatch):
    seen = []

    def spy(net, x, sigma_min, sigma_max, weighting="sigma2", generator=None):
        seen.append(weighting)
        return continuous_ncsn_loss(net, x, sigma_min, sigma_max, weighting=weighting, generator=generator)

    monkeypatch.setattr(mnist_training, "continuous_ncsn_loss", spy)
    kw = dict(batch_size=4, sigma_max=15.0, progress=False, device="cpu")
    _, card = mnist.train(tmp_path / "plain", 1, digits(8), model=tiny(), **kw)
    assert seen == ["sigma2"] and card["loss"].endswith("lambda(sigma) = sigma^2")
    _, card = mnist.train(tmp_path / "skip", 1, digits(8), model=tiny(c_skip=True), **kw)
    sigma = torch.tensor([0.1, 10.0])
    torch.testing.assert_close(seen[1](sigma), sigma**2 * (sigma**2 + 0.25) / 0.25)
    assert "sigma_data^2" in card["loss"]


def test_train_resumes_exactly_with_ema(tmp_path):
    images = digits(40)
    kw = dict(batch_size=8, sigma_max=15.0, checkpoint_every=2, progress=False, device="cpu")
    full, _ = mnist.train(tmp_path / "a", 6, images, model=tiny(), **kw)
    mnist.train(tmp_path / "b", 6, images, model=tiny(), time_limit_s=0.0, **kw)  # stops before step 1
    assert read_card(tmp_path / "b")["steps"] == 0
    mnist.train(tmp_path / "b", 3, images, model=tiny(), resume=True, **kw)
    resumed, card = mnist.train(tmp_path / "b", 6, images, model=tiny(seed=9), resume=True, **kw)
    assert card["steps"] == 6 and card["ema_decay"] == mnist.EMA_DECAY and card["data"]["count"] == 40
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    history = lambda d: torch.load(d / mnist.TRAIN_STATE, weights_only=True)["history"]
    assert history(tmp_path / "a") == history(tmp_path / "b")
    with pytest.raises(ValueError, match="already holds a training run"):
        mnist.train(tmp_path / "a", 6, images, model=tiny(), **kw)
    with pytest.raises(ValueError, match="batch_size"):
        mnist.train(tmp_path / "a", 8, images, model=tiny(), resume=True, **{**kw, "batch_size": 4})
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        mnist.train(tmp_path / "c", 6, images, model=tiny(), resume=True, **kw)


def test_train_cosine_schedule_is_on_the_card_and_checked_on_resume(tmp_path):
    images = digits(16)
    kw = dict(batch_size=4, sigma_max=15.0, progress=False, device="cpu")
    _, card = mnist.train(tmp_path / "a", 2, images, model=tiny(), lr_schedule="cosine", **kw)
    assert (card["lr_schedule"], card["lr_decay_steps"], card["lr_final"]) == ("cosine", 2, 0.1)
    assert card["compiled"] is False
    with pytest.raises(ValueError, match="learning-rate schedule"):
        mnist.train(tmp_path / "a", 4, images, model=tiny(), resume=True, **kw)  # now constant
    with pytest.raises(ValueError, match="fixed by the --steps"):
        mnist.train(tmp_path / "a", 4, images, model=tiny(), resume=True, lr_schedule="cosine", **kw)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        mnist.train(tmp_path / "b", 2, images, model=tiny(), lr_schedule="linear", **kw)
    _, card = mnist.train(tmp_path / "c", 2, images, model=tiny(), **kw)
    assert card["lr_schedule"] == "constant" and "lr_decay_steps" not in card


# -- sampling and inpainting -----------------------------------------------------------------------
def test_sampler_settings_follow_the_ncsnv2_rules():
    s = mnist.sampler_settings(15.0, 0.01, n_steps_each=3)
    assert s.n_levels == num_levels(15.0, 0.01, ncsnv2_gamma(784))
    gamma = (15.0 / 0.01) ** (1 / (s.n_levels - 1))
    assert math.isclose(s.step_size, mnist.STEP_SIZE_FACTOR * ncsnv2_step_size(3, gamma, 0.01))
    assert s.n_score_evals == 3 * s.n_levels + 1
    sig = s.sigmas
    assert sig[0].item() == 15.0 and sig[-1].item() == 0.01 and len(sig) == s.n_levels


def test_sample_shape_range_and_reproducibility():
    model, settings = tiny(), mnist.sampler_settings(15.0, 0.01, n_levels=4, n_steps_each=2)
    x, traj = mnist.sample(model, 3, settings, seed=1, return_trajectory=True)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert traj.shape == (settings.n_levels + 2, 3, 1, 28, 28)
    torch.testing.assert_close(mnist.sample(model, 3, settings, seed=1), x, rtol=0, atol=0)


class GaussianPixels(torch.nn.Module):
    """The exact perturbed score of data with iid N(μ, s0²) pixels: −(x − μ)/(s0² + σ²)."""

    def __init__(self, mu: float, s0: float):
        super().__init__()
        self.mu, self.s0 = mu, s0
        self.unused = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *[1] * (x.ndim - 1))
        return -(x - self.mu) / (self.s0**2 + sigma**2)


@pytest.mark.parametrize("snr", [0.16, mnist.PC_SNR])
def test_pc_sampler_reaches_the_data_distribution_with_the_corrector_bias(snr):
    # Exact scores of iid N(0.5, 0.1²) pixels. The corrector's step ε = 2 (r √D/‖s‖)² ≈ 2 r² v at
    # variance v, so its Langevin chain (ULA) keeps the variance v / (1 − ε/2v) = v / (1 − r²):
    # the samples' sd should be 0.1 / √(1 − r²) (0.1013 at r = 0.16, 0.1048 at r = 0.3), the mean 0.5.
    card, n = {"sigma_max": 15.0, "sigma_min": 0.01}, 50
    x = mnist.sample_pc(GaussianPixels(0.5, 0.1), n, card, seed=0, snr=snr, clamp=False, progress=False)
    m = x.numel()  # iid pixels
    sd = 0.1 / math.sqrt(1 - snr**2)
    assert abs(x.mean().item() - 0.5) < 5 * sd / math.sqrt(m)
    assert abs(x.std().item() - sd) < 5 * sd / math.sqrt(2 * m)  # 5 standard errors of an sd estimate


def test_pc_sample_shape_range_and_reproducibility():
    card = {"sigma_max": 15.0, "sigma_min": 0.01}
    assert mnist.pc_steps(card) == mnist.sampler_settings(15.0, 0.01).n_levels
    x = mnist.sample_pc(tiny(), 3, card, seed=1, n_steps=4)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    torch.testing.assert_close(mnist.sample_pc(tiny(), 3, card, seed=1, n_steps=4), x, rtol=0, atol=0)
    assert not torch.equal(mnist.sample_pc(tiny(), 3, card, seed=2, n_steps=4), x)


def test_inpainting_keeps_the_known_pixels():
    model, settings = tiny(), mnist.sampler_settings(15.0, 0.01, n_levels=4, n_steps_each=2)
    images = digits(3)
    known = torch.zeros(28, 28, dtype=torch.bool)
    known[:, :14] = True  # left half known
    out = mnist.inpaint(model, images, known, settings, seed=0)
    assert torch.equal(out[..., :14], images[..., :14])
    assert not torch.equal(out[..., 14:], images[..., 14:])


# -- command line ----------------------------------------------------------------------------------
def test_cli_help_and_one_line_errors(capsys, tmp_path):
    for cmd in ("train", "sample"):
        assert main([cmd, "--help"]) == 0 and "mnist" in capsys.readouterr().out
    assert main(["train", "mnist", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["sample", "mnist", "--n", "2", "--out", str(tmp_path / "x.npy"),
                 "--checkpoint", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing" in err and "\n" not in err
    assert main(["sample", "mnist", "--n", "2", "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["train", "mnist", "--steps", "5", "--out", str(tmp_path), "--lr-schedule", "linear"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_mismatched_checkpoint_exits_without_traceback(tmp_path):
    save_checkpoint(tmp_path, tiny(), sigma_min=0.01, sigma_max=15.0)
    card = json.loads((tmp_path / "model.json").read_text())
    card["model"]["config"]["blocks"] = [0, 1, 2]
    (tmp_path / "model.json").write_text(json.dumps(card))
    proc = subprocess.run([sys.executable, "-m", "scoretutor", "sample", "mnist", "--n", "2", "--out",
                           str(tmp_path / "x.npy"), "--checkpoint", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and "\n" not in proc.stderr.strip()


def test_cli_sample_writes_float32_images_in_the_unit_interval(tmp_path, capsys):
    save_checkpoint(tmp_path / "ck", tiny(), sigma_min=0.5, sigma_max=15.0)  # few levels: fast
    out = tmp_path / "s.npy"
    assert main(["sample", "mnist", "--n", "5", "--seed", "2", "--out", str(out), "--checkpoint",
                 str(tmp_path / "ck"), "--steps-each", "1", "--batch-size", "3", "--device", "cpu"]) == 0
    x = np.load(out)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert "predictor-corrector" in capsys.readouterr().out
    assert main(["sample", "mnist", "--n", "2", "--out", str(out), "--checkpoint", str(tmp_path / "ck"),
                 "--sampler", "langevin", "--steps-each", "1", "--device", "cpu"]) == 0
    assert "annealed Langevin" in capsys.readouterr().out and np.load(out).shape == (2, 1, 28, 28)
    for wrong in (["--step-size", "0.1"], ["--sampler", "langevin", "--snr", "0.2"], ["--snr", "-1"]):
        assert main(["sample", "mnist", "--n", "2", "--out", str(out), *wrong]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err


# -- the shipped checkpoint -------------------------------------------------------------------------
def test_shipped_checkpoint_is_the_default_architecture_trained_within_30_minutes():
    model, card = mnist.load_pretrained(device="cpu")
    assert card["model"]["config"] == json.loads(json.dumps(mnist.make_model().config))
    for key in ("sigma_min", "sigma_max", "ema_decay", "steps", "seed", "torch_version", "git_commit",
                "command"):
        assert key in card, key
    assert card["wall_time_s"] <= 30 * 60 and card["data"]["split"] == "train"
    assert card["command"].startswith("python -m scoretutor train mnist")
    # Trained weights denoise: Tweedie's step x̃ + σ² s(x̃, σ) lands closer to held-out test digits than
    # x̃ itself (an untrained network, F = 0, only shrinks x̃ by σ_d²/(σ² + σ_d²) = 0.96: ratio 0.97).
    from scoretutor.mnist.data import load_mnist

    x, _ = load_mnist("test")
    x = x[:64]
    x_noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        denoised = x_noisy + 0.1**2 * model(x_noisy, 0.1)
    assert (denoised - x).norm() < 0.5 * (x_noisy - x).norm()


def test_fingerprint_follows_the_weights_not_the_object():
    from scoretutor.training import fingerprint

    a = tiny()
    b = tiny()
    b.load_state_dict(a.state_dict())
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 16
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-3
    assert fingerprint(a) != fingerprint(b)


def test_sample_with_snapshots_is_sample_plus_its_path():
    model, settings = tiny(), mnist.sampler_settings(15.0, 0.01, n_levels=4, n_steps_each=2)
    out = mnist.sample_with_snapshots(model, 3, settings, seed=1, n_snapshots=5)
    torch.testing.assert_close(out["samples"], mnist.sample(model, 3, settings, seed=1), rtol=0, atol=0)
    assert out["snapshots"].shape == (5, 1, 28, 28) and out["seconds"] > 0
    torch.testing.assert_close(out["snapshots"][-1].clamp(0, 1), out["samples"][0], rtol=0, atol=0)
    start = 15.0 * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out["snapshots"][0], start[0])  # the first snapshot is x ~ N(0, σ_max² I)


@pytest.mark.parametrize("solver, order", [("Euler (ODE in t)", 1), ("DDIM", 1), ("Heun (Karras)", 2),
                                           ("DPM-Solver++(2M)", 2)])
def test_ode_sampler_converges_to_the_exact_flow_map_at_its_order(solver, order):
    # Exact scores of iid N(μ, s0²) pixels: the probability-flow ODE is the linear map
    # x_0 = μ + (x_T − μ)·√(s0² + σ_min²)/√(s0² + σ_max²), so the solver's error is all discretisation:
    # doubling the calls divides it by 2^order (within 25 %: the next term of the error expansion).
    card, mu, s0 = {"sigma_max": 15.0, "sigma_min": 0.01}, 0.5, 0.1
    x_T = 15.0 * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # sample_pc's x_T
    exact = mu + (x_T - mu) * math.sqrt(s0**2 + 0.01**2) / math.sqrt(s0**2 + 15.0**2)
    err = [(mnist.sample_ode(GaussianPixels(mu, s0), 3, card, n_calls=n, solver=solver, seed=0, clamp=False)
            - exact).abs().max().item() for n in (50, 100)]
    assert 0.8 * 2**order < err[0] / err[1] < 1.25 * 2**order, err
    assert err[1] < s0  # and already below the data's own spread


def test_ode_sampler_rejects_stochastic_and_unknown_solvers():
    card = {"sigma_max": 15.0, "sigma_min": 0.01}
    for solver in ("Euler–Maruyama", "rk4"):
        with pytest.raises(ValueError, match="solver must be one of"):
            mnist.sample_ode(tiny(), 2, card, solver=solver)


def test_heun_with_churn_is_a_stochastic_sampler_whose_bias_falls_with_the_steps():
    # Exact scores of iid N(0.5, 0.1²) pixels: churned Heun lands on p_{σ_min} = N(0.5, 0.1² + σ_min²) up to a
    # discretisation bias in the spread that falls at least like 1/N (first order, the added noise's): from 50
    # to 200 calls by at least 3× (4× at order one). The sd estimate's own error is 0.1/√(2 m) ≈ 0.4 %.
    card, sd = {"sigma_max": 15.0, "sigma_min": 0.01}, math.sqrt(0.1**2 + 0.01**2)
    bias = {}
    for n_calls in (50, 200):
        x = mnist.sample_ode(GaussianPixels(0.5, 0.1), 50, card, n_calls=n_calls, solver="Heun (Karras)",
                             seed=0, clamp=False, churn=40)
        assert abs(x.mean().item() - 0.5) < 5 * sd / math.sqrt(x.numel())
        bias[n_calls] = x.std().item() / sd - 1
    assert bias[50] > 3 * bias[200] and abs(bias[200]) < 0.02, bias
    with pytest.raises(ValueError, match="churn is a Heun"):
        mnist.sample_ode(tiny(), 2, card, solver="DDIM", churn=10)
