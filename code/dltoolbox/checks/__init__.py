"""Checks for the exercises: a pass message, or what is wrong and a hint.

Each chapter's checks live in a module named after its idea (``checks/ngram.py`` ...), built on
:func:`expect` and :func:`passed`. A failing check raises :class:`ExerciseError` (an AssertionError,
so nbgrader counts it as a failed test) whose message says what is wrong and how to look for it.
"""


class ExerciseError(AssertionError):
    """A wrong answer to an exercise."""


def expect(condition, problem, hint=None):
    """Raise ExerciseError with `problem` (and `hint`) unless `condition` holds."""
    if not condition:
        message = f"✗ {problem}"
        if hint:
            message += f"\n  Hint: {hint}"
        raise ExerciseError(message)


def passed(exercise, detail=""):
    """Print the pass line for an exercise and return True."""
    print(f"✓ Exercise {exercise} passed" + (f": {detail}" if detail else ""))
    return True


def call(function, *args, exercise="", **kwargs):
    """Call a student's function; an exception or a missing implementation becomes a clear failure."""
    if not callable(function):
        raise ExerciseError(f"✗ Exercise {exercise}: expected a function, got {type(function).__name__}")
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseError(f"✗ Exercise {exercise}: not implemented yet — replace the "
                            "`raise NotImplementedError()` with your code") from None
    except ExerciseError:
        raise
    except Exception as error:
        raise ExerciseError(f"✗ Exercise {exercise}: your function raised "
                            f"{type(error).__name__}: {error}") from error
