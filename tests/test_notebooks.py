"""Structure of the stored notebooks: executed, no errors, reproducible set-up, no machine paths."""
import re

import pytest

from conftest import ROOT, chapter_notebooks, load

NOTEBOOKS = chapter_notebooks()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
MACHINE_PATHS = re.compile(r"(/work/|/tmp/|/root/|/home/\w+/|/Users/\w+/|C:\\\\Users)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_executed_without_errors(path):
    nb = load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a chapter notebook has code"
    counts = [c["execution_count"] for c in code]
    assert all(isinstance(n, int) for n in counts), "every code cell is stored executed"
    assert counts == sorted(counts), "cells were executed top to bottom in one run"
    for cell in code:
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"stored error: {out.get('ename')}"
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            assert not MACHINE_PATHS.search(text), f"output shows a machine path: {text[:200]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_seeds_and_prints_its_device_once(path):
    nb = load(path)
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("seed_everything(" in s for s in sources[:3]), "the setup cell seeds everything"
    outputs = "".join(
        "".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
    )
    assert outputs.count("Device: ") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_ends_with_exercises(path):
    sources = ["".join(c["source"]) for c in load(path)["cells"]]
    assert sum("### BEGIN SOLUTION" in s for s in sources) >= 3, "at least three exercises"


IGNORE = "nbval-ignore-output"


def code_cells(path):
    return [c for c in load(path)["cells"] if c["cell_type"] == "code"]


def tags(cell):
    return cell["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_nbval_markers_are_tags_and_nothing_is_skipped(path):
    for cell in code_cells(path):
        source = "".join(cell["source"])
        assert not re.search(r"^\s*#\s*(NBVAL|PYTEST_VALIDATE)_", source, re.M), \
            f"use the cell tag {IGNORE!r}, not a comment marker: {source[:80]!r}"
        assert not {"nbval-skip", "nbval-raises-exception", "raises-exception"} & set(tags(cell)), \
            "every cell runs and must not raise"
        assert set(t for t in tags(cell) if t.startswith("nbval")) <= {IGNORE}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_results_from_training_are_not_compared_and_claims_are(path):
    cells = code_cells(path)
    at = [i for i, c in enumerate(cells) if "results" in tags(c)]
    assert len(at) == 1
    results, claims = cells[at[0]], cells[at[0] + 1]
    assert IGNORE in tags(results), "the results cell holds training numbers: its digits vary by processor"
    assert IGNORE not in tags(claims), "the assertions after the results cell are compared exactly"
    assert "assert " in "".join(claims["source"]) or "verdicts.assert_reproduced(" in "".join(claims["source"])
    printed = "".join("".join(o.get("text", "")) for o in claims["outputs"])
    assert printed in ("", "claims hold ✓\n"), f"the claims cell prints only a fixed line, not {printed!r}"
    assert not any(o["output_type"] in ("execute_result", "display_data") for o in claims["outputs"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_outputs_name_the_machine_they_come_from(path):
    machine = load(path)["metadata"].get("dltoolbox", {}).get("executed_on")
    assert machine, "re-run with python -m dltoolbox.course.notebooks run, which records the machine"
    assert {"cpu", "arch", "kernels", "torch", "threads"} <= set(machine)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_sets_up_colab_and_is_hidden_in_the_book(path):
    from dltoolbox.course.notebooks import COLAB_CELL

    first = code_cells(path)[0]
    assert "".join(first["source"]) == COLAB_CELL, "insert dltoolbox.course.notebooks.COLAB_CELL as the first code cell"
    assert "remove-cell" in tags(first) and first["outputs"] == [], "hidden in the book, silent off Colab"


def test_colab_cell_clones_the_repository_the_book_names():
    import yaml
    from dltoolbox.course.notebooks import COLAB_CELL, REPOSITORY

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == REPOSITORY and REPOSITORY in COLAB_CELL
    namespace = {}
    exec(COLAB_CELL, namespace)  # off Colab: nothing happens, nothing is cloned
    assert "subprocess" not in namespace


def test_the_kernel_spread_is_of_the_stored_run():
    """chapters/kernel_spread.json was written from the stored outputs: refresh it after `notebooks run`."""
    import json

    from dltoolbox.results import read_results

    spread = json.loads((ROOT / "chapters" / "kernel_spread.json").read_text())
    assert set(spread["notebooks"]) == set(IDS)
    for path, name in zip(NOTEBOOKS, IDS):
        native = {metric: entry["values"]["native"] for metric, entry in spread["notebooks"][name].items()}
        assert native == read_results(path), f"{name}: re-run python -m dltoolbox.course.notebooks spread"
        assert all(e["min"] <= e["values"]["native"] <= e["max"] for e in spread["notebooks"][name].values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_has_a_text_alternative(path):
    """Each cell that shows a figure carries its alt text (cell metadata mystnb.image.alt), for screen readers."""
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code" and any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 20, f"cell {i}: a figure without alt text (metadata mystnb.image.alt)"
