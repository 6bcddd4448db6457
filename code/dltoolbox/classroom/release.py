"""Release: the student copies of the chapter notebooks, and the package students install.

The notebooks go through nbgrader's own GenerateAssignment converter (no database): solutions become
stubs, hidden tests and outputs are removed. The package is a copy of ``code/`` without the hidden tests
(``dltoolbox/classroom/hidden``), so that nothing a student installs holds them.
"""
import shutil
import tempfile
from pathlib import Path

import nbformat

from ..locations import ROOT, checkout_path
from ..course.notebooks import notebook_paths
from .exercises import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, exercise_problems
from . import HIDDEN, PACKAGE

SKIPPED = {".ipynb_checkpoints", "_build", "__pycache__"}


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
    if written:
        student_package(out / PACKAGE_FOLDER)
    return written


PACKAGE_FOLDER = "dltoolbox-package"


def student_package(target):
    """A copy of the course package (pyproject.toml and dltoolbox/) without the hidden tests, to install
    with ``pip install <target>``; returns the folder."""
    target, code = Path(target), PACKAGE.parent
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if (code / "pyproject.toml").is_file():
        shutil.copy2(code / "pyproject.toml", target)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")
    shutil.copytree(PACKAGE, target / PACKAGE.name, ignore=ignore, symlinks=False)
    hidden = target / HIDDEN.relative_to(PACKAGE.parent)
    shutil.rmtree(hidden, ignore_errors=True)
    return target
