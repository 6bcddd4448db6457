"""Assignments: exercises follow the format, the release hides solutions, the grader is fair and robust."""
import csv
import hashlib
import html as html_lib
import json
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest

from conftest import ROOT, chapter_notebooks
from dltoolbox.classroom import cli, exercises, release
from dltoolbox.classroom import grading, sandbox

FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "source"
PRACTICE = SOURCE / "00_practice" / "practice.ipynb"
CLASS = FIXTURES / "submissions"
NOTEBOOKS = chapter_notebooks()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
CHAPTERS = sorted({p.parent for p in NOTEBOOKS})
# The class is graded in the sandbox where bubblewrap works; elsewhere without it, so that the grading
# rules are still tested (the sandbox's own tests then skip: tests/test_classroom_hostile.py)
UNSAFE = ["--unsafe-no-sandbox"] if sandbox.problem() else []


def read(path):
    return nbformat.read(path, as_version=4)


def digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def solution_lines(nb):
    """The lines between the solution markers of each solution cell, by grade_id."""
    found = {}
    for cell in nb.cells:
        if exercises.is_solution(cell):
            block = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
            found[exercises.nbgrader_meta(cell)["grade_id"]] = [
                line.strip() for line in (block[1] if block else "").splitlines() if line.strip()]
    return found


def assert_student_copy(instructor, student):
    """A released notebook: same cells, no solutions, no hidden tests, no outputs, nbgrader checksums."""
    assert release.leaks(student) == []
    src, out = read(instructor), read(student)
    assert len(src.cells) == len(out.cells)
    outside = [grading.SOLUTION_BLOCK.sub("", c.source) for c in src.cells]
    elsewhere = {line.strip() for text in outside for line in text.splitlines()}
    answers = solution_lines(src)
    for cell in out.cells:
        meta = exercises.nbgrader_meta(cell)
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        if exercises.is_solution(cell):
            assert "raise NotImplementedError()" in cell.source
            assert "hide-input" in cell.metadata["tags"]
            released_lines = {line.strip() for line in cell.source.splitlines()}
            for line in answers[meta["grade_id"]]:
                assert line not in released_lines or line in elsewhere, f"solution line released: {line}"
        if exercises.is_check(cell):
            assert meta["locked"] and cell.metadata["editable"] is False and "checksum" in meta
            original = next(c for c in src.cells
                            if exercises.nbgrader_meta(c).get("grade_id") == meta["grade_id"])
            hidden = re.search(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", original.source, re.S)
            released_lines = {line.strip() for line in cell.source.splitlines()}
            public = {line.strip() for line in grading.HIDDEN_BLOCK.sub("", original.source).splitlines()}
            for line in {line.strip() for line in (hidden[1] if hidden else "").splitlines()} - public:
                assert line not in released_lines, f"hidden test released: {line}"


# --- the exercise format ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_exercises_follow_the_format(path):
    assert exercises.exercise_problems(read(path), min_exercises=3) == []


def test_fixture_follows_the_format_and_a_malformed_notebook_is_caught():
    assert exercises.exercise_problems(read(PRACTICE), min_exercises=3) == []
    problems = "\n".join(exercises.exercise_problems(read(FIXTURES / "malformed" / "malformed.ipynb")))
    for expected in ["needs the tag 'hide-input'", "'practice-ex1-solution' is used twice", "points > 0",
                     "after it, a '### END SOLUTION' line", "should call a checker from dltoolbox.checks",
                     "'### BEGIN HIDDEN TESTS' ... '### END HIDDEN TESTS' block"]:
        assert expected in problems
    with pytest.raises(ValueError, match="do not follow the format"):
        release.release([FIXTURES / "malformed"], out=ROOT / "tests" / "no-such-release-folder")
    assert not (ROOT / "tests" / "no-such-release-folder").exists()


def test_solutions_are_collapsed_behind_a_toggle_in_the_book(tmp_path):
    """MyST-NB (the book's renderer) puts each `hide-input` solution inside a closed <details> toggle;
    dltoolbox.course.book.exercises drops the hidden tests from the page."""
    shutil.copy(PRACTICE, tmp_path)
    (tmp_path / "conf.py").write_text('extensions = ["myst_nb", "dltoolbox.course.book.exercises"]\n'
                                      'nb_execution_mode = "off"\nhtml_theme = "sphinx_book_theme"\n'
                                      'root_doc = "practice"\n')
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(tmp_path),
                           str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (tmp_path / "html" / "practice.html").read_text()
    toggles = re.findall(r"<details( [^>]*)>(.*?)</details>", page, re.S)
    hidden = [html_lib.unescape(re.sub(r"<[^>]+>", "", body)) for attrs, body in toggles
              if "hide above-input" in attrs and " open" not in attrs]
    assert len(hidden) == 4
    shown = html_lib.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<details.*?</details>", "", page, flags=re.S)))
    for lines in solution_lines(read(PRACTICE)).values():
        assert any(lines[0] in body for body in hidden) and lines[0] not in shown
    assert "check.exercise_2(copied_fraction)" in shown
    assert "HIDDEN TESTS" not in page and "hidden=True" not in page


# --- the student release ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    written = release.release([SOURCE / "00_practice"], out=out)
    return out, written


def test_release_writes_student_copies_without_solutions_or_hidden_tests(released):
    out, written = released
    assert written == [out / "00_practice" / "practice.ipynb"]
    assert_student_copy(PRACTICE, written[0])
    # the fixture class started from this release: the unanswered submission is the release itself
    assert [c.source for c in read(written[0]).cells] == \
        [c.source for c in read(CLASS / "ivo" / "00_practice" / "practice.ipynb").cells]


def test_release_refuses_to_overwrite_and_stays_out_of_chapters(released, tmp_path, capsys):
    out, _ = released
    assert cli.main(["release", str(SOURCE / "00_practice"), "--out", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    with pytest.raises(ValueError, match="outside chapters"):
        release.release([SOURCE / "00_practice"], out=ROOT / "chapters" / "release")
    kept = tmp_path / "mine.txt"
    kept.write_text("a student's file")
    release.release([SOURCE / "00_practice"], out=tmp_path, force=True)
    assert kept.read_text() == "a student's file"


@pytest.mark.skipif(not CHAPTERS, reason="no chapter notebooks yet")
def test_release_of_the_chapter_notebooks(tmp_path):
    chapters = tmp_path / "chapters"  # a snapshot, so that notebooks being re-run meanwhile do not matter
    for folder in CHAPTERS:
        shutil.copytree(folder, chapters / folder.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    before = digest(chapters)
    written = release.release(sorted(chapters.iterdir()), out=tmp_path / "release")
    assert digest(chapters) == before, "the release never modifies the chapters"
    assert {(p.parent.name, p.name) for p in NOTEBOOKS} <= {(p.parent.name, p.name) for p in written}
    for path in written:
        assert_student_copy(chapters / path.parent.name / path.name, path)


# --- the autograder --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the fixture class, plus the instructor's own notebook handed in as a student's."""
    folder = tmp_path_factory.mktemp("class")
    shutil.copytree(CLASS, folder / "submitted")
    (folder / "submitted" / "teacher" / "00_practice").mkdir(parents=True)
    shutil.copy(PRACTICE, folder / "submitted" / "teacher" / "00_practice")
    before = digest(folder / "submitted")
    code = cli.main(["grade", str(folder / "submitted"), "--source", str(SOURCE), "--out",
                             str(folder / "gradebook"), "--timeout", "5", "--notebook-timeout", "120", *UNSAFE])
    assert code == 0
    assert digest(folder / "submitted") == before, "submissions are never modified"
    rows = json.loads((folder / "gradebook" / "grades.json").read_text())["grades"]
    return folder, {(r["student"], r["exercise"].replace("practice-", "")): r for r in rows}


def score(grades, student):
    got = [r for (s, _), r in grades.items() if s == student]
    return sum(r["points"] for r in got), sum(r["max_points"] for r in got)


def test_instructor_notebook_and_right_answers_score_full_marks(graded):
    _, grades = graded
    assert score(grades, "teacher") == (5.0, 5.0)
    assert score(grades, "ada") == (5.0, 5.0)
    assert grades["ada", "ex1-check"]["feedback"] == "✓ Exercise 0.1 passed: variance(data) = 4.0; hidden tests passed"


@pytest.mark.parametrize("student, exercise, feedback", [
    ("ben", "ex1-check", "Hint: divide by len(xs), not len(xs) - 1"),          # wrong answers
    ("ben", "ex2-check", "gave a wrong answer. Hint: variance is a mean of squared distances"),
    ("ben", "ex3-check", "gave a wrong answer. Hint: divide by the standard deviation"),
    ("ben", "ex4-check", "Hint: count every position of the sample, repeats included"),  # chapter 2's checker
    ("cleo", "ex1-check", "your function raised ZeroDivisionError"),          # code that raises
    ("cleo", "ex2-check", "your solution cell raised ZeroDivisionError"),
    ("cleo", "ex3-check", "your function raised NameError"),  # the name, never the message
    ("dan", "ex3-check", "ran longer than 5 s and was interrupted"),           # endless loop
    ("finn", "ex1-check", "your function raised NameError"),                    # deleted helper
    ("finn", "ex3-check", "your function raised NameError"),
    ("gus", "ex1-check", "not valid JSON"),                                    # broken file
    ("gus", "ex3-check", "not valid JSON"),
    ("hana", "ex1-check", "this locked cell was edited; the original was used"),  # tampered check
    ("hana", "ex3-check", "solution cell practice-ex3-solution was missing"),  # deleted exercise
    ("ivo", "ex1-check", "not implemented yet"),                               # the release, unanswered
    ("ivo", "ex2-check", "still raises NotImplementedError"),
])
def test_wrong_and_broken_submissions_fail_with_useful_feedback(graded, student, exercise, feedback):
    _, grades = graded
    row = grades[student, exercise]
    assert row["points"] == 0 and row["max_points"] > 0
    assert feedback in row["feedback"]


def test_each_student_is_graded_on_their_own(graded):
    _, grades = graded
    totals = {s: score(grades, s) for s, _ in grades}
    assert totals == {"teacher": (5, 5), "ada": (5, 5), "ben": (0, 5), "cleo": (1, 5), "dan": (3, 5),
                      "eve": (5, 5), "finn": (1, 5), "gus": (0, 5), "hana": (1, 5), "ivo": (0, 5)}
    assert "very long output was cut" in grades["eve", "ex2-check"]["feedback"]  # and still graded
    assert "no instructor notebook is called notes.ipynb" in grades["ivo", ""]["feedback"]


def test_gradebook_is_written_as_csv_and_json(graded, capsys):
    folder, grades = graded
    with open(folder / "gradebook" / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "notebook", "exercise", "points", "max_points", "feedback"]
    assert len(rows) == len(grades) == 10 * 4 + 1
    data = json.loads((folder / "gradebook" / "grades.json").read_text())
    assert data["totals"]["dan"] == {"points": 3.0, "max_points": 5.0}
    executed = read(folder / "gradebook" / "executed" / "ada" / "00_practice" / "practice.ipynb")
    ran = "".join(c.source for c in executed.cells)  # the visible checks ran in the kernel; the judge ran the rest
    assert "check.exercise_1(variance)" in ran and "### BEGIN HIDDEN TESTS" not in ran and "hidden=True" not in ran
    assert cli.main(["grade", str(folder / "submitted"), "--source", str(SOURCE),
                             "--out", str(folder / "gradebook")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_hanging_submission_ends_within_its_timeout(tmp_path):
    """A loop that swallows the interrupt is stopped by the notebook's total time limit."""
    nb = read(CLASS / "ada" / "00_practice" / "practice.ipynb")
    nb.cells[6].source = ("import time\ndef variance(xs):\n    while True:\n        try:\n"
                          "            time.sleep(0.05)\n        except KeyboardInterrupt:\n            pass")
    nb.cells.insert(7, nbformat.v4.new_code_cell("variance(data)"))
    start = time.perf_counter()
    limits = grading.Limits(timeout=2, cell_timeout=2, notebook_timeout=6, sandbox=not UNSAFE)
    rows, _ = grading.grade_notebook(nbformat.writes(nb), PRACTICE, limits)
    assert time.perf_counter() - start < 6 + 30  # the limit, plus starting and stopping a kernel
    assert all(r["points"] == 0 for r in rows)
    assert "ran longer than 6 s in all" in rows[-1]["feedback"]


def test_released_package_has_the_visible_checks_but_no_hidden_tests(released):
    out, _ = released
    package = out / "dltoolbox-package"
    files = {p.relative_to(package).as_posix(): p for p in package.rglob("*") if p.is_file()}
    assert "pyproject.toml" in files and "dltoolbox/checks/ngram.py" in files
    assert not any(name.startswith("dltoolbox/classroom/hidden") for name in files)
    hidden_strings = ["the cat sat on the mat", "[3.0]", "(1, 3), (399, 400)", "500.0", "manual_seed(5)",
                      "def _reference_copied", "def _improve", "def _safe", "def _kl", "def _wilson"]
    for name, path in files.items():
        if name.endswith(".py"):
            text = path.read_text(encoding="utf-8")
            assert not [h for h in hidden_strings if h in text], name
    probe = ("from dltoolbox.checks import practice, ngram\n"
             "practice.exercise_1(lambda xs: 4.0)\n"
             "try:\n    ngram.exercise_2(len, hidden=True)\nexcept AssertionError as error:\n    print(error)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(package), "PATH": "/usr/bin:/bin", "PYTHONSAFEPATH": "1"}, cwd=out)
    assert run.returncode == 0, run.stderr
    assert "✓ Exercise 0.1 passed" in run.stdout and "hidden tests are not part of this copy" in run.stdout
