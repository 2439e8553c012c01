"""scoretutor: score-based generative modelling, taught with notebooks and checked with tests."""

from scoretutor.config import fast_mode, pick

__version__ = "0.1.0"
__all__ = ["fast_mode", "pick", "get_device", "__version__"]


def __getattr__(name: str):
    """``get_device`` on first use: the command line answers a typo without importing torch."""
    if name == "get_device":
        from scoretutor.device import get_device

        return get_device
    raise AttributeError(f"module 'scoretutor' has no attribute {name!r}")
