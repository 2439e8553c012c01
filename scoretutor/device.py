"""One place that picks the compute device (CUDA, then Apple MPS, then CPU) and its precision.

Set ``SCORETUTOR_DEVICE=cpu|cuda|mps`` (``cuda:1`` works too) to override the device, and
``SCORETUTOR_PRECISION=auto|bf16|fp32`` the precision the MNIST network computes in
(:func:`resolve_precision`; ``auto``: bf16 autocast where the device has bf16 units, else fp32).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform

import torch

from scoretutor.errors import DeviceError, UsageError

DEVICE_ENV = "SCORETUTOR_DEVICE"
_KINDS = ("cpu", "cuda", "mps")
PRECISION_ENV = "SCORETUTOR_PRECISION"
PRECISIONS = ("auto", "bf16", "fp32")


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


@functools.lru_cache(maxsize=1)
def _cpu_capabilities() -> dict:
    """What torch's cpuinfo reports about this CPU (``torch.cpu.get_capabilities()``, torch >= 2.8;
    the older private probes otherwise)."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        with contextlib.suppress(Exception):
            return dict(get())
    caps = {}
    for key, probe in (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            with contextlib.suppress(Exception):
                caps[key] = bool(fn())
    return caps


def cpu_bf16_units() -> list[str]:
    """The bf16 matrix units torch reports on this CPU: ``"AMX"`` (Intel Sapphire Rapids and later) and/or
    ``"AVX-512 BF16"`` (Cooper Lake, Zen 4 and later); empty on older CPUs (e.g. AVX2-only ones)."""
    caps = _cpu_capabilities()
    return [name for key, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16")) if caps.get(key)]


def cpu_description() -> str:
    """The CPU in words, e.g. ``"AMD EPYC (torch kernels: AVX2; bf16 units: none)"``."""
    name = str(_cpu_capabilities().get("cpu_name") or platform.processor() or platform.machine()).strip()
    with contextlib.suppress(Exception):
        kernels = torch.backends.cpu.get_cpu_capability()
        name += f" (torch kernels: {kernels}; bf16 units: {', '.join(cpu_bf16_units()) or 'none'})"
    return name


def bf16_supported(device: torch.device | str) -> bool:
    """Whether bf16 autocast runs on ``device`` at bf16 speed: a CUDA GPU with native bf16 (compute
    capability >= 8, or ROCm), a CPU with AMX or AVX-512 BF16 (:func:`cpu_bf16_units`). False on Apple MPS
    and older CPUs, where bf16 is emulated (correct but slower than fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        if torch.version.hip:
            return True
        return torch.cuda.get_device_properties(device.index or 0).major >= 8
    if device.type == "cpu":
        return bool(cpu_bf16_units())
    return False


def resolve_precision(requested: str | None = None, device: torch.device | str | None = None) -> str:
    """The precision the network computes in on ``device``: ``"bf16"`` (bf16 autocast) or ``"fp32"``.

    ``requested`` (e.g. a ``--precision`` option) if given, else ``SCORETUTOR_PRECISION``, else ``auto``:
    bf16 where :func:`bf16_supported`, fp32 elsewhere. ``device`` defaults to :func:`get_device`.
    Raises :class:`~scoretutor.errors.UsageError` for a value that is no precision and
    :class:`~scoretutor.errors.DeviceError` for bf16 on a device without bf16 units.
    """
    source = "--precision" if requested is not None else PRECISION_ENV
    if requested is None:
        requested = os.environ.get(PRECISION_ENV, "")
    value = str(requested).strip().lower() or "auto"
    if value not in PRECISIONS:
        raise UsageError(f"{source}={requested!r} is not a precision; allowed: {', '.join(PRECISIONS)}")
    if value == "fp32":
        return "fp32"
    device = torch.device(device) if device is not None else get_device()
    supported = bf16_supported(device)
    if value == "bf16" and not supported:
        where = f"this CPU, {cpu_description()}" if device.type == "cpu" else f"{device}"
        raise DeviceError(f"{source}=bf16: {where} has no native bf16 support (bf16 needs a CUDA GPU of "
                          "compute capability >= 8 or a CPU with AMX or AVX-512 BF16); use fp32 or auto")
    return "bf16" if supported else "fp32"


def autocast(device: torch.device | str, precision: str | None = None):
    """Mixed precision: ``torch.autocast(device.type, dtype=torch.bfloat16)`` when ``precision``
    (see :func:`resolve_precision`; None = ``SCORETUTOR_PRECISION``, else auto) resolves to bf16 on
    ``device``; a no-op context for fp32. Convolutions and matrix products then run in bf16, while
    element-wise arithmetic keeps its inputs' dtype (fp32)."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
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
