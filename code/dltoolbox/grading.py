"""The autograder's former home: it is :mod:`dltoolbox.classroom.grading` now (kept for old imports)."""
from .classroom.grading import (FIELDS, Limits, assemble, find_sources, grade_folder, grade_notebook, match,
                                totals, write_gradebook)

__all__ = ["FIELDS", "Limits", "assemble", "find_sources", "grade_folder", "grade_notebook", "match", "totals",
           "write_gradebook"]
