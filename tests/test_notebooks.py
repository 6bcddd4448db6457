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
