"""The grader: each submission in its own worker process and sandboxed kernel; the points from the judge.

For each submitted notebook the class loop (:func:`grade_folder`, the instructor's process) starts a
worker (a process forked from a server that imported the grader once, in its own session) that builds the notebook to
run (:func:`assemble`: the student's cells, the instructor's check cells put after the solutions they
check), runs it in a sandboxed kernel (:mod:`.sandbox`) and, after each check cell, has the judge
(:mod:`.judge`) run the instructor's checkers on the student's answers. A check cell earns its points
when every checker in it passes there; what the cell printed in the kernel earns nothing. The worker
hands back rows; the class loop writes the gradebook (atomically) whatever happens to one worker.
"""
import asyncio
import copy
import csv
import io
import itertools
import json
import os
import pickle
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from ..checks import ExerciseError
from ..locations import checkout_path
from ..notebooks import notebook_paths
from . import plain, sandbox
from .exercises import BEGIN_HIDDEN, END_HIDDEN, is_check, is_solution, nbgrader_meta, source_of
from .judge import Interrupted, Remote, judge, rebuild_error

FIELDS = ["student", "notebook", "exercise", "points", "max_points", "feedback"]
HIDDEN_BLOCK = re.compile(rf"^[ \t]*{BEGIN_HIDDEN}.*?^[ \t]*{END_HIDDEN}[^\n]*\n?", re.S | re.M)
SOLUTION_BLOCK = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*", re.S | re.M)
MAX_SUBMISSION = 50 << 20


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


def _short(text, limit=400):
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text)).strip()
    return text if len(text) <= limit else text[:limit] + " …"


def printable(text):
    """`text` with control characters escaped, safe to print on the instructor's terminal."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]",
                  lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", str(text))


def _grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def _fresh(cell):
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _frame(solution):
    """The lines of a solution cell outside its solution block (the part every copy keeps)."""
    return _lines(SOLUTION_BLOCK.sub("", source_of(solution)))


def _check_lines(check):
    visible = HIDDEN_BLOCK.sub("", source_of(check))
    calls = {line for line in _lines(visible) if re.search(r"\bexercise_\w+\(", line)}
    return calls or set(_lines(visible))


def assemble(submitted, source):
    """The notebook to run: the student's cells, each instructor check cell (visible part) right after the
    solution it checks; returns (notebook, notes by grade_id, {cell index: the check cell's full source})."""
    originals = [c for c in source.cells if nbgrader_meta(c)]
    solutions = [c for c in originals if is_solution(c)]
    fixed = [c for c in originals if not is_solution(c) and (is_check(c) or nbgrader_meta(c).get("locked"))]
    anchor, last = {}, None  # the solution each check cell follows in the instructor's notebook
    for cell in source.cells:
        if is_solution(cell):
            last = _grade_id(cell)
        elif cell in fixed:
            anchor[_grade_id(cell)], last = last, None
    notes = {}

    def note(gid, text):
        notes.setdefault(gid, []).append(text)

    cells = [c for c in submitted.cells if c.get("cell_type") in ("code", "markdown", "raw")]
    role = {}  # student cell index -> ("solution" | "fixed", grade_id)
    ids = {}
    for i, cell in enumerate(cells):
        ids.setdefault(_grade_id(cell), []).append(i)
    for original in fixed:  # the student's copies of locked cells, by id or by their checker calls
        gid, wanted = _grade_id(original), _check_lines(original)
        copies = [i for i in ids.get(gid, []) if i not in role]
        copies += [i for i, c in enumerate(cells) if i not in role and i not in copies and c.cell_type == "code"
                   and not is_solution(c) and wanted and wanted <= set(_lines(source_of(c)))]
        for i in copies:
            role[i] = ("fixed", gid)
        if not copies:
            note(gid, "this check cell was missing; the original was put back")
        elif any(HIDDEN_BLOCK.sub("", source_of(cells[i])).strip() != HIDDEN_BLOCK.sub("", original.source).strip()
                 for i in copies):
            note(gid, "this locked cell was edited; the original was used")
        if len(copies) > 1:
            note(gid, f"the notebook held {len(copies)} copies of this locked cell; the original was used once")
    for original in solutions:  # by id, else by the lines around the solution, else by position
        gid, frame = _grade_id(original), set(_frame(original))
        check_gid = next((g for g, s in anchor.items() if s == gid), gid)
        found = [i for i in ids.get(gid, []) if i not in role and cells[i].cell_type == "code"][:1]
        how = None
        if not found and frame:
            scores = [(len(frame & set(_lines(source_of(c)))) / len(frame), i) for i, c in enumerate(cells)
                      if i not in role and c.cell_type == "code"]
            best = max(scores, default=(0, None))
            if best[0] >= 0.5:
                found, how = [best[1]], "by its content"
        if not found:
            checks = sorted(i for i, r in role.items() if r == ("fixed", check_gid))
            before = [i for i in range(checks[0] if checks else 0) if i not in role and cells[i].cell_type == "code"]
            if checks and before:
                found, how = [before[-1]], "by its place before the check"
        if found:
            role[found[0]] = ("solution", gid)
            if how:
                note(check_gid, f"the solution cell {gid} was recognised {how} (its nbgrader id was changed "
                                "or removed)")
        else:
            note(check_gid, f"the solution cell {gid} was missing; graded on what the notebook defines")
    out, judged, placed = [], {}, set()

    def put_fixed(gid):
        original = next(c for c in fixed if _grade_id(c) == gid)
        cell = _fresh(original)
        if is_check(original):
            cell.source = HIDDEN_BLOCK.sub("", original.source).rstrip("\n")
            judged[len(out)] = original.source
        out.append(cell)
        placed.add(gid)

    order = [_grade_id(c) for c in fixed]
    for i, cell in enumerate(cells):
        kind, gid = role.get(i, (None, None))
        if kind == "fixed":
            if anchor.get(gid) is None or not any(r == ("solution", anchor[gid]) for r in role.values()):
                for g in order[:order.index(gid) + 1]:  # no solution to follow: where the student had it
                    if g not in placed and (anchor.get(g) is None or g == gid
                                            or not any(r == ("solution", anchor[g]) for r in role.values())):
                        put_fixed(g)
            continue
        cell = _fresh(cell)
        if kind == "solution":
            original = next(c for c in solutions if _grade_id(c) == gid)
            cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
        elif nbgrader_meta(cell):
            cell.metadata.pop("nbgrader")  # a student's cell never counts as a graded one
        out.append(cell)
        if kind == "solution":
            mine = [g for g in order if anchor.get(g) == gid]
            for g in order[:order.index(mine[-1]) + 1] if mine else []:
                unanchored = anchor.get(g) is None or not any(r == ("solution", anchor[g]) for r in role.values())
                if g not in placed and (g in mine or unanchored):
                    put_fixed(g)
    for g in order:  # checks whose place was never reached go at the end, in order
        if g not in placed:
            put_fixed(g)
    seen = set()
    for cell in out:  # cell ids must be unique (a copied cell may repeat one)
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = uuid.uuid4().hex[:8]
        seen.add(cell["id"])
    nb = nbformat.v4.new_notebook(cells=out, metadata=copy.deepcopy(source.metadata))
    nb.metadata.pop("widgets", None)
    return nb, notes, judged


class Channel:
    """The judge's way to the kernel: a request file, one kernel call, an answer file.

    Both files live in a folder of the scratch space that the kernel can change at will, so the folder is
    held open from before the kernel starts and every file is opened relative to it, never following a
    symbolic link: whatever the student puts there, the grader writes and reads only that folder's files.
    """

    def __init__(self, client, folder, loop):
        self.client, self.folder, self.loop, self.count = client, Path(folder), loop, itertools.count()
        self.fd = client.judge_fd

    def _write(self, name, data):
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=self.fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def request(self, req):
        n = next(self.count)
        ask, answer = f"request-{n}.pkl", f"answer-{n}.json"
        self._write(ask, pickle.dumps(req))
        code = (f"__import__('dltoolbox.classroom.probe').classroom.probe.serve("
                f"{str(self.folder / ask)!r}, {str(self.folder / answer)!r})")
        limit = self.client.limits.timeout
        future = asyncio.run_coroutine_threadsafe(self.client.rpc(code), self.loop)
        timed_out = future.result(timeout=limit + 120)
        return self.answer(_read_regular(answer, plain.MAX_BYTES, dir_fd=self.fd), timed_out, limit)

    def answer(self, text, timed_out, limit):
        """The kernel's answer as plain data, or the student's error rebuilt here."""
        interrupted = Interrupted(f"✗ your code ran longer than {limit} s and was interrupted (an endless loop?)")
        if text is None:
            if timed_out:
                raise interrupted
            raise ExerciseError("✗ no answer came back from the notebook's kernel (did it stop?)")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ExerciseError("✗ the notebook's answer could not be read")
        if "raised" in data:
            error = rebuild_error(str(data.get("raised")), _short(data.get("message", ""), 2000))
            raise interrupted if isinstance(error, Interrupted) else error
        try:
            return plain.decode(data.get("ok"), handle=lambda key: Remote(self, ("kept", key), "value"))
        except ValueError as error:
            raise ExerciseError(f"✗ the notebook's answer could not be read ({error})") from None


class GradingClient(NotebookClient):
    """Runs the assembled notebook; judges each check cell; keeps at most `max_output` characters per cell."""

    def __init__(self, nb, judged, limits, folder, **kwargs):
        super().__init__(nb, **kwargs)
        self.judged, self.limits, self.folder = judged, limits, Path(folder)
        self.max_output, self.sizes, self.replies, self.verdicts, self.cut = limits.max_output, {}, {}, {}, set()
        self.on_cell_executed = self._record
        self.timed_out = self.in_rpc = False
        (self.folder / ".judge").mkdir(mode=0o755)  # before the kernel starts, held open from now on
        self.judge_fd = os.open(self.folder / ".judge", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True
        message = f"the cell ran longer than {timeout} s and was interrupted (an endless loop?)"
        self.error_on_timeout = {"ename": "Timeout", "evalue": message, "traceback": []}
        return await super()._async_handle_timeout(timeout, cell)

    def _record(self, cell, cell_index, execute_reply, **_):
        if not self.in_rpc:
            self.replies[cell_index] = execute_reply["content"]

    async def rpc(self, code):
        """Run one judge request in the kernel (as a cell added for the time); True when it timed out."""
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["nbgrader"] = {"grade_id": "judge"}
        self.timed_out, self.in_rpc = False, True
        self.nb.cells.append(cell)
        try:
            await NotebookClient.async_execute_cell(self, cell, len(self.nb.cells) - 1, store_history=False)
        finally:
            self.nb.cells.pop()
            self.in_rpc = False
        return self.timed_out

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if cell_index in self.judged:
            self.verdicts[cell_index] = await self._judge(self.judged[cell_index])
        return result

    async def _judge(self, source):
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        channel = Channel(self, self.folder / ".judge", loop)

        def work():
            try:
                verdict = judge(source, channel)
            except BaseException as error:  # noqa: BLE001 (the judge must always answer)
                verdict = (False, f"the check could not be run: {type(error).__name__}: {_short(error, 200)}")
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(verdict))
        threading.Thread(target=work, daemon=True).start()
        return await done

    def _count(self, cell_index, content):
        if self.in_rpc:
            return False
        size = self.sizes.get(cell_index, 0) + len(json.dumps(content))
        self.sizes[cell_index] = size
        return size <= self.max_output

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] != "error" and not self._count(cell_index, msg["content"]):
            if not self.in_rpc and cell_index not in self.cut:
                self.cut.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=f"[output cut at {self.max_output} characters]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        if len(json.dumps(msg["content"])) > self.max_output:  # an update may not grow a kept output
            for cell_index in self._display_id_map.get(display_id, {}):
                self.cut.add(cell_index)
            return None
        return super()._update_display_id(display_id, msg)

    def handle_comm_msg(self, outs, msg, cell_index):
        return None  # widget state and widget outputs are not kept

    def set_widgets_metadata(self):
        return None


async def _run_with_limit(client, env, limit):
    """Execute, stopping (and shutting the kernel down) after `limit` seconds in all."""
    task = asyncio.ensure_future(client.async_execute(env=env, stderr=subprocess.DEVNULL))
    done, _ = await asyncio.wait({task}, timeout=limit)
    if task in done:
        task.result()
        return None
    task.cancel()  # nbclient turns this into DeadKernelError and shuts the kernel down
    try:
        await task
    except (Exception, asyncio.CancelledError):
        pass
    return f"the notebook ran longer than {limit} s in all and was stopped"


def kernel_env():
    """The kernel's environment: what Python and the course need, none of the instructor's other variables."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("DLTOOLBOX_")}
    env.setdefault("PATH", os.defpath)
    env.update(DLTOOLBOX_NO_PROGRESS="1", PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    return env


def execute(nb, judged, folder, limits):
    """Run `nb` in a fresh (sandboxed) kernel in `folder`: (client, a problem or None)."""
    box = sandbox.Sandbox(memory=limits.memory, processes=limits.processes)
    km = sandbox.SandboxKernelManager(folder, box if limits.sandbox else None)
    client = GradingClient(
        nb, judged, limits, folder, km=km, kernel_name="python3", allow_errors=True,
        timeout_func=lambda cell: limits.timeout if nbgrader_meta(cell) else limits.cell_timeout,
        interrupt_on_timeout=True, record_timing=False, store_widget_state=False,
        resources={"metadata": {"path": str(folder)}})
    problem = None
    try:
        problem = asyncio.run(_run_with_limit(client, kernel_env(), limits.notebook_timeout))
    except DeadKernelError:
        problem = "the kernel died (out of memory, or the code ended the process)"
    except Exception as error:  # a broken kernel must not stop the grading
        problem = f"the notebook could not be run: {type(error).__name__}: {_short(error, 200)}"
    finally:
        try:
            if km.has_kernel:
                asyncio.run(km.shutdown_kernel(now=True))
        except Exception:  # noqa: BLE001
            pass
        os.close(client.judge_fd)
        if limits.sandbox:
            sandbox.remove_cgroup(folder)
    return client, problem


def _read_regular(path, limit, dir_fd=None):
    """The text of a regular file (never through a symbolic link), or None; larger than `limit` is an error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > limit:
            raise ValueError(f"the file is larger than {limit >> 20} MB")
        return f.read(limit + 1).decode("utf-8", errors="replace")


def grade_notebook(text, source_path, limits=None):
    """Grade one submitted notebook (its text) against its instructor notebook: (rows, the executed notebook)."""
    limits = limits or Limits()
    source = nbformat.read(source_path, as_version=4)
    checks = [c for c in source.cells if is_check(c)]
    blank = [{"exercise": _grade_id(c), "points": 0.0, "max_points": float(nbgrader_meta(c).get("points", 0))}
             for c in checks]
    try:
        json.loads(text)
        nb, notes, judged = assemble(nbformat.reads(text, as_version=4), source)
    except json.JSONDecodeError as error:
        return [dict(row, feedback=f"the file is not valid JSON ({error}); nothing was graded")
                for row in blank], None
    except Exception as error:
        reason = f"not a readable notebook ({type(error).__name__}: {_short(error, 160)}); nothing was graded"
        return [dict(row, feedback=reason) for row in blank], None
    with tempfile.TemporaryDirectory(prefix="dltoolbox-grade-") as tmp:
        os.chmod(tmp, 0o700)
        for extra in Path(source_path).parent.iterdir():  # the chapter's data files, not its notebooks
            if extra.is_file() and not extra.is_symlink() and extra.suffix not in (".ipynb", ".md"):
                shutil.copy2(extra, tmp)
        client, problem = execute(nb, judged, tmp, limits)
    rows, trouble = [], None
    for index, cell in enumerate(nb.cells):
        reply = client.replies.get(index)
        if is_solution(cell):
            trouble = None
            if reply and reply.get("ename") == "NotImplementedError":
                trouble = "not answered: your solution cell still raises NotImplementedError"
            elif reply and reply.get("status") == "error":
                trouble = f"your solution cell failed: {_short(reply.get('ename'))}: {_short(reply.get('evalue'), 200)}"
        if index not in judged:
            continue
        gid, points = _grade_id(cell), float(nbgrader_meta(cell).get("points", 0))
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


class Stop:
    """Ctrl-C once stops the notebook being graded; twice within 5 s stops the class (the gradebook is kept)."""

    def __init__(self):
        self.times, self.worker = [], None

    def __call__(self, signum, frame):
        self.times.append(time.monotonic())
        if self.worker is not None:
            try:
                os.killpg(self.worker.pid, signal.SIGKILL)
            except OSError:  # not in its own session yet
                try:
                    os.kill(self.worker.pid, signal.SIGKILL)
                except OSError:
                    pass

    @property
    def stopped(self):
        return len(self.times) >= 2 and self.times[-1] - self.times[-2] < 5


def _workers():
    """Worker processes forked from a server that has imported the grader once (each starts in milliseconds)."""
    import multiprocessing
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _worker_entry(request_path, log_path):
    """A worker's first steps: its own session, its output to the log, then the notebook."""
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.chdir(Path(request_path).parent)
    code = 1
    try:
        code = worker_main(request_path)
    except BaseException:  # noqa: BLE001 (the class loop reads the log's last line)
        import traceback
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_worker(text, source, limits, private, stop):
    """Grade one notebook in a worker process; (rows, executed notebook path or None)."""
    (private / "submission.ipynb").write_text(text, encoding="utf-8")
    request = {"submission": str(private / "submission.ipynb"), "source": str(Path(source).resolve()),
               "limits": asdict(limits), "rows": str(private / "rows.json"),
               "executed": str(private / "executed.ipynb")}
    (private / "request.json").write_text(json.dumps(request))
    worker = _workers().Process(target=_worker_entry, args=(str(private / "request.json"),
                                                             str(private / "worker.log")))
    worker.start()
    stop.worker, interrupts = worker, len(stop.times)
    try:
        worker.join(timeout=limits.notebook_timeout + 300)
        if worker.is_alive():
            os.killpg(worker.pid, signal.SIGKILL)
            worker.join()
    finally:
        stop.worker = None
        sandbox.remove_cgroups_of(worker.pid)  # a killed worker could not remove its sandbox's
    try:
        result = json.loads((private / "rows.json").read_text())
    except (OSError, ValueError):
        if len(stop.times) > interrupts:
            raise KeyboardInterrupt from None
        log = private / "worker.log"
        last = (log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []) or [""]
        raise RuntimeError(f"the grader's worker stopped (exit status {worker.exitcode}) {_short(last[0], 300)}") \
            from None
    executed = private / "executed.ipynb"
    return result, executed if executed.is_file() else None


def worker_main(request_path):
    """The worker: grade one notebook, write its rows (and the executed notebook)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    request = json.loads(Path(request_path).read_text())
    limits = Limits(**request["limits"])
    rows, nb = grade_notebook(Path(request["submission"]).read_text(encoding="utf-8"), request["source"], limits)
    if nb is not None:
        nbformat.write(nb, request["executed"])
    Path(request["rows"]).write_text(json.dumps(rows, ensure_ascii=False))
    return 0


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
                        text = _read_regular(submissions / rel, MAX_SUBMISSION)
                        if text is None:
                            raise ValueError("the submission could not be read as a regular file")
                        found, executed = _run_worker(text, original, limits, private, stop)
                    except KeyboardInterrupt:
                        found = [dict(r, points=0.0, feedback="not graded: interrupted (Ctrl-C, or a signal); "
                                 "press Ctrl-C twice within 5 s to stop the whole class")
                                 for r in _blank_rows(original)]
                    except Exception as error:  # one notebook must never stop the class's grading
                        log(printable(f"{student}: {notebook}: the grader failed: {type(error).__name__}: {error}"))
                        found = [dict(r, feedback=f"the grader failed on this notebook: {_short(error, 200)}")
                                 for r in _blank_rows(original)]
                    if executed is not None:
                        _write_atomic(out / "executed" / student / notebook, executed.read_bytes(), out)
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


def _blank_rows(source_path):
    """A row per check of the instructor notebook (one row if that notebook cannot be read)."""
    try:
        source = nbformat.read(source_path, as_version=4)
        rows = [{"exercise": _grade_id(c), "points": 0.0, "max_points": float(nbgrader_meta(c).get("points", 0))}
                for c in source.cells if is_check(c)]
    except Exception:  # noqa: BLE001
        rows = []
    return rows or [{"exercise": "", "points": 0.0, "max_points": 0.0}]


def totals(rows):
    """Points and maximum per student."""
    result = {}
    for row in rows:
        entry = result.setdefault(row["student"], {"points": 0.0, "max_points": 0.0})
        entry["points"] += row["points"]
        entry["max_points"] += row["max_points"]
    return result


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ or a control character gets a '."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") else value


def _write_atomic(path, data, root):
    """Write `path` under `root` by renaming a new file over it: never through a symbolic link."""
    path, root = Path(path), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = root
    for part in path.parent.relative_to(root).parts:
        folder = folder / part
        if folder.is_symlink():
            raise FileExistsError(f"{folder} is a symbolic link: refusing to write through it")
        folder.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_gradebook(rows, out):
    """grades.csv (one row per student, notebook and exercise) and grades.json (rows and totals), atomically."""
    rows = [{k: row[k] for k in FIELDS} for row in rows]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows([{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows])
    _write_atomic(Path(out) / "grades.csv", text.getvalue().encode("utf-8"), out)
    data = json.dumps({"totals": totals(rows), "grades": rows}, indent=1, ensure_ascii=False) + "\n"
    _write_atomic(Path(out) / "grades.json", data.encode("utf-8"), out)


