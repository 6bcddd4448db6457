import pytest

from dltoolbox import scaling
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import scale as check


def flops(model, tokens):
    return 6 * scaling.non_embedding_parameters(model) * tokens


def predict(N, fit):
    return fit["a"] * N ** (-fit["alpha"]) + fit["c"]


def best(runs, budget):
    return scaling.compute_optimal(runs, budget)["best_N"]


def test_reference_solutions_pass(capsys):
    for hidden in (False, True):
        check.exercise_1(flops, hidden=hidden)
        check.exercise_2(predict, hidden=hidden)
        check.exercise_3(best, hidden=hidden)
    assert capsys.readouterr().out.count("passed") == 6


@pytest.mark.parametrize("exercise, wrong, message", [
    (check.exercise_1, lambda m, t: 6 * sum(p.numel() for p in m.parameters()) * t, "nn.Embedding"),
    (check.exercise_1, lambda m, t: 2 * scaling.non_embedding_parameters(m) * t, "6 = 2"),
    (check.exercise_1, lambda m, t: "many", "return a number"),
    (check.exercise_2, lambda N, f: f["a"] * N ** f["alpha"] + f["c"], "exponent is −α"),
    (check.exercise_2, lambda N, f: f["a"] * N ** (-f["alpha"]), r"a \* N \*\* \(-alpha\)"),
    (check.exercise_3, lambda runs, C: min(r["N"] for r in runs), "compare the runs. losses"),
    (check.exercise_3, lambda runs, C: max(r["N"] for r in runs), "compare the runs. losses"),
])
def test_wrong_answers_fail_with_a_hint(exercise, wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercise(wrong)


def test_unimplemented_is_a_clear_failure():
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_1(stub)
