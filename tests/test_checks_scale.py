import math

import numpy as np
import pytest
import torch

from dltoolbox import scaling
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import scale as check


def flops(model, tokens):
    embedded = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return 6 * sum(p.numel() for p in model.parameters() if p.dim() >= 2 and id(p) not in embedded) * tokens


def size_for_loss(L, fit):
    if L <= fit["c"]:
        raise ValueError("the law never gets there")
    return (fit["a"] / (L - fit["c"])) ** (1 / fit["alpha"])


def isoflop_optimum(runs, budget):
    sizes, losses = [], []
    for N in sorted({r["N"] for r in runs}):
        values = [scaling.loss_at_tokens(r, budget / (6 * N)) for r in runs if r["N"] == N]
        if all(v is not None for v in values):
            sizes.append(N)
            losses.append(sum(values) / len(values))
    if len(sizes) < 3:
        return None
    a, b, _ = np.polyfit(np.log(sizes), losses, 2)
    return math.exp(-b / (2 * a)) if a > 0 else None


def test_reference_solutions_pass(capsys):
    for hidden in (False, True):
        check.exercise_1(flops, hidden=hidden)
        check.exercise_2(size_for_loss, hidden=hidden)
        check.exercise_3(isoflop_optimum, hidden=hidden)
    assert capsys.readouterr().out.count("passed") == 6


def test_the_visible_checks_work_without_the_hidden_references(monkeypatch):
    """A student's copy of the package has no references: the visible cases' stored results stand in."""
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_1(flops) and check.exercise_2(size_for_loss) and check.exercise_3(isoflop_optimum)
    with pytest.raises(ExerciseError):
        check.exercise_1(lambda m, t: 6 * scaling.non_embedding_parameters(m) * t)


@pytest.mark.parametrize("exercise, wrong, message", [
    (check.exercise_1, lambda m, t: 6 * sum(p.numel() for p in m.parameters()) * t, "course's own|nn.Embedding"),
    (check.exercise_1, lambda m, t: 2 * flops(m, t) / 6, "6 = 2"),
    (check.exercise_1, lambda m, t: "many", "return a number"),
    (check.exercise_2, lambda L, f: (f["a"] / (L + f["c"])) ** (1 / f["alpha"]), r"N = \(a / \(L − c\)\)"),
    (check.exercise_2, lambda L, f: abs(size_for_loss(L, f)) if L > f["c"] else 1.0, "raise ValueError"),
    (check.exercise_3, lambda runs, C: min(r["N"] for r in runs), "np.polyfit"),
    (check.exercise_3, lambda runs, C: isoflop_optimum(runs, C) or 1.0, "fewer than 3 sizes"),
])
def test_wrong_answers_fail_with_a_hint(exercise, wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercise(wrong)


@pytest.mark.parametrize("exercise, package_call", [
    (check.exercise_1, lambda model, tokens: 6 * scaling.non_embedding_parameters(model) * tokens),
    (check.exercise_2, lambda L, fit: float(scaling.power_law(L, fit["a"], fit["alpha"], fit["c"]))),
    (check.exercise_3, lambda runs, budget: scaling.compute_optimal(runs, budget)["best_N"]),
])
def test_one_call_of_the_package_earns_nothing(exercise, package_call):
    with pytest.raises(ExerciseError) as raised:
        exercise(package_call, hidden=True)
    assert raised.value.kind == "package" and "course's own" in str(raised.value)


def test_unimplemented_is_a_clear_failure():
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_1(stub)
