"""What a lecturer and students touch: figures, claims, explorers, exercises, exported decks.

- :mod:`~scoretutor.lecture.plotting`: shared figures; :mod:`~scoretutor.lecture.claims`: the ✓ lines.
- :mod:`~scoretutor.lecture.widgets`: the slider explorers; :mod:`~scoretutor.lecture.exercises`: checkers.
- :mod:`~scoretutor.lecture.overview`: the suite's table of contents (notebook 00).
- :mod:`~scoretutor.lecture.export`: slides and handouts;
  :mod:`~scoretutor.lecture.explore`: the explorer page.
"""
