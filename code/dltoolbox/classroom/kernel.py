"""A submission's kernel, in its sandbox, and the judge's channel to it.

:class:`GradingClient` runs the assembled notebook (nbclient), keeps at most `max_output` characters of
output per cell (display updates and widgets included) and, after each check cell, lets the judge run
the instructor's checkers; their calls of the student's code go through :class:`Channel`.
"""
import asyncio
import itertools
import json
import os
import pickle
import stat
import subprocess
import threading
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from ..checks import ExerciseError
from . import plain, sandbox
from .exercises import nbgrader_meta
from .judge import Interrupted, Remote, judge, rebuild_error
from .text import short


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
        return self.answer(read_regular(answer, plain.MAX_BYTES, dir_fd=self.fd), timed_out, limit)

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
            error = rebuild_error(str(data.get("raised")), short(data.get("message", ""), 2000))
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
                verdict = (False, f"the check could not be run: {type(error).__name__}: {short(error, 200)}")
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
        problem = f"the notebook could not be run: {type(error).__name__}: {short(error, 200)}"
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


def read_regular(path, limit, dir_fd=None):
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
