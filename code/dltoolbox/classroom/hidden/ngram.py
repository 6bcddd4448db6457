"""Hidden cases of the n-gram checks (dltoolbox.checks.ngram)."""

exercise_1 = [("the cat sat on the mat", sorted(set("the cat sat on the mat")) + ["q"], 0.5),
              ("aaaa", "ab", 2.0)]



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
