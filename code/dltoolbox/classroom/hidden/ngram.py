"""Hidden cases of the n-gram checks (dltoolbox.checks.ngram)."""

exercise_1 = [("the cat sat on the mat", sorted(set("the cat sat on the mat")) + ["q"], 0.5),
              ("aaaa", "ab", 2.0)]

exercise_2 = [("the cat sat on the mat", "a cat on a mat", 4), ("aaaab", "aa", 2),
              ("the the the", "the", 3), ("abcdefg", "abcdefg", 7)]

_text = "the cat sat on the mat and the rat sat too"
exercise_3 = (_text, [_text[5:20], "qqq", "the rat"], [[0.6, 0.3, 0.1], [0.0, 0.0, 1.0]], "qqq")
