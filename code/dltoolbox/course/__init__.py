"""The course's machinery, apart from the ideas it teaches: running and checking the notebooks
(:mod:`.notebooks`, the nbval plugin :mod:`.nbval_kernels`), the interview and its verbatim quotes
(:mod:`.interview`), and the book's Sphinx extensions and build steps (:mod:`.book`)."""
