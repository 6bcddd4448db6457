"""The notebook benchmark: each notebook alone in a fresh process, its wall time and peak memory."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from dltoolbox.course import notebooks


def test_benchmark_times_and_measures_a_notebook_without_touching_it(tmp_path):
    path = tmp_path / "alloc.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("block = bytearray(300 * 2**20)\nprint(len(block))")]), path)
    before = path.read_bytes()
    out = tmp_path / "benchmark.json"
    table = notebooks.benchmark([path], timeout=120, out=out)
    row = table["notebooks"]["alloc.ipynb"]
    assert row["peak_MiB"] >= 300                       # the kernel held 300 MiB at once
    assert 0 < row["seconds"] < 120
    assert json.loads(out.read_text()) == table and path.read_bytes() == before
    assert "| alloc.ipynb |" in notebooks.benchmark_markdown(table)
    # benchmarking another notebook on the same machine keeps the first one's row
    other = tmp_path / "small.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("print(1)")]), other)
    table = notebooks.benchmark([other], timeout=120, out=out)
    assert list(table["notebooks"]) == ["alloc.ipynb", "small.ipynb"] and table["notebooks"]["alloc.ipynb"] == row


def test_a_failing_notebook_is_an_error(tmp_path):
    path = tmp_path / "broken.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("raise ValueError('no')")]), path)
    with pytest.raises(RuntimeError, match="the notebook failed"):
        notebooks.benchmark([path], timeout=60, out=tmp_path / "b.json")


def test_the_readme_shows_the_latest_benchmark():
    table = json.loads(notebooks.BENCHMARK_FILE.read_text())
    readme = (notebooks.ROOT / "README.md").read_text(encoding="utf-8")
    assert notebooks.benchmark_markdown(table) in readme, "run python -m dltoolbox.course.notebooks benchmark"


def test_the_readme_block_is_replaced_between_its_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- benchmark -->\nold table\n<!-- /benchmark -->\nafter\n")
    table = {"machine": {"cpu": "C", "arch": "x", "torch": "t", "python": "p", "threads": 1},
             "notebooks": {"a.ipynb": {"seconds": 1.0, "peak_MiB": 2.0}}}
    notebooks.write_readme_benchmark(table, readme)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- benchmark -->\n") and text.endswith("<!-- /benchmark -->\nafter\n")
    assert "old table" not in text and "| a.ipynb | 1 | 2 |" in text
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="markers"):
        notebooks.write_readme_benchmark(table, readme)
    assert readme.read_text() == "no markers here\n"
