"""Hyperparameter sweeps too costly for a notebook: a command that writes a small committed table.

    python -m dltoolbox.sweeps NAME [--out FILE] [--processes 2]

runs the sweep NAME (see SWEEPS) and writes a JSON table of every setting tried, its seed and its score
on validation data (never the test set), with the setting chosen for each arm. The notebook reads the
table with :func:`chosen`, which re-derives the choice from the rows (so an edited table is refused), and
trains only the chosen settings. Every arm is searched over the same grid with the same seeds — the same
tuning effort — and the choice is the best mean over those seeds.

A sweep is a function `sweep(processes=2) -> dict` in a teaching module returning
{"rows": [...], "settings": [keys that make a setting], "metric": key, "goal": "min" | "max",
 "arm": key that names the arm (or None for one arm), "config": {fixed settings}}.
"""
import argparse
import importlib
import json
from pathlib import Path

# name -> ("module:function", default output path)
SWEEPS = {
    "ngrams": ("dltoolbox.neural_lm:sweep", "chapters/02_ngrams/sweep.json"),
    "imitation": ("dltoolbox.imitation:sweep", "chapters/05_replays/sweep.json"),
    "fewshot": ("dltoolbox.fewshot:sweep", "chapters/06_reuse/fewshot_sweep.json"),
    "lm_init": ("dltoolbox.transfer:sweep", "chapters/06_reuse/lm_init_sweep.json"),
    "kl_leash": ("dltoolbox.selfplay:sweep", "chapters/05_replays/kl_sweep.json"),
    "attention": ("dltoolbox.attention:sweep", "chapters/04_attention/sweep.json"),
    "seq2seq": ("dltoolbox.seq2seq:sweep", "chapters/03_seq2seq/sweep.json"),
    "seq2seq_capacity": ("dltoolbox.seq2seq:capacity", "chapters/03_seq2seq/capacity.json"),
    "transformer": ("dltoolbox.transformer:sweep", "chapters/04_attention/transformer_sweep.json"),
    "transformer_long": ("dltoolbox.transformer:sweep_long", "chapters/04_attention/transformer_long.json"),
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


def chosen(table):
    """{arm: setting} as the table's rows choose them; ValueError if its stated choice disagrees (edited)."""
    if isinstance(table, (str, Path)):
        table = json.loads(Path(table).read_text())
    derived = finish(table)["chosen"]
    if table.get("chosen") != derived:
        raise ValueError(f"the table's chosen settings {table.get('chosen')} are not its rows' best {derived}")
    return derived


def run(name, processes=2):
    """Run the registered sweep `name` and return its finished table."""
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; known: {', '.join(sorted(SWEEPS))}")
    target, _ = SWEEPS[name]
    module, function = target.split(":")
    table = getattr(importlib.import_module(module), function)(processes=processes)
    return finish({"name": name, "command": f"python -m dltoolbox.sweeps {name}", **table})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.sweeps", description=__doc__.split("\n\n")[0])
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
