"""Autograder: run each submitted notebook in a fresh kernel with the instructor's checks and hidden tests.

A submission is read, never written: its cells are copied into a new notebook in which every check cell
(nbgrader ``grade: true``) and every locked cell is replaced by the instructor's version (hidden tests
included), missing graded cells are put back, and the result runs in a fresh kernel in a scratch folder.
A check cell that runs without an error earns its points (nbgrader's rule); its error message is the
feedback. See ``python -m dltoolbox.assignments grade --help``.
"""
import asyncio
import copy
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from .assignments import BEGIN_HIDDEN, END_HIDDEN, is_check, is_solution, nbgrader_meta, source_of
from .locations import checkout_path
from .notebooks import notebook_paths

FIELDS = ["student", "notebook", "exercise", "points", "max_points", "feedback"]
HIDDEN_BLOCK = re.compile(rf"^[ \t]*{BEGIN_HIDDEN}.*?^[ \t]*{END_HIDDEN}[^\n]*\n?", re.S | re.M)
SOLUTION_BLOCK = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*", re.S | re.M)
STUB = "# YOUR CODE HERE\n{indent}raise NotImplementedError()"


@dataclass
class Limits:
    """Time (seconds) and output limits for grading one notebook."""
    timeout: int = 60             # per exercise cell (solution and check cells)
    cell_timeout: int = 600       # per other cell (the chapter's own training, ...)
    notebook_timeout: int = 1800  # all cells together
    max_output: int = 100_000     # characters of output kept per cell


def _short(text, limit=400):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    return text if len(text) <= limit else text[:limit] + " …"


def _grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def _fresh(cell):
    """A copy of a cell with its outputs cleared."""
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    cell.metadata.pop("execution", None)
    return cell


def assemble(submitted, source):
    """The notebook to grade: the student's cells, the instructor's checks; plus notes per grade_id."""
    originals = {_grade_id(c): c for c in source.cells if _grade_id(c)}
    order = [_grade_id(c) for c in source.cells if _grade_id(c)]
    cells, where, notes = [], {}, {}
    for cell in submitted.cells:
        gid = _grade_id(cell) if isinstance(nbgrader_meta(cell), dict) else None
        if gid not in originals or gid in where:
            cell = _fresh(cell)
            cell.metadata.pop("nbgrader", None)  # an unknown or duplicated id grades nothing
            cells.append(cell)
            continue
        original = originals[gid]
        if is_solution(original) and not original.metadata["nbgrader"].get("locked"):
            cell = _fresh(cell)
            cell.cell_type = original.cell_type
            cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
            if cell.cell_type == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
        else:
            if HIDDEN_BLOCK.sub("", source_of(cell)).strip() != HIDDEN_BLOCK.sub("", original.source).strip():
                notes.setdefault(gid, []).append("this locked cell was edited; the original was used")
            cell = _fresh(original)
        where[gid] = len(cells)
        cells.append(cell)
    for k, gid in enumerate(order):
        if gid in where:
            continue
        cell = _fresh(originals[gid])
        if is_solution(cell):
            cell.source = SOLUTION_BLOCK.sub(lambda m: m[1] + STUB.format(indent=m[1]), cell.source)
            notes.setdefault(gid.replace("-solution", "-check"), []).append(
                f"the solution cell {gid} was missing; graded as unanswered")
        else:
            notes.setdefault(gid, []).append("this check cell was missing; the original was put back")
        before = [where[g] for g in order[:k] if g in where]
        after = [where[g] for g in order[k + 1:] if g in where]
        at = max(before) + 1 if before else (min(after) if after else len(cells))
        cells.insert(at, cell)
        where = {g: i + (i >= at) for g, i in where.items()}
        where[gid] = at
    ids = set()
    for cell in cells:  # cell ids must be unique (a copied cell may repeat one)
        if not cell.get("id") or cell["id"] in ids:
            cell["id"] = uuid.uuid4().hex[:8]
        ids.add(cell["id"])
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(source.metadata))
    nb.metadata.pop("widgets", None)
    return nb, notes


class GradingClient(NotebookClient):
    """A NotebookClient that records each cell's reply and keeps at most `max_output` characters per cell."""

    def __init__(self, nb, max_output=100_000, **kwargs):
        super().__init__(nb, **kwargs)
        self.max_output, self.sizes, self.replies = max_output, {}, {}
        self.on_cell_executed = self._record

    async def _async_handle_timeout(self, timeout, cell=None):
        message = f"the cell ran longer than {timeout} s and was interrupted (an endless loop?)"
        self.error_on_timeout = {"ename": "Timeout", "evalue": message, "traceback": []}
        return await super()._async_handle_timeout(timeout, cell)

    def _record(self, cell, cell_index, execute_reply, **_):
        self.replies[cell_index] = execute_reply["content"]

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] != "error":
            size = self.sizes.get(cell_index, 0)
            self.sizes[cell_index] = size + len(json.dumps(msg["content"]))
            if self.sizes[cell_index] > self.max_output:
                if size <= self.max_output:
                    outs.append(nbformat.v4.new_output(
                        "stream", name="stderr", text=f"[output cut at {self.max_output} characters]\n"))
                return None
        return super().output(outs, msg, display_id, cell_index)


async def _run_with_limit(client, env, limit):
    """Execute, stopping (and shutting the kernel down) after `limit` seconds in all, or on Ctrl-C."""
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    task = asyncio.ensure_future(client.async_execute(env=env, stderr=subprocess.DEVNULL))
    deadline = loop.time() + limit
    try:
        while not task.done() and not stop.is_set() and loop.time() < deadline:
            try:  # nbclient's own SIGINT handler only stops the kernel: Ctrl-C should stop the grading
                loop.add_signal_handler(signal.SIGINT, stop.set)
            except (RuntimeError, NotImplementedError):
                pass
            await asyncio.wait({task}, timeout=min(1.0, max(0.0, deadline - loop.time())))
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (RuntimeError, NotImplementedError):
            pass
    if task.done():
        task.result()
        return None
    task.cancel()  # nbclient turns this into DeadKernelError and shuts the kernel down
    try:
        await task
    except (Exception, asyncio.CancelledError):
        pass
    if stop.is_set():
        raise KeyboardInterrupt
    return f"the notebook ran longer than {limit} s in all and was stopped"


def execute(nb, folder, limits):
    """Run `nb` in a fresh kernel in `folder`; return (replies by cell index, a problem or None)."""
    client = GradingClient(
        nb, max_output=limits.max_output, kernel_name="python3", allow_errors=True,
        timeout_func=lambda cell: limits.timeout if nbgrader_meta(cell) else limits.cell_timeout,
        interrupt_on_timeout=True, record_timing=False, resources={"metadata": {"path": str(folder)}})
    env = dict(os.environ, DLTOOLBOX_NO_PROGRESS="1", PYTHONHASHSEED="0")
    problem = None
    try:
        problem = asyncio.run(_run_with_limit(client, env, limits.notebook_timeout))
    except DeadKernelError:
        problem = "the kernel died (out of memory, or the code ended the process)"
    except Exception as error:  # a broken kernel must not stop the class's grading
        problem = f"the notebook could not be run: {type(error).__name__}: {_short(error, 200)}"
    return client.replies, problem


def _passed_text(cell):
    text = "".join(source_of({"source": o.get("text", "")}) for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("✓")]
    return "; ".join(dict.fromkeys(lines)) or "passed"  # once each: hidden tests may repeat a line


def _failure(reply):
    if reply.get("ename") in ("ExerciseError", "AssertionError", "Timeout") and reply.get("evalue"):
        return _short(reply["evalue"])
    return _short(f"{reply.get('ename')}: {reply.get('evalue')}")


def grade_notebook(path, source_path, limits=None):
    """Grade one submitted notebook against its instructor notebook: (rows, the executed notebook)."""
    limits = limits or Limits()
    source = nbformat.read(source_path, as_version=4)
    checks = [c for c in source.cells if is_check(c)]
    blank = [{"exercise": _grade_id(c), "points": 0.0, "max_points": float(nbgrader_meta(c).get("points", 0))}
             for c in checks]
    try:
        text = Path(path).read_text(encoding="utf-8")
        json.loads(text)
        nb, notes = assemble(nbformat.reads(text, as_version=4), source)
    except json.JSONDecodeError as error:
        return [dict(row, feedback=f"the file is not valid JSON ({error}); nothing was graded")
                for row in blank], None
    except Exception as error:
        reason = f"not a readable notebook ({type(error).__name__}: {_short(error, 160)}); nothing was graded"
        return [dict(row, feedback=reason) for row in blank], None
    with tempfile.TemporaryDirectory(prefix="dltoolbox-grade-") as tmp:
        for extra in Path(source_path).parent.iterdir():  # the chapter's data files, not its notebooks
            if extra.is_file() and extra.suffix not in (".ipynb", ".md"):
                shutil.copy2(extra, tmp)
        replies, problem = execute(nb, tmp, limits)
    rows, solution_trouble = [], None
    for index, cell in enumerate(nb.cells):
        reply = replies.get(index)
        if is_solution(cell) and not is_check(cell):
            solution_trouble = None
            if reply and reply.get("ename") == "NotImplementedError":
                solution_trouble = "not answered: your solution cell still raises NotImplementedError"
            elif reply and reply.get("status") == "error":
                solution_trouble = f"your solution cell failed: {_failure(reply)}"
        if not is_check(cell) or cell.cell_type != "code":
            continue
        gid, points = _grade_id(cell), float(nbgrader_meta(cell).get("points", 0))
        if reply is None:
            ok, feedback = False, f"not run: {problem or 'an earlier cell stopped the notebook'}"
        elif reply.get("status") == "ok":
            ok, feedback = True, _passed_text(cell)
        else:
            ok, feedback = False, _failure(reply)
            if solution_trouble and solution_trouble[-len(feedback):] != feedback:
                feedback = f"{feedback} ({solution_trouble})"
        cut = any("[output cut at" in o.get("text", "") for c in nb.cells[max(0, index - 1):index + 1]
                  for o in c.get("outputs", []))
        extra = notes.get(gid, []) + (["very long output was cut"] if cut else [])
        rows.append({"exercise": gid, "points": points if ok else 0.0, "max_points": points,
                     "feedback": "; ".join([feedback] + extra)})
    return rows, nb


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


def grade_folder(submissions, out="gradebook", sources=None, limits=None, force=False, log=lambda *a: None):
    """Grade SUBMISSIONS/<student>/**/<notebook>.ipynb; write grades.csv, grades.json, executed copies."""
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise FileNotFoundError(f"no such folder of submissions: {submissions}")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty: refusing to overwrite a gradebook (pass --force)")
    originals = find_sources(sources)
    rows = []
    for path in sorted(submissions.rglob("*.ipynb")):
        rel = path.relative_to(submissions)
        if ".ipynb_checkpoints" in rel.parts:
            continue
        student, notebook = rel.parts[0], "/".join(rel.parts[1:])
        if len(rel.parts) < 2:
            log(f"skipped {rel}: put each student's notebooks in a folder named after the student")
            continue
        start = time.perf_counter()
        original, reason = match(rel, originals)
        found, executed = [{"exercise": "", "points": 0.0, "max_points": 0.0, "feedback": reason}], None
        try:
            if original is not None:
                found, executed = grade_notebook(path, original, limits)
            if executed is not None:
                target = out / "executed" / student / notebook
                target.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(executed, target)
        except Exception as error:  # one notebook must never stop the class's grading
            log(f"{student}: {notebook}: the grader failed: {type(error).__name__}: {error}")
            if executed is None:
                reason = f"the grader failed on this notebook: {_short(error, 200)}"
                found = [dict(r, points=0.0, feedback=reason) for r in found]
        rows += [dict(row, student=student, notebook=notebook) for row in found]
        got, best = sum(r["points"] for r in found), sum(r["max_points"] for r in found)
        log(f"{student:<12} {notebook:<40} {got:g}/{best:g}  ({time.perf_counter() - start:.1f} s (wall))")
    write_gradebook(rows, out)
    return rows


def totals(rows):
    """Points and maximum per student."""
    result = {}
    for row in rows:
        entry = result.setdefault(row["student"], {"points": 0.0, "max_points": 0.0})
        entry["points"] += row["points"]
        entry["max_points"] += row["max_points"]
    return result


def write_gradebook(rows, out):
    """grades.csv (one row per student, notebook and exercise) and grades.json (rows and totals)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{k: row[k] for k in FIELDS} for row in rows]
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "grades.json").write_text(json.dumps({"totals": totals(rows), "grades": rows}, indent=1,
                                                ensure_ascii=False) + "\n", encoding="utf-8")
