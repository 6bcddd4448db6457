"""Hidden cases of the scale checks (dltoolbox.checks.scale)."""

exercise_1 = [("gpt", 12_345), ("embedded", 7)]

exercise_2 = [(123_456, {"a": 7.5, "alpha": 0.076, "c": 1.69}), (50, {"a": 2.0, "alpha": 1.3, "c": 0.0})]

exercise_3 = ([{"N": 50, "tokens": [1_000, 1_000_000], "loss": [3.3, 2.4]},
               {"N": 500, "tokens": [1_000, 100_000], "loss": [3.0, 1.9]},
               {"N": 5_000, "tokens": [100, 20_000], "loss": [3.1, 1.7]},
               {"N": 5_000, "tokens": [100, 20_000], "loss": [3.3, 1.9]}],
              [1e7, 6e7, 1.5e8])
