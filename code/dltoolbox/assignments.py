"""Classroom assignments: check the exercise format, release student notebooks, grade submissions.

    python -m dltoolbox.assignments check [chapters...]            # every exercise follows the format
    python -m dltoolbox.assignments release [chapters...] --out release/
    python -m dltoolbox.assignments grade SUBMISSIONS --out gradebook/ [--source chapters]

The instructor notebooks are the chapter notebooks themselves (nbgrader metadata and markers, see the
README's "For instructors"). The release runs nbgrader's own GenerateAssignment converter; grading is in
:mod:`dltoolbox.grading`.
"""
import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from .locations import ROOT, checkout_path
from .notebooks import notebook_paths

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SKIPPED = {".ipynb_checkpoints", "_build", "__pycache__"}


def nbgrader_meta(cell):
    """The cell's nbgrader metadata, or an empty dict."""
    return cell.get("metadata", {}).get("nbgrader") or {}


def is_solution(cell):
    return bool(nbgrader_meta(cell).get("solution"))


def is_check(cell):
    """A graded test cell: grade=true, solution=false."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def source_of(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _markers_in_order(text, begin, end):
    lines = [line.strip() for line in text.splitlines()]
    return begin in lines and end in lines and lines.index(begin) < lines.index(end)


def exercise_problems(nb, min_exercises=0):
    """Everything in notebook `nb` that breaks the exercise format (an empty list when it is fine)."""
    problems, seen, heading = [], set(), False
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        meta, src, where = nbgrader_meta(cell), source_of(cell), f"cell {i}"
        if cell["cell_type"] == "markdown" and re.search(r"^### Exercise", src, re.M):
            heading = True
        gid = meta.get("grade_id")
        if meta:
            where = f"cell {i} ({gid})"
            if not gid:
                problems.append(f"{where}: nbgrader metadata without a grade_id")
            elif gid in seen:
                problems.append(f"{where}: grade_id {gid!r} is used twice")
            seen.add(gid)
            if meta.get("schema_version") != 3:
                problems.append(f"{where}: nbgrader schema_version should be 3")
        has_markers = BEGIN_SOLUTION in src or END_SOLUTION in src
        if has_markers and not is_solution(cell):
            problems.append(f"{where}: has solution markers but is not an nbgrader solution cell")
        if (BEGIN_HIDDEN in src or END_HIDDEN in src) and not is_check(cell):
            problems.append(f"{where}: has hidden tests but is not an nbgrader check cell (grade: true)")
        if not is_solution(cell):
            continue
        if cell["cell_type"] != "code":
            problems.append(f"{where}: a solution cell should be a code cell")
        if "hide-input" not in cell.get("metadata", {}).get("tags", []):
            problems.append(f"{where}: a solution cell needs the tag 'hide-input' (the book hides it)")
        if not _markers_in_order(src, BEGIN_SOLUTION, END_SOLUTION):
            problems.append(f"{where}: needs a '{BEGIN_SOLUTION}' line and, after it, "
                            f"a '{END_SOLUTION}' line")
        if meta.get("grade") or meta.get("locked"):
            problems.append(f"{where}: a solution cell has grade: false and locked: false")
        if not heading:
            problems.append(f"{where}: no '### Exercise N.k — ...' Markdown cell introduces this solution")
        heading = False
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if nxt is None or not is_check(nxt):
            problems.append(f"{where}: the next cell should be its check cell (nbgrader grade: true)")
            continue
        check_meta, check_src = nbgrader_meta(nxt), source_of(nxt)
        check_where = f"cell {i + 1} ({check_meta.get('grade_id')})"
        expected = gid[:-len("solution")] + "check" if gid and gid.endswith("-solution") else None
        if expected and check_meta.get("grade_id") != expected:
            problems.append(f"{check_where}: the check of {gid} should be named {expected}")
        points = check_meta.get("points")
        if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
            problems.append(f"{check_where}: a check cell needs points > 0")
        if not check_meta.get("locked"):
            problems.append(f"{check_where}: a check cell should be locked")
        if "dltoolbox.checks" not in check_src:
            problems.append(f"{check_where}: a check cell should call a checker from dltoolbox.checks")
        if not _markers_in_order(check_src, BEGIN_HIDDEN, END_HIDDEN):
            problems.append(f"{check_where}: needs a '{BEGIN_HIDDEN}' ... '{END_HIDDEN}' block")
    count = sum(is_solution(c) for c in cells)
    if count < min_exercises:
        problems.append(f"{count} exercises, at least {min_exercises} expected")
    return problems


def chapter_folders(paths=None):
    """Chapter folders (or single notebooks) to release: every chapters/NN_* folder holding notebooks."""
    if paths:
        return [Path(p) for p in paths]
    return [d for d in sorted(checkout_path("chapters").glob("[0-9][0-9]_*")) if notebook_paths([d])]


def _is_empty(folder):
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _stage(target, course):
    """Copy a chapter folder (or one notebook) to course/source/<assignment>/; return the folder."""
    target = Path(target)
    if not target.exists():
        raise FileNotFoundError(f"no such chapter folder or notebook: {target}")
    folder = (target if target.is_dir() else target.parent).resolve()
    chosen = {p.resolve() for p in notebook_paths([target])}
    if not chosen:
        raise ValueError(f"{target}: no notebooks to release")
    dest = course / "source" / folder.name
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if SKIPPED & set(rel.parts) or path.is_dir():
            continue
        if path.suffix == ".md" or (path.suffix == ".ipynb" and path.resolve() not in chosen):
            continue  # the chapter's book page and notebooks not asked for stay behind
        problems = exercise_problems(nbformat.read(path, as_version=4)) if path.suffix == ".ipynb" else []
        if problems:
            raise ValueError(f"{path}: exercises do not follow the format:\n  " + "\n  ".join(problems))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / rel)
    return folder


def generate_assignment(course, name):
    """Run nbgrader's GenerateAssignment (no database) on course/source/<name> into course/release/<name>."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.assignment_id = name
    config.SaveCells.enabled = False
    config.GenerateAssignment.no_database = True
    config.GenerateAssignment.force = True
    coursedir = CourseDirectory(config=config)
    GenerateAssignment(coursedir=coursedir, config=config).start()
    return course / "release" / name


def leaks(path):
    """Solution or hidden-test markers left in a released notebook (an empty list when clean)."""
    text = Path(path).read_text(encoding="utf-8")
    return [m for m in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN, "hidden=True") if m in text]


def release(targets=None, out="release", force=False):
    """Write student copies of the chapters' notebooks (no solutions, no hidden tests) to out/<chapter>/."""
    out = Path(out).resolve()
    chapters_dir = (ROOT / "chapters").resolve()
    if out == chapters_dir or chapters_dir in out.parents:
        raise ValueError(f"{out}: the release goes outside chapters/ (chapters/ is never modified)")
    if not _is_empty(out) and not force:
        raise FileExistsError(f"{out} is not empty: refusing to overwrite it "
                              "(choose an empty folder, or pass --force to replace the released chapters)")
    written = []
    with tempfile.TemporaryDirectory(prefix="dltoolbox-release-") as tmp:
        course = Path(tmp)
        folders = list(dict.fromkeys(_stage(t, course) for t in chapter_folders(targets)))
        names = [f.name for f in folders]
        if len(set(names)) != len(names):
            raise ValueError(f"two chapter folders with the same name: {[str(f) for f in folders]}")
        for name in names:
            released = generate_assignment(course, name)
            for nb_path in released.rglob("*.ipynb"):
                nb = nbformat.read(nb_path, as_version=4)
                nb.metadata.pop("widgets", None)  # stored widget state is the instructor run's
                nbformat.write(nb, nb_path)
                if leaks(nb_path):
                    raise RuntimeError(f"{nb_path.name}: release still contains {leaks(nb_path)}")
            shutil.rmtree(out / name, ignore_errors=True)
            shutil.copytree(released, out / name)
            written += sorted((out / name).rglob("*.ipynb"))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.assignments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check that every exercise follows the format")
    check.add_argument("paths", nargs="*", help="chapter folders or notebooks (default: all chapters)")
    rel = sub.add_parser("release", help="write student notebooks without solutions or hidden tests")
    rel.add_argument("chapters", nargs="*", help="chapter folders or notebooks (default: all chapters)")
    rel.add_argument("--out", default="release", help="target folder (default: release/)")
    rel.add_argument("--force", action="store_true", help="replace released chapters in a non-empty --out")
    grade = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    grade.add_argument("submissions", help="SUBMISSIONS/<student>/[<chapter>/]<notebook>.ipynb")
    grade.add_argument("--out", default="gradebook", help="gradebook folder (default: gradebook/)")
    grade.add_argument("--source", nargs="*", default=None,
                       help="instructor notebooks or folders (default: chapters/)")
    grade.add_argument("--timeout", type=int, default=60, help="seconds per exercise cell (default: 60)")
    grade.add_argument("--cell-timeout", type=int, default=600,
                       help="seconds per other cell, e.g. the chapter's training (default: 600)")
    grade.add_argument("--notebook-timeout", type=int, default=1800,
                       help="seconds per notebook, all cells together (default: 1800)")
    grade.add_argument("--max-output", type=int, default=100_000,
                       help="characters of output kept per cell (default: 100000)")
    grade.add_argument("--force", action="store_true", help="overwrite a gradebook in --out")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            bad = 0
            for path in notebook_paths(args.paths or [str(checkout_path("chapters"))]):
                problems = exercise_problems(nbformat.read(path, as_version=4), min_exercises=3)
                bad += bool(problems)
                print(f"{'✗' if problems else '✓'} {path}" + "".join(f"\n    {p}" for p in problems))
            return 1 if bad else 0
        if args.command == "release":
            written = release(args.chapters, args.out, force=args.force)
            for path in written:
                print(f"released {path}")
            print(f"{len(written)} student notebooks in {args.out}" if written else "no notebooks to release")
            return 0
        from .grading import Limits, grade_folder
        limits = Limits(args.timeout, args.cell_timeout, args.notebook_timeout, args.max_output)
        rows = grade_folder(args.submissions, args.out, sources=args.source, limits=limits,
                            force=args.force, log=print)
        return 0 if rows else 1
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: no gradebook was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
