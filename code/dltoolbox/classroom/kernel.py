"""A submission's kernel, in its sandbox, and the judge's channel to it.

:class:`GradingClient` runs the assembled notebook (nbclient), keeps at most `max_output` characters of
output per cell (errors, display updates and widgets included) and `NOTEBOOK_OUTPUT` times that for the
whole notebook, and, after each check cell, lets the judge run the instructor's checkers; their calls of
the student's code go through :class:`Channel`. Messages larger than the output kept are dropped as they
arrive (:class:`~.sandbox.SandboxKernelManager`), so the grader's memory stays bounded.
"""
import asyncio
import itertools
import json
import os
import pickle
import subprocess
import threading
from pathlib import Path

import nbformat
import zmq
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from ..checks import ExerciseError
from . import plain, sandbox
from .files import read_regular
from .exercises import nbgrader_meta
from .judge import Interrupted, Remote, answer_of, judge
from .sandbox import kernel_env
from .text import short

NOTEBOOK_OUTPUT = 50  # the whole notebook keeps at most this many times --max-output characters of output
MAX_MESSAGE = 32 << 20  # bytes of a message from the kernel that the grader reads (or 4 times --max-output)


class Channel:
    """The judge's way to the kernel: a request file, one kernel call, an answer file.

    Both files live in a folder of the sandbox that the kernel can change at will, so the grader holds the
    folder open from before any of the student's code runs and opens every file relative to it, never
    following a symbolic link: whatever the student puts there, the grader writes and reads only that
    folder's files. (`folder` is the folder's path as the kernel sees it.)
    """

    def __init__(self, client, folder, loop):
        self.client, self.folder, self.loop, self.count = client, Path(folder), loop, itertools.count()
        self.fd = client.km.judge_fd

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
        """The kernel's answer as plain data, or the student's error rebuilt here (by name only)."""
        interrupted = Interrupted(f"✗ your code ran longer than {limit} s and was interrupted (an endless loop?)")
        if text is None:
            if timed_out:
                raise interrupted
            raise ExerciseError("✗ no answer came back from the notebook's kernel (did it stop?)")
        return answer_of(text, handle=lambda key: Remote(self, ("kept", key), "value"), seconds=limit,
                         interrupted=interrupted)


class GradingClient(NotebookClient):
    """Runs the assembled notebook; judges each check cell; keeps at most `max_output` characters per cell."""

    def __init__(self, nb, judged, limits, **kwargs):
        super().__init__(nb, **kwargs)
        self.judged, self.limits = judged, limits
        self.max_output, self.sizes, self.replies, self.verdicts, self.cut = limits.max_output, {}, {}, {}, set()
        self.kept, self.max_kept = 0, NOTEBOOK_OUTPUT * limits.max_output
        self.on_cell_executed = self._record
        self.timed_out = self.in_rpc = self.lost = False

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True
        message = f"the cell ran longer than {timeout} s and was interrupted (an endless loop?)"
        self.error_on_timeout = {"ename": "Timeout", "evalue": message, "traceback": []}
        return await super()._async_handle_timeout(timeout, cell)

    def _record(self, cell, cell_index, execute_reply, **_):
        if not self.in_rpc:  # what the feedback uses, not the traceback
            content = execute_reply["content"]
            self.replies[cell_index] = {key: short(content[key], limit) for key, limit in
                                        (("status", 20), ("ename", 100), ("evalue", 1000)) if key in content}

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

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        monitor = kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.iopub_monitor = zmq.Socket.shadow(monitor.underlying)  # read without waiting
        return kc

    def _iopub_lost(self):
        """Whether the kernel's output channel was dropped: it sent a message larger than the grader reads
        (the channel is not opened again, so no later output arrives)."""
        try:
            self.iopub_monitor.recv_multipart(zmq.NOBLOCK)
            return True
        except (zmq.Again, zmq.ZMQError, AttributeError):
            return False

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if cell_index in self.judged:
            self.verdicts[cell_index] = await self._judge(self.judged[cell_index])
        if not self.lost and self._iopub_lost():
            self.lost, self.iopub_timeout = True, 0  # no output will come: do not wait for it
            self.cut.add(cell_index)
            cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                "stream", name="stderr", text=f"[output cut: a message larger than {self.km.max_message} bytes "
                                              "was refused, and no later output of the notebook was kept]\n"))
        return result

    async def _judge(self, source):
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        channel = Channel(self, self.km.judge_folder, loop)

        def work():
            try:
                verdict = judge(source, channel)
            except BaseException as error:  # noqa: BLE001 (the judge must always answer)
                verdict = (False, f"the check could not be run: {type(error).__name__}: {short(error, 200)}")
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(verdict))
        threading.Thread(target=work, daemon=True).start()
        return await done

    def _count(self, cell_index, content):
        """Whether an output of `content` is kept: at most `max_output` characters per cell (all its outputs
        together, errors too, those cut included) and `NOTEBOOK_OUTPUT` times that in the notebook."""
        size = self.sizes.get(cell_index, 0)
        if size > self.max_output or self.kept > self.max_kept:  # cut already: not even measured
            return False
        added = len(json.dumps(content))
        self.sizes[cell_index] = size + added
        if size + added > self.max_output or self.kept + added > self.max_kept:
            return False
        self.kept += added
        return True

    def _cut(self, cell_index, outs):
        if cell_index not in self.cut:
            self.cut.add(cell_index)
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr", text=f"[output cut at {self.max_output} characters]\n"))

    def output(self, outs, msg, display_id, cell_index):
        if self.in_rpc:  # the judge's requests keep no output
            return None
        if not self._count(cell_index, msg["content"]):
            self._cut(cell_index, outs)
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        """An update replaces a kept output: it is counted as a new output of each cell showing it."""
        for cell_index in list(self._display_id_map.get(display_id, {})):
            if self.in_rpc or not self._count(cell_index, msg["content"]):
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


def execute(nb, judged, workdir, limits, data=()):
    """Run `nb` in a fresh (sandboxed) kernel: (client, a problem or None). `workdir` is an empty folder of
    the grader's; `data` are files to copy into the kernel's working folder."""
    box = sandbox.Sandbox(memory=limits.memory, processes=limits.processes, disk=limits.disk)
    km = sandbox.SandboxKernelManager(workdir, box if limits.sandbox else None, data=data,
                                      max_message=max(MAX_MESSAGE, 4 * limits.max_output))
    client = GradingClient(
        nb, judged, limits, km=km, kernel_name="python3", allow_errors=True,
        timeout_func=lambda cell: limits.timeout if nbgrader_meta(cell) else limits.cell_timeout,
        interrupt_on_timeout=True, record_timing=False, store_widget_state=False,
        resources={"metadata": {"path": km.launch_folder}})
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
        km.release()
        if limits.sandbox:
            sandbox.remove_cgroup(workdir)
    return client, problem
