"""Hidden cases of the checks on learning from replays (dltoolbox.checks.replays)."""

exercise_1 = [(1, 3), (399, 400), (45, 60)]
exercise_2 = (7, [500.0])  # seed, extra values of beta
exercise_3 = (11, 40)      # random positions: seed, number
exercise_4 = 5             # seeds
exercise_5 = 9
exercise_6 = 4
