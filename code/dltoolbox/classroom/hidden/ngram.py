"""Hidden cases of the n-gram checks (dltoolbox.checks.ngram), and the reference answer of exercise 2.1."""


def copied(sample, train_text, n, distinct=False):
    """The reference answer of exercise 2.2 (the checks module ships only the visible cases' values)."""
    seen = {train_text[i:i + n] for i in range(len(train_text) - n + 1)}
    grams = [sample[i:i + n] for i in range(len(sample) - n + 1)]
    grams = sorted(set(grams)) if distinct else grams
    return sum(g in seen for g in grams) / len(grams)


exercise_2 = [(s, t, n, copied(s, t, n), copied(s, t, n, distinct=True))
              for s, t, n in [("the cat sat on the mat", "a cat on a mat", 4), ("aaaab", "aa", 2),
                              ("the the the", "the", 3), ("abcdefg", "abcdefg", 7)]]

_text = "the cat sat on the mat and the rat sat too"
exercise_3 = (_text, [_text[5:20], "qqq", "the rat"], [[0.6, 0.3, 0.1], [0.0, 0.0, 1.0]], "qqq")


def discounted_table(text, vocab, d):
    """The reference answer of exercise 2.1: the bigram table with absolute discounting, the mass removed
    spread uniformly over the vocabulary; a character never followed by anything gets the uniform row."""
    import numpy as np
    index = {c: i for i, c in enumerate(vocab)}
    counts = np.zeros((len(vocab), len(vocab)))
    for a, b in zip(text, text[1:]):
        counts[index[a], index[b]] += 1
    V = len(vocab)
    totals, followers = counts.sum(1, keepdims=True), (counts > 0).sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = (np.maximum(counts - d, 0.0) + d * followers / V) / totals
    return np.where(totals > 0, table, 1.0 / V)


exercise_1 = [("the cat sat on the mat", sorted(set("the cat sat on the mat")) + ["q"], 0.5),
              ("aaaa", "ab", 0.75), ("abcabcaab", "abcd", 1.0)]


def visible_results():
    from ...checks import ngram
    return {"ngram.exercise_1": [discounted_table(t, list(v), d).tolist() for t, v, d in ngram.VISIBLE_1]}
