"""The shared training loop: it learns, is reproducible, resumes, and survives Ctrl-C."""

from __future__ import annotations

import itertools
import sys

import pytest
import torch

from scoretutor.config import show_progress
from scoretutor.densities import GaussianMixture, ncsn_mixture
from scoretutor.losses import denoising_score_matching
from scoretutor.models import ScoreMLP
from scoretutor.training import cosine_decay, fit


def dsm_loss(sigma: float):
    return lambda model, x, g: denoising_score_matching(model, x, sigma, generator=g)


def tiny_model(seed: int = 0) -> ScoreMLP:
    torch.manual_seed(seed)
    return ScoreMLP(2, hidden=16, n_layers=1)


GAUSS = GaussianMixture(torch.tensor([[1.0, -1.0]]), torch.tensor([[1.0, 0.5]]))


@pytest.mark.slow
def test_dsm_at_small_sigma_recovers_the_score_of_a_2d_gaussian():
    # Relative error R = E_p‖s_θ − ∇log p‖² / E_p‖∇log p‖². Two sources:
    #  * bias: DSM's minimiser is ∇log p_σ = −(x − m)/(c + σ²) per axis instead of −(x − m)/c;
    #    its relative error is Σ_i (σ²/(c_i+σ²))²/c_i / Σ_i 1/c_i = 0.0012 for c = (1, 0.25), σ = 0.1
    #    (computed in closed form below, not assumed);
    #  * the fit: SGD on DSM targets whose noise variance d/σ² = 200 dwarfs E‖∇log p‖² = 5, so the
    #    network settles at a noise floor. Over init/fit seeds 0–4 R was 0.010–0.022 (mean 0.015,
    #    sd 0.005).
    # We require R < 0.08, > 10 sd above that mean; an untrained network has R ≈ 1.
    sigma = 0.1
    torch.manual_seed(0)
    model = ScoreMLP(2, hidden=64, n_layers=2)
    fit(model, dsm_loss(sigma), GAUSS.sample, n_steps=1000, batch_size=256, lr=1e-3, device="cpu")
    x = GAUSS.sample(20_000, torch.Generator().manual_seed(1))
    true, noisy = GAUSS.score(x), GAUSS.perturb(sigma).score(x)
    norm = (true**2).sum(-1).mean()
    bias = ((noisy - true) ** 2).sum(-1).mean() / norm
    c = torch.tensor([1.0, 0.25])
    torch.testing.assert_close(bias, ((sigma**2 / (c + sigma**2)) ** 2 / c).sum() / (1 / c).sum(), rtol=0.05,
                               atol=0)
    with torch.no_grad():
        rel = ((model(x) - true) ** 2).sum(-1).mean() / norm
    assert rel < 0.08, rel


def test_fit_reduces_the_loss_and_returns_one_entry_per_step():
    model = tiny_model()
    data = GAUSS.sample(512, torch.Generator().manual_seed(0))  # tensor data path
    hist = fit(model, dsm_loss(0.5), data, n_steps=300, batch_size=128, lr=3e-3, device="cpu")
    assert len(hist) == 300
    # DSM's noise floor at σ = 0.5 is ½·d/σ²·(fraction unexplained); compare window means, whose
    # standard error (loss std ≈ 1 over 50 steps) is ≈ 0.15, far below the drop we demand.
    assert sum(hist[-50:]) / 50 < sum(hist[:50]) / 50 - 0.5


def test_fit_is_reproducible_for_a_seed_and_differs_across_seeds():
    runs = [fit(tiny_model(), dsm_loss(0.5), GAUSS.sample, 20, batch_size=32, seed=s, device="cpu")
            for s in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    ref_model = tiny_model()
    ref = fit(ref_model, dsm_loss(0.5), GAUSS.sample, 30, batch_size=32, device="cpu")

    path = tmp_path / "ckpt.pt"
    model = tiny_model()
    first = fit(model, dsm_loss(0.5), GAUSS.sample, 12, batch_size=32, device="cpu",
                checkpoint_path=path, checkpoint_every=5)
    assert path.exists() and len(first) == 12
    fresh = tiny_model(seed=99)  # a new process would start from different weights
    full = fit(fresh, dsm_loss(0.5), GAUSS.sample, 30, batch_size=32, device="cpu", checkpoint_path=path)
    assert full == ref
    for a, b in zip(fresh.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_keyboard_interrupt_returns_history_and_keeps_a_resumable_checkpoint(tmp_path):
    calls = {"n": 0}

    def interrupting(model, x, g):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return dsm_loss(0.5)(model, x, g)

    path = tmp_path / "run.pt"
    model = tiny_model()
    hist = fit(model, interrupting, GAUSS.sample, 20, batch_size=32, device="cpu", checkpoint_path=path)
    assert len(hist) == 7  # steps 0..6 completed; the model keeps those weights
    assert len(torch.load(path, weights_only=False)["history"]) == 7
    resumed = fit(tiny_model(seed=5), dsm_loss(0.5), GAUSS.sample, 20, batch_size=32, device="cpu",
                  checkpoint_path=path)
    ref = fit(tiny_model(), dsm_loss(0.5), GAUSS.sample, 20, batch_size=32, device="cpu")
    assert resumed == ref


def test_non_finite_loss_raises_and_bad_arguments_are_rejected():
    nan_loss = lambda model, x, g: model(x).sum() * float("nan")
    with pytest.raises(FloatingPointError, match="step 0"):
        fit(tiny_model(), nan_loss, GAUSS.sample, 5, device="cpu")
    with pytest.raises(ValueError, match="n_steps"):
        fit(tiny_model(), dsm_loss(0.5), GAUSS.sample, -1, device="cpu")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        fit(tiny_model(), dsm_loss(0.5), GAUSS.sample, 5, batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="lr"):
        fit(tiny_model(), dsm_loss(0.5), GAUSS.sample, 5, lr=0.0, device="cpu")
    with pytest.raises(ValueError, match="data"):
        fit(tiny_model(), dsm_loss(0.5), [1, 2, 3], 5, device="cpu")


def test_progress_bar_is_quiet_in_fast_mode_and_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("SCORETUTOR_FAST", "1")
    assert not show_progress()
    monkeypatch.setenv("SCORETUTOR_FAST", "0")
    assert show_progress()
    monkeypatch.setenv("CI", "false")
    assert show_progress()
    monkeypatch.setenv("CI", "true")
    assert not show_progress()
    assert show_progress(True) and not show_progress(False)  # an explicit choice wins


def test_mixed_precision_fp32_changes_nothing():
    # mixed_precision="fp32" (what "auto" resolves to on a CPU without bf16 units) must train exactly as
    # mixed_precision=False, bit for bit.
    loss = lambda m, x, g: denoising_score_matching(m, x, 0.5, generator=g)
    runs = []
    for amp in (False, "fp32"):
        torch.manual_seed(0)
        model = ScoreMLP(2, hidden=16, n_layers=2)
        runs.append(fit(model, loss, ncsn_mixture().sample, 5, batch_size=32, device="cpu",
                        progress=False, mixed_precision=amp))
    assert runs[0] == runs[1]


def test_cache_path_is_keyed_by_name_settings_and_version(tmp_path, monkeypatch):
    import scoretutor
    from scoretutor.files import cache_dir
    from scoretutor.training import cache_path

    monkeypatch.setenv("SCORETUTOR_CACHE", str(tmp_path))
    a = cache_path("dsm", sigma=0.1, n_steps=3000)
    assert a.parent == tmp_path and a.name.startswith("dsm-") and a.suffix == ".pt"
    assert cache_path("dsm", n_steps=3000, sigma=0.1) == a  # order of the settings does not matter
    assert cache_path("dsm", sigma=0.1, n_steps=3001) != a
    assert cache_path("dsm2", sigma=0.1, n_steps=3000) != a
    monkeypatch.setattr(scoretutor, "__version__", "9.9.9")
    assert cache_path("dsm", sigma=0.1, n_steps=3000) != a
    monkeypatch.delenv("SCORETUTOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path("dsm").parent == cache_dir()  # the package's one cache rule
    if sys.platform.startswith("linux"):
        assert cache_path("dsm").parent == tmp_path / "xdg" / "scoretutor"
    for bad in ["", "../x", "a b", 3]:
        with pytest.raises(ValueError, match="name"):
            cache_path(bad)


def test_fit_with_a_cached_checkpoint_returns_the_finished_run_without_training(tmp_path, monkeypatch):
    from scoretutor.training import cache_path

    monkeypatch.setenv("SCORETUTOR_CACHE", str(tmp_path))
    path = cache_path("tiny", n_steps=20)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    loss = lambda m, x, g: ((m(x) - x) ** 2).mean()
    torch.manual_seed(0)
    first = torch.nn.Linear(2, 2)
    h1 = fit(first, loss, data, 20, batch_size=8, device="cpu", checkpoint_path=path)
    calls = []
    torch.manual_seed(1)  # different initial weights: the cache must overwrite them
    second = torch.nn.Linear(2, 2)
    h2 = fit(second, lambda m, x, g: calls.append(1) or loss(m, x, g), data, 20, batch_size=8, device="cpu",
             checkpoint_path=path)
    assert h2 == h1 and not calls
    assert torch.equal(second.weight, first.weight.cpu())


def test_cosine_decay_runs_from_one_to_its_final_factor():
    f = cosine_decay(100, final=0.1)
    assert f(0) == pytest.approx(1.0) and f(100) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    assert f(50) == pytest.approx(0.55)  # half-way: the mean of 1 and 0.1
    assert f(25) == pytest.approx(0.1 + 0.9 * (2 + 2**0.5) / 4)  # ½(1 + cos π/4)
    values = [f(k) for k in range(101)]
    assert all(a > b for a, b in itertools.pairwise(values))
    for bad in (dict(n_steps=0), dict(n_steps=10, final=1.5), dict(n_steps=10, final=-0.1)):
        with pytest.raises(ValueError):
            cosine_decay(**bad)


def test_fit_lr_factor_matches_torch_lambda_lr_and_resumes_exactly(tmp_path):
    """fit(lr_factor=f) against an independent Adam loop with torch's LambdaLR scheduler."""
    factor = cosine_decay(12, final=0.1)
    model = tiny_model()
    hist = fit(model, dsm_loss(0.5), GAUSS.sample, 12, batch_size=32, lr=1e-2, device="cpu", lr_factor=factor)

    ref = tiny_model()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    g = torch.Generator().manual_seed(0)
    ref_hist = []
    for _ in range(12):
        loss = dsm_loss(0.5)(ref, GAUSS.sample(32, g), g)
        ref_hist.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert hist == pytest.approx(ref_hist, rel=1e-6)
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    constant = tiny_model()
    fit(constant, dsm_loss(0.5), GAUSS.sample, 12, batch_size=32, lr=1e-2, device="cpu")
    assert not torch.allclose(next(constant.parameters()), next(model.parameters()))

    path = tmp_path / "ckpt.pt"  # the schedule depends on the step only: a resumed run is the same run
    fit(tiny_model(), dsm_loss(0.5), GAUSS.sample, 5, batch_size=32, lr=1e-2, device="cpu",
        lr_factor=factor, checkpoint_path=path)
    resumed = tiny_model(seed=7)
    again = fit(resumed, dsm_loss(0.5), GAUSS.sample, 12, batch_size=32, lr=1e-2, device="cpu",
                lr_factor=factor, checkpoint_path=path)
    assert again == hist


@pytest.mark.slow
def test_fit_through_torch_compile_trains_the_same_weights():
    """compile=True: the same steps as eager, up to the rounding of fused kernels (float32)."""
    eager, compiled = tiny_model(), tiny_model()
    h1 = fit(eager, dsm_loss(0.5), GAUSS.sample, 5, batch_size=32, device="cpu")
    h2 = fit(compiled, dsm_loss(0.5), GAUSS.sample, 5, batch_size=32, device="cpu", compile=True)
    assert h2 == pytest.approx(h1, rel=1e-4)
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not any(k.startswith("_orig_mod") for k in compiled.state_dict())  # plain weights


def test_cached_computes_once_then_loads(tmp_path, monkeypatch):
    from scoretutor.training import cache_path, cached

    monkeypatch.setenv("SCORETUTOR_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3.0), "evals": 7}

    first = cached("demo", compute, seed=1)
    second = cached("demo", compute, seed=1)
    assert len(calls) == 1 and torch.equal(first["x"], second["x"]) and second["evals"] == 7
    cached("demo", compute, seed=2)  # another setting, another file
    assert len(calls) == 2
    cache_path("demo", seed=1).write_bytes(b"damaged")  # a broken file is recomputed, not an error
    assert cached("demo", compute, seed=1)["evals"] == 7 and len(calls) == 3


def test_fit_draws_the_same_rows_of_every_tensor_in_a_tuple():
    x = torch.arange(20.0)[:, None]
    labels = torch.arange(20)
    seen = []

    def loss_fn(model, batch, g):
        xb, yb = batch
        seen.append(bool((xb[:, 0].long() == yb).all()))
        return (model(xb) ** 2).mean()

    fit(torch.nn.Linear(1, 1), loss_fn, (x, labels), 5, batch_size=4, progress=False, device="cpu")
    assert seen == [True] * 5
    with pytest.raises(ValueError, match="first size"):
        fit(torch.nn.Linear(1, 1), loss_fn, (x, labels[:5]), 1, progress=False, device="cpu")


def test_class_conditional_training_drops_labels_and_records_it(tmp_path):
    from scoretutor import mnist
    from scoretutor.errors import UsageError

    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8) % 10
    model = mnist.make_model(n_classes=10, channels=(4, 8, 8), blocks=(0, 1, 1))
    trained, card = mnist.train(tmp_path / "run", 2, images, labels=labels, model=model, batch_size=4,
                                sigma_max=10.0, progress=False, label_dropout=0.25, device="cpu")
    assert card["label_dropout"] == 0.25 and card["model"]["config"]["n_classes"] == 10
    with pytest.raises(UsageError, match="labels must have shape"):
        mnist.train(tmp_path / "bad", 2, images, labels=labels[:3], sigma_max=10.0, progress=False)
    with pytest.raises(UsageError, match="class-conditional"):
        mnist.train(tmp_path / "bad2", 2, images, labels=labels, model=mnist.make_model(channels=(4, 8, 8)),
                    sigma_max=10.0, progress=False)
