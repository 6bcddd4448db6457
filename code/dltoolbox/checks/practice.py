"""Checks for the practice assignment (the spread of a list of numbers); the grader's tests use it."""
import statistics

from . import answer, call, expect, hidden_cases, passed

DATA = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]


def exercise_1(variance, hidden=False):
    """Exercise 0.1: the population variance."""
    cases = hidden_cases(__name__, "exercise_1") if hidden else [(DATA, 4.0)]
    for xs, want in cases:
        got = call(variance, list(xs), exercise="0.1")
        expect(isinstance(got, (int, float)) and abs(got - want) < 1e-9,
               f"variance({xs}) should be {want}" if not hidden else "variance(data) should be 4.0",
               "divide by len(xs), not len(xs) - 1")
    return passed("0.1", "hidden cases too" if hidden else "variance(data) = 4.0")


def exercise_2(predicted_factor, variance, hidden=False):
    """Exercise 0.2: the predicted factor matches the measured one."""
    predicted = answer(predicted_factor, exercise="0.2")
    doubled, plain = call(variance, [2 * x for x in DATA], exercise="0.2"), call(variance, list(DATA), exercise="0.2")
    expect(isinstance(predicted, (int, float)) and not isinstance(predicted, bool), "predicted_factor should be a number")
    measured = doubled / plain
    expect(predicted == round(measured), "the prediction does not match the measurement",
           "variance is a mean of squared distances: doubling a distance multiplies its square by 4")
    return passed("0.2", "the predicted factor matches the measured one")


def exercise_3(standardise, hidden=False):
    """Exercise 0.3: numbers shifted to mean 0 and scaled to variance 1."""
    for xs, want in hidden_cases(__name__, "exercise_3") if hidden else [(DATA, None)]:
        z = call(standardise, list(xs), exercise="0.3")
        expect(isinstance(z, list) and len(z) == len(xs) and all(isinstance(v, (int, float)) for v in z),
               "standardise should return one number per input")
        m, v = statistics.fmean(z), statistics.pvariance(z)
        expect(abs(m) < 1e-9, "the standardised numbers should have mean 0", "subtract the mean")
        expect(abs(v - 1) < 1e-9, "the standardised numbers should have variance 1",
               "divide by the standard deviation, the square root of the variance")
        expect(want is None or all(abs(a - b) < 1e-9 for a, b in zip(z, want)), "a hidden case is wrong")
    return passed("0.3", "hidden cases too" if hidden else "mean 0, variance 1")
