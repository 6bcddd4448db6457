"""The student's side of the grader: run one request in the kernel, write the answer as plain data.

The grader writes a request (pickled by the grader, read here), runs ``serve(request, answer)`` in the
kernel and reads the answer file (JSON, see :func:`dltoolbox.classroom.judge.answer_of`). This module runs
in the student's kernel, beside the student's code, which can replace it, or the helpers a request names,
or anything they call: so nothing here is trusted. What comes back is treated as the student's answer
(the return value of the student's function, or of a checker's helper run on the student's objects), and
the judge's checkers compare it with references they compute on their own side from the same inputs.
"""
import json
import pickle

from . import plain

KEPT = {}


def _namespace():
    from IPython import get_ipython
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def resolve(ref):
    """The object a grader's stand-in names: an expression in the notebook, or a value kept earlier."""
    kind, key = ref
    return KEPT[key] if kind == "kept" else eval(key, _namespace())  # noqa: S307 (the student's own names)


def _answer(value):
    try:
        return plain.encode(value)
    except (plain.Unplain, RecursionError, ValueError, OverflowError):
        KEPT[len(KEPT)] = value
        return {"handle": len(KEPT) - 1}


def serve(request, answer):
    try:
        with open(request, "rb") as f:
            req = pickle.load(f)
        if req["kind"] == "value":
            result = resolve(req["target"])
        elif req["kind"] == "call":
            result = resolve(req["target"])(*req["args"], **req["kwargs"])
        else:
            result = req["helper"](*req["args"])
        out = {"ok": _answer(result)}
    except BaseException as error:  # noqa: BLE001 (the grader reports it)
        out = {"raised": type(error).__name__, "builtin": type(error).__module__ == "builtins",
               "message": str(error)[:2000]}
    with open(answer, "w", encoding="utf-8") as f:
        json.dump(out, f, allow_nan=False)
