"""Interactive explorers (sliders → a figure re-rendered as PNG) that degrade to a static frame.

See :mod:`scoretutor.lecture.widgets.base` for the pattern; concrete explorers live in their own modules
(``widgets.langevin``, ``widgets.annealing``, ``widgets.mnist``) and are imported from there.
"""

from scoretutor.lecture.widgets.base import Explorer, figure_to_png, new_figure

__all__ = ["Explorer", "figure_to_png", "new_figure"]
