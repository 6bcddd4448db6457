"""The grader against submissions that try to stop the class or exhaust the grading machine.

Most tests here call the grader's own functions (clean-up, the walk over the submissions, the gradebook,
output accounting, the class loop with a stand-in for the worker) and take milliseconds; a few run a
kernel in the sandbox. The whole hostile class, graded once, is in tests/test_classroom_hostile.py.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from dltoolbox.classroom import files, grading, sandbox
from dltoolbox.classroom.kernel import GradingClient

FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "source"
PRACTICE = SOURCE / "00_practice" / "practice.ipynb"
ADA = FIXTURES / "submissions" / "ada" / "00_practice" / "practice.ipynb"
BEN = FIXTURES / "submissions" / "ben" / "00_practice" / "practice.ipynb"
NO_SANDBOX = sandbox.problem()
needs_sandbox = pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")


def deep_tree(top, depth, data=b""):
    """A folder `depth` levels deep below `top` (each level a folder "d" and, with `data`, a file)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        if data:
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
                f.write(data)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


def long_path(top, length, data=b"{}", name="practice.ipynb"):
    """A file `name` holding `data` in folders below `top`, its path `length` bytes (maybe longer than a
    path the system opens in one call); that path, as bytes."""
    path = os.fsencode(top)
    while len(path) + 1 + 200 + 1 + len(name) < length:
        path += b"/" + b"p" * 200
    path += b"/" + b"q" * (length - len(path) - 2 - len(name))
    parts = [os.fsdecode(p) for p in path[len(os.fsencode(top)) + 1:].split(b"/")]
    Path(top).mkdir(parents=True, exist_ok=True)
    fd = files.open_folder(top, parts, create=True)
    with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
        f.write(data)
    os.close(fd)
    return path + b"/" + name.encode()


# --- clean-up, walking and writing: no recursion, no link followed, no path too long ------------------------

@pytest.fixture
def memory_path(tmp_path):
    """A folder in memory where there is one (/dev/shm): thousands of folders are made in milliseconds."""
    if not os.access("/dev/shm", os.W_OK):
        return tmp_path
    import tempfile
    folder = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="dltoolbox-test-"))
    yield folder
    files.remove_tree(folder)


def test_clean_up_of_a_tree_thousands_of_folders_deep(memory_path):
    """shutil.rmtree (and so tempfile's clean-up) recurses and dies on a deep tree; the grader's does not."""
    top = memory_path / "scratch"
    top.mkdir()
    deep_tree(top, 3000, b"x" * 100)
    with pytest.raises(RecursionError):
        shutil.rmtree(top)
    files.remove_tree(top)
    assert not top.exists()


def test_clean_up_never_follows_a_link(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "kernel.json").write_text("the instructor's")
    top = tmp_path / "scratch"
    (top / "a").mkdir(parents=True)
    (top / "a" / "link").symlink_to(keep)
    (top / "file-link").symlink_to(keep / "kernel.json")
    os.chmod(top / "a", 0o000)  # a folder its owner made unreadable is still removed
    files.remove_tree(top)
    assert not top.exists() and (keep / "kernel.json").read_text() == "the instructor's"


def test_the_walk_finds_long_and_badly_named_paths_and_follows_no_link(tmp_path):
    longest = long_path(tmp_path / "ada", 4500)  # longer than a path the system opens in one call
    assert len(longest) > 4096
    odd = os.fsencode(tmp_path / "m\u00fcller") + b"/00_pr\xe4ctice"
    os.makedirs(odd)
    Path(os.fsdecode(odd + b"/practice.ipynb")).write_text("{}")
    (tmp_path / "eve").mkdir()
    (tmp_path / "eve" / "chapters").symlink_to(SOURCE)
    (tmp_path / "eve" / "practice.ipynb").symlink_to(PRACTICE)
    deep_tree(tmp_path / "eve", 40)
    found = {files.shown(str(rel)): why for rel, why in grading.submissions_in(tmp_path)}
    longest = files.shown(os.fsdecode(longest[len(os.fsencode(tmp_path)) + 1:]))
    assert [k for k, why in found.items() if why is None] == [longest, "m\u00fcller/00_pr\\xe4ctice/practice.ipynb"]
    assert found["eve/chapters"] == "the folder is a symbolic link; not graded"
    assert found["eve/practice.ipynb"].startswith("the submission is a symbolic link")
    assert "nested more than 32 folders deep" in found["eve/" + "/".join(["d"] * 32)]


def test_writing_never_goes_through_a_link_and_any_length_of_path_works(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    (out / "executed").mkdir(parents=True)
    (out / "executed" / "mallory").symlink_to(victim)
    with pytest.raises(OSError):
        files.write_under(out, ["executed", "mallory", "practice.ipynb"], b"x")
    assert list(victim.iterdir()) == []
    name = "n" * 250 + ".ipynb"[:5]  # a file name near the system's limit
    parts = ["executed", "ada", *["p" * 200] * 25, name]  # 5,000 bytes of path
    files.write_under(out, parts, b"written")
    fd = files.open_folder(out, parts[:-1])
    assert os.stat(name, dir_fd=fd).st_size == 7
    os.close(fd)
    assert files.file_name(os.fsdecode(b"\xff" * 250)).startswith("\\xff") and \
        len(files.file_name(os.fsdecode(b"\xff" * 250)).encode()) <= 255


def test_the_gradebook_is_written_whatever_the_names(tmp_path):
    """A chapter folder or student whose name is not UTF-8 once made the gradebook fail for everyone."""
    rows = [{"student": os.fsdecode(b"m\xfcller"), "notebook": os.fsdecode(b"00_pr\xe4ctice/practice.ipynb"),
             "exercise": "ex1", "points": 1.0, "max_points": 1.0, "feedback": "fine \ud800"},
            {"student": "ada", "notebook": "practice.ipynb", "exercise": "ex1", "points": 1.0, "max_points": 1.0,
             "feedback": "✓"}]
    grading.write_gradebook(rows, tmp_path)
    data = json.loads((tmp_path / "grades.json").read_text(encoding="utf-8"))
    one = {"points": 1.0, "max_points": 1.0}
    assert data["totals"] == {"m\\xfcller": one, "ada": one}
    assert data["grades"][0]["notebook"] == "00_pr\\xe4ctice/practice.ipynb"
    assert "m\\xfcller" in (tmp_path / "grades.csv").read_text(encoding="utf-8")


# --- the class loop, with a stand-in for the worker ---------------------------------------------------------

@pytest.fixture
def fake_worker(monkeypatch):
    """grading.run_worker replaced: 1 point per check for a notebook holding "variance(xs):", a written
    executed copy; the calls it got are recorded."""
    calls = []

    def run_worker(text, original, limits, private, stop, stats=None):
        calls.append({"limits": limits, "text": text})
        if "SLEEP" in text:
            time.sleep(limits.notebook_timeout)
        rows = [dict(r, points=0.0 if "(len(xs) - 1)" in text else r["max_points"], feedback="judged")
                for r in grading.blank_rows(original)]
        (private / "executed.ipynb").write_text(text)
        return rows, private / "executed.ipynb"
    monkeypatch.setattr(grading, "run_worker", run_worker)
    return calls


def grade(folder, out, **limits):
    return grading.grade_folder(folder, out, sources=[str(SOURCE)], limits=grading.Limits(sandbox=False, **limits))


def test_one_student_with_a_long_path_or_odd_names_never_stops_the_class(tmp_path, fake_worker):
    sub = tmp_path / "submitted"
    for student, src in (("ada", ADA), ("ben", BEN), ("zoe", ADA)):
        (sub / student / "00_practice").mkdir(parents=True)
        shutil.copy(src, sub / student / "00_practice")
    assert len(long_path(sub / "longpath", 4095, ADA.read_bytes())) == 4095
    odd = os.fsencode(sub / "mallory") + b"/00_pr\xe4ctice"
    os.makedirs(odd)
    shutil.copy(ADA, os.fsdecode(odd + b"/practice.ipynb"))
    nameless = os.fsencode(sub) + b"/m\xfcller/00_practice"
    os.makedirs(nameless)
    shutil.copy(BEN, os.fsdecode(nameless + b"/practice.ipynb"))
    out = tmp_path / "gradebook-with-a-longer-path"
    rows = grade(sub, out)
    data = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    assert {s: t["points"] for s, t in data["totals"].items()} == {
        "ada": 5.0, "ben": 0.0, "longpath": 5.0, "m\\xfcller": 0.0, "mallory": 5.0, "zoe": 5.0}
    assert len(rows) == 6 * 4 and (out / "grades.csv").exists()
    assert {r["notebook"] for r in data["grades"] if r["student"] == "mallory"} == {"00_pr\\xe4ctice/practice.ipynb"}
    executed = [p for p in (out / "executed").iterdir()]
    assert sorted(p.name for p in executed) == ["ada", "ben", "longpath", "m\\xfcller", "mallory", "zoe"]


def test_one_notebook_per_assignment_is_graded(tmp_path, fake_worker):
    """Three copies of one assignment: the one in its chapter's folder is graded, the others reported."""
    sub = tmp_path / "submitted"
    for where in ("copy", "00_practice", "."):
        (sub / "copier" / where).mkdir(parents=True, exist_ok=True)
        shutil.copy(ADA, sub / "copier" / where)
    (sub / "ada").mkdir()
    shutil.copy(ADA, sub / "ada")  # no chapter folder: the student's own folder is fine
    rows = grade(sub, tmp_path / "out")
    assert len(fake_worker) == 2
    copier = [r for r in rows if r["student"] == "copier"]
    assert sum(r["points"] for r in copier) == 5 and sum(r["max_points"] for r in copier) == 5
    notes = {r["notebook"]: r["feedback"] for r in copier if r["exercise"] == ""}
    assert notes == {n: "another copy of practice.ipynb: only 00_practice/practice.ipynb is graded (one notebook "
                        "per assignment); not graded" for n in ("copy/practice.ipynb", "practice.ipynb")}
    assert sum(r["points"] for r in rows if r["student"] == "ada") == 5


def test_each_student_has_a_time_limit_for_all_their_notebooks(tmp_path, fake_worker):
    source = tmp_path / "source" / "00_practice"
    source.mkdir(parents=True)
    for name in ("practice.ipynb", "practice2.ipynb"):
        shutil.copy(PRACTICE, source / name)
    sub = tmp_path / "submitted"
    (sub / "slow" / "00_practice").mkdir(parents=True)
    nb = nbformat.read(ADA, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("SLEEP"))
    nbformat.write(nb, sub / "slow" / "00_practice" / "practice.ipynb")
    nbformat.write(nb, sub / "slow" / "00_practice" / "practice2.ipynb")
    shutil.copytree(sub / "slow", sub / "zoe")
    rows = grading.grade_folder(sub, tmp_path / "out", sources=[str(tmp_path / "source")],
                                limits=grading.Limits(sandbox=False, notebook_timeout=60, student_timeout=2))
    assert [c["limits"].notebook_timeout for c in fake_worker] == [2, 2]  # slow's first, then zoe's first
    late = [r for r in rows if r["notebook"].endswith("practice2.ipynb")]
    assert {r["student"] for r in late} == {"slow", "zoe"}
    assert all(r["feedback"].startswith("not graded: this student's notebooks ran 2 s in all") for r in late)


def test_a_flood_of_notebooks_that_are_not_graded_is_summed_up(tmp_path, fake_worker):
    sub = tmp_path / "submitted" / "hoarder"
    sub.mkdir(parents=True)
    for n in range(50):
        (sub / f"n{n:02d}.ipynb").write_text("{}")
    rows = grade(tmp_path / "submitted", tmp_path / "out")
    assert len(rows) == grading.MAX_UNGRADED + 1
    assert rows[-1]["feedback"].startswith("and 30 more notebooks")


def test_a_failing_step_of_one_notebook_is_that_notebooks_feedback(tmp_path, monkeypatch):
    """Writing an executed copy (or anything after the worker) that fails stays with that student."""
    sub = tmp_path / "submitted"
    for student in ("ada", "ben", "zoe"):
        (sub / student).mkdir(parents=True)
        shutil.copy(ADA, sub / student)

    def run_worker(text, original, limits, private, stop, stats=None):
        if private.name == "1":
            raise MemoryError("the worker could not start")
        (private / "executed.ipynb").write_text(text)
        return [dict(r, points=r["max_points"], feedback="judged") for r in grading.blank_rows(original)], \
            private / "executed.ipynb"
    monkeypatch.setattr(grading, "run_worker", run_worker)
    out = tmp_path / "out"
    (out / "executed").mkdir(parents=True)
    (out / "executed" / "zoe").write_text("a file where a folder goes")
    rows = grading.grade_folder(sub, out, sources=[str(SOURCE)], limits=grading.Limits(sandbox=False), force=True)
    points = {s: sum(r["points"] for r in rows if r["student"] == s) for s in ("ada", "ben", "zoe")}
    assert points == {"ada": 5, "ben": 0, "zoe": 5}
    assert "the grader failed on this notebook: the worker could not start" in rows[4]["feedback"]
    assert all("the executed copy could not be written" in r["feedback"] for r in rows if r["student"] == "zoe")


# --- output accounting -----------------------------------------------------------------------------------

def _message(kind, content, parent="cell"):
    return {"msg_type": kind, "header": {"msg_type": kind}, "parent_header": {"msg_id": parent},
            "content": content, "metadata": {}}


def test_errors_and_display_updates_count_against_the_output_limit():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise"), nbformat.v4.new_code_cell("show")])
    client = GradingClient(nb, {}, grading.Limits(max_output=1000))
    client.reset_execution_trackers()
    client.clear_before_next_output = False
    outs = nb.cells[0].outputs
    error = {"ename": "ValueError", "evalue": "x" * 5000, "traceback": ["x" * 5000]}
    for _ in range(10):
        client.output(outs, _message("error", error), None, 0)
    assert len(json.dumps(outs)) < 1500 and 0 in client.cut
    assert outs[-1]["text"] == "[output cut at 1000 characters]\n"
    shown = {"data": {"text/plain": "short"}, "metadata": {}, "transient": {"display_id": "d"}}
    client.output(nb.cells[1].outputs, _message("display_data", shown), "d", 1)
    for _ in range(5):  # an update may replace a kept output, and counts as much as a new one
        client._update_display_id("d", _message("update_display_data", dict(shown, data={"text/plain": "y" * 300})))
    assert 1 in client.cut and nb.cells[1].outputs[0]["data"]["text/plain"] == "y" * 300


def test_the_whole_notebook_keeps_a_bounded_output():
    client = GradingClient(nbformat.v4.new_notebook(), {}, grading.Limits(max_output=1000))
    client.reset_execution_trackers()
    client.clear_before_next_output = False
    kept = []
    for cell in range(200):
        outs = []
        client.output(outs, _message("stream", {"name": "stdout", "text": "z" * 900}), None, cell)
        kept += outs
    assert sum(len(o.get("text", "")) for o in kept if o.get("name") == "stdout") <= 50 * 1000


# --- end to end, in the sandbox ----------------------------------------------------------------------------

@needs_sandbox
def test_the_worker_memory_stays_bounded_whatever_the_kernel_sends(tmp_path):
    """A kernel sending 400 MB of output as fast as it can, then a 40 MB message: the worker drops what it
    will not keep as it arrives (at most 8 messages wait, one over 32 MB is refused), so its memory grows
    by little (it once queued gigabytes)."""
    flood = nbformat.read(ADA, as_version=4)
    flood.cells.insert(2, nbformat.v4.new_code_cell(
        "from IPython.display import display\nblob = {'text/plain': 'x' * (2 << 20)}\n"
        "for _ in range(200):\n    display(blob, raw=True)\nprint('y' * (40 << 20))"))
    peaks = {}
    limits = grading.Limits(timeout=20, notebook_timeout=240, memory=2 << 30)
    for name, nb in (("honest", nbformat.read(ADA, as_version=4)), ("flood", flood)):
        private = tmp_path / name
        private.mkdir()
        stats = {}
        rows, executed = grading.run_worker(nbformat.writes(nb), PRACTICE, limits, private, grading.Stop(), stats)
        peaks[name] = stats["peak_memory"]
        assert sum(r["points"] for r in rows) == 5, rows
    assert peaks["flood"] - peaks["honest"] < 64 << 20, peaks
    assert executed.stat().st_size < 500_000
    assert "a message larger than 33554432 bytes was refused" in executed.read_text()


def _venv_behind_a_link(tmp):
    """A Python environment under /tmp whose course package is reached through a link there: the grader's
    process sees it, the sandbox (with a /tmp of its own) does not."""
    env = tmp / "env"
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(env)], check=True)
    link = tmp / "course"
    link.symlink_to(ROOT / "code")
    site = next((env / "lib").glob("python3*/site-packages"))
    packages = next((Path(sys.prefix) / "lib").glob("python3*/site-packages"))
    (site / "course.pth").write_text(f"{link}\n{packages}\n")
    return env / "bin" / "python"


@needs_sandbox
def test_the_grader_refuses_an_environment_the_sandbox_cannot_see(tmp_path):
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"dltoolbox-env-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        python = _venv_behind_a_link(tmp)
        sub = tmp_path / "submitted" / "ada"
        sub.mkdir(parents=True)
        shutil.copy(ADA, sub)
        run = subprocess.run([str(python), "-m", "dltoolbox.classroom", "grade", str(sub.parent), "--source",
                              str(SOURCE), "--out", str(tmp_path / "gradebook")],
                             capture_output=True, text=True, timeout=300, env={"PATH": os.environ["PATH"]})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "the sandbox cannot run the course's environment" in run.stderr
    assert "cannot import the course: ModuleNotFoundError" in run.stderr, run.stderr
    assert not (tmp_path / "gradebook").exists()
