"""Numbers that chapter pages show from the course's own runs match the notebooks' stored outputs.

A measured table on a chapter page is preceded by a comment naming the notebooks it comes from:
``<!-- measured in: imitation.ipynb kl_leash.ipynb -->``. Every number in that table must appear in
those notebooks' stored outputs (the header row aside; to the precision the page prints; a percentage may be a fraction there).
"""
import re

import pytest

from conftest import ROOT, chapter_pages, load

MARKER = re.compile(r"<!--\s*measured in:\s*(.+?)\s*-->")
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+)(%?)")


def output_numbers(notebooks):
    text = []
    for nb in notebooks:
        for cell in load(nb)["cells"]:
            for out in cell.get("outputs", []):
                text.append("".join(out.get("text", "")))
                for kind in ("text/plain", "text/markdown", "text/html"):
                    value = out.get("data", {}).get(kind, "")
                    text.append("".join(value) if isinstance(value, list) else value)
    return [float(x) for x in re.findall(r"\d+\.\d+|\d+", " ".join(text))]


def measured_tables(page):
    """(notebooks, table lines) for each table announced by a `measured in` comment."""
    lines = page.read_text(encoding="utf-8").splitlines()
    tables = []
    for i, line in enumerate(lines):
        match = MARKER.search(line)
        if not match:
            continue
        rows = []
        for following in lines[i + 1:]:
            if following.startswith("|"):
                rows.append(following)
            elif rows:
                break
        tables.append(([page.parent / name for name in match.group(1).split()], rows))
    return tables


def shown_in(token, percent, numbers):
    decimals = len(token.split(".")[1])
    value = float(token)
    candidates = [value] + ([value / 100] if percent else [])
    return any(round(x, decimals + (2 if c != value else 0)) == round(c, decimals + (2 if c != value else 0))
               for x in numbers for c in candidates)


PAGES = [p for p in chapter_pages() if MARKER.search(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_measured_tables_match_the_stored_outputs(page):
    for notebooks, rows in measured_tables(page):
        assert rows, f"{page}: a 'measured in' comment is not followed by a table"
        numbers = output_numbers(notebooks)
        stale = [f"{token}{pct} in {row.strip()[:60]}"
                 for row in rows[1:] for token, pct in NUMBER.findall(row) if not shown_in(token, pct, numbers)]
        assert stale == [], f"{page}: numbers not in the notebooks' outputs (re-copy them): {stale}"


def test_the_check_catches_a_stale_number(tmp_path):
    numbers = [0.71, 1.2764, 4.297]
    assert shown_in("71.0", "%", numbers) and shown_in("1.276", "", numbers) and shown_in("4.297", "", numbers)
    assert not shown_in("72.0", "%", numbers) and not shown_in("4.298", "", numbers)
