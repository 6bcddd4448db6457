"""Every registered sweep (dltoolbox.experiments.sweeps.SWEEPS): its function exists, its committed table
chooses from its own rows, every arm of it had the same tuning effort (the same grid, the same seeds), and
what it chooses reaches the chapter: a notebook, or the experiments code a notebook calls, passes that very
table to sweeps.chosen (or chosen_row), so the notebook trains what the table chose and an edited table is
refused there. What is particular to one chapter (its grid is the one its experiments module names, it is
scored on validation data) stays in that chapter's tests."""
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
    "bytes": "chapter 8's bytes notebook (the generalist against the specialists) is not written yet; its stored runs "
             "will train each arm at the learning rate this table chose",
}
EXPERIMENTS = ROOT / "code" / "dltoolbox" / "experiments"
# tables whose arms do not all share one grid, with why: {sweep: ([arms that share one grid], why)}; every arm
# still tries as many settings, each with the same seeds
GRID_GROUPS = {
    "fewshot": ([{"protonet", "matching", "classifier"}, {"scratch", "fine-tune"}, {"linear"}],
                "different kinds of training: the episodic learners and the classifier are trained for 500 or "
                "2,000 steps, the two fine-tuned encoders adapt for 10 or 30 steps, the linear probe for 30 or "
                "100 at a larger lr (0.1, 0.3): each kind over its own grid of 4 settings"),
}
# arms with nothing to tune, with why: {sweep: ({arms}, why)}; each runs one setting, with the same seeds
UNTUNED_ARMS = {
    "kl_leash": ({"free"}, "the free arm is the run without a leash, kl_coef 0 by definition: one setting, not a grid"),
}


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
    assert path.startswith("chapters/") and path.endswith(".json"), path
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


@pytest.mark.parametrize("name", sorted(sweeps.SWEEPS))
def test_each_sweeps_arms_had_the_same_tuning_effort(name):
    """Every arm of the table tried the same grid of settings, and every setting of every arm ran with the
    same seeds, so no arm wins by being tuned harder. Allowed by name (GRID_GROUPS, UNTUNED_ARMS):
    fewshot, whose three kinds of training (episodic/classifier, fine-tuning, linear probe) each have their
    own grid of as many settings; kl_leash, whose "free" arm is kl_coef 0 by definition (one setting).
    The transformer tables pass as they are, but their second stage moves each arm's recipe from that arm's
    own first-stage lr and schedule (the arms chose alike): tests/test_transformer.py checks that form."""
    _, path = sweeps.SWEEPS[name]
    table = json.loads((ROOT / path).read_text())
    arm, keys = table.get("arm"), table["settings"]
    grids, seeds = {}, {}
    for row in table["rows"]:
        group, setting = str(row[arm]) if arm else None, tuple(row[k] for k in keys)
        grids.setdefault(group, set()).add(setting)
        seeds.setdefault((group, setting), []).append(row["seed"])
    assert len({tuple(sorted(s)) for s in seeds.values()}) == 1, f"{path}: not every setting ran the same seeds"
    untuned, _ = UNTUNED_ARMS.get(name, (set(), ""))
    assert all(len(grids[a]) == 1 for a in untuned), f"{path}: an untuned arm tried more than one setting"
    tuned = set(grids) - untuned
    groups, _ = GRID_GROUPS.get(name, ([tuned], ""))
    assert set().union(*groups) == tuned, f"{path}: arms {sorted(tuned, key=str)} are not those of {groups}"
    assert len({len(grids[a]) for a in tuned}) == 1, f"{path}: the arms tried different numbers of settings"
    for group in groups:
        assert len({frozenset(grids[a]) for a in group}) == 1, f"{path}: arms {sorted(group)} tried different grids"
