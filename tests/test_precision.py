"""Precision as a setting (``--precision``, ``SCORETUTOR_PRECISION``): how it resolves, what it refuses,
and that the shipped network and its samplers give the same answers in bf16 as in fp32.

bf16 autocast runs on any CPU (where the CPU has no bf16 units torch emulates it, slowly), so the
agreement tests force it — ``torch.autocast`` directly, or by declaring bf16 supported — instead of
going through the support check, and run on this machine whatever its CPU.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings

import pytest
import torch

from scoretutor import device as dev
from scoretutor import mnist
from scoretutor.cli import main
from scoretutor.errors import DeviceError, UsageError
from scoretutor.losses import continuous_ncsn_loss, unit_output_weighting
from scoretutor.mnist.checkpoints import load_checkpoint, read_card
from scoretutor.mnist.unet import ScoreUNet

AVX2_ONLY = {"cpu_name": "AMD EPYC", "avx2": True, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False}
SAPPHIRE_RAPIDS = {"cpu_name": "Intel Xeon", "avx512_f": True, "avx512_bf16": True, "amx_bf16": True}
ZEN4 = {"cpu_name": "AMD EPYC 9004", "avx512_f": True, "avx512_bf16": True, "amx_bf16": False}


@pytest.fixture(autouse=True)
def _no_precision_env(monkeypatch):
    monkeypatch.delenv(dev.PRECISION_ENV, raising=False)


@pytest.fixture
def cpu_caps(monkeypatch):
    """Pretend torch reports ``caps`` for this CPU."""
    def use(caps: dict) -> None:
        monkeypatch.setattr(dev, "_cpu_capabilities", lambda: dict(caps))
    return use


@pytest.fixture
def force_bf16(monkeypatch):
    """Declare bf16 supported everywhere, so ``precision="bf16"`` runs (emulated where it must)."""
    monkeypatch.setattr(dev, "bf16_supported", lambda device: True)


# -- resolution ----------------------------------------------------------------------------------
def test_auto_on_this_cpu_follows_what_torch_reports():
    expected = "bf16" if dev.cpu_bf16_units() else "fp32"  # fp32 on the AVX2-only Zen 3 of the CI machine
    assert dev.resolve_precision(None, "cpu") == dev.resolve_precision("auto", "cpu") == expected
    assert dev.bf16_supported("cpu") == (expected == "bf16")


@pytest.mark.parametrize("caps, units", [(AVX2_ONLY, []), (SAPPHIRE_RAPIDS, ["AMX", "AVX-512 BF16"]),
                                         (ZEN4, ["AVX-512 BF16"])])
def test_auto_is_bf16_exactly_on_cpus_with_bf16_units(cpu_caps, caps, units):
    cpu_caps(caps)
    assert dev.cpu_bf16_units() == units
    assert dev.resolve_precision("auto", "cpu") == ("bf16" if units else "fp32")
    assert dev.resolve_precision("fp32", "cpu") == "fp32"
    assert caps["cpu_name"] in dev.cpu_description()


def test_bf16_on_a_cpu_without_bf16_units_is_refused(cpu_caps):
    cpu_caps(AVX2_ONLY)
    with pytest.raises(DeviceError, match=r"--precision=bf16: this CPU, AMD EPYC .*AMX or AVX-512 BF16"):
        dev.resolve_precision("bf16", "cpu")
    with pytest.raises(DeviceError):
        dev.autocast("cpu", "bf16")
    cpu_caps(SAPPHIRE_RAPIDS)
    assert dev.resolve_precision("bf16", "cpu") == "bf16"


def test_no_bf16_on_apple_mps_and_absent_cuda():
    assert not dev.bf16_supported("mps")
    assert dev.resolve_precision("auto", "mps") == "fp32"
    with pytest.raises(DeviceError, match="mps"):
        dev.resolve_precision("bf16", "mps")
    if not torch.cuda.is_available():
        assert not dev.bf16_supported("cuda")


def test_environment_variable(monkeypatch, cpu_caps):
    cpu_caps(SAPPHIRE_RAPIDS)
    monkeypatch.setenv(dev.PRECISION_ENV, " FP32 ")
    assert dev.resolve_precision(None, "cpu") == "fp32"
    assert dev.resolve_precision("bf16", "cpu") == "bf16"  # an explicit choice wins over the variable
    monkeypatch.setenv(dev.PRECISION_ENV, "")
    assert dev.resolve_precision(None, "cpu") == "bf16"  # empty: auto
    cpu_caps(AVX2_ONLY)
    monkeypatch.setenv(dev.PRECISION_ENV, "bf16")
    with pytest.raises(DeviceError, match="SCORETUTOR_PRECISION=bf16"):
        dev.resolve_precision(None, "cpu")


@pytest.mark.parametrize("value", ["bfloat16", "fp16", "half", "float32"])
def test_bad_value_lists_the_allowed_ones(monkeypatch, value):
    allowed = "is not a precision; allowed: auto, bf16, fp32"
    with pytest.raises(UsageError, match=f"--precision='{value}' {allowed}"):
        dev.resolve_precision(value, "cpu")
    monkeypatch.setenv(dev.PRECISION_ENV, value)
    with pytest.raises(UsageError, match="SCORETUTOR_PRECISION=.*allowed: auto, bf16, fp32"):
        dev.resolve_precision(None, "cpu")


def test_autocast_contexts(force_bf16):
    a = torch.ones(2, 2)
    with dev.autocast("cpu", "fp32"):
        assert (a @ a).dtype == torch.float32
    with dev.autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.bfloat16
        assert (a + a).dtype == torch.float32  # element-wise arithmetic keeps fp32


# -- the command line ----------------------------------------------------------------------------
@pytest.mark.skipif(bool(dev.cpu_bf16_units()), reason="this CPU has bf16 units: bf16 is allowed here")
def test_cli_bf16_here_is_one_error_line(tmp_path):
    out = tmp_path / "X.npy"
    command = [sys.executable, "-m", "scoretutor", "sample", "mnist", "--n", "2", "--out", str(out),
               "--precision", "bf16"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SCORETUTOR_DEVICE": "cpu"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --precision=bf16: this CPU"), proc.stderr
    assert "AVX-512 BF16" in lines[0] and not out.exists()


def test_cli_rejects_unknown_precision_and_train_refuses_bf16(tmp_path, capsys, cpu_caps):
    assert main(["sample", "mnist", "--n", "2", "--out", str(tmp_path / "x.npy"), "--precision", "fp16"]) == 2
    assert "invalid choice: 'fp16' (choose from 'auto', 'bf16', 'fp32')" in capsys.readouterr().err
    cpu_caps(AVX2_ONLY)
    assert main(["train", "mnist", "--steps", "1", "--out", str(tmp_path / "run"), "--device", "cpu",
                 "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --precision=bf16") and not (tmp_path / "run").exists()


# -- fp32 where it matters -----------------------------------------------------------------------
def _tiny(seed: int = 0, **kw) -> ScoreUNet:
    torch.manual_seed(seed)
    model = ScoreUNet(**{"channels": (4, 8, 8), "blocks": (1, 1, 1), "embed_dim": 8, "groups": 2, **kw})
    for p in model.parameters():  # the zero-initialised output layers would make every output 0
        p.data.add_(0.05 * torch.randn_like(p))
    return model


def test_unet_keeps_its_fp32_parts_under_autocast():
    model, x = _tiny(c_skip=True), torch.rand(4, 1, 28, 28)
    dtypes = {}
    for name in ("stem", "downs.0", "downs.1", "up_blocks.0", "up_blocks.1", "out"):
        model.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x, torch.tensor([0.01, 0.1, 1.0, 10.0]))
        loss = continuous_ncsn_loss(model, x, 0.01, 10.0, weighting=unit_output_weighting(model.sigma_data),
                                    generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.float32 and loss.dtype == torch.float32  # the loss reduction in fp32
    # the full-resolution level (stem, last up-block, output head) in fp32, the coarser ones in bf16
    assert dtypes == {"stem": torch.float32, "downs.0": torch.bfloat16, "downs.1": torch.bfloat16,
                      "up_blocks.0": torch.bfloat16, "up_blocks.1": torch.float32, "out": torch.float32}
    with torch.no_grad():
        assert torch.equal(model(x, 0.5), model(x, 0.5))  # fp32 untouched without autocast


def test_bf16_training_keeps_weights_optimiser_and_ema_in_fp32(tmp_path, force_bf16):
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)).round()
    model = _tiny(c_skip=True)
    ema, card = mnist.train(tmp_path / "run", 3, images, batch_size=8, device="cpu", progress=False,
                            model=model, precision="bf16", sigma_max=10.0, checkpoint_every=2)
    assert card["precision"] == "bf16" and read_card(tmp_path / "run")["precision"] == "bf16"
    loaded, loaded_card = load_checkpoint(tmp_path / "run", device="cpu")  # the loader accepts the key
    assert loaded_card["precision"] == "bf16"
    state = torch.load(tmp_path / "run" / mnist.TRAIN_STATE, weights_only=False)
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    assert all(v.dtype == torch.float32 for v in state["ema"].values() if v.is_floating_point())
    moments = [t for s in state["optimizer"]["state"].values() for k, t in s.items() if k != "step"]
    assert moments and all(t.dtype == torch.float32 for t in moments)
    assert all(p.dtype == torch.float32 for p in list(ema.parameters()) + list(loaded.parameters()))
    assert all(math.isfinite(v) for v in state["history"])


def test_fp32_training_records_fp32(tmp_path):
    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0)).round()
    _, card = mnist.train(tmp_path / "run", 1, images, batch_size=4, device="cpu", progress=False,
                          model=_tiny(c_skip=True), precision="fp32", sigma_max=10.0)
    assert card["precision"] == "fp32"


def test_samplers_run_the_network_under_autocast_and_their_arithmetic_in_fp32(force_bf16):
    model = _tiny(c_skip=True).eval()
    seen = []
    model.downs[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    settings = mnist.sampler_settings(10.0, 0.01, n_steps_each=1, n_levels=3)
    card = {"sigma_min": 0.01, "sigma_max": 10.0}
    images, known = torch.rand(2, 1, 28, 28), torch.zeros(28, 28, dtype=torch.bool)
    known[:14] = True
    runs = {}
    for precision in ("fp32", "bf16"):
        seen.clear()
        runs[precision] = [mnist.sample(model, 2, settings, precision=precision, clamp=False),
                           mnist.sample_pc(model, 2, card, n_steps=3, n_corrector=1, precision=precision,
                                           clamp=False),
                           mnist.inpaint(model, images, known, settings, precision=precision, clamp=False)]
        assert set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float32}
    for a, b in zip(runs["fp32"], runs["bf16"], strict=True):
        assert a.dtype == b.dtype == torch.float32
        assert ((a - b).norm() / a.norm()).item() < 0.02


# -- the shipped network: bf16 agrees with fp32 --------------------------------------------------
# bf16 keeps 8 significant bits: unit roundoff u = 2^-8 ≈ 0.39 %, an RMS relative rounding error of
# u/√3 ≈ 0.23 % per rounding. Under autocast each bf16 layer rounds its input and its weights (and
# accumulates in fp32): about 2 roundings per layer, and about 10 such layers on the coarse path of the
# shipped U-Net (two stride-2 convolutions, 3 residual blocks of 2 convolutions, the up-sampling, the
# σ-embedding). Independent roundings add in quadrature, √20 · 0.23 % ≈ 1 %; the bound of 2 % leaves a
# factor 2 for the network's gain on them. (The full-resolution level is fp32: rounded to bf16, the
# σ = 0.01 noise, ~1 % of the scaled image, loses ~13 % of the score; see ScoreUNet.)
BF16_REL_L2 = 0.02


def test_shipped_network_bf16_agrees_with_fp32_at_every_sigma():
    model, card = mnist.load_pretrained(device="cpu")
    sigmas = mnist.default_settings(card).sigmas.float()  # the 95 levels the samplers visit
    from scoretutor.mnist.data import load_mnist

    with warnings.catch_warnings():  # which digits (shipped or downloaded) does not matter here
        warnings.simplefilter("ignore", UserWarning)
        clean, _ = load_mnist("test")
    g = torch.Generator().manual_seed(0)
    x0 = clean[torch.randint(0, clean.shape[0], (sigmas.numel(),), generator=g)].float()
    x = x0 + sigmas[:, None, None, None] * torch.randn(x0.shape, generator=g)  # one digit per level
    with torch.no_grad():
        exact = model(x, sigmas)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            approx = model(x, sigmas)
    assert approx.dtype == torch.float32
    gauss = -x / (sigmas**2 + model.sigma_data**2)[:, None, None, None]  # the fp32 skip term

    def rel(a, b):
        return ((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1))

    err_score, err_net = rel(approx, exact), rel(approx - gauss, exact - gauss)
    # measured on the shipped model: ≤ 0.7 % at the worst σ (≈ 0.01), median 0.2 % (learned part 0.3 %)
    assert err_score.max() < BF16_REL_L2, f"worst σ {sigmas[err_score.argmax()]:.3g}: {err_score.max():.4f}"
    assert err_net.max() < BF16_REL_L2, f"worst σ {sigmas[err_net.argmax()]:.3g}: {err_net.max():.4f}"


def test_shipped_samplers_agree_in_distribution(force_bf16):
    """32 digits by predictor–corrector (6 levels, 1 corrector) both ways, same seed: the pixel statistics
    and the judge's label histogram nearly equal (the noise is shared, so the samples are paired)."""
    from scoretutor.mnist.classifier import classify, load_classifier

    model, card = mnist.load_pretrained(device="cpu")
    judge = load_classifier(device="cpu")
    out = {}
    for precision in ("fp32", "bf16"):
        x = mnist.sample_pc(model, 32, card, seed=0, n_steps=6, n_corrector=1, precision=precision,
                            progress=False)
        out[precision] = (x, classify(judge, x)[0].argmax(1))
    (a, la), (b, lb) = out["fp32"], out["bf16"]
    assert abs(a.mean() - b.mean()) < 0.005 and abs(a.std() - b.std()) < 0.005
    assert ((a - b).norm() / a.norm()).item() < 0.02  # measured: 0.16 %, the same label histogram
    hist_a, hist_b = torch.bincount(la, minlength=10), torch.bincount(lb, minlength=10)
    assert (hist_a - hist_b).abs().sum().item() <= 4  # at most 2 of 32 digits change label
