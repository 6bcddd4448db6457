"""The command: ``python -m dltoolbox.classroom check | release | grade`` (see the README, "For instructors")."""
import argparse
import sys

import nbformat

from ..locations import checkout_path
from ..course.notebooks import notebook_paths
from .exercises import exercise_problems
from .release import release

DESCRIPTION = """Classroom assignments: check the exercise format, release student notebooks, grade submissions.

    python -m dltoolbox.classroom check [chapters...]            # every exercise follows the format
    python -m dltoolbox.classroom release [chapters...] --out release/
    python -m dltoolbox.classroom grade SUBMISSIONS --out gradebook/ [--source chapters]
"""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.classroom", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check that every exercise follows the format")
    check.add_argument("paths", nargs="*", help="chapter folders or notebooks (default: all chapters)")
    rel = sub.add_parser("release", help="write student notebooks without solutions or hidden tests, "
                                         "and the package students install")
    rel.add_argument("chapters", nargs="*", help="chapter folders or notebooks (default: all chapters)")
    rel.add_argument("--out", default="release", help="target folder (default: release/)")
    rel.add_argument("--force", action="store_true", help="replace released chapters in a non-empty --out")
    grade = sub.add_parser("grade", help="grade a folder of submitted notebooks, each in a sandbox")
    grade.add_argument("submissions", help="SUBMISSIONS/<student>/[<chapter>/]<notebook>.ipynb")
    grade.add_argument("--out", default="gradebook", help="gradebook folder (default: gradebook/)")
    grade.add_argument("--source", nargs="*", default=None,
                       help="instructor notebooks or folders (default: chapters/)")
    grade.add_argument("--timeout", type=int, default=60,
                       help="seconds per exercise cell and per checker call (default: 60)")
    grade.add_argument("--cell-timeout", type=int, default=600,
                       help="seconds per other cell, e.g. the chapter's training (default: 600)")
    grade.add_argument("--notebook-timeout", type=int, default=1800,
                       help="seconds per notebook, all cells together (default: 1800)")
    grade.add_argument("--student-timeout", type=int, default=3600,
                       help="seconds per student, all their notebooks together (default: 3600)")
    grade.add_argument("--max-output", type=int, default=100_000,
                       help="characters of output kept per cell (default: 100000)")
    grade.add_argument("--memory", type=float, default=8, help="GiB of memory per notebook (default: 8)")
    grade.add_argument("--processes", type=int, default=256, help="processes per notebook (default: 256)")
    grade.add_argument("--disk", type=float, default=1,
                       help="GiB of files per notebook in its folder, and as many in its /tmp (default: 1)")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="grade without the sandbox (student code then runs with your permissions)")
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
        limits = Limits(args.timeout, args.cell_timeout, args.notebook_timeout, args.max_output,
                        sandbox=not args.unsafe_no_sandbox, memory=int(args.memory * (1 << 30)),
                        processes=args.processes, disk=int(args.disk * (1 << 30)),
                        student_timeout=args.student_timeout)
        if args.unsafe_no_sandbox:
            print("warning: grading WITHOUT a sandbox: each student's code runs with your permissions and can read "
                  "the instructor notebooks and other submissions, change files and outlive the grader",
                  file=sys.stderr)
        rows = grade_folder(args.submissions, args.out, sources=args.source, limits=limits,
                            force=args.force, log=print)
        return 0 if rows else 1
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: the gradebook holds the notebooks graded so far", file=sys.stderr)
        return 130
