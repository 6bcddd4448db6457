"""Hidden cases of the practice assignment's checks (dltoolbox.checks.practice)."""

exercise_1 = [([3.0], 0.0), ([1.0, 3.0], 1.0)]
exercise_3 = [([10.0, 20.0], [-1.0, 1.0])]
