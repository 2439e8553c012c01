"""Interactive explorers (sliders → a figure re-rendered as PNG) that degrade to a static frame.

See :mod:`scoretutor.widgets.base` for the pattern; concrete explorers live in their own modules
(``scoretutor.widgets.langevin``, ``scoretutor.widgets.annealing``) and are imported from there.
"""

from scoretutor.widgets.base import Explorer, figure_to_png, new_figure

__all__ = ["Explorer", "figure_to_png", "new_figure"]
