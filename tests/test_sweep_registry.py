"""Every registered sweep (dltoolbox.experiments.sweeps.SWEEPS): its function exists, its committed table
chooses from its own rows, and what it chooses reaches the chapter: a notebook, or the experiments code a
notebook calls, passes that very table to sweeps.chosen (or chosen_row), so the notebook trains what the
table chose and an edited table is refused there."""
import ast
import importlib
import json

import pytest

from conftest import ROOT
from dltoolbox.experiments import sweeps

CHOOSERS = {"chosen", "chosen_row"}
# sweeps whose choice no notebook trains yet, with why: each fails its test below on purpose (strict xfail),
# so the list can only shrink
NOT_YET_TRAINED = {
    "seq2seq_steps": "chapter 3 still trains every model 400 steps (experiments.seq2seq.STEPS) and shows this "
                     "table as evidence that both source orders gain from longer training; it trains the chosen "
                     "steps once the grid goes past 6,400 (sweeps.EDGE_PENDING) and the runs are stored",
}
EXPERIMENTS = ROOT / "code" / "dltoolbox" / "experiments"


def _sources_of(folder):
    """(where, source) of each code cell of the chapter's notebooks, and of each experiments module."""
    for path in sorted(folder.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                yield f"{path.name} cell {i}", "".join(cell["source"])
    for path in sorted(EXPERIMENTS.glob("*.py")):
        yield path.name, path.read_text()


def _strings(node, bound):
    """The string constants an expression holds, following names bound earlier in the same source."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.add(sub.value)
        elif isinstance(sub, ast.Name) and sub.id in bound:
            found |= bound[sub.id]
    return found


def choosers_of(source):
    """The string constants reaching the table argument of each sweeps.chosen / chosen_row call."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell of IPython magics
        return set()
    bound, reached = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
            if len(values) == len(targets):
                for target, value in zip(targets, values):
                    if isinstance(target, ast.Name):
                        bound[target.id] = bound.get(target.id, set()) | _strings(value, bound)
        elif isinstance(node, ast.arguments):  # a parameter's default: def f(table="chapters/.../x.json")
            for arg, default in zip(node.args[len(node.args) - len(node.defaults):], node.defaults):
                bound[arg.arg] = _strings(default, bound)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CHOOSERS
                and node.args):
            reached |= _strings(node.args[0], bound)
    return reached


def test_the_chooser_finder_follows_names_and_defaults():
    assert choosers_of('S = "sweep.json"\nC = sweeps.chosen(S)') == {"sweep.json"}
    assert "kl.json" in choosers_of('t = json.loads(Path("kl.json").read_text())\nsweeps.chosen(t)')
    assert "a/b.json" in choosers_of('def f(table="a/b.json"):\n    return sweeps.chosen(ROOT / table)')
    assert choosers_of('t = json.loads(Path("kl.json").read_text())\nprint(t)') == set()


@pytest.mark.parametrize("name", sorted(sweeps.SWEEPS))
def test_each_registered_sweep_is_a_function_with_its_committed_table(name):
    target, path = sweeps.SWEEPS[name]
    module, function = target.split(":")
    assert callable(getattr(importlib.import_module(module), function)), target
    table = json.loads((ROOT / path).read_text())
    assert table["name"] in {name, *[n for n, (_, p) in sweeps.SWEEPS.items() if p == path]}
    assert table["command"].startswith("python -m dltoolbox.experiments.sweeps ")
    listed = path in sweeps.EVIDENCE_GRIDS
    chosen = sweeps.chosen(ROOT / path, allow_edge=listed)  # re-derived from the rows; the edge rule applies
    assert chosen == table["chosen"]
    arm = next(iter(chosen))
    edited = json.loads(json.dumps(table))
    edited["chosen"][arm] = {key: "edited" for key in chosen[arm]} if isinstance(chosen[arm], dict) else "edited"
    with pytest.raises(ValueError, match="not its rows' best"):
        sweeps.chosen(edited, allow_edge=True)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_YET_TRAINED[n]))
                                  if n in NOT_YET_TRAINED else n for n in sorted(sweeps.SWEEPS)])
def test_each_sweeps_choice_reaches_its_chapter(name):
    _, path = sweeps.SWEEPS[name]
    file = (ROOT / path)
    table = json.loads(file.read_text())
    arm = table.get("arm")
    settings = {(str(row.get(arm)), tuple(str(row[k]) for k in table["settings"])) for row in table["rows"]}
    one_each = len(settings) == len({a for a, _ in settings})
    if path in sweeps.EVIDENCE_GRIDS or one_each:
        # evidence (the notebook shows it and trains nothing from it), or one setting per arm: nothing was
        # chosen, the rows are runs the notebook reads
        assert any(file.name in source for _, source in _sources_of(file.parent)), path
        return
    # a notebook names the table by its file name in its own folder; an experiments module by its path
    readers = [where for where, source in _sources_of(file.parent)
               if any(s == path if where.endswith(".py") else s == file.name for s in choosers_of(source))]
    assert readers, f"no notebook of {file.parent.name} and no experiments module passes {file.name} to sweeps.chosen"
