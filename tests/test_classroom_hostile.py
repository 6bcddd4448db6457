"""The grader against students who try to cheat or to harm the class (tests/fixtures/hostile/, one student each).

The whole hostile class is graded once, in the sandbox, beside honest students: stripped and renamed
(right answers, changed metadata), ben (wrong answers) and zoe (right answers, graded after everyone
else); each test reads what one student got.
The README's table ("For instructors") lists the same cases. Unit tests of the same defences, and the
attacks that need a class of their own, are in tests/test_classroom_robust.py.
"""
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from dltoolbox.classroom import cli
from dltoolbox.classroom import grading, sandbox

FIXTURES = ROOT / "tests" / "fixtures"
PACKAGE = ROOT / "code" / "dltoolbox"
NO_SANDBOX = sandbox.problem()
VICTIM = Path("/tmp/dltoolbox-hostile-victim.txt")  # the vandal links the grader's files here
VICTIM_DIR = Path("/tmp/dltoolbox-hostile-victim-dir")  # the linker puts a link to it for the kernel's folder
KERNEL_FILES = ["kernel.json"] + [f"ipc-{n}" for n in range(1, 6)]
DISK = 0.25  # GiB of files per sandbox (--disk), in its folder and in its /tmp each
needs_sandbox = pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def package_digest():
    """The package files the vandal writes to, and the classroom (other modules may be edited meanwhile)."""
    files = [PACKAGE / "checks" / "practice.py", PACKAGE / "checks" / "__init__.py"]
    return {**digest(PACKAGE / "classroom"), **{p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}}


def sleepers():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"dltoolbox-hostile-sleeper" in open(f"/proc/{pid}/cmdline", "rb").read():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    if NO_SANDBOX is not None:
        pytest.skip(f"no sandbox here: {NO_SANDBOX}")
    folder = tmp_path_factory.mktemp("hostile")
    shutil.copytree(FIXTURES / "source", folder / "source")
    shutil.copytree(FIXTURES / "hostile", folder / "submitted")
    linker = folder / "submitted" / "=HYPERLINK(0)" / "00_practice"  # a formula for a name, a link for a notebook
    linker.mkdir(parents=True)
    os.symlink(folder / "source" / "00_practice" / "practice.ipynb", linker / "practice.ipynb")
    (folder / "submitted" / "piper" / "00_practice").mkdir(parents=True)  # a FIFO: reading it would hang
    os.mkfifo(folder / "submitted" / "piper" / "00_practice" / "practice.ipynb")
    for student, honest in (("ben", "ben"), ("zoe", "ada")):  # wrong answers; right ones, graded last
        shutil.copytree(FIXTURES / "submissions" / honest, folder / "submitted" / student)
    long_path(folder / "submitted" / "longpath", 4095)  # a submission's path as long as the system allows
    odd = os.fsencode(folder / "submitted" / "mallory") + b"/00_pr\xe4ctice"  # not UTF-8
    os.makedirs(odd)
    shutil.copy(FIXTURES / "submissions" / "ada" / "00_practice" / "practice.ipynb", os.fsdecode(odd))
    VICTIM.write_text("the instructor's file")
    shutil.rmtree(VICTIM_DIR, ignore_errors=True)
    VICTIM_DIR.mkdir()
    for name in KERNEL_FILES:
        (VICTIM_DIR / name).write_text("the instructor's file")
    before = {"package": package_digest(), "source": digest(folder / "source"),
              "submitted": digest(folder / "submitted")}
    tmp = folder / "grader-tmp"  # the grader's temporary files, to see what is left
    tmp.mkdir()
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "dltoolbox.classroom", "grade", str(folder / "submitted"),
                          "--source", str(folder / "source"), "--out", str(folder / "gradebook"),
                          "--timeout", "10", "--notebook-timeout", "120", "--disk", str(DISK)],
                         capture_output=True, timeout=1800, cwd=folder, env=dict(os.environ, TMPDIR=str(tmp)))
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    seconds = time.perf_counter() - start
    graded = (folder / "gradebook" / "grades.json").read_bytes()
    time.sleep(2)  # long enough for a surviving process to strike
    victim = VICTIM.read_text()
    VICTIM.unlink()
    victim_dir = {p.name: p.read_text() for p in VICTIM_DIR.iterdir()}
    shutil.rmtree(VICTIM_DIR)
    rows = json.loads(graded)["grades"]
    return {"folder": folder, "before": before, "stdout": run.stdout, "graded": graded, "rows": rows, "victim": victim,
            "victim_dir": victim_dir, "left": sorted(os.listdir(tmp)), "seconds": seconds,
            "grades": {(r["student"], r["exercise"].replace("practice-", "")): r for r in rows}}


def long_path(top, length, name="practice.ipynb"):
    """ada's notebook as `name` in folders below `top`, the file's path `length` bytes long."""
    path = os.fsencode(top)
    while len(path) + 1 + 200 + 1 + len(name) < length:
        path += b"/" + b"p" * 200
    path += b"/" + b"q" * (length - len(path) - 2 - len(name))
    os.makedirs(path)
    shutil.copy(FIXTURES / "submissions" / "ada" / "00_practice" / "practice.ipynb", path + b"/" + name.encode())


def outputs(hostile, student, cell):
    """The text a cell of a student's executed copy printed."""
    executed = hostile["folder"] / "gradebook" / "executed" / student / "00_practice" / "practice.ipynb"
    return "".join(o.get("text", "") for o in nbformat.read(executed, as_version=4).cells[cell].outputs)


def total(hostile, student):
    got = [r for (s, _), r in hostile["grades"].items() if s == student]
    return sum(r["points"] for r in got), sum(r["max_points"] for r in got)


@pytest.mark.parametrize("student", ["transformer", "patcher", "modules", "builtins", "alwaystrue", "thief",
                                     "sleeper", "vandal", "signaller"])
def test_no_wrong_answer_earns_points(hostile, student):
    """Tampering with the kernel (input transformers, checks, modules, builtins, always-equal objects) or
    copying the instructor's solutions from the file system earns nothing: the answers are wrong."""
    assert total(hostile, student) == (0, 5)


def test_the_honest_students_and_the_class_are_unharmed(hostile):
    """Graded after the sleeper, the signaller, the vandal and those who try to stop the class or fill its
    disk, correct work still gets full marks and wrong work none; every student is in the gradebook."""
    for student in ("stripped", "vandal", "thief", "transformer", "sleeper", "signaller", "=HYPERLINK(0)", "ben",
                    "zoe", "linker", "deep", "filler", "raiser", "copier", "longpath", "mallory"):
        assert (student, "") in hostile["grades"] or (student, "ex1-check") in hostile["grades"], student
    assert total(hostile, "stripped") == total(hostile, "renamed") == (5, 5)
    assert hostile["grades"]["stripped", "ex1-check"]["feedback"].startswith("✓ Exercise 0.1 passed")
    assert total(hostile, "zoe") == (5, 5) and total(hostile, "ben") == (0, 5)
    assert hostile["grades"]["zoe", "ex4-check"]["feedback"].startswith("✓ Exercise 2.2 passed")


def test_nothing_outlives_the_sandbox_and_the_gradebook_stays_as_written(hostile):
    assert sleepers() == []
    assert (hostile["folder"] / "gradebook" / "grades.json").read_bytes() == hostile["graded"]


def test_files_of_the_course_and_the_class_are_never_changed(hostile):
    before, folder = hostile["before"], hostile["folder"]
    assert package_digest() == before["package"], "the package is read-only for student code"
    assert digest(folder / "source") == before["source"], "the instructor notebooks are out of reach"
    assert digest(folder / "submitted") == before["submitted"], "no submission is changed or deleted"
    assert hostile["victim"] == "the instructor's file", "the grader never writes through the student's links"


def test_a_link_for_the_kernels_folder_never_makes_the_grader_delete_elsewhere(hostile):
    """The linker renames the kernel's folder and puts a link to a folder of the instructor's in its
    place (the grader once removed kernel.json and ipc-1 to ipc-5 there at shutdown): nothing is touched."""
    assert "replaced /sandbox/kernel" in outputs(hostile, "linker", 2)
    assert hostile["victim_dir"] == {name: "the instructor's file" for name in KERNEL_FILES}
    assert total(hostile, "linker") == (5, 5)


def test_a_long_path_or_a_name_that_is_not_utf8_stops_no_one(hostile):
    """A 4,095-byte path once stopped the class at that student; a chapter folder named in Latin-1 left no
    gradebook at all. Both are graded, their names escaped; everyone after them too."""
    assert total(hostile, "longpath") == total(hostile, "mallory") == (5, 5)
    notebooks = {r["notebook"] for r in hostile["rows"] if r["student"] == "mallory"}
    assert notebooks == {"00_pr\\xe4ctice/practice.ipynb"}
    assert b"00_pr\\xe4ctice/practice.ipynb" in hostile["stdout"] and b"\xe4" not in hostile["stdout"]
    assert (hostile["folder"] / "gradebook" / "grades.csv").read_text(encoding="utf-8").count("mallory") == 4


def test_a_deep_tree_is_gone_and_nothing_is_left_on_disk(hostile):
    """3,000 folders deep with a file at each level: the sandbox's folder is a file system of its own,
    gone when the sandbox ends (the grader's clean-up once died on it, leaving 312 MB)."""
    assert "levels" in outputs(hostile, "deep", 2) or "stopped at level" in outputs(hostile, "deep", 2)
    assert total(hostile, "deep") == (5, 5)
    assert hostile["left"] == [], "the grader leaves no temporary files"


def test_filling_the_disk_is_stopped_at_the_quota(hostile):
    """Files of 100 MB until the disk is full: the sandbox's folder and /tmp hold --disk each, /dev/shm 64 MiB;
    the student graded next (zoe) is unharmed."""
    written = {line.split()[0]: int(line.split()[2]) for line in outputs(hostile, "filler", 2).splitlines()
               if " wrote " in line}
    limit = int(DISK * 1024)
    assert written["."] <= limit and written["/tmp"] <= limit and written["/dev/shm"] <= 64, written
    assert "refused: OSError" in outputs(hostile, "filler", 2)
    assert total(hostile, "filler") == (5, 5) and total(hostile, "zoe") == (5, 5)


def test_error_outputs_count_against_the_output_limit(hostile):
    """Eight cells raising 3 MB messages (each shown twice, in the message and the traceback) once made an
    executed copy of about 50 MB: errors are output too, cut at --max-output."""
    executed = hostile["folder"] / "gradebook" / "executed" / "raiser" / "00_practice" / "practice.ipynb"
    assert executed.stat().st_size < 2_000_000
    assert "[output cut at 100000 characters]" in executed.read_text()
    assert total(hostile, "raiser") == (5, 5)


def test_one_assignment_gets_one_grade(hostile):
    """Three copies of one assignment once scored 15/15: the copy in the chapter's folder is graded."""
    assert total(hostile, "copier") == (5, 5)
    notes = sorted(r["notebook"] for r in hostile["rows"] if r["student"] == "copier" and r["exercise"] == "")
    assert notes == ["copy/practice.ipynb", "practice.ipynb"]
    assert all("only 00_practice/practice.ipynb is graded" in r["feedback"]
               for r in hostile["rows"] if r["student"] == "copier" and r["exercise"] == "")


def test_a_symlinked_or_special_submission_is_refused(hostile):
    row = hostile["grades"]["=HYPERLINK(0)", ""]
    assert row["points"] == 0 and "symbolic link" in row["feedback"]
    row = hostile["grades"]["piper", ""]
    assert row["points"] == 0 and "not a regular file" in row["feedback"]


def test_without_the_sandbox_the_thief_gets_full_marks(tmp_path):
    """What the sandbox prevents: with --unsafe-no-sandbox the notebook copies the instructor's solutions."""
    shutil.copytree(FIXTURES / "hostile" / "thief", tmp_path / "submitted" / "thief")
    rows = grading.grade_folder(tmp_path / "submitted", tmp_path / "gradebook", sources=[str(FIXTURES / "source")],
                                limits=grading.Limits(timeout=10, sandbox=False))
    assert sum(r["points"] for r in rows) == 5


def test_hidden_cases_never_reach_the_feedback(hostile):
    leaker = hostile["grades"]["leaker", "ex1-check"]
    assert leaker["points"] == 0 and "a hidden test failed" in leaker["feedback"]
    assert "raised ValueError" in leaker["feedback"]
    text = json.dumps(hostile["rows"])
    assert "LEAKED-CASE" not in leaker["feedback"]  # (a visible case may be shown, the hidden ones never)
    assert "[3.0]" not in text and "[1.0, 3.0]" not in text and "[10.0, 20.0]" not in text
    assert "LEAKED_NAME" not in text and "10_20" not in text  # nor an exception class named after the case


def test_output_is_capped_for_display_updates_and_widgets(hostile):
    assert total(hostile, "flood") == (5, 5)
    executed = hostile["folder"] / "gradebook" / "executed" / "flood" / "00_practice" / "practice.ipynb"
    assert executed.stat().st_size < 500_000
    assert "widgets" not in json.loads(executed.read_text())["metadata"]


def test_student_bytes_and_formulas_are_neutralised(hostile):
    assert b"\x1b" not in hostile["stdout"] and b"\x07" not in hostile["stdout"]
    with open(hostile["folder"] / "gradebook" / "grades.csv", newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert "'=HYPERLINK(0)" in cells and "=HYPERLINK(0)" not in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]


@pytest.mark.parametrize("student, note", [
    ("renamed", "the solution cell practice-ex1-solution was recognised by its content"),
    ("stripped", "recognised by its content"),
    ("duplicate", "copies of this locked cell; the original was used once"),
])
def test_correct_work_with_changed_metadata_keeps_its_points(hostile, student, note):
    assert total(hostile, student) == (5, 5)
    assert note in " ".join(r["feedback"] for (s, _), r in hostile["grades"].items() if s == student)


# --- the grader's own files and the class loop ------------------------------------------------------

def test_gradebook_is_never_written_through_a_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "gradebook"
    out.mkdir()
    (out / "grades.csv").symlink_to(victim)
    (out / "grades.json").symlink_to(victim)
    grading.write_gradebook([{"student": "=1+1", "notebook": "n.ipynb", "exercise": "e", "points": 1.0,
                              "max_points": 1.0, "feedback": "-2"}], out)
    assert victim.read_text() == "keep me"
    assert not (out / "grades.csv").is_symlink() and "'=1+1" in (out / "grades.csv").read_text()
    assert json.loads((out / "grades.json").read_text())["grades"][0]["student"] == "=1+1"


def test_without_a_sandbox_grading_is_refused_unless_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "problem", lambda: "bubblewrap (bwrap) is not installed")
    (tmp_path / "submitted" / "ada").mkdir(parents=True)
    code = cli.main(["grade", str(tmp_path / "submitted"), "--source", str(FIXTURES / "source"),
                             "--out", str(tmp_path / "gradebook")])
    err = capsys.readouterr().err
    assert code == 2 and "no sandbox can be made" in err and "--unsafe-no-sandbox" in err
    assert not (tmp_path / "gradebook").exists()


@needs_sandbox
def test_a_signal_stops_one_notebook_not_the_class(tmp_path):
    """One Ctrl-C (or a stray SIGINT) while a notebook runs: that notebook is marked, the rest is graded."""
    for student in ("ada", "dan"):
        shutil.copytree(FIXTURES / "submissions" / student, tmp_path / "submitted" / student)
    grader = subprocess.Popen([sys.executable, "-u", "-m", "dltoolbox.classroom", "grade", str(tmp_path / "submitted"),
                               "--source", str(FIXTURES / "source"), "--out", str(tmp_path / "gradebook"),
                               "--timeout", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in grader.stdout:  # ada is graded; dan's endless loop comes next
        if line.startswith(b"ada"):
            break
    time.sleep(1.5)
    grader.send_signal(signal.SIGINT)
    out, err = grader.communicate(timeout=300)
    assert grader.returncode == 0, err.decode(errors="replace")[-2000:]
    rows = json.loads((tmp_path / "gradebook" / "grades.json").read_text())["grades"]
    assert {r["student"] for r in rows} == {"ada", "dan"}
    assert {r["student"] for r in rows if "not graded: interrupted" in r["feedback"]} == {"dan"}
    assert sum(r["points"] for r in rows if r["student"] == "ada") == 5
