import math

import pytest
import torch

from dltoolbox.checks import ExerciseError
from dltoolbox.checks import memory as check


def megabyte_scores(T, P):
    if P < 1 or T % P:
        raise ValueError("not a whole number of patches")
    return (T // P) ** 2 + T * P


def longest_window(M, layers, heads, batch=1):
    return math.isqrt(M // (layers * heads * batch * 4))


@torch.no_grad()
def first_affected(model, idx, t):
    changed = idx.clone()
    changed[0, t] = (changed[0, t] + 1) % 256
    a, b = model(idx)[0], model(changed)[0]
    return next((p for p in range(a.shape[1]) if not torch.equal(a[:, p], b[:, p])), None)


def test_reference_solutions_pass(capsys):
    for hidden in (False, True):
        check.exercise_1(megabyte_scores, hidden=hidden)
        check.exercise_2(longest_window, hidden=hidden)
        check.exercise_3(first_affected, hidden=hidden)
    assert capsys.readouterr().out.count("passed") == 6


def test_the_visible_checks_work_without_the_hidden_references(monkeypatch):
    """A student's copy of the package has no references: the visible cases' stored results stand in."""
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_1(megabyte_scores) and check.exercise_2(longest_window) and check.exercise_3(first_affected)
    with pytest.raises(ExerciseError):
        check.exercise_1(lambda T, P: T * T)


def test_the_cases_cover_every_answer_a_shortcut_would_miss():
    # a causal model answers t, a lagged one later, a peeking one earlier, one that reads nothing None
    answers = [(t, first_affected(check._model(kind), check._window(seed), t)) for kind, seed, t in check.VISIBLE_3]
    assert {"same": any(a == t for t, a in answers), "later": any(a is not None and a > t for t, a in answers),
            "earlier": any(a is not None and a < t for t, a in answers),
            "none": any(a is None for _, a in answers)} == dict.fromkeys(("same", "later", "earlier", "none"), True)


@pytest.mark.parametrize("exercise, wrong, message", [
    (check.exercise_1, lambda T, P: T * T, "full attention"),
    (check.exercise_1, lambda T, P: (T // P) ** 2, "count both models"),
    (check.exercise_1, lambda T, P: (T // P) ** 2 + T * P if P else 0, "raise ValueError"),
    (check.exercise_1, lambda T, P: (T / P) ** 2 + T * P, "return an int"),
    (check.exercise_2, lambda M, l, h, b: math.isqrt(M // (l * h * 4)), "batch size"),
    (check.exercise_2, lambda M, l, h, b: math.isqrt(M // (l * h * b * 8)), "4 bytes each"),
    (check.exercise_2, lambda M, l, h, b: math.sqrt(M / (l * h * b * 4)), "return an int"),
    (check.exercise_3, lambda model, idx, t: t, "expected"),
    (check.exercise_3, lambda model, idx, t: None, "expected"),
    (check.exercise_3, lambda model, idx, t: "t", "a position"),
])
def test_wrong_answers_fail_with_a_hint(exercise, wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercise(wrong)
    with pytest.raises(ExerciseError):
        exercise(wrong, hidden=True)


def test_a_tolerance_misses_the_smallest_change(monkeypatch):
    # a comparison with a tolerance calls a changed prediction unchanged: the test is for any change at all
    @torch.no_grad()
    def loose(model, idx, t):
        changed = idx.clone()
        changed[0, t] = (changed[0, t] + 1) % 256
        a, b = model(idx)[0], model(changed)[0]
        return next((p for p in range(a.shape[1]) if not torch.allclose(a[:, p], b[:, p], atol=10.0)), None)
    with pytest.raises(ExerciseError):
        check.exercise_3(loose)


def test_unimplemented_is_a_clear_failure():
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_1(stub)
