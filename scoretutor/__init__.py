"""scoretutor: score-based generative modelling, taught with notebooks and checked with tests."""

from scoretutor.config import fast_mode, pick
from scoretutor.device import get_device

__version__ = "0.1.0"
__all__ = ["fast_mode", "pick", "get_device", "__version__"]
