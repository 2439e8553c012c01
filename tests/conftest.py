from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def executed_notebook():
    """``get(path)``: the notebook at ``path`` (.ipynb) executed as ``scoretutor export`` runs it (fast mode,
    no progress bars), once per test session: the screen checks and the lecture deck share the runs."""
    from scoretutor.lecture.export import execute

    done: dict = {}

    def get(path):
        key = Path(path).resolve()
        if key not in done:
            done[key] = execute(key)
        return done[key]

    return get
