"""The sandbox around each submission's kernel (bubblewrap): what code inside it can see and do."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from dltoolbox.classroom import HIDDEN, sandbox

NO_SANDBOX = sandbox.problem()
pytestmark = pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")

PROBE = r"""
import json, os, pathlib, socket, subprocess
out = {"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
       "interfaces": [name for _, name in socket.if_nameindex()],
       "chapters": (pathlib.Path(ROOT) / "chapters").exists(), "tests": (pathlib.Path(ROOT) / "tests").exists(),
       "hidden": sorted(os.listdir(HIDDEN)), "cwd": os.getcwd()}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    out["network"] = True
except OSError:
    out["network"] = False
for name, path in [("package", pathlib.Path(PACKAGE) / "checks" / "new.py"), ("scratch", pathlib.Path("mine.txt")),
                   ("root", pathlib.Path("/new.txt")), ("dev", pathlib.Path("/dev/new.txt"))]:
    try:
        path.write_text("x")
        out[name] = "written"
    except OSError as error:
        out[name] = type(error).__name__
try:
    block = bytearray(3 << 30)
    out["memory"] = "allocated"
except MemoryError:
    out["memory"] = "MemoryError"
print(json.dumps(out))
"""


def test_the_sandbox_sees_only_its_scratch_folder_and_the_package_read_only(tmp_path):
    code = PROBE.replace("ROOT", repr(str(ROOT))).replace("HIDDEN", repr(str(HIDDEN)))
    code = code.replace("PACKAGE", repr(str(HIDDEN.parent.parent)))
    run = subprocess.run(sandbox.command(tmp_path, sandbox.Sandbox(memory=2 << 30)) + [sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120)
    sandbox.remove_cgroup(tmp_path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["uid"] == 65534 and out["cwd"] == sandbox.STUDENT
    assert len(out["pids"]) <= 3, "its own PID namespace: no other process is visible"
    assert out["interfaces"] == ["lo"] and out["network"] is False
    assert out["chapters"] is False and out["tests"] is False, "no instructor notebooks, no fixtures"
    assert out["hidden"] == [], "the hidden tests are masked"
    assert out["package"] == "OSError" and out["scratch"] == "written"
    assert out["root"] == out["dev"] == "OSError", "only its own file systems are writable"
    assert out["memory"] == "MemoryError"
    assert list(tmp_path.iterdir()) == [], "its files are in a file system of its own, gone with it"


def test_the_sandbox_limits_its_files(tmp_path):
    """Files of 10 MB until the disk is full: each of its writable file systems stops at its size (the judge's
    folder is one of its own, so a student who fills the working folder is still graded)."""
    code = ("import json, os\nwritten = {}\nfor folder in ('.', '/tmp', '/dev/shm', '/sandbox/judge'):\n"
            "    n = 0\n    try:\n        while n < 200:\n"
            "            with open(os.path.join(folder, f'fill-{n}'), 'wb') as f:\n"
            "                f.write(b'x' * (10 << 20))\n            n += 1\n    except OSError:\n        pass\n"
            "    written[folder] = n * 10\nprint(json.dumps(written))\n")
    run = subprocess.run(sandbox.command(tmp_path, sandbox.Sandbox(disk=50 << 20)) + [sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120)
    sandbox.remove_cgroup(tmp_path)
    written = json.loads(run.stdout.strip().splitlines()[-1])
    assert written["."] <= 50 and written["/tmp"] <= 50, written
    assert written["/dev/shm"] <= sandbox.SHARED_MEMORY >> 20 and written["/sandbox/judge"] <= sandbox.JUDGE_SIZE >> 20


def test_the_sandbox_limits_processes(tmp_path):
    code = ("import subprocess\nstarted = []\ntry:\n    for _ in range(60):\n"
            "        started.append(subprocess.Popen(['sleep', '5']))\nexcept OSError as error:\n"
            "    print('refused after', len(started), type(error).__name__)\nelse:\n    print('all started')\n")
    run = subprocess.run(sandbox.command(tmp_path, sandbox.Sandbox(processes=20)) + [sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120)
    sandbox.remove_cgroup(tmp_path)
    assert "refused after" in run.stdout, run.stdout + run.stderr
    assert int(run.stdout.split()[2]) <= 20


def test_the_sandbox_limits_memory_in_all(tmp_path):
    """Three processes of 600 MB each stay within the per-process limit, not within 1 GiB in all."""
    if not sandbox.cgroups("probe").get("memory"):
        pytest.skip("no memory cgroup here: only the per-process limit applies")
    code = ("import subprocess, sys\n"
            "hog = 'import time; block = b\"x\" * (600 << 20); time.sleep(3)'\n"
            "procs = [subprocess.Popen([sys.executable, '-c', hog]) for _ in range(3)]\n"
            "print([p.wait() for p in procs])\n")
    run = subprocess.run(sandbox.command(tmp_path, sandbox.Sandbox(memory=1 << 30)) + [sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120)
    sandbox.remove_cgroup(tmp_path)
    assert run.returncode != 0 or "-9" in run.stdout, run.stdout + run.stderr
