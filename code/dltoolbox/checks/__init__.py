"""Checks for the exercises: a pass message, or what is wrong and a hint.

Each chapter's checks live in a module named after its idea (``checks/ngram.py`` ...), built on
:func:`expect` and :func:`passed`. A failing check raises :class:`ExerciseError` (an AssertionError,
so nbgrader counts it as a failed test) whose message says what is wrong and how to look for it.

A checker touches the student's work only through :func:`call`, :func:`probe` and :func:`answer`, and
only compares plain results (numbers, arrays, tensors, dicts). The classroom grader relies on it: it
runs the checker in its own clean process and hands it stand-ins for the student's objects, which run
the student's code inside the sandbox and send back plain data (``dltoolbox.classroom``).
Hidden cases (``hidden=True``) come from :func:`hidden_cases`: they are kept on the instructor's side
(``dltoolbox.classroom.hidden``), which the package handed to students does not contain.
"""
import importlib


class ExerciseError(AssertionError):
    """A wrong answer to an exercise."""


def expect(condition, problem, hint=None):
    """Raise ExerciseError with `problem` (and `hint`) unless `condition` holds."""
    if not condition:
        message = f"✗ {problem}"
        if hint:
            message += f"\n  Hint: {hint}"
        raise ExerciseError(message)


class Passed:
    """What a passing check returns: true (``assert check.exercise_1(f)`` holds), and nothing to show.

    A check cell ends with the checker's call, so a plain ``True`` would stand under the printed ✓ line as
    the cell's result; this value displays nothing in IPython or Jupyter.
    """

    __slots__ = ("exercise",)

    def __init__(self, exercise):
        self.exercise = exercise

    def __bool__(self):
        return True

    def __repr__(self):
        return f"Passed({self.exercise!r})"

    def _ipython_display_(self):
        """Shown as nothing: the ✓ line printed by :func:`passed` says it all."""


def passed(exercise, detail=""):
    """Print the pass line for an exercise; return a true value that a notebook cell does not display."""
    print(f"✓ Exercise {exercise} passed" + (f": {detail}" if detail else ""))
    return Passed(exercise)


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


def _remote(args):
    """The grader's stand-in among `args`, if any (it runs code where the student's objects live)."""
    return next((a for a in args if hasattr(type(a), "_dltoolbox_probe")), None)


def probe(helper, *args, exercise=""):
    """Run `helper(*args)` where the student's objects live; it must return plain data."""
    remote = _remote(args)
    if remote is not None:
        return call(lambda *a: type(remote)._dltoolbox_probe(remote, helper, a), *args, exercise=exercise)
    return call(helper, *args, exercise=exercise)


def answer(value, exercise=""):
    """A value the student set (a number, a list ...), as plain data."""
    remote = _remote([value])
    return call(type(remote)._dltoolbox_value, remote, exercise=exercise) if remote is not None else value


def hidden_cases(module, exercise):
    """The instructor's hidden cases of `exercise` in checks module `module`."""
    try:
        hidden = importlib.import_module(f"dltoolbox.classroom.hidden.{module.rsplit('.', 1)[-1]}")
    except ModuleNotFoundError:
        raise ExerciseError("✗ the hidden tests are not part of this copy of the course package: "
                            "the instructor's grader runs them") from None
    return getattr(hidden, exercise)
