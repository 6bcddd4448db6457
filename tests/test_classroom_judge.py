"""The judge on the chapters' own checkers: each check cell's checker calls, visible and hidden, run in this
process on answers that come back as plain data, as from a sandboxed kernel (here the "kernel" is a
namespace in this process, holding the chapter's own solutions)."""
import ast
import json
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import ROOT
from dltoolbox import attention, fewshot, frozen, games, imitation, ngram, seq2seq, transfer, translation
from dltoolbox.classroom import exercises, judge, probe
from dltoolbox.classroom.kernel import Channel

CHAPTERS = ROOT / "chapters"
NEEDS_NOTEBOOK = {"seq2seq-ex2-check", "replays-ex6-check", "frozen-ex3-check", "lminit-ex3-check"}  # trained models


class LocalChannel(Channel):
    """The grader's channel, with a namespace of this process standing in for the student's kernel."""

    def __init__(self, namespace, tmp_path):
        self.namespace, self.folder, self.n = namespace, tmp_path, 0

    def request(self, req):
        self.n += 1
        ask, answer = self.folder / f"request-{self.n}.pkl", self.folder / f"answer-{self.n}.json"
        ask.write_bytes(pickle.dumps(req))
        probe.serve(str(ask), str(answer))
        return self.answer(answer.read_text(), False, 60)


def cells(path):
    nb = json.loads(path.read_text())
    return [(exercises.nbgrader_meta(c), "".join(c["source"])) for c in nb["cells"] if exercises.nbgrader_meta(c)]


def namespace(path):
    """The notebook's imports (every import statement of its code cells), and the package's usual names."""
    nb = json.loads(path.read_text())
    ns = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            try:
                tree = ast.parse("".join(cell["source"]))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    try:
                        exec(compile(ast.Module([node], []), str(path), "exec"), ns)
                    except Exception:  # noqa: BLE001
                        pass
    ns.update({"torch": torch, "nn": nn, "F": F, "np": np, "math": math, "games": games, "imitation": imitation,
          "attention": attention, "fewshot": fewshot, "frozen": frozen, "transfer": transfer, "ngram": ngram,
          "s2s": seq2seq, "seq2seq": seq2seq, "tr": translation, "translation": translation})
    return ns


NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*/*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_chapters_solutions_pass_the_judge_and_stubs_do_not(path, tmp_path, monkeypatch):
    ns = namespace(path)
    monkeypatch.setattr(probe, "_namespace", lambda: ns)
    judged = 0
    for meta, source in cells(path):
        if meta.get("solution"):
            try:
                exec(source, ns)
            except Exception:  # noqa: BLE001 (a solution that needs the notebook's earlier cells)
                continue
        elif meta.get("grade") and meta["grade_id"] not in NEEDS_NOTEBOOK:
            names = {a[1] for _, _, args, _, _ in exercises.checker_calls(source) for a in args if a[0] == "name"}
            if not names <= set(ns):
                continue
            ok, feedback = judge.judge(source, LocalChannel(ns, tmp_path))
            assert ok, (meta["grade_id"], feedback)
            assert "hidden tests passed" in feedback
            stub = dict(ns)
            for name in names:
                stub[name] = lambda *args, **kwargs: 0.0
            monkeypatch.setattr(probe, "_namespace", lambda: stub)
            ok, feedback = judge.judge(source, LocalChannel(stub, tmp_path))
            monkeypatch.setattr(probe, "_namespace", lambda: ns)
            assert not ok and feedback.startswith("✗"), (meta["grade_id"], feedback)
            judged += 1
    assert judged >= 1, "at least one exercise of each notebook is judged here"


def test_answers_cross_as_plain_data_only():
    from dltoolbox.classroom import plain

    value = {1: (np.arange(3, dtype=np.int64), torch.ones(2, 2, requires_grad=True)), "x": [float("nan"), None]}
    back = plain.loads(plain.dumps(value))
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
