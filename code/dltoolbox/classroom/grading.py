"""The grader: each submission in its own worker process and sandboxed kernel; the points from the judge.

For each submitted notebook the class loop (:func:`grade_folder`, the instructor's process) starts a
worker (:mod:`.workers`) that builds the notebook to run (:mod:`.assemble`: the student's cells, the
instructor's check cells after the solutions they check), runs it in a sandboxed kernel (:mod:`.kernel`,
:mod:`.sandbox`) and, after each check cell, has the judge (:mod:`.judge`) run the instructor's checkers
on the student's answers (:mod:`.notebook`). A check cell earns its points
when every checker in it passes there; what the cell printed in the kernel earns nothing. The worker
hands back rows; the class loop writes the gradebook (atomically) whatever happens to one worker.
"""
import dataclasses
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from ..locations import checkout_path
from ..course.notebooks import notebook_paths
from . import files, sandbox
from .assemble import HIDDEN_BLOCK, SOLUTION_BLOCK, assemble
from .gradebook import FIELDS, spreadsheet_safe, totals, write_gradebook
from .kernel import GradingClient
from .notebook import Limits, blank_rows, grade_notebook
from .text import printable, short
from .workers import Stop, run_worker

MAX_SUBMISSION = 50 << 20
MAX_UNGRADED = 20  # rows listing a student's notebooks that were not graded (then one row counts the rest)
BLANK = {"exercise": "", "points": 0.0, "max_points": 0.0}
__all__ = ["FIELDS", "HIDDEN_BLOCK", "SOLUTION_BLOCK", "GradingClient", "Limits", "assemble", "find_sources",
           "grade_folder", "grade_notebook", "match", "plan", "printable", "spreadsheet_safe", "submissions_in",
           "totals", "write_gradebook"]


def find_sources(sources=None):
    """Instructor notebooks by file name (the name a submission keeps), each a list of paths."""
    found = {}
    for path in notebook_paths(sources or [str(checkout_path("chapters"))]):
        found.setdefault(path.name, []).append(path)
    return found


def match(rel, originals):
    """The instructor notebook for submission `rel` (student/[chapter/]name.ipynb), or a reason why none."""
    candidates = originals.get(rel.name, [])
    if len(candidates) > 1:  # the same name in two chapters: the chapter folder decides
        candidates = [p for p in candidates if p.parent.name in rel.parts[1:-1]]
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, f"no instructor notebook is called {rel.name}; not graded"
    return None, f"{rel.name} is in several chapters; put it in its chapter's folder; not graded"


def submissions_in(folder):
    """(relative path, problem or None) of every .ipynb under `folder`, and of what was not walked (links,
    folders nested too deep or unreadable), sorted; a loop that never follows a symbolic link."""
    return [(Path(*parts), why) for parts, why in files.walk(folder)]


def _place(rel, original):
    """How a copy of `original` at `rel` is preferred: its chapter's folder first, then the student's own."""
    where = rel.parts[1:]
    first = 0 if where == (original.parent.name, original.name) else 1 if len(where) == 1 else 2
    return first, len(where), [os.fsencode(p) for p in where]


def plan(found, originals):
    """(rel, original or None, reason or None) for each entry of :func:`submissions_in`: one notebook per
    instructor notebook and student is graded (see :func:`_place`); the other copies get a reason."""
    matched = []
    for rel, why in found:
        original, reason = match(rel, originals) if why is None and len(rel.parts) >= 2 else (None, why)
        matched.append((rel, original, reason))
    chosen = {}
    for rel, original, _ in matched:
        key = (rel.parts[0], original)
        if original is not None and (key not in chosen or _place(rel, original) < _place(chosen[key], original)):
            chosen[key] = rel
    result = []
    for rel, original, reason in matched:
        graded = chosen.get((rel.parts[0], original)) if original is not None else None
        if graded is not None and graded != rel:
            where = "/".join(files.shown(p) for p in graded.parts[1:])
            original, reason = None, (f"another copy of {original.name}: only {where} is graded "
                                      "(one notebook per assignment); not graded")
        result.append((rel, original, reason))
    return result


def grade_folder(submissions, out="gradebook", sources=None, limits=None, force=False, log=lambda *a: None):
    """Grade SUBMISSIONS/<student>/**/<notebook>.ipynb; write grades.csv, grades.json, executed copies."""
    submissions, out, limits = Path(submissions), Path(out), limits or Limits()
    if not submissions.is_dir() or submissions.is_symlink():
        raise FileNotFoundError(f"no such folder of submissions: {submissions}")
    resolved = submissions.resolve()
    if out.resolve() == resolved or resolved in out.resolve().parents:
        raise ValueError(f"{out}: the gradebook goes outside the submissions folder")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FileExistsError(f"{out} is not a folder: refusing to write a gradebook there")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty: refusing to overwrite a gradebook (pass --force)")
    why_not = sandbox.problem() if limits.sandbox else None
    if why_not:
        raise ValueError(f"no sandbox can be made: {why_not}. Grading runs each student's code; without "
                         "a sandbox it could read the instructor notebooks and other submissions, change files "
                         "and the gradebook, and outlive the grader. Install bubblewrap, or pass "
                         "--unsafe-no-sandbox to grade anyway (only on a throwaway machine or container)")
    originals = find_sources(sources)
    tmp = tempfile.mkdtemp(prefix="dltoolbox-class-")
    if limits.sandbox:
        try:
            os.mkdir(Path(tmp) / "environment")
            why_not = sandbox.environment_problem(Path(tmp) / "environment", _box(limits))
        finally:
            files.remove_tree(Path(tmp) / "environment")
        if why_not:
            files.remove_tree(tmp)
            raise ValueError(f"the sandbox cannot run the course's environment, so every notebook would fail: "
                             f"{why_not}. Keep the Python environment and the course package where the sandbox "
                             "shows them (not under /tmp, nor behind a link there: the sandbox has a /tmp of its "
                             "own); nothing was graded")
    rows, stop, spent, left_out = [], Stop(), {}, {}
    previous = signal.signal(signal.SIGINT, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        for n, (rel, original, why) in enumerate(plan(submissions_in(submissions), originals)):
            student = files.shown(rel.parts[0])
            notebook = "/".join(files.shown(p) for p in rel.parts[1:])
            try:
                if len(rel.parts) < 2:
                    log(printable(f"skipped {files.shown(str(rel))}: put each student's notebooks in a folder named "
                                  "after the student"))
                    continue
                if original is None:  # nothing to run: a reason, at most MAX_UNGRADED of them per student
                    count = left_out[student] = left_out.get(student, 0) + 1
                    if count <= MAX_UNGRADED:
                        rows.append(dict(BLANK, student=student, notebook=notebook, feedback=why))
                        log(printable(f"{student:<12} {notebook:<40} {why}"))
                    continue
                rows += _grade_one(n, rel, original, submissions, out, Path(tmp), limits, stop, spent, log)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # noqa: BLE001 (one notebook must never stop the class's grading)
                log(printable(f"{student}: {notebook}: the grader failed: {type(error).__name__}: {error}"))
                rows.append(dict(BLANK, student=student, notebook=notebook,
                                 feedback=f"the grader failed on this notebook: {short(error, 200)}"))
        for student, count in left_out.items():
            if count > MAX_UNGRADED:
                rows.append(dict(BLANK, student=student, notebook="", feedback=f"and {count - MAX_UNGRADED} more "
                                 "notebooks or folders that were not graded (only the first are listed)"))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        try:
            files.remove_tree(tmp)
        finally:
            write_gradebook(rows, out)
    if stop.stopped:
        raise KeyboardInterrupt
    return rows


def _box(limits):
    return sandbox.Sandbox(memory=limits.memory, processes=limits.processes, disk=limits.disk)


def _grade_one(n, rel, original, submissions, out, tmp, limits, stop, spent, log):
    """The rows of one submitted notebook: read, run in a worker (within the student's time left), the
    executed copy written; whatever fails is this notebook's feedback."""
    student, notebook = files.shown(rel.parts[0]), "/".join(files.shown(p) for p in rel.parts[1:])
    rows = [dict(r, student=student, notebook=notebook) for r in blank_rows(original)]
    if stop.stopped:
        return [dict(r, feedback="not graded: the grading was stopped (Ctrl-C twice)") for r in rows]
    left = limits.student_timeout - spent.get(rel.parts[0], 0.0)
    if left < 1:
        return [dict(r, feedback=f"not graded: this student's notebooks ran {limits.student_timeout} s in all "
                                 "(the limit per student)") for r in rows]
    start, executed = time.perf_counter(), None
    private = tmp / str(n)
    private.mkdir()
    try:
        text = files.read_under(submissions, rel.parts, MAX_SUBMISSION)
        if text is None:
            raise ValueError("the submission could not be read as a regular file")
        own = dataclasses.replace(limits, notebook_timeout=max(1, min(limits.notebook_timeout, int(left))))
        found, executed = run_worker(text, original, own, private, stop)
        found = [dict(r, student=student, notebook=notebook) for r in found]
        if executed is not None:
            try:
                files.write_under(out, ["executed", files.file_name(rel.parts[0]),
                                        *[files.file_name(p) for p in rel.parts[1:]]], executed.read_bytes())
            except OSError as error:
                log(printable(f"{student}: {notebook}: the executed copy could not be written: {error}"))
                found = [dict(r, feedback=f"{r['feedback']}; the executed copy could not be written "
                                          f"({os.strerror(error.errno) if error.errno else error})")
                         for r in found]
        rows = found
    except KeyboardInterrupt:
        rows = [dict(r, points=0.0, feedback="not graded: interrupted (Ctrl-C, or a signal); press Ctrl-C twice "
                     "within 5 s to stop the whole class") for r in rows]
    except Exception as error:  # noqa: BLE001
        log(printable(f"{student}: {notebook}: the grader failed: {type(error).__name__}: {error}"))
        rows = [dict(r, feedback=f"the grader failed on this notebook: {short(error, 200)}") for r in rows]
    finally:
        files.remove_tree(private)
        spent[rel.parts[0]] = spent.get(rel.parts[0], 0.0) + time.perf_counter() - start
    got, best = sum(r["points"] for r in rows), sum(r["max_points"] for r in rows)
    log(printable(f"{student:<12} {notebook:<40} {got:g}/{best:g}  ({time.perf_counter() - start:.1f} s (wall))"))
    return rows
