"""Results at a glance: the verdict comes from the notebooks' own assertions, and every claim fills in."""
import json

import pytest

from conftest import ROOT
from dltoolbox.book import glance


def notebook(claims_source, outputs=None, count=2):
    cell = lambda source, tags=(), n=1, out=(): {"cell_type": "code", "source": source, "execution_count": n,
                                                  "metadata": {"tags": list(tags)}, "outputs": list(out)}
    return {"cells": [cell("x = 1", ["results"], 1), cell(claims_source, n=count, out=outputs or [])]}


CLAIM = {"assertions": ["effect one", "effect two"]}


def test_verdict_counts_the_assertions_the_claims_cell_holds():
    both = glance.claims_cell(notebook('assert True, "effect one"\nassert 1 < 2, "effect two"\n'))
    one = glance.claims_cell(notebook('assert True, "effect one"\nassert True  # effect two, no message\n'))
    none = glance.claims_cell(notebook('assert True, "something else"\n'))
    for cell, expected in ((both, "yes"), (one, "partly"), (none, "no")):
        assert glance.verdict(CLAIM, glance.assertion_messages(cell), glance.held(cell)) == expected


def test_a_claims_cell_that_failed_or_never_ran_decides_no():
    error = [{"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}]
    failed = glance.claims_cell(notebook('assert True, "effect one"\nassert True, "effect two"\n', error))
    unrun = glance.claims_cell(notebook('assert True, "effect one"\nassert True, "effect two"\n', count=None))
    for cell in (failed, unrun):
        assert not glance.held(cell)
        assert glance.verdict(CLAIM, glance.assertion_messages(cell), glance.held(cell)) == "no"


def test_claims_file_errors_are_clear(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "claims.yml").write_text("- notebook: x.ipynb\n  cite: a\n")
    with pytest.raises(ValueError, match="exactly the fields"):
        glance.load_claims(tmp_path)
    (tmp_path / "chapters" / "claims.yml").write_text(
        "- {notebook: x, cite: a, figure: b, paper: c, measured: d, assertions: []}\n")
    with pytest.raises(ValueError, match="assertion messages"):
        glance.load_claims(tmp_path)


def test_a_measurement_naming_a_missing_metric_is_an_error(tmp_path):
    nb = notebook('assert True, "effect one"\n')
    nb["cells"][0]["outputs"] = [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                  "data": {"text/plain": "{'seeds': 3, 'gain': 0.5}"}}]
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "a.ipynb").write_text(json.dumps(nb))
    claim = {"notebook": "chapters/a.ipynb", "cite": "k", "figure": "Fig. 1", "paper": "p",
             "assertions": ["effect one"]}
    (tmp_path / "chapters" / "claims.yml").write_text(json.dumps([{**claim, "measured": "gain {gain:.2f}"}]))
    [row] = glance.rows(tmp_path)
    assert (row["measured"], row["verdict"], row["seconds"]) == ("gain 0.50", "yes", None)
    (tmp_path / "chapters" / "claims.yml").write_text(json.dumps([{**claim, "measured": "{gian:.2f}"}]))
    with pytest.raises(ValueError, match="cannot fill in"):
        glance.rows(tmp_path)


def test_the_course_claims_all_fill_in_from_the_stored_results():
    rows = glance.rows(ROOT)
    assert rows and all(row["verdict"] in ("yes", "partly", "no") for row in rows)
    keys = {line.split("{", 1)[1].strip().rstrip(",") for line in (ROOT / "references.bib").read_text().splitlines()
            if line.startswith("@")}
    assert {row["cite"] for row in rows} <= keys, "every claim cites a paper in references.bib"
    table = glance.markdown(rows)
    assert table.count("\n") == len(rows) + 1
