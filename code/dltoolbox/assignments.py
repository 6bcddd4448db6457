"""Classroom assignments: check the exercise format, release student notebooks, grade submissions.

    python -m dltoolbox.assignments check [chapters...]            # every exercise follows the format
    python -m dltoolbox.assignments release [chapters...] --out release/
    python -m dltoolbox.assignments grade SUBMISSIONS --out gradebook/ [--source chapters]

The instructor notebooks are the chapter notebooks themselves (nbgrader metadata and markers, see the
README's "For instructors"). The code is in :mod:`dltoolbox.classroom`; this module is the command.
"""
import sys

from .classroom.cli import main
from .classroom.exercises import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, exercise_problems,
                                  is_check, is_solution, nbgrader_meta, source_of)
from .classroom.release import chapter_folders, generate_assignment, leaks, release, student_package

__all__ = ["BEGIN_HIDDEN", "BEGIN_SOLUTION", "END_HIDDEN", "END_SOLUTION", "chapter_folders", "exercise_problems",
           "generate_assignment", "is_check", "is_solution", "leaks", "main", "nbgrader_meta", "release",
           "source_of", "student_package"]

if __name__ == "__main__":
    sys.exit(main())
