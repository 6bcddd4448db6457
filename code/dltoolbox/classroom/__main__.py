"""Classroom assignments: check the exercise format, release student notebooks, grade submissions.

    python -m dltoolbox.classroom check [chapters...]            # every exercise follows the format
    python -m dltoolbox.classroom release [chapters...] --out release/
    python -m dltoolbox.classroom grade SUBMISSIONS --out gradebook/ [--source chapters]

The instructor notebooks are the chapter notebooks themselves (nbgrader metadata and markers, see the
README's "For instructors").
"""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
