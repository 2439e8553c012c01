import pytest
import torch

from scoretutor import config, device


@pytest.mark.parametrize("cuda, mps, expected", [(False, False, "cpu"), (False, True, "mps"),
                                                   (True, True, "cuda"), (True, False, "cuda")])
def test_default_device_is_the_best_available(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("SCORETUTOR_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert device.available_devices()[-1] == "cpu" and len(device.available_devices()) == 1 + cuda + mps
    assert device.get_device() == torch.device(expected)


def test_override_to_cpu(monkeypatch):
    monkeypatch.setenv("SCORETUTOR_DEVICE", "CPU")
    assert device.get_device() == torch.device("cpu")


def test_unavailable_device_names_what_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("SCORETUTOR_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="not available.*available here: .*cpu"):
        device.get_device()


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "tpu"])
def test_invalid_device_value(monkeypatch, value):
    monkeypatch.setenv("SCORETUTOR_DEVICE", value)
    with pytest.raises(ValueError, match=f"{value}.*allowed: cpu, cuda, mps"):
        device.get_device()


def test_autocast_follows_the_resolved_precision():
    with device.autocast("cpu", "fp32"):  # fp32: a no-op on any machine
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
    with device.autocast("cpu"):  # auto: bf16 exactly where this CPU has bf16 units
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    expected = torch.bfloat16 if device.bf16_supported(torch.device("cpu")) else torch.float32
    assert y.dtype == expected


def test_make_generator_is_seeded():
    a = torch.rand(3, generator=device.make_generator(7))
    b = torch.rand(3, generator=device.make_generator(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True), ("0", False),
                                             ("", False), ("no", False)])
def test_fast_mode_values(monkeypatch, value, expected):
    monkeypatch.setenv("SCORETUTOR_FAST", value)
    assert config.fast_mode() is expected
    assert config.pick(full=5000, fast=200) == (200 if expected else 5000)


def test_fast_mode_rejects_garbage(monkeypatch):
    monkeypatch.setenv("SCORETUTOR_FAST", "maybe")
    with pytest.raises(ValueError, match="'maybe'"):
        config.fast_mode()


def test_randn_like_follows_the_generator_then_moves_to_x():
    x = torch.zeros(4, 3, dtype=torch.float64)
    a = device.randn_like(x, device.make_generator(3))
    b = torch.randn(4, 3, generator=device.make_generator(3), dtype=torch.float64)
    assert torch.equal(a, b) and a.dtype == x.dtype and a.device == x.device
    assert device.randn_like(x).shape == x.shape



def test_model_device_is_where_the_parameters_are():
    assert device.model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert device.model_device(torch.nn.Linear(2, 2).to("meta")) == torch.device("meta")  # not only cpu
    assert device.model_device(torch.nn.ReLU()) == torch.device("cpu")  # no parameters
    assert device.model_device(lambda x, sigma: -x) == torch.device("cpu")  # a plain score function
