"""The classroom: the exercise format, the student release, and the grader that runs each submission in a
sandbox and judges its answers in a clean process. ``python -m dltoolbox.classroom`` is the command.

- :mod:`.exercises` the format of exercise cells (nbgrader metadata), and the checker calls of a check cell
- :mod:`.release` student notebooks, and the package students install (no hidden tests)
- :mod:`.grading` the class: every submission found, one worker each, the gradebook (:mod:`.gradebook`)
- :mod:`.workers` a worker process per submission, forked from a server that imported the grader once
- :mod:`.notebook` one submission: :mod:`.assemble` the notebook to run, :mod:`.kernel` run it, the verdicts
- :mod:`.sandbox` bubblewrap around each submission's kernel, with its limits
- :mod:`.files` the grader's own files, by folder descriptors that never follow a link; clean-up without recursion
- :mod:`.probe`, :mod:`.plain` the student's side: run a request in the kernel, answer as plain data
- :mod:`.judge` the instructor's checkers, run in the worker's own process on those answers
- :mod:`.hidden` the hidden cases and the references the package lacks (instructor side only)
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
HIDDEN = PACKAGE / "classroom" / "hidden"
