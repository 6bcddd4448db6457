"""The instructor's side of the checks: hidden cases, one module per checks module, same name.

Only the grader imports these. The package handed to students and the package the grader's sandbox sees
leave this folder out, so neither a student's notebook nor their kernel can read them.
"""
