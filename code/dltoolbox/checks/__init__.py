"""Checks for the exercises: a pass message, or what is wrong and a hint.

Each chapter's checks live in a module named after its idea (``checks/ngram.py`` ...), built on
:func:`expect` and :func:`passed`. A failing check raises :class:`ExerciseError` (an AssertionError,
so nbgrader counts it as a failed test) whose message says what is wrong and how to look for it.

A checker touches the student's work only through :func:`call`, :func:`probe` and :func:`answer`, and
only compares plain results (numbers, arrays, tensors, dicts) with a reference of its own. The classroom
grader relies on it: it runs the checker in its own clean process and hands it stand-ins for the
student's objects, which run the student's code inside the sandbox and send back plain data
(``dltoolbox.classroom``). Whatever comes back is the student's: a helper that :func:`probe` runs beside
the student's objects runs where the student's code runs, so its result is compared with a reference the
checker computes itself from the same inputs, never trusted.

Hidden cases (``hidden=True``) come from :func:`hidden_cases`, and the reference answers of exercises whose
answer the package does not hold from :func:`reference`: both are kept on the instructor's side
(``dltoolbox.classroom.hidden``), which the package handed to students does not contain. Without them a
visible check compares with the results stored for its fixed cases (:data:`~.expected.EXPECTED`) or, on the
notebook's own models, checks what it can.
"""
import importlib
import threading


class ExerciseError(AssertionError):
    """A wrong answer to an exercise.

    `hint` is the hint alone (fixed words of the course, never a value of the student's); `kind` says what
    went wrong: "wrong" (a wrong answer), "raised" (the student's code raised), "not implemented", "not
    callable"; `raised` is the name of the exception the student's code raised, if any.
    """

    def __init__(self, message="", hint=None, kind="wrong", raised=None):
        super().__init__(message)
        self.hint, self.kind, self.raised = hint, kind, raised


def expect(condition, problem, hint=None):
    """Raise ExerciseError with `problem` (and `hint`) unless `condition` holds."""
    if not condition:
        message = f"✗ {problem}"
        if hint:
            message += f"\n  Hint: {hint}"
        raise ExerciseError(message, hint=hint)


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
    """Print the pass line for an exercise; return a true value that a notebook cell does not display.

    `detail` is fixed words of the course (the grader copies the line into the gradebook): never a value
    the student's code returned.
    """
    print(f"✓ Exercise {exercise} passed" + (f": {detail}" if detail else ""))
    return Passed(exercise)


_progress = threading.local()  # the exercise being checked and how often the student's code was called


def progress():
    """(exercise, calls of the student's code) since :func:`restart` in this thread (the judge's record)."""
    return getattr(_progress, "exercise", ""), getattr(_progress, "calls", 0)


def restart():
    _progress.exercise, _progress.calls = "", 0


def call(function, *args, exercise="", **kwargs):
    """Call a student's function; an exception or a missing implementation becomes a clear failure."""
    _progress.exercise = exercise or getattr(_progress, "exercise", "")
    _progress.calls = getattr(_progress, "calls", 0) + 1
    if not callable(function):
        raise ExerciseError(f"✗ Exercise {exercise}: expected a function, got {type(function).__name__}",
                            kind="not callable")
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseError(f"✗ Exercise {exercise}: not implemented yet — replace the "
                            "`raise NotImplementedError()` with your code", kind="not implemented") from None
    except ExerciseError:
        raise
    except Exception as error:
        raise ExerciseError(f"✗ Exercise {exercise}: your function raised {type(error).__name__}: {error}",
                            kind="raised", raised=type(error).__name__) from error


def is_remote(value):
    """Whether `value` is the grader's stand-in for an object in the student's kernel."""
    return hasattr(type(value), "_dltoolbox_probe")


def _remote(args):
    """The grader's stand-in among `args`, if any (it runs code where the student's objects live)."""
    return next((a for a in args if is_remote(a)), None)


def probe(helper, *args, exercise=""):
    """Run `helper(*args)` where the student's objects live; it must return plain data.

    Under the grader the helper runs in the student's kernel, where the student's code may have replaced
    it: its result is the student's answer, to be compared with a reference, never trusted.
    """
    remote = _remote(args)
    if remote is not None:
        return call(lambda *a: type(remote)._dltoolbox_probe(remote, helper, a), *args, exercise=exercise)
    return call(helper, *args, exercise=exercise)


def answer(value, exercise=""):
    """A value the student set (a number, a list ...), as plain data."""
    remote = _remote([value])
    return call(type(remote)._dltoolbox_value, remote, exercise=exercise) if remote is not None else value


def _hidden(module):
    return importlib.import_module(f"dltoolbox.classroom.hidden.{module.rsplit('.', 1)[-1]}")


def hidden_cases(module, exercise):
    """The instructor's hidden cases of `exercise` in checks module `module`."""
    try:
        hidden = _hidden(module)
    except ModuleNotFoundError:
        raise ExerciseError("✗ the hidden tests are not part of this copy of the course package: "
                            "the instructor's grader runs them") from None
    return getattr(hidden, exercise)


def reference(module, name):
    """The instructor's reference answer `name` of checks module `module`, or None in a student's copy."""
    try:
        return getattr(_hidden(module), name, None)
    except ModuleNotFoundError:
        return None


def stored(key):
    """The stored results of a visible check (:data:`~.expected.EXPECTED`)."""
    from .expected import EXPECTED
    return EXPECTED[key]


def not_the_package(same, exercise, what, asked):
    """Fail with a clear line when the answer is what the course's own `what` gives, not what the exercise asks.

    The exercises whose neighbour the package holds ask for something it does not compute; an answer
    that equals the package's result on a case where the two differ is the package's, not the exercise's.
    """
    if same:
        error = ExerciseError(f"✗ Exercise {exercise}: your answer is what the course's own {what} gives; the "
                              f"exercise asks for {asked}, which the package does not compute",
                              hint=f"{what} answers another question: {asked} is yours to write", kind="package")
        error.what, error.asked = what, asked
        raise error
