"""The command line as a user types it: through ``python -m scoretutor`` and the ``scoretutor`` script,
in a subprocess. Every mistake a user can make ends with exit status 2 and one ``error:`` line (no
traceback); Ctrl-C during ``train`` exits 130, keeps a loadable checkpoint, and ``--resume`` continues
to the asked number of steps exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scoretutor.cli import main
from scoretutor.mnist.checkpoints import load_checkpoint, read_card, save_checkpoint
from scoretutor.mnist.unet import ScoreUNet

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("scoretutor", path=str(Path(sys.executable).parent)) or shutil.which("scoretutor")
ENTRY_POINTS = {"python -m scoretutor": [sys.executable, "-m", "scoretutor"], "scoretutor": [SCRIPT]}
ENV = {**os.environ, "SCORETUTOR_FAST": "1", "PYTHONUNBUFFERED": "1"}
TINY = {"channels": [4, 8, 8], "blocks": [0, 1, 1], "embed_dim": 8, "groups": 2}


def run_cli(entry: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*ENTRY_POINTS[entry], *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    """Broken checkpoints and folders, one per way a file can be wrong."""
    root = tmp_path_factory.mktemp("bad")
    good = save_checkpoint(root / "good", ScoreUNet(**TINY), sigma_min=0.01, sigma_max=15.0)
    out = {"missing": root / "missing", "empty_dir": root / "empty", "good": good}
    (root / "empty").mkdir()
    for name, edit in {
        "mismatched": lambda c: c["model"]["config"].update(blocks=[0, 1, 2]),
        "unknown_key": lambda c: c["model"]["config"].update(depth=3),
        "wrong_type": lambda c: c["model"]["config"].update(channels="wide"),
        "not_json": None,
    }.items():
        folder = root / name
        shutil.copytree(good, folder)
        card = folder / "model.json"
        if edit is None:
            card.write_text("{ not json")
        else:
            data = json.loads(card.read_text())
            edit(data)
            card.write_text(json.dumps(data))
        out[name] = folder
    truncated = root / "truncated"
    shutil.copytree(good, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out["truncated"] = truncated
    run = root / "existing_run"  # a training run already in this folder
    run.mkdir()
    (run / "train_state.pt").write_bytes(b"")
    out["existing_run"] = run
    return out


SAMPLE = ["sample", "mnist", "--n", "2"]
TRAIN = ["train", "mnist", "--steps", "2"]
# (name, arguments with {placeholders} for the fixture's folders, a word the error line must contain)
MISTAKES = [
    ("no command", [], "no command"),
    ("unknown command", ["fly"], "invalid choice"),
    ("unknown dataset", ["sample", "cifar", "--n", "2", "--out", "{tmp}/x.npy"], "invalid choice"),
    ("negative n", ["sample", "mnist", "--n", "-3", "--out", "{tmp}/x.npy"], "--n"),
    ("n not a number", ["sample", "mnist", "--n", "many", "--out", "{tmp}/x.npy"], "--n"),
    ("missing --out", SAMPLE, "--out"),
    ("zero batch", [*SAMPLE, "--out", "{tmp}/x.npy", "--batch-size", "0"], "--batch-size"),
    ("zero steps each", [*SAMPLE, "--out", "{tmp}/x.npy", "--steps-each", "0"], "--steps-each"),
    ("negative step size", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "langevin", "--step-size", "-1"],
     "--step-size"),
    ("zero snr", [*SAMPLE, "--out", "{tmp}/x.npy", "--snr", "0"], "--snr"),
    ("zero threads", [*SAMPLE, "--out", "{tmp}/x.npy", "--threads", "0"], "--threads"),
    ("unknown sampler", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "euler"], "invalid choice"),
    ("step size with pc", [*SAMPLE, "--out", "{tmp}/x.npy", "--step-size", "0.1"], "--step-size"),
    ("snr with langevin", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "langevin", "--snr", "0.3"],
     "--snr"),
    ("nfe without ode", [*SAMPLE, "--out", "{tmp}/x.npy", "--nfe", "20"], "--nfe"),
    ("zero nfe", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "ode", "--nfe", "0"], "--nfe"),
    ("unknown solver", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "ode", "--solver", "rk4"], "--solver"),
    ("snr with ode", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "ode", "--snr", "0.3"], "--snr"),
    ("churn without heun", [*SAMPLE, "--out", "{tmp}/x.npy", "--sampler", "ode", "--churn", "10"], "--churn"),
    ("class not a digit", [*SAMPLE, "--out", "{tmp}/x.npy", "--class", "11"], "--class"),
    ("negative guidance", [*SAMPLE, "--out", "{tmp}/x.npy", "--class", "3", "--guidance", "-1"],
     "--guidance"),
    ("guidance without class", [*SAMPLE, "--out", "{tmp}/x.npy", "--guidance", "2"], "--class"),
    ("unknown guide", [*SAMPLE, "--out", "{tmp}/x.npy", "--class", "3", "--guide", "oracle"], "--guide"),
    ("class with langevin", [*SAMPLE, "--out", "{tmp}/x.npy", "--class", "3", "--sampler", "langevin"],
     "--class"),
    ("class with an unconditional checkpoint", [*SAMPLE, "--out", "{tmp}/x.npy", "--class", "3",
                                                 "--checkpoint", "{good}"], "unconditional"),
    ("train label dropout without conditional", [*TRAIN, "--out", "{tmp}/run", "--label-dropout", "0.2"],
     "--conditional"),
    ("out not .npy", [*SAMPLE, "--out", "{tmp}/x.txt"], ".npy"),
    ("out folder missing", [*SAMPLE, "--out", "{tmp}/nowhere/x.npy"], "does not exist"),
    ("checkpoint missing", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{missing}"], "missing"),
    ("checkpoint empty folder", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{empty_dir}"], "model"),
    ("checkpoint truncated", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{truncated}"], "safetensors"),
    ("checkpoint mismatched", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{mismatched}"], "blocks"),
    ("card unknown key", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{unknown_key}"], "depth"),
    ("card wrong type", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{wrong_type}"], "ScoreUNet"),
    ("card not json", [*SAMPLE, "--out", "{tmp}/x.npy", "--checkpoint", "{not_json}"], "JSON"),
    ("device not a device", [*SAMPLE, "--out", "{tmp}/x.npy", "--device", "gpu"], "not a device"),
    ("device not here", [*SAMPLE, "--out", "{tmp}/x.npy", "--device", "cuda:7"], "cuda"),
    ("train zero steps", ["train", "mnist", "--steps", "0", "--out", "{tmp}/run"], "--steps"),
    ("train negative lr", [*TRAIN, "--out", "{tmp}/run", "--lr", "-1"], "--lr"),
    ("train ema above 1", [*TRAIN, "--out", "{tmp}/run", "--ema", "1.5"], "--ema"),
    ("train zero time limit", [*TRAIN, "--out", "{tmp}/run", "--time-limit", "0"], "--time-limit"),
    ("train zero checkpoint-every", [*TRAIN, "--out", "{tmp}/run", "--checkpoint-every", "0"],
     "--checkpoint-every"),
    ("train sigma order", [*TRAIN, "--out", "{tmp}/run", "--sigma-min", "5", "--sigma-max", "1"],
     "--sigma-min"),
    ("train unknown schedule", [*TRAIN, "--out", "{tmp}/run", "--lr-schedule", "linear"], "invalid choice"),
    ("train nothing to resume", [*TRAIN, "--out", "{tmp}/run", "--resume"], "nothing to resume"),
    ("train over an existing run", [*TRAIN, "--out", "{existing_run}"], "--resume"),
    ("train device not here", [*TRAIN, "--out", "{tmp}/run", "--device", "mps"], "mps"),
    ("export unknown notebook", ["export", "html", "99", "--out", "{tmp}/html"], "99"),
    ("export folder without notebooks",
     ["export", "html", "--out", "{tmp}/html", "--notebooks", "{empty_dir}"], "no numbered notebooks"),
    ("export zero timeout", ["export", "html", "--out", "{tmp}/html", "--timeout", "0"], "--timeout"),
    ("explore privileged port", ["explore", "--port", "80"], "--port"),
    ("explore port not a number", ["explore", "--port", "http"], "--port"),
]


def _assert_one_error_line(proc: subprocess.CompletedProcess, word: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert word.lower() in lines[0].lower(), (word, lines[0])


@pytest.mark.parametrize("name, args, word", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_every_mistake_is_one_error_line_with_status_2(name, args, word, bad, tmp_path):
    if "cuda" in " ".join(args) and torch.cuda.device_count() > 7:
        pytest.fail("this test assumes fewer than 8 CUDA devices")
    if "mps" in args and torch.backends.mps.is_available():
        args = [a.replace("mps", "cuda:7") for a in args]
    folders = {k: str(v) for k, v in bad.items()}
    args = [a.format(tmp=tmp_path, **folders) for a in args]
    _assert_one_error_line(run_cli("python -m scoretutor", *args), word)


@pytest.mark.parametrize("name", ["negative n", "checkpoint truncated", "card unknown key",
                                  "device not here", "train nothing to resume", "explore privileged port"])
def test_the_scoretutor_script_reports_the_same(name, bad, tmp_path):
    assert SCRIPT is not None, "the scoretutor console script is not installed (pip install -e .)"
    _, args, word = next(m for m in MISTAKES if m[0] == name)
    folders = {k: str(v) for k, v in bad.items()}
    _assert_one_error_line(run_cli("scoretutor", *[a.format(tmp=tmp_path, **folders) for a in args]), word)


def test_help_works_through_both_entry_points():
    for entry in ENTRY_POINTS:
        proc = run_cli(entry, "--help")
        assert proc.returncode == 0
        assert all(c in proc.stdout for c in ("train", "sample", "export", "explore"))


def test_the_card_records_the_command_when_main_is_called(tmp_path, monkeypatch):
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr("scoretutor.mnist.data.load_mnist", lambda *a, **k: (images, torch.zeros(16)))
    monkeypatch.setattr("scoretutor.mnist.training.make_model", lambda **kw: ScoreUNet(**TINY))
    argv = ["train", "mnist", "--steps", "2", "--out", str(tmp_path / "run"), "--quiet", "--batch-size", "4"]
    assert main(argv) == 0
    assert read_card(tmp_path / "run")["command"] == "scoretutor " + " ".join(argv)


# -- Ctrl-C during training ------------------------------------------------------------------------
def _train(out: Path, steps: int, *extra: str) -> subprocess.Popen:
    args = ["train", "mnist", "--steps", str(steps), "--out", str(out), "--batch-size", "4",
            "--checkpoint-every", "20", "--threads", "1", "--quiet", "--seed", "3", *extra]
    return subprocess.Popen([sys.executable, "-m", "scoretutor", *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _state(out: Path) -> dict:
    return torch.load(out / "train_state.pt", weights_only=True)


def test_ctrl_c_exits_130_saves_and_resume_finishes_exactly(tmp_path):
    steps = 100
    proc = _train(tmp_path / "cut", steps)
    deadline = time.monotonic() + 120
    while not (tmp_path / "cut" / "model.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the first checkpoint (step 20): training is under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "--resume" in err
    done = read_card(tmp_path / "cut")["steps"]
    assert 0 < done < steps, f"interrupted at step {done}: choose a longer run for this machine"
    assert f"interrupted at step {done} of {steps}" in err
    load_checkpoint(tmp_path / "cut", device="cpu")  # the checkpoint written on Ctrl-C loads
    assert len(_state(tmp_path / "cut")["history"]) == done

    resumed = _train(tmp_path / "cut", steps, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert read_card(tmp_path / "cut")["steps"] == steps

    straight = _train(tmp_path / "straight", steps)
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err[-2000:]
    cut, whole = _state(tmp_path / "cut"), _state(tmp_path / "straight")
    assert len(cut["history"]) == len(whole["history"]) == steps
    # the same random stream, draw for draw: every batch, σ and noise of the uninterrupted run, none
    # repeated or skipped. (The losses themselves agree only to rounding: oneDNN's CPU kernels are not
    # bitwise reproducible across processes, and Adam's first steps, ≈ lr·sign(g), amplify that.)
    assert torch.equal(cut["generator"], whole["generator"])
    assert cut["history"][0] == whole["history"][0]
