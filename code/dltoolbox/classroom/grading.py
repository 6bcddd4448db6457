"""The grader: each submission in its own worker process and sandboxed kernel; the points from the judge.

For each submitted notebook the class loop (:func:`grade_folder`, the instructor's process) starts a
worker (:mod:`.workers`) that builds the notebook to run (:mod:`.assemble`: the student's cells, the
instructor's check cells after the solutions they check), runs it in a sandboxed kernel (:mod:`.kernel`,
:mod:`.sandbox`) and, after each check cell, has the judge (:mod:`.judge`) run the instructor's checkers
on the student's answers (:mod:`.notebook`). A check cell earns its points
when every checker in it passes there; what the cell printed in the kernel earns nothing. The worker
hands back rows; the class loop writes the gradebook (atomically) whatever happens to one worker.
"""
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from pathlib import Path

from ..locations import checkout_path
from ..notebooks import notebook_paths
from . import sandbox
from .assemble import HIDDEN_BLOCK, SOLUTION_BLOCK, assemble
from .gradebook import FIELDS, spreadsheet_safe, totals, write_atomic, write_gradebook
from .kernel import GradingClient, read_regular
from .notebook import Limits, blank_rows, grade_notebook
from .text import printable, short
from .workers import Stop, run_worker

MAX_SUBMISSION = 50 << 20
__all__ = ["FIELDS", "HIDDEN_BLOCK", "SOLUTION_BLOCK", "GradingClient", "Limits", "assemble", "find_sources",
           "grade_folder", "grade_notebook", "match", "printable", "spreadsheet_safe", "submissions_in", "totals",
           "write_gradebook"]


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
    """(relative path, problem or None) of every .ipynb under `folder`, never following a symbolic link."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs):
            if os.path.islink(os.path.join(top, name)):
                dirs.remove(name)
                found.append((Path(top, name).relative_to(folder), "the folder is a symbolic link; not graded"))
            elif name in (".ipynb_checkpoints", "__pycache__"):
                dirs.remove(name)
        dirs.sort()
        for name in files:
            path = Path(top, name)
            if not name.endswith(".ipynb"):
                continue
            info = os.lstat(path)
            why = ("the submission is a symbolic link; it was not read or graded" if stat.S_ISLNK(info.st_mode) else
                   None if stat.S_ISREG(info.st_mode) else "the submission is not a regular file; not graded")
            found.append((path.relative_to(folder), why))
    return sorted(found)


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
    rows, stop = [], Stop()
    previous = signal.signal(signal.SIGINT, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        with tempfile.TemporaryDirectory(prefix="dltoolbox-class-") as tmp:
            os.chmod(tmp, 0o700)
            for n, (rel, why) in enumerate(submissions_in(submissions)):
                student, notebook = rel.parts[0], "/".join(rel.parts[1:])
                if len(rel.parts) < 2:
                    log(printable(f"skipped {rel}: put each student's notebooks in a folder named after the student"))
                    continue
                row = {"exercise": "", "points": 0.0, "max_points": 0.0}
                if stop.stopped:
                    rows.append(dict(row, student=student, notebook=notebook,
                                     feedback="not graded: the grading was stopped (Ctrl-C twice)"))
                    continue
                start = time.perf_counter()
                original, reason = match(rel, originals) if why is None else (None, why)
                found, executed = [dict(row, feedback=reason)], None
                if original is not None:
                    private = Path(tmp) / str(n)
                    private.mkdir()
                    try:
                        text = read_regular(submissions / rel, MAX_SUBMISSION)
                        if text is None:
                            raise ValueError("the submission could not be read as a regular file")
                        found, executed = run_worker(text, original, limits, private, stop)
                    except KeyboardInterrupt:
                        found = [dict(r, points=0.0, feedback="not graded: interrupted (Ctrl-C, or a signal); "
                                 "press Ctrl-C twice within 5 s to stop the whole class")
                                 for r in blank_rows(original)]
                    except Exception as error:  # one notebook must never stop the class's grading
                        log(printable(f"{student}: {notebook}: the grader failed: {type(error).__name__}: {error}"))
                        found = [dict(r, feedback=f"the grader failed on this notebook: {short(error, 200)}")
                                 for r in blank_rows(original)]
                    if executed is not None:
                        write_atomic(out / "executed" / student / notebook, executed.read_bytes(), out)
                    shutil.rmtree(private, ignore_errors=True)
                rows += [dict(r, student=student, notebook=notebook) for r in found]
                got, best = sum(r["points"] for r in found), sum(r["max_points"] for r in found)
                log(printable(f"{student:<12} {notebook:<40} {got:g}/{best:g}  "
                              f"({time.perf_counter() - start:.1f} s (wall))"))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        write_gradebook(rows, out)
    if stop.stopped:
        raise KeyboardInterrupt
    return rows
