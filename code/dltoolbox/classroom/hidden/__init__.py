"""The instructor's side of the checks: hidden cases, one module per checks module, same name, and the
reference answers of the exercises whose answer the package does not hold (``checks.reference``).

Only the grader imports these. The package handed to students and the package the grader's sandbox sees
leave this folder out, so neither a student's notebook nor their kernel can read them.
"""
