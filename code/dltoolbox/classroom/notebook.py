"""Grading one submitted notebook: assemble it, run it in its sandbox, the judge's verdict per check."""
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .assemble import assemble, grade_id
from .exercises import is_check, is_solution, nbgrader_meta
from .files import remove_tree
from .judge import BUILTIN_ERRORS
from .kernel import execute
from .text import printable, short


@dataclass
class Limits:
    """Time (seconds), output and sandbox limits for grading one notebook."""
    timeout: int = 60             # per exercise cell (solution and check cells), and per checker request
    cell_timeout: int = 600       # per other cell (the chapter's own training, ...)
    notebook_timeout: int = 1800  # all cells together
    max_output: int = 100_000     # characters of output kept per cell
    sandbox: bool = True          # False only with --unsafe-no-sandbox
    memory: int = 8 << 30         # bytes of address space in the sandbox
    processes: int = 256          # processes in the sandbox
    disk: int = 1 << 30           # bytes of files in the sandbox's folder, and as many in its /tmp
    student_timeout: int = 3600   # seconds for all of one student's notebooks together


def grade_notebook(text, source_path, limits=None, folder=None):
    """Grade one submitted notebook (its text) against its instructor notebook: (rows, the executed notebook).
    The grader's files for its kernel go in a new folder in `folder` (default: the temporary folder)."""
    limits = limits or Limits()
    source = nbformat.read(source_path, as_version=4)
    checks = [c for c in source.cells if is_check(c)]
    blank = [{"exercise": grade_id(c), "points": 0.0, "max_points": float(nbgrader_meta(c).get("points", 0))}
             for c in checks]
    try:
        json.loads(text)
        nb, notes, judged = assemble(nbformat.reads(text, as_version=4), source)
    except json.JSONDecodeError as error:
        return [dict(row, feedback=f"the file is not valid JSON ({error}); nothing was graded")
                for row in blank], None
    except Exception as error:
        reason = f"not a readable notebook ({type(error).__name__}: {short(error, 160)}); nothing was graded"
        return [dict(row, feedback=reason) for row in blank], None
    data = [extra for extra in Path(source_path).parent.iterdir()  # the chapter's data files, not its notebooks
            if extra.is_file() and not extra.is_symlink() and extra.suffix not in (".ipynb", ".md")]
    workdir = tempfile.mkdtemp(prefix="dltoolbox-grade-", dir=folder)
    try:
        client, problem = execute(nb, judged, workdir, limits, data)
    finally:
        remove_tree(workdir)
    rows, trouble = [], None
    for index, cell in enumerate(nb.cells):
        reply = client.replies.get(index)
        if is_solution(cell):
            trouble = None
            if reply and reply.get("ename") == "NotImplementedError":
                trouble = "not answered: your solution cell still raises NotImplementedError"
            elif reply and reply.get("status") == "error":
                name = reply.get("ename")  # never its message: the student's text stays out of the gradebook
                trouble = f"your solution cell raised {name if name in BUILTIN_ERRORS else 'an exception'}"
        if index not in judged:
            continue
        gid, points = grade_id(cell), float(nbgrader_meta(cell).get("points", 0))
        verdict = client.verdicts.get(index)
        if verdict is None:
            ok, feedback = False, f"not run: {problem or 'an earlier cell stopped the notebook'}"
        else:
            ok, feedback = verdict
            if not ok and trouble and trouble[-len(feedback):] != feedback:
                feedback = f"{feedback} ({trouble})"
        cut = {index, index - 1} & client.cut
        extra = notes.get(gid, []) + (["very long output was cut"] if cut else [])
        rows.append({"exercise": gid, "points": points if ok else 0.0, "max_points": points,
                     "feedback": printable("; ".join([feedback] + extra))})
    graded = {r["exercise"]: r for r in rows}
    return [graded.get(r["exercise"]) or dict(r, feedback=f"not run: {problem or 'the check was not reached'}")
            for r in blank], nb


def blank_rows(source_path):
    """A row per check of the instructor notebook (one row if that notebook cannot be read)."""
    try:
        source = nbformat.read(source_path, as_version=4)
        rows = [{"exercise": grade_id(c), "points": 0.0, "max_points": float(nbgrader_meta(c).get("points", 0))}
                for c in source.cells if is_check(c)]
    except Exception:  # noqa: BLE001
        rows = []
    return rows or [{"exercise": "", "points": 0.0, "max_points": 0.0}]
