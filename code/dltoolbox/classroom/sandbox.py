"""The sandbox each submission's kernel runs in: bubblewrap (``bwrap``), with resource limits.

The kernel sees a read-only system and Python, the course package read-only without its hidden tests, and
one writable scratch folder holding a copy of that one submission's working files. It has no network,
no view of other processes (its own PID namespace: when the sandbox ends, every process it started
ends with it), no instructor notebooks, other submissions or gradebook. Limits: address space (memory),
processes, file size, all set before ``bwrap`` starts; time limits are the grader's.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_client import AsyncKernelManager

from . import HIDDEN, PACKAGE
SYSTEM = ["/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin", "/etc/alternatives", "/etc/ld.so.cache",
          "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd", "/etc/group",
          "/etc/nsswitch.conf", "/etc/ssl", "/etc/fonts", "/etc/matplotlibrc"]
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


@dataclass
class Sandbox:
    """Limits of one submission's sandbox (memory in bytes)."""
    memory: int = 8 << 30
    processes: int = 256
    file_size: int = 1 << 30


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
    """Why no sandbox can be made here, or None when bubblewrap works."""
    path = bwrap_path()
    if path is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    try:
        run = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                              "--dev", "/dev", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not be run: {error}"
    if run.returncode != 0:
        return f"bubblewrap cannot create its namespaces here: {run.stderr.strip()[:300]}"
    if os.getuid() == 0 and "pids" not in cgroups("probe"):
        return ("running as root with no writable pids cgroup, the sandbox's process limit cannot be enforced "
                "(Linux does not apply RLIMIT_NPROC to root): run the grader as an ordinary user")
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


def command(scratch, limits=None):
    """The prefix that runs a command inside the sandbox, with `scratch` as its only writable folder."""
    limits = limits or Sandbox()
    scratch = str(Path(scratch).resolve())
    python = Path(sys.executable)
    # RLIMIT_NPROC counts every process of this user: allow the sandbox `processes` more than there are now
    rlimits = {"RLIMIT_AS": limits.memory, "RLIMIT_FSIZE": limits.file_size, "RLIMIT_CORE": 0,
               "RLIMIT_NPROC": _processes_of(os.getuid()) + limits.processes}
    folders = cgroups(f"dltoolbox-{os.getpid()}-{Path(scratch).name}")
    cmd = [sys.executable, "-I", "-S", "-c", LAUNCH, ",".join(f"{k}={v}" for k, v in rlimits.items()),
           json.dumps(_cgroup_files(folders, limits)), bwrap_path(),
           "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--unshare-user", "--uid", "65534",
           "--gid", "65534", "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
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
    cmd += ["--bind", scratch, scratch, "--chdir", scratch, "--setenv", "HOME", scratch,
            "--setenv", "MPLCONFIGDIR", f"{scratch}/.config", "--setenv", "TMPDIR", "/tmp",
            "--unsetenv", "JPY_PARENT_PID", "--"]
    return cmd


class SandboxKernelManager(AsyncKernelManager):
    """A kernel started inside the sandbox (no sandbox when `limits` is None, for --unsafe-no-sandbox); it
    talks to the grader over Unix sockets in the scratch folder."""

    def __init__(self, scratch, limits=None, **kwargs):
        runtime = Path(scratch) / ".kernel"
        runtime.mkdir(exist_ok=True)
        super().__init__(transport="ipc", ip=str(runtime / "ipc"), connection_file=str(runtime / "kernel.json"),
                         kernel_name="python3", **kwargs)
        self.sandbox_prefix = command(scratch, limits) if limits is not None else []
        self.kernel_spec.interrupt_mode = "message"  # a signal would reach bwrap, not the kernel inside

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return self.sandbox_prefix + [sys.executable if c == "python" else c for c in cmd]
