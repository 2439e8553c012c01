"""Data sets known only through samples (the analytic 2D toys with exact scores live in ``densities``).

Every loader takes a ``torch.Generator`` or seed so draws are reproducible.
"""

from __future__ import annotations
