"""The notebook 04 checker accepts a correct sampler and names the common slips."""

import math

from scoretutor.lecture.exercises.annealing import check_annealed_langevin


def _sampler(alpha_rule, noise_factor=2.0):
    def run(score_fn, x0, sigmas, eps, T, noise):
        x = x0
        for s in sigmas:
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
    reversed_order = lambda score_fn, x0, sigmas, eps, T, noise: _sampler(
        lambda e, s, sl: e * s**2 / sl**2)(score_fn, x0, sigmas[::-1], eps, T, noise)
    assert not check_annealed_langevin(reversed_order)
    assert "loop order" in capsys.readouterr().out
