"""The classroom: the exercise format, the student release, and the grader that runs each submission in a
sandbox and judges its answers in a clean process. ``python -m dltoolbox.assignments`` is the command.

- :mod:`.exercises` the format of exercise cells (nbgrader metadata), and the checker calls of a check cell
- :mod:`.release` student notebooks, and the package students install (no hidden tests)
- :mod:`.sandbox` bubblewrap around each submission's kernel
- :mod:`.probe`, :mod:`.plain` the student's side: run a request in the kernel, answer as plain data
- :mod:`.judge` the checkers run in the grader's process on those answers
- :mod:`.grading` the class: one worker process per submission, the gradebook
- :mod:`.hidden` the hidden cases (instructor side only)
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
HIDDEN = PACKAGE / "classroom" / "hidden"
