import numpy as np
import pytest

from dltoolbox.checks import ExerciseError
from dltoolbox.checks import ngram as check


def counts_of(text, vocab):
    index = {c: i for i, c in enumerate(vocab)}
    counts = np.zeros((len(vocab), len(vocab)))
    for a, b in zip(text, text[1:]):
        counts[index[a], index[b]] += 1
    return counts


def bigram_table(text, vocab, d):
    """Absolute discounting, the mass removed spread evenly; a never-followed character gets a uniform row."""
    counts, V = counts_of(text, vocab), len(vocab)
    totals, followers = counts.sum(1, keepdims=True), (counts > 0).sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = (np.maximum(counts - d, 0) + d * followers / V) / totals
    return np.where(totals > 0, table, 1 / V)


def add_k(text, vocab, k):
    counts = counts_of(text, vocab) + k
    return counts / counts.sum(axis=1, keepdims=True)


def copied_fraction(sample, train_text, n):
    seen = {train_text[i:i + n] for i in range(len(train_text) - n + 1)}
    grams = [sample[i:i + n] for i in range(len(sample) - n + 1)]
    return sum(g in seen for g in grams) / len(grams)


def interpolated_log2_probs(models, weights, tokens):
    weights = np.asarray(weights, dtype=float)
    if len(weights) != len(models) or (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
        raise ValueError("one weight per model, each >= 0, summing to 1")
    with np.errstate(divide="ignore"):
        return np.log2(sum(w * 2.0 ** m.log2_probs(tokens) for w, m in zip(weights, models)))


@pytest.mark.parametrize("hidden", [False, True])
def test_reference_solutions_pass(hidden, capsys):
    assert check.exercise_1(bigram_table, hidden=hidden)
    assert check.exercise_2(copied_fraction, hidden=hidden)
    assert check.exercise_3(interpolated_log2_probs, hidden=hidden)
    assert capsys.readouterr().out.count("✓ Exercise 2.") == 3


def test_exercise_1_catches_columns_and_missing_smoothing():
    with pytest.raises(ExerciseError, match="Hint: columns sum to 1 instead"):
        check.exercise_1(lambda t, v, d: bigram_table(t, v, d).T)
    no_d = lambda t, v, d: bigram_table(t, v, 1e-300)  # noqa: E731
    with pytest.raises(ExerciseError, match="0 or negative|differ"):
        check.exercise_1(no_d)

    def no_uniform_rows(text, vocab, d):
        table = bigram_table(text, vocab, d)
        table[counts_of(text, vocab).sum(1) == 0] = 0
        return table

    with pytest.raises(ExerciseError, match="0 or negative"):
        check.exercise_1(no_uniform_rows)
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_1(lambda t, v, k: (_ for _ in ()).throw(NotImplementedError()))


def test_exercise_1_add_k_is_the_package_not_the_answer():
    """Add-k smoothing (the package's NGramModel) is not what exercise 2.1 asks for."""
    with pytest.raises(ExerciseError, match="course's own add-k smoothing") as raised:
        check.exercise_1(add_k)
    assert raised.value.kind == "package"


def test_exercise_1_without_the_hidden_reference(monkeypatch):
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_1(bigram_table)
    with pytest.raises(ExerciseError):
        check.exercise_1(add_k)


def test_exercise_2_catches_distinct_counting_and_off_by_one():
    def distinct(sample, train_text, n):
        seen = {train_text[i:i + n] for i in range(len(train_text) - n + 1)}
        grams = {sample[i:i + n] for i in range(len(sample) - n + 1)}
        return sum(g in seen for g in grams) / len(grams)

    with pytest.raises(ExerciseError, match="repeats included"):
        check.exercise_2(distinct)

    def off_by_one(sample, train_text, n):
        seen = {train_text[i:i + n] for i in range(len(train_text) - n)}
        grams = [sample[i:i + n] for i in range(len(sample) - n + 1)]
        return sum(g in seen for g in grams) / len(grams)

    with pytest.raises(ExerciseError, match="slide a window"):
        check.exercise_2(off_by_one, hidden=True)


def test_exercise_3_catches_mixing_logs_and_unchecked_weights():
    def mixes_logs(models, weights, tokens):
        interpolated_log2_probs(models, weights, tokens)  # validates
        return sum(w * np.nan_to_num(m.log2_probs(tokens), neginf=-1e3) for w, m in zip(weights, models))

    with pytest.raises(ExerciseError, match="mix probabilities, not log probabilities"):
        check.exercise_3(mixes_logs)

    def no_validation(models, weights, tokens):
        with np.errstate(divide="ignore"):
            return np.log2(sum(w * 2.0 ** m.log2_probs(tokens) for w, m in zip(weights, models)))

    with pytest.raises(ExerciseError, match="raise ValueError unless"):
        check.exercise_3(no_validation)
