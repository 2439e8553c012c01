"""Notebook 07's solver explorer driven headlessly: what it shows is what run_solver computes, and the
endpoint error it reports falls as the calls grow."""

import pytest
import torch

from scoretutor.diffusion.solvers import run_solver
from scoretutor.lecture.widgets.solvers import CALLS, ODE_SOLVERS, SolverExplorer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explorer():
    return SolverExplorer(n_points=200, size=2.5, dpi=50)


def test_first_frame_and_the_samples_are_run_solvers(explorer):
    assert explorer.png.startswith(PNG_SIGNATURE) and "share" in explorer.status_text
    explorer.update(solver="Heun (Karras)", n_calls=16)
    expected = run_solver("Heun (Karras)", explorer.score, explorer.sde, explorer.x1, 16).x
    torch.testing.assert_close(explorer.samples, expected)
    assert "Heun (Karras), 16 calls" in explorer.status_text


@pytest.mark.parametrize("solver", ["DDIM", "DPM-Solver++(2M)"])
def test_reported_endpoint_error_falls_with_the_calls(explorer, solver):
    errors = []
    for n_calls in (2, 8, 64):
        explorer.update(solver=solver, n_calls=n_calls)
        errors.append((explorer.samples - explorer.reference).norm(dim=-1).median().item())
    assert errors[0] > errors[1] > errors[2], errors
    assert explorer.status_text.endswith(f"{errors[2]:.2g}")


def test_every_slider_setting_renders_a_new_frame(explorer):
    seen = set()
    for solver in ODE_SOLVERS:
        explorer.update(solver=solver, n_calls=CALLS[1])
        seen.add(explorer.png)
    assert len(seen) == len(ODE_SOLVERS)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="solver must be one of"):
        SolverExplorer(solver="RK4")
    with pytest.raises(ValueError, match="n_trajectories"):
        SolverExplorer(n_points=4, n_trajectories=8)
