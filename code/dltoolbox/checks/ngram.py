"""Checks for the exercises of chapter 2 (n-gram language models)."""
import numpy as np

from . import call, expect, hidden_cases, not_the_package, passed, reference, stored
from .. import ngram


VISIBLE_1 = [("abracadabra", "abcdr", 0.5), ("abracadabra", "abcdrz", 0.9)]  # text, vocabulary, discount d


def _add_k_table(text, vocab, k):
    """The add-k table of the package's NGramModel (what exercise 2.1 does not ask for)."""
    model = ngram.NGramModel(2, "add_k", k=k).fit(text, vocab=vocab)
    order = [model.index[c] for c in vocab]
    return np.stack([model.distribution([c])[order] for c in vocab])


def exercise_1(bigram_table, hidden=False):
    """Exercise 2.1: a bigram table with absolute discounting, rows = previous character, columns = next.

    P(b | a) = (max(c(ab) − d, 0) + d · n(a) / V) / c(a·), n(a) the number of different characters seen
    after a; a row whose character is never followed by anything is uniform.
    """
    cases, reference_table = VISIBLE_1, reference(__name__, "discounted_table")
    if hidden:
        cases = hidden_cases(__name__, "exercise_1")
    wanted = ([reference_table(t, list(v), d) for t, v, d in cases] if reference_table is not None else
              [np.array(w) for w in stored("ngram.exercise_1")])
    for (text, vocab, d), expected in zip(cases, wanted):
        table = np.asarray(call(bigram_table, text, list(vocab), d, exercise="2.1"), dtype=float)
        V = len(vocab)
        expect(table.shape == (V, V), f"for {len(vocab)} symbols the table should be {(V, V)}, got {table.shape}",
               "one row per previous character, one column per next character")
        expect((table > 0).all(), f"d={d}: some entries are 0 or negative",
               "every character gets a share of the mass removed by discounting, seen after a or not")
        rows, cols = table.sum(axis=1), table.sum(axis=0)
        expect(np.allclose(rows, 1.0),
               f"rows should sum to 1 (they sum to {np.round(rows, 3).tolist()})",
               "columns sum to 1 instead? normalise each row: P(next | previous)"
               if np.allclose(cols, 1.0) else "divide by c(a·), the number of times a is followed by something")
        add_k = _add_k_table(text, list(vocab), d)
        not_the_package(np.allclose(table, add_k, atol=1e-9) and not np.allclose(expected, add_k, atol=1e-9), "2.1",
                        "add-k smoothing (ngram.NGramModel(2, 'add_k', k=d))", "absolute discounting")
        worst = np.abs(table - expected).max()
        expect(worst < 1e-9, f"text={text!r}, d={d}: entries differ from absolute discounting by up to {worst:.4f}",
               "subtract d from every count seen (never below 0), spread d × n(a) / c(a·) evenly over the V "
               "characters; a character never followed by anything (the last one, or one not in the text) gets "
               "the uniform row")
    return passed("2.1", "hidden cases too" if hidden else "rows are absolutely discounted bigram distributions")


def exercise_2(copied_fraction, hidden=False):
    """Exercise 2.2: the fraction of a sample's character n-grams found in the training text."""
    # each case: sample, training text, n, the fraction, and the fraction over distinct n-grams (a common slip)
    cases = [("abcabc", "xxabcx", 3, 0.5, 1 / 3), ("hello", "hello world", 5, 1.0, 1.0), ("zzzz", "abc", 2, 0.0, 0.0)]
    if hidden:
        cases = hidden_cases(__name__, "exercise_2")
    for sample, train_text, n, want, distinct in cases:
        got = float(call(copied_fraction, sample, train_text, n, exercise="2.2"))
        hint = ("count every position of the sample, repeats included, not the distinct n-grams"
                if abs(got - distinct) < 1e-12 else
                "slide a window of n characters over the sample (len(sample) - n + 1 windows) "
                "and look each one up in the set of the training text's n-grams")
        expect(abs(got - want) < 1e-12,
               f"copied_fraction({sample!r}, {train_text!r}, {n}) = {got:.4f}, expected {want:.4f}", hint)
    return passed("2.2", "hidden cases too" if hidden else "the copy rate is measured per position")


def exercise_3(interpolated_log2_probs, hidden=False):
    """Exercise 2.3: Jelinek-Mercer interpolation of fitted n-gram models."""
    text, tests, weights_list, odd = "abracadabra alakazam", None, [[0.2, 0.3, 0.5]], "qzq"
    if hidden:
        text, tests, weights_list, odd = hidden_cases(__name__, "exercise_3")
    tests = tests or [text[:8], "zabraq"[1:]]
    vocab = sorted(set(text) | {"q"})
    models = [ngram.NGramModel(n, "none").fit(text, vocab=vocab) for n in (1, 2, 3)]
    uniform = ngram.NGramModel(1, "add_k", k=1e9).fit(text, vocab=vocab)  # as good as uniform
    for weights in weights_list:
        for tokens in tests:
            got = np.asarray(call(interpolated_log2_probs, models, weights, tokens, exercise="2.3"), dtype=float)
            with np.errstate(divide="ignore"):
                want = np.log2(sum(w * 2.0 ** m.log2_probs(tokens) for w, m in zip(weights, models)))
            expect(got.shape == (len(tokens),), f"expected one log2 probability per token ({len(tokens)}), "
                   f"got shape {got.shape}", "return an array with log2 P for each token")
            close = np.isclose(got, want, rtol=0, atol=1e-9) | (np.isneginf(got) & np.isneginf(want))
            expect(close.all(), f"weights {weights}, tokens {tokens!r}: got {np.round(got, 4).tolist()}, "
                   f"expected {np.round(want, 4).tolist()}",
                   "mix probabilities, not log probabilities: log2(sum_i w_i * 2 ** log2 p_i)")
    mixed = call(interpolated_log2_probs, [models[2], uniform], [0.9, 0.1], odd, exercise="2.3")
    expect(np.isfinite(mixed).all(), "mixing with a (near) uniform model should give every token P > 0",
           "the mixture is a sum of probabilities; any positive weight on a positive probability keeps it > 0")
    for bad in ([0.5, 0.6, 0.2], [0.5, 0.5]):
        try:
            interpolated_log2_probs(models, bad, text[:4])
        except ValueError:
            continue
        expect(False, f"weights {bad} were accepted", "raise ValueError unless there is one weight per model, "
               "each >= 0, summing to 1")
    return passed("2.3", "hidden cases too" if hidden else "a proper mixture of the models")
