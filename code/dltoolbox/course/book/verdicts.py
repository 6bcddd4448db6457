"""Verdicts decided by the data: each claim in chapters/claims.yml is a predicate over a notebook's results.

A claim names a metric of the notebook's `results` cell, how its interval was measured, and the side of a
line on which the paper's effect lies:

    metric: reversed_minus_plain_exact_match   # the point estimate
    interval: seeds     # seeds: a t-interval over per-seed (paired) values, training randomness included;
                        # items: a bootstrap over test items with the trained models fixed (test-set noise
                        #        only; allowed until a chapter is re-measured, and said on the page);
                        # none:  a count, a ratio or a timing, its own interval
    above: 0            # the paper's side: `above: x`, `below: x` or `between: [x, y]`

The interval's ends are the results `<metric>_low` and `<metric>_high`, or the keys the claim names as
`low:` / `high:` (either may be null: that end is then unbounded), or `<metric> ± <half_width:>`. A claim
with no interval may compare two metrics: `minus: other_metric` judges metric − other_metric.

The verdict is never written by hand. For the stored run and for every CPU kernel setting of
chapters/kernel_spread.json, the interval lies on the paper's side (**reproduced**), wholly on the other
side (**not reproduced**), or across the line (**inconclusive**); the claim is reproduced only when every
run says so, not reproduced only when every run says so, and inconclusive otherwise. A notebook's claims
cell calls :func:`assert_reproduced`, so a change that loses a reproduced effect fails its tests. A run
older than its claim (without the claim's metrics) is "not measured", and the claim inconclusive.
"""
import json
import math
from pathlib import Path

import yaml

from ... import results
from ...locations import ROOT  # the repository, when the package is used from a checkout

CLAIMS_FILE = Path("chapters") / "claims.yml"
SPREAD_FILE = Path("chapters") / "kernel_spread.json"
FIELDS = {"notebook", "cite", "figure", "paper", "claim", "metric", "interval", "measured"}
OPTIONAL = {"low", "high", "half_width", "minus", "format"}
SIDES = ("above", "below", "between")
INTERVALS = ("seeds", "items", "none")
MIN_SEEDS = 4
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_MEASURED = "not measured"


def check_claim(claim, where="claim"):
    """The claim, checked: its fields, exactly one side, and an interval kind; ValueError otherwise."""
    if not isinstance(claim, dict):
        raise ValueError(f"{where}: expected a mapping, got {claim!r}")
    sides = [s for s in SIDES if s in claim]
    missing, unknown = FIELDS - set(claim), set(claim) - FIELDS - OPTIONAL - set(SIDES)
    if missing or unknown or len(sides) != 1:
        raise ValueError(f"{where}: needs the fields {sorted(FIELDS)} and one of {SIDES}; "
                         f"missing {sorted(missing)}, unknown {sorted(unknown)}, sides {sides}")
    if claim["interval"] not in INTERVALS:
        raise ValueError(f"{where}: interval must be one of {INTERVALS}, got {claim['interval']!r}")
    line = claim[sides[0]]
    ok = (isinstance(line, list) and len(line) == 2 and all(isinstance(x, (int, float)) for x in line)
          and line[0] < line[1]) if sides[0] == "between" else isinstance(line, (int, float))
    if not ok:
        raise ValueError(f"{where}: {sides[0]}: {line!r} must be a number (between: [low, high])")
    return claim


def load(root=ROOT):
    """The claims of `root`/chapters/claims.yml, each checked."""
    path = Path(root) / CLAIMS_FILE
    claims = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(claims, list) or not claims:
        raise ValueError(f"{path}: expected a non-empty list of claims")
    checked = [check_claim(c, f"{path}: claim {i + 1}") for i, c in enumerate(claims)]
    missing = sorted({c["notebook"] for c in checked if not (Path(root) / c["notebook"]).is_file()})
    if missing:
        raise ValueError(f"{path}: claims name notebooks that do not exist: {', '.join(missing)}")
    return checked


def interval(claim, metrics):
    """(value, low, high) of the claim's metric in one run's results; ValueError naming a missing key."""
    metric = claim["metric"]

    def get(key):
        if key not in metrics:
            raise ValueError(f"claim {claim['claim']!r}: the results have no {key!r}")
        return float(metrics[key])

    value = get(metric)
    if "minus" in claim:
        if claim["interval"] != "none":
            raise ValueError(f"claim {claim['claim']!r}: `minus` compares two metrics without intervals only")
        value -= get(claim["minus"])
    if claim["interval"] == "none":
        return value, value, value
    if "half_width" in claim:
        half = get(claim["half_width"])
        return value, value - half, value + half
    low_key, high_key = claim.get("low", f"{metric}_low"), claim.get("high", f"{metric}_high")
    low = get(low_key) if low_key else -math.inf
    high = get(high_key) if high_key else math.inf
    return value, low, high


def side(claim, low, high):
    """Where [low, high] lies against the claim's line: reproduced, not reproduced or inconclusive."""
    if "above" in claim:
        line = claim["above"]
        return REPRODUCED if low > line else NOT_REPRODUCED if high < line else INCONCLUSIVE
    if "below" in claim:
        line = claim["below"]
        return REPRODUCED if high < line else NOT_REPRODUCED if low > line else INCONCLUSIVE
    a, b = claim["between"]
    return REPRODUCED if a <= low and high <= b else NOT_REPRODUCED if high < a or low > b else INCONCLUSIVE


def verdict(claim, runs):
    """The claim's verdict over `runs` ({run name: results}) and each run's (value, low, high, side)."""
    each = {}
    for name, metrics in runs.items():
        try:
            value, low, high = interval(claim, metrics)
        except ValueError:  # a run older than the claim: its verdict waits for a new run
            each[name] = (math.nan, math.nan, math.nan, NOT_MEASURED)
            continue
        each[name] = (value, low, high, side(claim, low, high))
    sides = {s for *_, s in each.values()}
    decided = sides.pop() if len(sides) == 1 else INCONCLUSIVE  # no runs: inconclusive
    return (decided if decided in (REPRODUCED, NOT_REPRODUCED) else INCONCLUSIVE), each


def caveats(claim, metrics):
    """What the course's rules ask that this claim's measurement does not yet give (for the page)."""
    out = []
    if claim["interval"] == "items":
        out.append("interval over test items only (the trained models fixed), not over seeds")
    if claim["interval"] != "none" and int(metrics.get("seeds", 0)) < MIN_SEEDS:
        out.append(f"{metrics.get('seeds', 'no')} seeds (the rule asks for {MIN_SEEDS})")
    if claim["interval"] == "none":
        out.append("no interval: one number per run, judged on each kernel setting's run alone")
    return out


def runs(root, notebook, include_stored=True):
    """{"stored": the stored results, setting: that kernel setting's results} for one notebook."""
    root = Path(root)
    spread_path = root / SPREAD_FILE
    spread = json.loads(spread_path.read_text(encoding="utf-8")) if spread_path.exists() else {}
    ranges = spread.get("notebooks", {}).get(notebook, {})  # none yet: each setting "not measured"
    out = {"stored": results.read_results(root / notebook)} if include_stored else {}
    for setting in spread.get("settings") or {"kernel spread": {}}:  # no spread yet: "not measured"
        out[setting] = {key: entry["values"][setting] for key, entry in ranges.items()
                        if setting in entry.get("values", {})}
    return out


def judge(root=ROOT, include_stored=True):
    """One dict per claim: the claim, `verdict`, `runs` (each run's value, low, high and side), `caveats`.

    A run that lacks the claim's metrics (older than the claim) is "not measured", so the verdict is
    inconclusive until the kernel spread and the stored run are refreshed.
    """
    out, cache = [], {}
    for claim in load(root):
        notebook = claim["notebook"]
        if notebook not in cache:
            cache[notebook] = runs(root, notebook, include_stored)
        decided, each = verdict(claim, cache[notebook])
        first = next(iter(cache[notebook].values()))
        out.append({**claim, "verdict": decided, "runs": each, "caveats": caveats(claim, first)})
    return out


def assert_reproduced(measured, notebook, root=ROOT):
    """Assert, on this run's results, every claim of `notebook` whose verdict is "reproduced"; return them.

    Silent, so that a notebook's stored output does not change with the verdicts; the Results page lists
    them. Where the course's claims file is not at hand (a student's release), nothing is checked.
    """
    if not (Path(root) / CLAIMS_FILE).exists():
        return []
    checked = []
    # judged on the kernel spread's runs alone: this run is about to become the stored one
    for row in judge(root, include_stored=False):
        if row["notebook"] != notebook or row["verdict"] != REPRODUCED:
            continue
        value, low, high = interval(row, measured)
        assert side(row, low, high) == REPRODUCED, \
            f"{row['claim']}: {value:g} [{low:g}, {high:g}] is no longer {predicate_text(row)}"
        checked.append(row["claim"])
    return checked


def claims_cell(notebook):
    """The code cell after a notebook's `results` cell (its claims), as a dict."""
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(cells) if results.RESULTS_TAG in c["metadata"].get("tags", [])]
    if len(tagged) != 1 or tagged[0] + 1 >= len(cells):
        raise ValueError("expected one cell tagged 'results' followed by the claims cell")
    return cells[tagged[0] + 1]


def predicate_text(claim):
    """The predicate in words, e.g. 'interval above 0'."""
    if "between" in claim:
        a, b = claim["between"]
        return f"interval within [{a:g}, {b:g}]"
    key = "above" if "above" in claim else "below"
    what = "value" if claim["interval"] == "none" else "interval"
    if "minus" in claim:
        what = f"minus `{claim['minus']}`"
    return f"{what} {key} {claim[key]:g}"
