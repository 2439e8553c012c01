"""One place that picks the compute device: CUDA, then Apple MPS, then CPU.

Set ``SCORETUTOR_DEVICE=cpu|cuda|mps`` (``cuda:1`` works too) to override the choice.
"""

from __future__ import annotations

import contextlib
import os

import torch

from scoretutor.errors import DeviceError, UsageError

DEVICE_ENV = "SCORETUTOR_DEVICE"
_KINDS = ("cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """The device kinds usable on this machine, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def get_device(requested: str | None = None) -> torch.device:
    """The device to put data and models on: ``requested`` (e.g. a ``--device`` option) if given,
    else ``SCORETUTOR_DEVICE``, else the best available (CUDA > MPS > CPU).

    Raises :class:`~scoretutor.errors.UsageError` for a name that is no device and
    :class:`~scoretutor.errors.DeviceError` for one this machine does not have.
    """
    source = "--device" if requested is not None else DEVICE_ENV
    if requested is None:
        requested = os.environ.get(DEVICE_ENV, "")
    requested = requested.strip().lower()
    available = available_devices()
    if not requested:
        return torch.device(available[0])
    kind, _, index = requested.partition(":")
    if kind not in _KINDS or (index and not index.isdigit()):
        raise UsageError(
            f"{source}={requested!r} is not a device; allowed: {', '.join(_KINDS)} "
            f"(optionally with an index, e.g. 'cuda:0'); available here: {', '.join(available)}"
        )
    if kind not in available:
        raise DeviceError(
            f"{source}={requested!r} asks for {kind}, which is not available on this machine; "
            f"available here: {', '.join(available)}"
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"{source}={requested!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device(requested)


def autocast(device: torch.device | str, enabled: bool = True):
    """Mixed precision (bf16 autocast) on CUDA only; a no-op context everywhere else."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (a fresh random seed if None)."""
    g = torch.Generator(device=torch.device(device))
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def model_device(model) -> torch.device:
    """Where a model computes: the device of its first parameter; the CPU for a plain function or a
    module without parameters (e.g. an analytic score)."""
    param = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    return param.device if param is not None else torch.device("cpu")


def generator_device(generator: torch.Generator | None, default=None) -> torch.device:
    """Where random numbers are drawn: on the generator's device if one is given, else ``default``."""
    if generator is not None:
        return generator.device
    return torch.device(default) if default is not None else torch.device("cpu")


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) shaped like x, drawn on the generator's device and moved to x's device.

    A CPU generator then reproduces the same draws whether x lives on the CPU or a GPU.
    """
    if generator is None:
        return torch.randn_like(x)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device)
    return z.to(x.device)
