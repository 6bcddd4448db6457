"""The grader against students who try to cheat or to harm the class (tests/fixtures/hostile/, one student each).

The whole hostile class is graded once, in the sandbox, beside an honest student (ada); each test reads
what one student got. The README's table ("For instructors") lists the same cases.
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

import pytest

from conftest import ROOT
from dltoolbox import assignments
from dltoolbox.classroom import grading, sandbox

FIXTURES = ROOT / "tests" / "fixtures"
PACKAGE = ROOT / "code" / "dltoolbox"
NO_SANDBOX = sandbox.problem()
VICTIM = __import__("pathlib").Path("/tmp/dltoolbox-hostile-victim.txt")  # the vandal links the grader's files here
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
    VICTIM.write_text("the instructor's file")
    before = {"package": package_digest(), "source": digest(folder / "source"),
              "submitted": digest(folder / "submitted")}
    run = subprocess.run([sys.executable, "-m", "dltoolbox.assignments", "grade", str(folder / "submitted"),
                          "--source", str(folder / "source"), "--out", str(folder / "gradebook"),
                          "--timeout", "10", "--notebook-timeout", "120"],
                         capture_output=True, timeout=900, cwd=folder)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    graded = (folder / "gradebook" / "grades.json").read_bytes()
    time.sleep(2)  # long enough for a surviving process to strike
    victim = VICTIM.read_text()
    VICTIM.unlink()
    rows = json.loads(graded)["grades"]
    return {"folder": folder, "before": before, "stdout": run.stdout, "graded": graded, "rows": rows, "victim": victim,
            "grades": {(r["student"], r["exercise"].replace("practice-", "")): r for r in rows}}


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
    """Graded after the sleeper, the signaller and the vandal, correct work still gets full marks."""
    for student in ("stripped", "vandal", "thief", "transformer", "sleeper", "signaller", "=HYPERLINK(0)"):
        assert (student, "") in hostile["grades"] or (student, "ex1-check") in hostile["grades"], student
    assert total(hostile, "stripped") == total(hostile, "renamed") == (5, 5)
    assert hostile["grades"]["stripped", "ex1-check"]["feedback"].startswith("✓ Exercise 0.1 passed")


def test_nothing_outlives_the_sandbox_and_the_gradebook_stays_as_written(hostile):
    assert sleepers() == []
    assert (hostile["folder"] / "gradebook" / "grades.json").read_bytes() == hostile["graded"]


def test_files_of_the_course_and_the_class_are_never_changed(hostile):
    before, folder = hostile["before"], hostile["folder"]
    assert package_digest() == before["package"], "the package is read-only for student code"
    assert digest(folder / "source") == before["source"], "the instructor notebooks are out of reach"
    assert digest(folder / "submitted") == before["submitted"], "no submission is changed or deleted"
    assert hostile["victim"] == "the instructor's file", "the grader never writes through the student's links"


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
    code = assignments.main(["grade", str(tmp_path / "submitted"), "--source", str(FIXTURES / "source"),
                             "--out", str(tmp_path / "gradebook")])
    err = capsys.readouterr().err
    assert code == 2 and "no sandbox can be made" in err and "--unsafe-no-sandbox" in err
    assert not (tmp_path / "gradebook").exists()


@needs_sandbox
def test_a_signal_stops_one_notebook_not_the_class(tmp_path):
    """One Ctrl-C (or a stray SIGINT) while a notebook runs: that notebook is marked, the rest is graded."""
    for student in ("ada", "dan"):
        shutil.copytree(FIXTURES / "submissions" / student, tmp_path / "submitted" / student)
    grader = subprocess.Popen([sys.executable, "-u", "-m", "dltoolbox.assignments", "grade", str(tmp_path / "submitted"),
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
