"""Numbers and tables that chapter pages show from the course's own runs are glued from the notebooks.

A page pastes a notebook's table with myst-nb's ``{glue}`` directive (``:doc: notebook.ipynb``) and a
number with the ``{glue:text}`` role (``notebook.ipynb::key:format``); the build fails on a key that is
not there. These tests name the missing key without a build, and check that no page copies a table of
measured numbers by hand.
"""
import re

import pytest

from conftest import ROOT, chapter_pages, load

DIRECTIVE = re.compile(r"```\{glue\}\s+(?P<key>[^\n]+)\n:doc:\s*(?P<doc>\S+)")
ROLE = re.compile(r"\{glue:text\}`(?P<doc>[^`:]+\.ipynb)::(?P<key>[^`]+?)(?::[^:`]*)?`")
PAGES = chapter_pages()


def glued_keys(notebook):
    """The names glued in a notebook's stored outputs."""
    keys = set()
    for cell in load(notebook)["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                keys.add(name)
    return keys


def references(page):
    text = page.read_text(encoding="utf-8")
    return [(m["doc"], m["key"].strip()) for m in list(DIRECTIVE.finditer(text)) + list(ROLE.finditer(text))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_glued_keys_exist_in_the_notebooks(page):
    missing = [(doc, key) for doc, key in references(page) if key not in glued_keys(page.parent / doc)]
    assert missing == [], f"{page}: glued from a notebook that does not store them (re-run it?): {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_quoting_measured_numbers_say_where_they_come_from(page):
    text = page.read_text(encoding="utf-8")
    if references(page):
        assert "```{stored-run}" in text, f"{page}: add a stored-run note naming the notebooks"


def test_the_patterns_find_references():
    text = "see {glue:text}`imitation.ipynb::value_win_vs_bc:.1%` and\n```{glue} head_to_head\n:doc: imitation.ipynb\n```"
    found = [(m["doc"], m["key"]) for m in list(DIRECTIVE.finditer(text)) + list(ROLE.finditer(text))]
    assert sorted(found) == [("imitation.ipynb", "head_to_head"), ("imitation.ipynb", "value_win_vs_bc")]


def test_no_page_copies_a_measured_table_by_hand():
    for page in PAGES:
        assert "measured in:" not in page.read_text(encoding="utf-8"), f"{page}: glue the table from the notebook"
