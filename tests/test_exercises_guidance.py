"""Notebook 08's checker accepts correct answers (in either notation) and names the common slips."""

import torch

from scoretutor.lecture.exercises.guidance import check_guided_score


def solution_guided_score(cond, uncond, gamma):
    # ∇log p(y | x) = s(x, y) − s(x, ∅) (Bayes' rule for scores), so s_γ = s(x, ∅) + γ (s(x, y) − s(x, ∅))
    return uncond + gamma * (cond - uncond)


def test_correct_answers(capsys):
    assert check_guided_score(solution_guided_score)
    assert "Correct!" in capsys.readouterr().out
    their_w = lambda gamma: gamma - 1  # noqa: E731 — Ho & Salimans' form with w = γ − 1 is the same answer
    assert check_guided_score(lambda c, u, g: (1 + their_w(g)) * c - their_w(g) * u)
    assert "Correct!" in capsys.readouterr().out


def test_slips_are_named(capsys):
    cases = {
        "their w is γ − 1": lambda c, u, w: (1 + w) * c - w * u,
        "the sign of the classifier term": lambda c, u, w: u - w * (c - u),
        "weights are swapped": lambda c, u, w: (1 - w) * c + w * u,
        "drops the unconditional score": lambda c, u, w: w * c,
        "is not s(x, y)": lambda c, u, w: u + w * c,
        "only γ ∇log p_t(y | x)": lambda c, u, w: w * (c - u),
        "Start from": lambda c, u, w: c,
    }
    for hint, fn in cases.items():
        assert not check_guided_score(fn)
        assert hint in capsys.readouterr().out, hint


def test_not_attempted_and_bad_shape(capsys):
    def todo(*args):
        raise NotImplementedError
    assert not check_guided_score(todo)
    assert "Not attempted" in capsys.readouterr().out
    assert not check_guided_score(lambda c, u, w: (u + w * (c - u)).sum(-1))
    assert "shape (64, 2)" in capsys.readouterr().out
    assert not check_guided_score(lambda c, u, w: torch.zeros(64, 2).tolist())
    assert "got list" in capsys.readouterr().out
