"""Worker processes: one per submitted notebook, in its own session, so that nothing in one stops the class."""
import json
import os
import resource
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import nbformat

from . import sandbox
from .notebook import Limits, grade_notebook
from .text import short


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


def run_worker(text, source, limits, private, stop, stats=None):
    """Grade one notebook in a worker process; (rows, executed notebook path or None). `stats`, a dict, gets
    the worker's peak memory ("peak_memory", bytes of resident memory)."""
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
        if stats is not None:
            stats["peak_memory"] = result["peak_memory"]
        result = result["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        if len(stop.times) > interrupts:
            raise KeyboardInterrupt from None
        log = private / "worker.log"
        last = (log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []) or [""]
        raise RuntimeError(f"the grader's worker stopped (exit status {worker.exitcode}) {short(last[0], 300)}") \
            from None
    executed = private / "executed.ipynb"
    return result, executed if executed.is_file() else None


def worker_main(request_path):
    """The worker: grade one notebook, write its rows (and the executed notebook)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    request = json.loads(Path(request_path).read_text())
    limits = Limits(**request["limits"])
    rows, nb = grade_notebook(Path(request["submission"]).read_text(encoding="utf-8"), request["source"], limits,
                              folder=Path(request_path).parent)  # removed by the class loop, even if this dies
    if nb is not None:
        nbformat.write(nb, request["executed"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10  # kibibytes on Linux
    Path(request["rows"]).write_text(json.dumps({"rows": rows, "peak_memory": peak}))
    return 0
