"""The sandbox each submission's kernel runs in: bubblewrap (``bwrap``), with resource limits.

The kernel sees a read-only system and Python, the course package read-only without its hidden tests,
and file systems of its own, each a tmpfs of limited size: ``/sandbox`` (`disk` bytes: its working
folder ``/sandbox/student`` with a copy of the chapter's data files, and the kernel's sockets), ``/tmp``
(`disk` bytes), ``/dev/shm`` (64 MiB) and the judge's folder ``/sandbox/judge`` (the judge's request and
the kernel's answer); the rest of its root is read-only. It has no
network, no view of other processes (its own PID namespace: when the sandbox ends, every process it
started ends with it), no instructor notebooks, other submissions or gradebook. Those file systems exist
only in the sandbox's mount namespace: when its last process ends they are gone with all they hold, so
nothing of the student's is ever left on the grader's disk or removed by the grader, however many or
deep its files. Limits: address space (memory), processes, file size, all set before ``bwrap`` starts;
time limits are the grader's.

The grader never reaches into the sandbox by a path. Once the kernel has bound its sockets, and before
any of the student's code has run, :class:`SandboxKernelManager` opens the sandbox's root
(``/proc/<pid>/root``) and from it, one name at a time and refusing links, the kernel's sockets, the
working folder and the judge's folder; from then on it uses only those descriptors (it connects to a
socket through ``/proc/self/fd``). Its own files (the connection file, its links to the sockets) are in a
folder of its own that the sandbox sees only one read-only file of.
"""
import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
from jupyter_client import AsyncKernelManager

from . import HIDDEN, PACKAGE
from .files import FOLDER, open_folder
from .plain import MAX_BYTES

SYSTEM = ["/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin", "/etc/alternatives", "/etc/ld.so.cache",
          "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd", "/etc/group",
          "/etc/nsswitch.conf", "/etc/ssl", "/etc/fonts", "/etc/matplotlibrc"]
BOX = "/sandbox"                       # inside the sandbox: its own tmpfs of `disk` bytes
STUDENT, JUDGE, KERNEL = f"{BOX}/student", f"{BOX}/judge", f"{BOX}/kernel"
SHARED_MEMORY = 64 << 20               # bytes of /dev/shm
JUDGE_SIZE = 2 * MAX_BYTES + (1 << 20)  # bytes of the judge's folder: a request and an answer (a tmpfs of its own,
                                        # so that a student who fills the working folder is still graded)
START_TIMEOUT = 120                    # seconds for a kernel to bind its sockets
LAUNCH = """import json, os, resource, sys
limits = {name: int(value) for name, value in (a.split('=') for a in sys.argv[1].split(','))}
for name, value in limits.items():
    resource.setrlimit(getattr(resource, name), (value, value))
for path, files in json.loads(sys.argv[2]).items():  # root: cgroups count processes and memory
    os.makedirs(path, exist_ok=True)
    for name, value in files.items():
        with open(os.path.join(path, name), 'w') as f:
            f.write(value)
    with open(os.path.join(path, 'cgroup.procs'), 'w') as f:
        f.write(str(os.getpid()))
os.execvp(sys.argv[3], sys.argv[3:])
"""
ENVIRONMENT = """import json, os, sys
out = {"python": sys.executable}
try:
    import ipykernel_launcher, dltoolbox, dltoolbox.checks, dltoolbox.classroom.probe
    out["package"] = os.path.realpath(os.path.dirname(dltoolbox.__file__))
except BaseException as error:
    out["error"] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""


@dataclass
class Sandbox:
    """Limits of one submission's sandbox (memory in bytes)."""
    memory: int = 8 << 30
    processes: int = 256
    file_size: int = 1 << 30
    disk: int = 1 << 30       # bytes of files in /sandbox, and as many in /tmp


def remove_cgroup(prefix):
    """End every process left in a sandbox's cgroups, then remove them (see :func:`cgroups`)."""
    for cgroup in cgroups(f"dltoolbox-{os.getpid()}-{Path(prefix).name}").values():
        _remove(cgroup)


def remove_cgroups_of(pid):
    """Remove the cgroups left by a worker process `pid` that was killed."""
    for base in set(cgroups("").values()):
        if os.path.isdir(base):
            for entry in os.scandir(base):
                if entry.name.startswith(f"dltoolbox-{pid}-"):
                    _remove(entry.path)


def _remove(cgroup):
    for _ in range(100):
        if not os.path.isdir(cgroup):
            return
        try:
            with open(os.path.join(cgroup, "cgroup.procs")) as f:
                for pid in f.read().split():
                    os.kill(int(pid), signal.SIGKILL)
            os.rmdir(cgroup)
        except OSError:
            time.sleep(0.05)


def bwrap_path():
    return shutil.which("bwrap")


def problem():
    """Why no sandbox can be made here, or None when bubblewrap works (with size-limited file systems)."""
    path = bwrap_path()
    if path is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    try:
        run = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                              "--dev", "/dev", "--size", str(1 << 20), "--tmpfs", "/tmp", "true"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not be run: {error}"
    if run.returncode != 0 and "--size" in run.stderr:
        return ("this bubblewrap cannot limit the size of a sandbox's files (it has no --size option; "
                "bubblewrap 0.8.0, e.g. Debian 12's, has it)")
    if run.returncode != 0:
        return f"bubblewrap cannot create its namespaces here: {run.stderr.strip()[:300]}"
    if os.getuid() == 0 and "pids" not in cgroups("probe"):
        return ("running as root with no writable pids cgroup, the sandbox's process limit cannot be enforced "
                "(Linux does not apply RLIMIT_NPROC to root): run the grader as an ordinary user")
    return None


def kernel_env():
    """The kernel's environment: what Python and the course need, none of the instructor's other variables."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("DLTOOLBOX_")}
    env.setdefault("PATH", os.defpath)
    env.update(DLTOOLBOX_NO_PROGRESS="1", PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    return env


def environment_problem(workdir, limits=None):
    """Why the kernel's Python, its packages or the course package cannot be used inside the sandbox, or
    None: it runs the kernel's interpreter in a sandbox made as for a kernel, and imports what a kernel
    and the judge need there. (A path the sandbox does not show, e.g. a link under /tmp, which the sandbox
    replaces with its own, would otherwise make every notebook fail, each honest student getting 0.)"""
    try:
        run = subprocess.run(command(workdir, limits) + [sys.executable, "-c", ENVIRONMENT], capture_output=True,
                             text=True, timeout=300, env=kernel_env(), cwd=workdir)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the sandbox could not run {sys.executable}: {error}"
    finally:
        remove_cgroup(workdir)
    try:
        found = json.loads(run.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{sys.executable} did not run inside the sandbox: {(run.stderr.strip() or 'no output')[-300:]}"
    if "error" in found:
        return f"inside the sandbox, {sys.executable} cannot import the course: {found['error'][:300]}"
    if found.get("package") != str(PACKAGE):
        return f"inside the sandbox the course package is {found.get('package')}, not {PACKAGE}"
    return None


def _processes_of(uid):
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def cgroups(name):
    """{controller: folder} of the pids and memory cgroups to create for one sandbox when running as root
    (Linux never applies RLIMIT_NPROC to root), for each controller whose hierarchy is writable here."""
    if os.getuid() != 0:
        return {}
    found = {}
    for controller in ("pids", "memory"):
        for base in (f"/sys/fs/cgroup/{controller}", "/sys/fs/cgroup"):
            control = os.path.join(base, "cgroup.subtree_control")
            if os.access(os.path.join(base, "cgroup.procs"), os.W_OK) and (
                    base.endswith(controller) or (os.path.exists(control) and controller in open(control).read())):
                found[controller] = os.path.join(base, name)
                break
    return found


def _cgroup_files(folders, limits):
    """What to write into each cgroup folder: the process and memory limits (cgroup v1 or v2 names)."""
    files = {}
    for controller, path in folders.items():
        v2 = not path.startswith(f"/sys/fs/cgroup/{controller}/")
        entry = files.setdefault(path, {})
        if controller == "pids":
            entry["pids.max"] = str(limits.processes)
        else:
            entry["memory.max" if v2 else "memory.limit_in_bytes"] = str(limits.memory)
    return files


def command(workdir, limits=None, connection_file=None):
    """The prefix that runs a command inside the sandbox, in its working folder ``/sandbox/student``.

    `workdir` is the grader's folder for this sandbox (it names the sandbox's cgroups; the sandbox sees
    none of it but `connection_file`, read-only, at ``/sandbox/kernel/kernel.json``)."""
    limits = limits or Sandbox()
    python = Path(sys.executable)
    # RLIMIT_NPROC counts every process of this user: allow the sandbox `processes` more than there are now
    rlimits = {"RLIMIT_AS": limits.memory, "RLIMIT_FSIZE": limits.file_size, "RLIMIT_CORE": 0,
               "RLIMIT_NPROC": _processes_of(os.getuid()) + limits.processes}
    folders = cgroups(f"dltoolbox-{os.getpid()}-{Path(workdir).name}")
    cmd = [sys.executable, "-I", "-S", "-c", LAUNCH, ",".join(f"{k}={v}" for k, v in rlimits.items()),
           json.dumps(_cgroup_files(folders, limits)), bwrap_path(),
           "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--unshare-user", "--uid", "65534",
           "--gid", "65534", "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev",
           "--size", str(SHARED_MEMORY), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
           "--size", str(limits.disk), "--tmpfs", "/tmp", "--size", str(limits.disk), "--tmpfs", BOX,
           "--dir", STUDENT, "--dir", KERNEL, "--size", str(JUDGE_SIZE), "--tmpfs", JUDGE]
    for path in SYSTEM:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    seen = set()
    for path in {sys.prefix, sys.base_prefix, str(python.parent), str(python.resolve().parent.parent)}:
        if path not in seen and os.path.isdir(path):
            seen.add(path)
            cmd += ["--ro-bind", path, path]
    for path in sys.path:  # site folders outside the prefixes (a user site); never a working folder
        if ("site-packages" in path or "dist-packages" in path) and os.path.isdir(path) \
                and not any(path.startswith(s + os.sep) or path == s for s in seen):
            cmd += ["--ro-bind", path, path]
    cmd += ["--ro-bind", str(PACKAGE), str(PACKAGE)]
    if HIDDEN.is_dir():
        cmd += ["--tmpfs", str(HIDDEN), "--remount-ro", str(HIDDEN)]
    if connection_file is not None:
        cmd += ["--ro-bind", str(connection_file), f"{KERNEL}/kernel.json"]
    cmd += ["--chdir", STUDENT, "--setenv", "HOME", STUDENT, "--setenv", "MPLCONFIGDIR", f"{STUDENT}/.config",
            "--setenv", "TMPDIR", "/tmp", "--unsetenv", "JPY_PARENT_PID", "--remount-ro", "/", "--"]
    return cmd


def _descendants(pid):
    """The processes started by `pid`, by their children, and so on (a sandbox's are bwrap's)."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    parents.setdefault(int(f.read().rsplit(b")", 1)[1].split()[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


class SandboxKernelManager(AsyncKernelManager):
    """A kernel started inside the sandbox (no sandbox when `limits` is None, for --unsafe-no-sandbox).

    `workdir` is a folder of the grader's own: it holds the connection file and the grader's links to the
    kernel's sockets (and, without a sandbox, the working folder). `data` are files copied into the
    working folder before the notebook runs. Messages from the kernel larger than `max_message` bytes
    are dropped as they arrive, and at most a few wait to be read, so the grader's memory stays bounded
    whatever the kernel sends."""

    def __init__(self, workdir, limits=None, data=(), max_message=32 << 20, **kwargs):
        self.workdir, self.data, self.sandboxed = Path(workdir), list(data), limits is not None
        self.runtime = self.workdir / "kernel"
        self.runtime.mkdir(mode=0o700)
        ip = f"{KERNEL}/ipc" if self.sandboxed else str(self.runtime / "ipc")
        super().__init__(transport="ipc", ip=ip, connection_file=str(self.runtime / "kernel.json"),
                         kernel_name="python3", **kwargs)
        self.max_message, self.judge_fd, self._fds = max_message, None, []
        _limit_messages(self.context, max_message)
        self.kernel_spec.interrupt_mode = "message"  # a signal would reach bwrap, not the kernel inside
        if self.sandboxed:
            self.sandbox_prefix = command(self.workdir, limits, connection_file=self.connection_file)
            self.launch_folder, self.judge_folder = str(self.workdir), JUDGE
        else:
            self.sandbox_prefix = []
            student, judge = self.workdir / "student", self.workdir / "judge"
            student.mkdir()
            judge.mkdir()
            for path in self.data:
                shutil.copy2(path, student)
            self.launch_folder, self.judge_folder = str(student), str(judge)
            self.judge_fd = os.open(judge, FOLDER)
            self._fds.append(self.judge_fd)

    def format_kernel_cmd(self, extra_arguments=None):
        """The course's own Python runs the kernel, whatever kernel specs are installed."""
        connection = f"{KERNEL}/kernel.json" if self.sandboxed else self.connection_file
        return self.sandbox_prefix + [sys.executable, "-m", "ipykernel_launcher", "-f", connection,
                                      *(extra_arguments or [])]

    def client(self, **kwargs):
        kc = super().client(**kwargs)
        _limit_messages(kc.context, self.max_message)
        return kc

    async def _async_post_start_kernel(self, **kw):
        if self.sandboxed:
            await self._attach()
        await super()._async_post_start_kernel(**kw)

    async def _attach(self):
        """Wait for the kernel's sockets, then open them and the sandbox's folders (see the module's text)."""
        process, deadline = self.provisioner.process, time.monotonic() + START_TIMEOUT
        while not any(self._try_attach(pid) for pid in _descendants(process.pid)):
            if process.poll() is not None:
                raise RuntimeError("the sandbox ended before its kernel started")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kernel did not start within {START_TIMEOUT} s")
            await asyncio.sleep(0.05)
        # the grader's links, each to a socket it holds open, in its folder reached through a descriptor too
        # (so that the path stays short, as a socket's must, however deep the grader's temporary folder)
        runtime = os.open(self.runtime, FOLDER)
        self._fds.append(runtime)
        for port, fd in zip(self.ports, self._sockets):
            os.symlink(f"/proc/self/fd/{fd}", f"grader-{port}", dir_fd=runtime)
        self.ip = f"/proc/self/fd/{runtime}/grader"

    def _try_attach(self, pid):
        """Open the sandbox of process `pid` once its kernel has bound its sockets: True, or False (not yet)."""
        try:
            root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        opened, sockets, judge = [root], [], None
        try:
            if os.fstat(root).st_dev == os.stat("/").st_dev:  # not yet in its own root
                return False
            box = open_folder(BOX[1:], dir_fd=root)
            opened.append(box)
            kernel = open_folder("kernel", dir_fd=box)
            opened.append(kernel)
            names = [f"ipc-{port}" for port in self.ports]
            if not all(stat.S_ISSOCK(os.stat(n, dir_fd=kernel, follow_symlinks=False).st_mode) for n in names):
                return False
            sockets = [os.open(n, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=kernel) for n in names]
            if not all(stat.S_ISSOCK(os.fstat(fd).st_mode) for fd in sockets):
                return False
            judge = open_folder("judge", dir_fd=box)
            student = open_folder("student", dir_fd=box)
            opened.append(student)
            for path in self.data:  # the chapter's data files, each a new file (the quota counts them)
                with open(path, "rb") as src:
                    fd = os.open(Path(path).name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=student)
                    with os.fdopen(fd, "wb") as dst:
                        shutil.copyfileobj(src, dst)
            self._sockets, self.judge_fd, self._fds = sockets, judge, [*sockets, judge]
            sockets, judge = [], None  # kept
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        finally:
            for fd in opened + sockets + ([judge] if judge is not None else []):
                os.close(fd)

    def release(self):
        """Close what the grader holds of the sandbox (after shutdown): its file systems can then go."""
        fds, self._fds, self.judge_fd = self._fds, [], None
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _limit_messages(context, max_message):
    """New sockets of `context` drop a message larger than `max_message` bytes and queue at most 8."""
    context.setsockopt(zmq.MAXMSGSIZE, max_message)
    context.setsockopt(zmq.RCVHWM, 8)
