"""The judge: a check cell's checker calls, run in the grader's clean process on the student's answers.

The instructor's check cell names checkers (``check.exercise_2(copied_fraction, hidden=True)``). The judge
runs those checkers itself, from the instructor's copy of the package, with stand-ins (:class:`Remote`)
for the student's names: calling one runs the student's function inside the sandbox on the checker's
inputs and brings back the result as plain data. So the points depend only on the answers: whatever the
student's kernel does to ``expect``, to ``builtins`` or to the checker there changes nothing here.
"""
import builtins
import contextlib
import importlib
import io
import re

from ..checks import ExerciseError
from . import probe as _probe
from .exercises import checker_calls

FAILURES = (ExerciseError, AssertionError)


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


def rebuild_error(raised, message):
    """An exception of the student's type name, built here (no object of theirs crosses)."""
    if raised in ("KeyboardInterrupt", "SystemExit"):
        return Interrupted(message)
    name = re.sub(r"\W", "", str(raised))[:40] or "Error"
    kind = getattr(builtins, name, None)
    builtin = isinstance(kind, type) and issubclass(kind, Exception)
    if not builtin:
        kind = ExerciseError if name == "ExerciseError" else type(name, (Exception,), {})
    try:
        error = kind(message)
    except Exception:  # noqa: BLE001 (a builtin that wants other arguments)
        error = type(name, (Exception,), {})(message)
    error.remote, error.builtin = True, builtin
    return error


def _short(text, limit=400):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    return text if len(text) <= limit else text[:limit] + " …"


def _why(error):
    if isinstance(error, Interrupted):
        return str(error)
    if isinstance(error, FAILURES) and str(error).strip():
        return _short(error)
    return f"✗ the check could not use your answer ({type(error).__name__}: {_short(error, 200)})"


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
        try:
            checker = getattr(importlib.import_module(module), name)
            with contextlib.redirect_stdout(out):
                checker(*[value(a) for a in args], **{k: value(v) for k, v in kwargs.items()})
        except (Exception, Interrupted) as error:  # noqa: BLE001 (every failure is the answer's)
            if hidden:  # no case, no message of the student's: the hidden tests stay hidden
                cause = error.__cause__ if getattr(error.__cause__, "remote", False) else error
                kind = ("ran longer than its time limit" if isinstance(error, Interrupted) else
                        f"raised {type(cause).__name__}" if getattr(cause, "builtin", False) else
                        "raised an exception" if getattr(cause, "remote", False) else
                        "gave a wrong answer" if isinstance(error, FAILURES) else
                        f"gave an answer the check could not use ({type(error).__name__})")
                return False, f"✗ a hidden test failed: your code {kind} on one of the instructor's cases"
            return False, _why(error)
        any_hidden |= hidden
        if not hidden:
            shown += [line.strip() for line in out.getvalue().splitlines() if line.strip().startswith("✓")]
    lines = list(dict.fromkeys(shown)) + (["hidden tests passed"] if any_hidden else [])
    return True, "; ".join(lines) or "passed"
