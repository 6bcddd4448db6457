"""Sphinx extension: the book shows each exercise's check call, not its hidden tests.

Add ``dltoolbox.assignments_book`` to ``sphinx: extra_extensions`` in ``_config.yml``. The notebooks
keep their ``### BEGIN HIDDEN TESTS`` blocks (the autograder needs them); only the rendered page drops
them. Solutions need nothing here: their ``hide-input`` tag puts them behind a toggle.
"""
import re

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


def setup(app):
    app.connect("doctree-read", strip_hidden_tests)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
