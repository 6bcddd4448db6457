"""The judge: a check cell's checker calls, run in the grader's clean process on the student's answers.

The instructor's check cell names checkers (``check.exercise_2(copied_fraction, hidden=True)``). The judge
runs those checkers itself, from the instructor's copy of the package, with stand-ins (:class:`Remote`)
for the student's names: calling one runs the student's function inside the sandbox on the checker's
inputs and brings back the result as plain data. So the points depend only on the answers: whatever the
student's kernel does to ``expect``, to ``builtins``, to the checker or to the probe there changes nothing
here.

Nothing that runs in the kernel is trusted. What crosses from it is a plain-data return value (read by
:func:`answer_of` with :mod:`.plain`: no pickle, no hashing of the student's keys beyond strings and small integers, a size
and a time limit) and, when the student's code raised, the name of the exception. A helper that a checker
runs in the kernel (:func:`dltoolbox.checks.probe`) is the student's code there: the checkers compare its
result with a reference they compute here from the same inputs.

The feedback is the judge's own words: which exercise, whether a visible or a hidden test failed and how
(a wrong answer, which builtin exception, too slow, not implemented), the course's hint for a visible
test. No text of the student's, no exception message, no value the student's code returned is copied
into the gradebook, so a student's code that recognises the judge's hidden cases cannot send them back.
"""
import builtins
import contextlib
import importlib
import io

from .. import checks
from ..checks import ExerciseError
from . import plain
from . import probe as _probe
from .exercises import checker_calls

FAILURES = (ExerciseError, AssertionError)
BUILTIN_ERRORS = frozenset(name for name, kind in vars(builtins).items()
                           if isinstance(kind, type) and issubclass(kind, BaseException))


class Interrupted(BaseException):
    """The student's code ran past its time limit (not an Exception: no checker may swallow it)."""


class Remote:
    """A stand-in for an object in the student's kernel; `channel.request` runs code there."""

    def __init__(self, channel, ref, label):
        self._channel, self._ref, self._label = channel, ref, label

    def __call__(self, *args, **kwargs):
        return self._channel.request({"kind": "call", "target": self._ref, "args": args, "kwargs": kwargs})

    def _dltoolbox_probe(self, helper, args):
        return self._channel.request({"kind": "probe", "target": None, "helper": helper, "args": tuple(args)})

    def _dltoolbox_value(self):
        return self._channel.request({"kind": "value", "target": self._ref})

    def __reduce__(self):
        return _probe.resolve, (self._ref,)

    def __repr__(self):
        return f"<your {self._label}>"


class StudentError(Exception):
    """An exception of the student's code whose class is not one of Python's builtins (its name stays there)."""


def rebuild_error(raised, message=None):
    """The exception the student's code raised, built here: Python's own class when its name is a builtin
    exception's, else :class:`StudentError`; never with the student's message (`message` is ignored)."""
    name = str(raised)
    if name in ("KeyboardInterrupt", "SystemExit"):
        return Interrupted("✗ your code was interrupted")
    kind = getattr(builtins, name, None) if name in BUILTIN_ERRORS else None
    error = None
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            error = kind.__new__(kind)  # no arguments: no text of the student's
            error.args = ()
        except Exception:  # noqa: BLE001
            error = None
    builtin = error is not None
    if error is None:
        error = StudentError()
    error.remote, error.builtin, error.name = True, builtin, name if builtin else None
    return error


# --- reading an answer: plain data only, within limits (see plain.py) ----------------------------

def answer_of(text, handle=None, seconds=None, interrupted=None):
    """The kernel's answer file as plain data, or the student's exception rebuilt here (by name only).

    `seconds` bounds the time spent reading it; `interrupted` is raised when the student's code was
    stopped. Whatever is wrong with the file becomes an :class:`ExerciseError` in the judge's own words.
    """
    try:
        data = plain.parse(text)
        top = plain.tagged(data)
        if top is None or not set(top) <= {"ok", "raised", "builtin", "message"}:
            raise plain.Unreadable("not an answer")
        if "raised" in top:
            error = rebuild_error(top["raised"] if type(top["raised"]) is str else "")
            if isinstance(error, Interrupted):
                raise interrupted or error
            raise error
        return plain.decode(top.get("ok"), handle, seconds)
    except plain.Unreadable as error:
        raise ExerciseError(f"✗ the notebook's answer could not be read ({error})", kind="unreadable") from None


# --- the verdict ---------------------------------------------------------------------------------------

def _cause(error):
    """The student's exception behind `error`, if any (as rebuilt by :func:`rebuild_error`)."""
    seen = 0
    while error is not None and seen < 10:
        if getattr(error, "remote", False):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _how(error):
    """(what the student's code did, the course's hint or None), in the judge's words."""
    if isinstance(error, Interrupted):
        return "ran longer than its time limit and was interrupted (an endless loop?)", None
    kind = getattr(error, "kind", None)
    if kind == "not implemented":
        return "is not implemented yet — replace the `raise NotImplementedError()` with your code", None
    cause = _cause(error)
    if cause is not None:
        if cause.builtin and cause.name == "NotImplementedError":
            return "is not implemented yet — replace the `raise NotImplementedError()` with your code", None
        return (f"raised {cause.name}" if cause.builtin else "raised an exception"), None
    if kind == "unreadable" or (isinstance(error, ExerciseError) and "could not be read" in str(error)):
        return "returned an answer that could not be read as plain data (numbers, strings, lists, dicts, " \
               "arrays, tensors)", None
    if isinstance(error, ExerciseError) and "no answer came back" in str(error):
        return "gave no answer (did the notebook's kernel stop?)", None
    if kind == "raised":  # an exception on the judge's side while calling the student's code
        return f"could not be run by the judge ({getattr(error, 'raised', None) or 'an error'})", None
    if kind == "package":
        return (f"gave what the course's own {error.what} gives, not {error.asked} (the package does not "
                "compute that: it is yours to write)"), None
    if isinstance(error, FAILURES):
        hint = getattr(error, "hint", None)
        return "gave a wrong answer", hint if isinstance(hint, str) else None
    return f"gave an answer the check could not use ({type(error).__name__}: of the wrong type or shape?)", None


def _verdict(error, hidden, fallback):
    exercise, calls = checks.progress()
    label = f"Exercise {exercise}" if exercise else fallback
    how, hint = _how(error)
    if isinstance(error, Interrupted) and not hidden and str(error).startswith("✗ your code ran longer"):
        how = str(error)[len("✗ your code "):]
    verb = "your function" if how.startswith("raised") else "your code"
    if hidden:  # no case, no hint: the hidden tests stay hidden
        return f"✗ {label}: a hidden test failed: {verb} {how} on one of the instructor's cases"
    where = f"visible test, call {calls} of your code" if calls else "visible test"
    return f"✗ {label} ({where}): {verb} {how}" + (f". Hint: {hint}" if hint else "")


def judge(source, channel):
    """Run the check cell's checker calls on the student's answers: (passed, feedback)."""
    calls = checker_calls(source)
    if not calls:
        return False, "this check cell calls no checker from dltoolbox.checks; not graded"
    shown, any_hidden = [], False
    for module, name, args, kwargs, hidden in calls:
        def value(a):
            kind, x = a
            return x if kind == "value" else Remote(channel, ("expr", x), x)
        out = io.StringIO()
        checks.restart()
        try:
            checker = getattr(importlib.import_module(module), name)
            with contextlib.redirect_stdout(out):
                checker(*[value(a) for a in args], **{k: value(v) for k, v in kwargs.items()})
        except (Exception, Interrupted) as error:  # noqa: BLE001 (every failure is the answer's)
            return False, _verdict(error, hidden, f"{module.rsplit('.', 1)[-1]}.{name}")
        any_hidden |= hidden
        if not hidden:  # the course's pass lines (fixed words, no value of the student's)
            shown += [line.strip() for line in out.getvalue().splitlines() if line.strip().startswith("✓")]
    lines = list(dict.fromkeys(shown)) + (["hidden tests passed"] if any_hidden else [])
    return True, "; ".join(lines) or "passed"
