"""Sphinx extension: the book shows each exercise's check call, not its hidden tests.

Add ``dltoolbox.course.book.exercises`` to ``sphinx: extra_extensions`` in ``_config.yml``. The notebooks
keep their ``### BEGIN HIDDEN TESTS`` blocks (the autograder needs them); the rendered page drops them,
and so do the notebooks the book offers for download (its ``_sources`` copies). Solutions need nothing
here: their ``hide-input`` tag puts them behind a toggle.
"""
import re
from pathlib import Path

from docutils import nodes

HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?",
                          re.S | re.M)


def strip_hidden_tests(app, doctree):
    """Remove hidden-test blocks from every code block of a page."""
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if "### BEGIN HIDDEN TESTS" in text:
            shown = HIDDEN_BLOCK.sub("", text).rstrip("\n")
            block.rawsource = shown
            block.children = []
            block += nodes.Text(shown)


def strip_hidden_tests_from_downloads(app, exception):
    """Remove hidden-test blocks from every notebook copied into the built book (the download button)."""
    if exception is not None or app.builder.format != "html":
        return
    import nbformat

    for path in Path(app.outdir).rglob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        changed = False
        for cell in notebook.cells:
            if cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
                cell.source = HIDDEN_BLOCK.sub("", cell.source + "\n").rstrip("\n")
                changed = True
        if changed:
            nbformat.write(notebook, path)


def setup(app):
    app.connect("doctree-read", strip_hidden_tests)
    app.connect("build-finished", strip_hidden_tests_from_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
