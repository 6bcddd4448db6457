"""The judge on the chapters' own checkers: each check cell's checker calls, visible and hidden, run in this
process on answers that come back as plain data, as from a sandboxed kernel (here the "kernel" is a
namespace in this process). The instructor's solutions earning full marks, in a kernel of their own, and
what a student may do to the kernel are in test_classroom_trust.py."""
import json
import math
import pickle

import numpy as np
import pytest
import torch

from conftest import ROOT
from dltoolbox.classroom import exercises, judge, probe
from dltoolbox.classroom.kernel import Channel

CHAPTERS = ROOT / "chapters"


class LocalChannel(Channel):
    """The grader's channel, with a namespace of this process standing in for the student's kernel."""

    def __init__(self, namespace, tmp_path):
        self.namespace, self.folder, self.n = namespace, tmp_path, 0

    def request(self, req):
        self.n += 1
        ask, answer = self.folder / f"request-{self.n}.pkl", self.folder / f"answer-{self.n}.json"
        ask.write_bytes(pickle.dumps(req))
        probe.serve(str(ask), str(answer))
        return judge.answer_of(answer.read_text(), handle=lambda key: judge.Remote(self, ("kept", key), "value"),
                               seconds=60)


NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*/*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stubs_earn_nothing_and_say_how(path, tmp_path, monkeypatch):
    """Every check cell of every chapter, its student's names all answering 0.0: a failure in the judge's words."""
    nb = json.loads(path.read_text())
    judged = 0
    for cell in nb["cells"]:
        meta = exercises.nbgrader_meta(cell)
        if not exercises.is_check(cell):
            continue
        source = "".join(cell["source"])
        names = {a[1] for _, _, args, _, _ in exercises.checker_calls(source) for a in args if a[0] == "name"}
        stub = {name: (lambda *args, **kwargs: 0.0) for name in names}
        monkeypatch.setattr(probe, "_namespace", lambda: stub)
        ok, feedback = judge.judge(source, LocalChannel(stub, tmp_path))
        assert not ok and feedback.startswith("✗ Exercise "), (meta["grade_id"], feedback)
        assert "(visible test" in feedback and "0.0" not in feedback, feedback
        judged += 1
    assert judged >= 1, "every chapter notebook has exercises"


def test_answers_cross_as_plain_data_only():
    from dltoolbox.classroom import plain

    value = {1: (np.arange(3, dtype=np.int64), torch.ones(2, 2, requires_grad=True)), "x": [float("nan"), None]}
    for back in (plain.loads(plain.dumps(value)), judge.answer_of(json.dumps({"ok": plain.encode(value)}))):
        assert isinstance(back[1][0], np.ndarray) and back[1][0].tolist() == [0, 1, 2]
        assert torch.equal(back[1][1].detach(), torch.ones(2, 2)) and back[1][1].requires_grad
        assert math.isnan(back["x"][0]) and back["x"][1] is None

    class Anything(float):
        def __eq__(self, other):
            return True
    assert type(plain.loads(plain.dumps([1.0]))[0]) is float
    with pytest.raises(plain.Unplain):
        plain.encode(Anything(2.0))  # a subclass is not plain data: it stays in the kernel
    for bad in ['{"tensor": "object", "shape": [1], "grad": false, "data": [1]}', '{"eval": "1"}',
                '{"ndarray": "float64", "shape": [3], "data": [1]}']:
        with pytest.raises(ValueError):
            plain.loads(bad)
        with pytest.raises(judge.ExerciseError, match="could not be read"):
            judge.answer_of(json.dumps({"ok": json.loads(bad)}))


def test_the_student_s_exceptions_are_rebuilt_by_name_only():
    error = judge.rebuild_error("ValueError", "the hidden case was [3.0]")
    assert type(error) is ValueError and str(error) == "" and error.remote and error.builtin
    for name in ("ExerciseError", "LEAKED_3_1_3", "AssertionError ", ""):
        error = judge.rebuild_error(name, "a message")
        assert type(error) is judge.StudentError and not error.builtin and error.name is None and str(error) == ""
    assert isinstance(judge.rebuild_error("KeyboardInterrupt"), judge.Interrupted)
    with pytest.raises(ZeroDivisionError) as info:
        judge.answer_of(json.dumps({"raised": "ZeroDivisionError", "builtin": True, "message": "SECRET"}))
    assert "SECRET" not in str(info.value)
    with pytest.raises(judge.Interrupted, match="stopped"):
        judge.answer_of(json.dumps({"raised": "SystemExit"}), interrupted=judge.Interrupted("stopped"))
