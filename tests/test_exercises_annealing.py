"""The notebook 04 checker accepts a correct sampler and names the common slips, alone or together."""

import math
from pathlib import Path

import jupytext
import pytest

from scoretutor.lecture.exercises.annealing import BROKEN_SAMPLER, check_annealed_langevin

RIGHT = lambda e, s, sl: e * s**2 / sl**2  # α_i = ε·σ_i²/σ_1², σ_1 = sigmas[-1]


def _sampler(alpha_rule, noise_factor=2.0, smallest_first=False):
    def run(score_fn, x0, sigmas, eps, T, noise):
        x = x0
        for s in (sigmas[::-1] if smallest_first else sigmas):
            a = alpha_rule(eps, s, sigmas[-1])
            for _ in range(T):
                x = x + a * score_fn(x, s) + math.sqrt(noise_factor * a) * noise(x.shape)
        return x
    return run


def test_correct_answer_passes(capsys):
    assert check_annealed_langevin(_sampler(lambda e, s, sl: e * s**2 / sl**2))
    out = capsys.readouterr().out
    assert "Correct!" in out and "(−5,−5)" in out


def test_constant_step_is_named(capsys):
    assert not check_annealed_langevin(_sampler(lambda e, s, sl: e))
    assert "constant step" in capsys.readouterr().out


def test_unsquared_ratio_is_named(capsys):
    assert not check_annealed_langevin(_sampler(lambda e, s, sl: e * s / sl))
    assert "square the ratio" in capsys.readouterr().out


def test_wrong_noise_scale_is_named(capsys):
    assert not check_annealed_langevin(_sampler(lambda e, s, sl: e * s**2 / sl**2, noise_factor=1.0))
    assert "√(2α_i)" in capsys.readouterr().out


def test_not_attempted_and_wrong_shape(capsys):
    def todo(*args):
        raise NotImplementedError

    assert not check_annealed_langevin(todo)
    assert "Not attempted" in capsys.readouterr().out
    assert not check_annealed_langevin(lambda score_fn, x0, *a: x0[:3])
    assert "shape" in capsys.readouterr().out


def test_other_mistakes_get_a_generic_hint(capsys):
    def twice(score_fn, x0, sigmas, eps, T, noise):  # draws the noise twice per step
        x = x0
        for s in sigmas:
            a = RIGHT(eps, s, sigmas[-1])
            for _ in range(T):
                noise(x.shape)
                x = x + a * score_fn(x, s) + math.sqrt(2 * a) * noise(x.shape)
        return x

    assert not check_annealed_langevin(twice)
    out = capsys.readouterr().out
    assert "loop order" in out and "(−5,−5) mode" in out


@pytest.mark.parametrize("sampler, named", [
    (_sampler(RIGHT, smallest_first=True), "from the smallest σ up"),
    (_sampler(lambda e, s, sl: e * s**2 / 20.0**2), "divided by the largest level"),  # the paper's numbering
    (_sampler(lambda e, s, sl: e * sl**2 / s**2), "upside down"),
    (_sampler(RIGHT, noise_factor=0.0), "noise is missing"),
])
def test_each_slip_alone_is_named_with_what_the_particles_did(sampler, named, capsys):
    assert not check_annealed_langevin(sampler)
    out = capsys.readouterr().out
    assert named in out and "One slip remains" in out and "of your particles end nearer" in out


def test_the_debug_exercise_has_three_slips_and_they_are_named_one_at_a_time(capsys):
    ns = {"math": math}
    exec(BROKEN_SAMPLER, ns)
    assert not check_annealed_langevin(ns["my_annealed_langevin"])
    out = capsys.readouterr().out
    assert "3 slips remain" in out and "from the smallest σ up" in out
    # fixing the order leaves two (the paper's normalisation and √α), then one
    fixed_order = BROKEN_SAMPLER.replace("sorted(sigmas)", "sigmas")
    exec(fixed_order, ns)
    assert not check_annealed_langevin(ns["my_annealed_langevin"])
    assert "2 slips remain" in capsys.readouterr().out
    exec(fixed_order.replace("sigmas[0]", "sigmas[-1]"), ns)
    assert not check_annealed_langevin(ns["my_annealed_langevin"])
    assert "One slip remains: the noise term is √(2α_i)·z" in capsys.readouterr().out
    exec(fixed_order.replace("sigmas[0]", "sigmas[-1]").replace("sqrt(alpha)", "sqrt(2 * alpha)"), ns)
    assert check_annealed_langevin(ns["my_annealed_langevin"])


def test_notebook_04_shows_the_broken_sampler_the_checker_knows():
    path = Path(__file__).resolve().parents[1] / "notebooks" / "04_noise_annealing.py"
    exercises = [c.source for c in jupytext.read(path).cells if "exercise" in c.metadata.get("tags", [])]
    assert any(BROKEN_SAMPLER.strip() in source for source in exercises)
