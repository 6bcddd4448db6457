"""A sweep whose choice sits at the edge of its grid is not finished (CONVENTIONS: comparing models fairly)."""
import json
import shutil
from pathlib import Path

import pytest

from dltoolbox.experiments import sweeps

ROOT = Path(__file__).resolve().parents[1]
LR_SWEEP = "chapters/07_scale/lr_sweep.json"


def table(rows, settings=("lr",), arm=None, **extra):
    return sweeps.finish({"rows": rows, "settings": list(settings), "metric": "loss", "goal": "min", "arm": arm,
                          **extra})


def rows_of(losses, key="lr", **fixed):
    return [{key: value, "loss": loss, "seed": 0, **fixed} for value, loss in losses.items()]


def test_a_choice_at_the_top_or_bottom_of_the_grid_is_an_edge_and_inside_is_not():
    top = table(rows_of({0.001: 3.0, 0.003: 2.0, 0.01: 1.0}))
    assert sweeps.edge_choices(top) == ["lr = 0.01 is the largest value tried (0.001, 0.003, 0.01); try a larger one"]
    bottom = table(rows_of({0.001: 1.0, 0.003: 2.0, 0.01: 3.0}))
    assert sweeps.edge_choices(bottom) == ["lr = 0.001 is the smallest value tried (0.001, 0.003, 0.01); "
                                           "try a smaller one"]
    assert sweeps.edge_choices(table(rows_of({0.001: 2.0, 0.003: 1.0, 0.01: 3.0}))) == []
    two = table(rows_of({0.003: 2.0, 0.01: 1.0}))  # a two-value grid's choice is always at an edge
    assert len(sweeps.edge_choices(two)) == 1


def test_a_setting_with_one_value_is_fixed_not_chosen():
    rows = rows_of({0.001: 2.0, 0.003: 1.0, 0.01: 3.0}, steps=400)
    assert sweeps.edge_choices(table(rows, ("lr", "steps"))) == []
    assert sweeps.edge_choices(table(rows_of({0.01: 1.0}))) == []


def test_a_natural_limit_is_no_edge_but_the_other_end_still_is():
    rows = rows_of({0.0: 1.0, 0.1: 2.0, 0.2: 3.0}, key="dropout")
    assert "dropout = 0 is the smallest" in sweeps.edge_choices(table(rows, ("dropout",)))[0]
    assert sweeps.edge_choices(table(rows, ("dropout",), limits={"dropout": [0.0, None]})) == []
    rows = rows_of({0.0: 3.0, 0.1: 2.0, 0.2: 1.0}, key="dropout")
    assert len(sweeps.edge_choices(table(rows, ("dropout",), limits={"dropout": [0.0, None]}))) == 1


def test_a_row_beyond_the_grid_that_did_worse_makes_the_edge_an_inside():
    grid = [{"lr": lr, "steps": n, "loss": 3.0 - 10 * lr - n / 1000, "seed": 0}
            for lr in (0.003, 0.01) for n in (100, 200, 300)]
    assert sweeps.edge_choices(table(grid, ("lr", "steps"))) == [
        "lr = 0.01 is the largest value tried (0.003, 0.01); try a larger one",
        "steps = 300 is the largest value tried (100, 200, 300); try a larger one"]
    beyond = [{"lr": 0.03, "steps": 300, "loss": 5.0, "seed": 0}, {"lr": 0.01, "steps": 400, "loss": 5.0, "seed": 0}]
    assert sweeps.edge_choices(table(grid + beyond, ("lr", "steps"))) == []
    better = [{"lr": 0.03, "steps": 300, "loss": 0.0, "seed": 0}]  # then the choice moves there: the new edge
    assert sweeps.edge_choices(table(grid + better, ("lr", "steps")))[0].startswith("lr = 0.03 is the largest")


def test_unordered_settings_are_not_checked():
    rows = [{"lr": lr, "schedule": s, "reverse_source": r, "loss": 2.0 - (lr == 0.003) - (s == "b") - r, "seed": 0}
            for lr in (0.001, 0.003, 0.01) for s in ("a", "b") for r in (False, True)]
    t = table(rows, ("lr", "schedule", "reverse_source"))
    assert sweeps.chosen(t) == {"None": {"lr": 0.003, "schedule": "b", "reverse_source": True}}
    assert sweeps.edge_choices(t) == []


def test_each_arm_is_judged_on_its_own_rows():
    rows = rows_of({1: 2.0, 2: 1.0, 3: 3.0}, arm="inside") + rows_of({1: 3.0, 2: 1.0}, arm="short")
    rows += rows_of({1: 3.0, 2: 2.0, 3: 4.0}, arm="other")
    assert sweeps.edge_choices(table(rows, arm="arm")) == [
        "arm 'short': lr = 2 is the largest value tried (1, 2); try a larger one"]  # the other arms' 3 does not count


def test_chosen_refuses_an_edge_table_given_as_a_dict_unless_allowed():
    edge = table(rows_of({0.003: 2.0, 0.01: 1.0}, arm="a"), arm="arm")
    with pytest.raises(ValueError, match=r"edge of its grid: arm 'a': lr = 0.01 is the largest value tried"):
        sweeps.chosen(edge)
    assert sweeps.chosen(edge, allow_edge=True) == {"a": {"lr": 0.01}}
    edited = {**edge, "chosen": {"a": {"lr": 0.003}}}
    with pytest.raises(ValueError, match="not its rows' best"):  # the edited-table check still comes first
        sweeps.chosen(edited, allow_edge=True)


def test_a_pending_table_passes_only_as_committed(tmp_path, monkeypatch):
    name = next(iter(sweeps.EDGE_PENDING))
    committed = json.loads((ROOT / name).read_text())
    assert sweeps.chosen(ROOT / name) == committed["chosen"]  # by its path
    monkeypatch.chdir((ROOT / name).parent)
    assert sweeps.chosen(Path(name).name) == committed["chosen"]  # as a notebook names it, from its folder
    assert sweeps.chosen(json.loads(json.dumps(committed))) == committed["chosen"]  # as a notebook reads it
    shutil.copy(ROOT / name, tmp_path / "copy.json")
    with pytest.raises(ValueError, match="edge of its grid"):  # a copy elsewhere is not the listed table
        sweeps.chosen(tmp_path / "copy.json")
    changed = json.loads(json.dumps(committed))
    changed["rows"].append({**changed["rows"][0], "seed": -1})
    with pytest.raises(ValueError, match="edge of its grid"):  # nor is a table with rows of its own
        sweeps.chosen(sweeps.finish(changed))


def test_the_scaling_sweep_refuses_an_edge_rate_the_same_way():
    rows = [{"width": 8, "N": 100, "lr": lr, "seed": s, "valid_loss": loss}
            for s in (100, 101) for lr, loss in ((0.003, 3.0), (0.01, 2.0), (0.03, 1.0))]
    form = {"settings": ["lr"], "metric": "valid_loss", "goal": "min", "arm": "width", "config": {}}
    edge = {"rows": rows, **form, "chosen": {"8": {"lr": 0.03}}}
    with pytest.raises(ValueError, match=r"arm 8: lr = 0.03 is the largest value tried \(0.003, 0.01, 0.03\)"):
        sweeps.chosen(edge)
    assert sweeps.chosen(edge, allow_edge=True) == {"8": {"lr": 0.03}}
    inside = {"rows": [r for r in rows if r["lr"] != 0.03], **form, "chosen": {"8": {"lr": 0.01}}}
    inside["rows"] += [{**r, "lr": 0.03, "valid_loss": 4.0} for r in rows if r["lr"] == 0.03]
    assert sweeps.chosen(inside) == {"8": {"lr": 0.01}}


def committed_tables():
    """{path from the repository root: the table in sweeps' form} for every registered table (chapter 7's too)."""
    tables = {path: json.loads((ROOT / path).read_text()) for _, path in sweeps.SWEEPS.values()}
    assert LR_SWEEP in tables
    return tables


def test_every_committed_sweep_is_edge_free_or_listed_and_the_list_only_shrinks():
    problems = {path: sweeps.edge_choices(t) for path, t in committed_tables().items()}
    print("\ncommitted sweeps whose choice still sits at an edge of the grid (sweeps.EDGE_PENDING):")
    for path, reason in sweeps.EDGE_PENDING.items():
        print(f"  {path}: {reason}")
        for problem in problems.get(path, []):
            print(f"      {problem}")
    for path, reason in sweeps.EVIDENCE_GRIDS.items():
        print(f"  evidence grid, exempt: {path}: {reason}")
    listed = {**sweeps.EDGE_PENDING, **sweeps.EVIDENCE_GRIDS}
    unlisted = {p: v for p, v in problems.items() if v and p not in listed}
    assert not unlisted, f"choices at the edge of their grid: extend the grid, {unlisted}"
    finished = [p for p in listed if not problems.get(p)]
    assert not finished, f"no longer at an edge: remove from sweeps.EDGE_PENDING / EVIDENCE_GRIDS: {finished}"


def test_the_lists_name_committed_tables_once():
    registered = {path for _, path in sweeps.SWEEPS.values()}
    for path in {**sweeps.EDGE_PENDING, **sweeps.EVIDENCE_GRIDS}:
        assert (ROOT / path).is_file() and path in registered, path
    assert not set(sweeps.EDGE_PENDING) & set(sweeps.EVIDENCE_GRIDS)


def test_every_committed_table_still_reads_as_its_notebook_reads_it(monkeypatch):
    for _, path in sweeps.SWEEPS.values():
        monkeypatch.chdir((ROOT / path).parent)
        name = Path(path).name
        assert sweeps.chosen(name) == sweeps.chosen(json.loads(Path(name).read_text()))
    assert LR_SWEEP in {path for _, path in sweeps.SWEEPS.values()}


def test_chosen_row_reads_the_chosen_setting_and_setting_means_any_other():
    rows = [{"lr": lr, "steps": steps, "seed": seed, "loss": loss + 0.1 * seed, "weight": 0.2 + seed / 10}
            for (lr, steps, loss) in [(0.01, 100, 3.0), (0.01, 200, 2.0), (0.01, 400, 2.5),
                                      (0.003, 100, 3.5), (0.003, 200, 2.8), (0.003, 400, 2.6),
                                      (0.03, 100, 3.1), (0.03, 200, 2.9), (0.03, 400, 3.0)]
            for seed in (0, 1)]
    t = table(rows, settings=("lr", "steps"))
    row = sweeps.chosen_row(t)["None"]
    assert row["lr"] == 0.01 and row["steps"] == 200 and row["seeds"] == 2
    assert row["loss"] == pytest.approx(2.05) and row["weight"] == pytest.approx(0.25)
    longer = sweeps.setting_means(t, {"lr": 0.01, "steps": 400})
    assert longer["loss"] == pytest.approx(2.55) and longer["seeds"] == 2
    with pytest.raises(ValueError, match="no row"):
        sweeps.setting_means(t, {"lr": 0.1, "steps": 200})
