"""Hyperparameter sweeps too costly for a notebook: a command that writes a small committed table.

    python -m dltoolbox.experiments.sweeps NAME [--out FILE] [--processes 2]

runs the sweep NAME (see SWEEPS) and writes a JSON table of every setting tried, its seed and its score
on validation data (never the test set), with the setting chosen for each arm. The notebook reads the
table with :func:`chosen`, which re-derives the choice from the rows (so an edited table is refused), and
trains only the chosen settings. Every arm is searched over the same grid with the same seeds — the same
tuning effort — and the choice is the best mean over those seeds.

A sweep is a function `sweep(processes=2) -> dict` in a teaching module returning
{"rows": [...], "settings": [keys that make a setting], "metric": key, "goal": "min" | "max",
 "arm": key that names the arm (or None for one arm), "config": {fixed settings}}
and optionally "limits": {setting: [lowest, highest]} (either may be null), the setting's natural limits.

A sweep is not finished while its choice sits at the edge of its grid: :func:`chosen` refuses a table whose
chosen value of an ordered (numeric) setting is the smallest or largest value its arm tried, unless that
value is a natural limit (dropout 0: nothing lies beyond it). A row that tries one value beyond the grid
counts as tried, so a worse value there makes the edge an inside. Tables still waiting for their grid to be
extended are listed, with why, in EDGE_PENDING; grids shown as evidence, from which no notebook trains a
chosen setting, in EVIDENCE_GRIDS.
"""
import argparse
import importlib
import json
from pathlib import Path

from ..locations import ROOT

# name -> ("module:function", default output path)
SWEEPS = {
    "ngrams": ("dltoolbox.experiments.ngrams:sweep", "chapters/02_ngrams/sweep.json"),
    # the ngrams sweep's choice pushed past the grid's largest values, one step at a time, into the same table
    "ngrams_beyond": ("dltoolbox.experiments.ngrams:sweep_beyond", "chapters/02_ngrams/sweep.json"),
    "imitation": ("dltoolbox.experiments.replays:imitation_sweep", "chapters/05_replays/sweep.json"),
    "fewshot": ("dltoolbox.experiments.reuse:fewshot_sweep", "chapters/06_reuse/fewshot_sweep.json"),
    "lm_init": ("dltoolbox.experiments.reuse:lm_init_sweep", "chapters/06_reuse/lm_init_sweep.json"),
    "kl_leash": ("dltoolbox.experiments.replays:kl_sweep", "chapters/05_replays/kl_sweep.json"),
    "attention": ("dltoolbox.experiments.attention:sweep", "chapters/04_attention/sweep.json"),
    "attention_equal_time": ("dltoolbox.experiments.attention:equal_time", "chapters/04_attention/equal_time.json"),
    "seq2seq": ("dltoolbox.experiments.seq2seq:sweep", "chapters/03_seq2seq/sweep.json"),
    "seq2seq_capacity": ("dltoolbox.experiments.seq2seq:capacity", "chapters/03_seq2seq/capacity.json"),
    # the second stage of the seq2seq sweep: each source order's steps, with its first-stage lr and schedule
    "seq2seq_steps": ("dltoolbox.experiments.seq2seq:sweep_steps", "chapters/03_seq2seq/steps_sweep.json"),
    "transformer": ("dltoolbox.experiments.attention:transformer_sweep", "chapters/04_attention/transformer_sweep.json"),
    # the second stage of the transformer sweep: reads the first stage's table and writes it back extended
    "transformer_recipe": ("dltoolbox.experiments.attention:transformer_recipe", "chapters/04_attention/transformer_sweep.json"),
    "transformer_long": ("dltoolbox.experiments.attention:transformer_long", "chapters/04_attention/transformer_long.json"),
    # each width's learning rate for chapter 7's model family
    "scaling": ("dltoolbox.experiments.scale:lr_sweep", "chapters/07_scale/lr_sweep.json"),
    # each arm's learning rate for chapter 8's generalist and specialists, at the stored runs' equal budget
    "bytes": ("dltoolbox.experiments.bytes:stored_sweep", "chapters/08_bytes/bytes_sweep.json"),
    # each memory's learning rate for chapter 8's recall task, at equal training compute
    "memory": ("dltoolbox.experiments.memory:sweep", "chapters/08_bytes/memory_sweep.json"),
}

# committed tables (paths from the repository root) whose choice sits at an edge, until their grid is extended
EDGE_PENDING = {
    "chapters/02_ngrams/sweep.json": "the MLP's chosen lr 0.02 and 20,000 steps are the largest tried. One step beyond "
                                     "each around the choice (python -m dltoolbox.experiments.sweeps ngrams_beyond, seed "
                                     "100, dropout 0.1): lr 0.04 at 20,000 steps did worse (validation 2.5179 bits/char "
                                     "against 2.4886), 50,000 steps at lr 0.02 did better (2.4693, best at its last "
                                     "evaluation), so the steps move on to 125,000 (about 55 minutes of one core), and "
                                     "the stored runs follow the choice (4 runs of up to that length, 1-2 hours on 2 "
                                     "cores). Not committed yet: the notebook's stored runs are of the 20,000-step choice",
    "chapters/05_replays/sweep.json": "the two-ply agent's beta (256) is inside 0..4096; the one-ply agent's is the "
                                      "largest, 4096, gaining a fraction of a point per doubling (validation 0.806 at "
                                      "256, 0.812 at 2048, 0.813 at 4096): its best is the greedy limit, beta -> "
                                      "infinity, which the grid cannot hold until the agent takes an infinite beta",
    "chapters/05_replays/kl_sweep.json": "the leash's lambda 0.03 is the smallest of (0.03, 0.1, 0.3), and the free "
                                         "arm's 0 did better still. Run with 0.003 and 0.01 too, the sweep chose "
                                         "0.003 (validation 0.2225, against 0.206 at 0.01 and the free arm's "
                                         "0.224): on win rate the leash has no optimum inside, it fades towards "
                                         "the free arm, so its weight needs a criterion that values what it is "
                                         "for (human agreement) before the grid can close",
    "chapters/06_reuse/fewshot_sweep.json": "every arm's lr and steps sit at an edge of its two-value grids "
                                            "(12 choices): each needs a third value beyond the chosen one",
    "chapters/06_reuse/lm_init_sweep.json": "every arm's 400 steps is the largest of (200, 300, 400) and the 5% "
                                            "arms' lr 0.01 the largest of (0.001, 0.003, 0.01): needs 600 steps "
                                            "and lr 0.03",
}

# committed grids shown as evidence, from which no notebook trains a chosen setting: exempt from the edge rule
EVIDENCE_GRIDS = {
    "chapters/03_seq2seq/capacity.json": "the notebook shows the 2 x 2 capacity x steps grid as evidence that the "
                                         "collapse moves; it trains no model from its choice",
}


def _setting(row, keys):
    return tuple(row[k] for k in keys)


def best_settings(rows, settings, metric, goal="min", arm=None):
    """{arm value (or None): setting dict} with the best mean `metric` over its seeds, per arm.

    Ties go to the setting listed first. Raises ValueError for an unknown goal, missing keys or no rows.
    """
    if goal not in ("min", "max"):
        raise ValueError(f"goal must be 'min' or 'max', got {goal!r}")
    if not rows:
        raise ValueError("the table has no rows")
    keys = list(settings)
    scores = {}
    for row in rows:
        missing = [k for k in keys + [metric] + ([arm] if arm else []) if k not in row]
        if missing:
            raise ValueError(f"row {row} lacks {missing}")
        scores.setdefault(row[arm] if arm else None, {}).setdefault(_setting(row, keys), []).append(float(row[metric]))
    best = {}
    for group, by_setting in scores.items():
        means = {s: sum(v) / len(v) for s, v in by_setting.items()}
        pick = (min if goal == "min" else max)(means, key=means.get)
        best[group] = dict(zip(keys, pick))
    return best


def finish(table):
    """The table with its "chosen" entry filled in from its rows (JSON keys are strings)."""
    best = best_settings(table["rows"], table["settings"], table["metric"], table.get("goal", "min"),
                         table.get("arm"))
    return {**table, "chosen": {str(k): v for k, v in best.items()}}


def _ordered(values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def edge_choices(table):
    """Each arm's chosen value of an ordered setting that is the smallest or largest value the arm tried."""
    arm, limits = table.get("arm"), table.get("limits", {})
    best = best_settings(table["rows"], table["settings"], table["metric"], table.get("goal", "min"), arm)
    problems = []
    for group, setting in best.items():
        rows = [r for r in table["rows"] if (r[arm] if arm else None) == group]
        for key, value in setting.items():
            values = {r[key] for r in rows}
            if len(values) < 2 or not _ordered(values):
                continue  # a fixed setting, or an unordered one (a schedule's name, a flag)
            tried = sorted(values)
            low, high = limits.get(key, (None, None))
            where, listed = (f"arm {group!r}: " if arm else ""), ", ".join(f"{v:g}" for v in tried)
            for edge, limit, end, beyond in ((tried[0], low, "smallest", "smaller"),
                                             (tried[-1], high, "largest", "larger")):
                if value == edge and value != limit:
                    problems.append(f"{where}{key} = {value:g} is the {end} value tried ({listed}); try a {beyond} one")
    return problems


def pending(table, path=None):
    """Whether `table` is a committed table listed in EDGE_PENDING or EVIDENCE_GRIDS (by `path`, or its content)."""
    listed = {**EDGE_PENDING, **EVIDENCE_GRIDS}
    if path is not None:
        path = Path(path).resolve()
        return path.is_relative_to(ROOT) and path.relative_to(ROOT).as_posix() in listed
    return any((ROOT / name).exists() and json.loads((ROOT / name).read_text()) == table for name in listed)


def refuse_edges(table, allow_edge=False):
    """ValueError listing the table's edge choices (:func:`edge_choices`) unless allow_edge."""
    problems = [] if allow_edge else edge_choices(table)
    if problems:
        raise ValueError("the sweep is not finished, its choice sits at the edge of its grid: " + "; ".join(problems)
                         + " (extend the grid, or list the table in sweeps.EDGE_PENDING with why it waits)")


def chosen(table, allow_edge=False):
    """{arm: setting} as the table's rows choose them; ValueError if edited or a choice sits at its grid's edge.

    An edge choice is accepted with allow_edge=True, or for a committed table listed in EDGE_PENDING or
    EVIDENCE_GRIDS (given as its path, or as its unchanged content).
    """
    path = None
    if isinstance(table, (str, Path)):
        path, table = table, json.loads(Path(table).read_text())
    derived = finish(table)["chosen"]
    if table.get("chosen") != derived:
        raise ValueError(f"the table's chosen settings {table.get('chosen')} are not its rows' best {derived}")
    refuse_edges(table, allow_edge or pending(table, path))
    return derived


def _load(table):
    return json.loads(Path(table).read_text()) if isinstance(table, (str, Path)) else table


def setting_means(table, setting, arm=None):
    """The mean of each numeric column over the rows of one `setting` (dict of the table's settings) and arm,
    with the setting itself; ValueError if no row has it."""
    table = _load(table)
    arm_key = table.get("arm")
    rows = [r for r in table["rows"] if all(r[k] == v for k, v in setting.items())
            and (arm_key is None or str(r[arm_key]) == str(arm))]
    if not rows:
        raise ValueError(f"no row of the table has the setting {setting}" + (f" in arm {arm!r}" if arm_key else ""))
    columns = [k for k in rows[0] if k not in table["settings"] and k != "seed" and k != arm_key
               and all(_ordered([r.get(k)]) for r in rows)]
    return {**setting, "seeds": len(rows), **{k: sum(r[k] for r in rows) / len(rows) for k in columns}}


def chosen_row(table, allow_edge=False):
    """{arm: the chosen setting with the mean of each numeric column over its seeds}, after :func:`chosen`'s checks."""
    picks = chosen(table, allow_edge)
    return {arm: setting_means(table, setting, arm) for arm, setting in picks.items()}


def run(name, processes=2):
    """Run the registered sweep `name` and return its finished table."""
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; known: {', '.join(sorted(SWEEPS))}")
    target, _ = SWEEPS[name]
    module, function = target.split(":")
    table = getattr(importlib.import_module(module), function)(processes=processes)
    return finish({"name": name, "command": f"python -m dltoolbox.experiments.sweeps {name}", **table})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.experiments.sweeps", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(SWEEPS))
    parser.add_argument("--out", type=Path, help="where to write the table (default: the chapter's)")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    table = run(args.name, processes=args.processes)
    out = args.out or Path(SWEEPS[args.name][1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out}: {len(table['rows'])} runs; chosen {table['chosen']}")


if __name__ == "__main__":
    main()
