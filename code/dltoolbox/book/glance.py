"""Results at a glance: one row per chapter claim, built from the notebooks at build time.

Each row puts side by side what a paper found (with its citation and figure), the claim as a predicate
over the notebook's results, what the course measured, the verdict and the notebook's runtime. The
verdict is computed by :mod:`dltoolbox.book.verdicts` from the stored run and the runs under every CPU
kernel setting (chapters/kernel_spread.json): reproduced, not reproduced or inconclusive. Nobody writes it.
The claims and the papers' figures live in a small data file, `chapters/claims.yml`.
"""
import json
import math
from pathlib import Path

from docutils import nodes

from .. import results
from . import verdicts

CLAIMS_FILE = verdicts.CLAIMS_FILE
BENCHMARK_FILE = Path("chapters") / "benchmark.json"


def runtimes(root):
    """{notebook path: seconds} from the latest notebook benchmark, or {} if there is none."""
    path = Path(root) / BENCHMARK_FILE
    if not path.exists():
        return {}
    return {name: row["seconds"] for name, row in json.loads(path.read_text())["notebooks"].items()}


def rows(root):
    """One dict per claim: the judged claim (verdicts.judge) plus `measured` (filled in) and `seconds`."""
    root = Path(root)
    times, out = runtimes(root), []
    for row in verdicts.judge(root):
        metrics = results.read_results(root / row["notebook"])
        try:
            measured = row["measured"].format(**metrics)
        except (KeyError, ValueError, IndexError) as error:
            raise ValueError(f"{CLAIMS_FILE}: {row['notebook']}: cannot fill in {row['measured']!r} from its "
                             f"results ({type(error).__name__}: {error})") from error
        out.append({**row, "measured": measured, "seconds": times.get(row["notebook"])})
    return out


def interval_text(row):
    """The stored run's value and interval, and on which side each run (stored, each kernel setting) lies."""
    spec = row.get("format", "+.3f")
    value, low, high, _ = row["runs"]["stored"]
    shown = f"{value:{spec}}" if row["interval"] == "none" else \
        f"{value:{spec}} [{'−∞' if math.isinf(low) else format(low, spec)}, " \
        f"{'+∞' if math.isinf(high) else format(high, spec)}]"
    by_side = {}
    for name, (*_, s) in row["runs"].items():
        by_side.setdefault(s, []).append("stored run" if name == "stored" else name)
    kind = {"seeds": "95%, over seeds", "items": "95%, over test items", "none": "no interval"}[row["interval"]]
    sides = "; ".join(f"{', '.join(names)}: {s}" for s, names in by_side.items())
    return f"{shown} ({kind}); {sides}".replace("-", "−")


def markdown(rows_):
    """The rows as a MyST Markdown table (citations and notebook links resolved by Sphinx)."""
    lines = ["| the paper found | the claim, tested here | measured | verdict | runtime |", "|---|---|---|---|---|"]
    for row in rows_:
        doc = "/" + str(Path(row["notebook"]).with_suffix("")).replace("\\", "/")
        seconds = f"{row['seconds']:.0f} s" if row["seconds"] is not None else "not measured"
        caveats = "".join(f" *({c})*" for c in row["caveats"])
        cells = [f"{row['paper']} ({{cite:t}}`{row['cite']}`, {row['figure']})",
                 f"{row['claim']}: `{row['metric']}`, {verdicts.predicate_text(row)} "
                 f"({{doc}}`{Path(row['notebook']).stem} <{doc}>`)",
                 f"{row['measured']}; {interval_text(row)}{caveats}", f"**{row['verdict']}**", seconds]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def setup(app):
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class GlanceDirective(SphinxDirective):
        """The results-at-a-glance table; notebooks, claims and benchmark are build dependencies."""

        def run(self):
            root = Path(self.env.srcdir)
            for name in (CLAIMS_FILE, BENCHMARK_FILE):
                self.env.note_dependency(str(root / name))
            try:
                table = rows(root)
            except ValueError as error:
                raise self.error(str(error))
            for row in table:
                self.env.note_dependency(str(root / row["notebook"]))
            container = nodes.container(classes=["course-glance"])
            self.state.nested_parse(StringList(markdown(table).splitlines(), source="claims.yml"),
                                    self.content_offset, container)
            return [container]

    class BenchmarkDirective(SphinxDirective):
        """The latest notebook benchmark (chapters/benchmark.json) as a table, or how to make one."""

        def run(self):
            from ..notebooks import benchmark_markdown

            path = Path(self.env.srcdir) / BENCHMARK_FILE
            self.env.note_dependency(str(path))
            if path.exists():
                text = benchmark_markdown(json.loads(path.read_text(encoding="utf-8")))
            else:
                text = ("No benchmark has been recorded yet: run `python -m dltoolbox.notebooks benchmark` on a "
                        "quiet machine and commit `chapters/benchmark.json`.")
            container = nodes.container(classes=["course-benchmark"])
            self.state.nested_parse(StringList(text.splitlines(), source=str(BENCHMARK_FILE)), self.content_offset,
                                    container)
            return [container]

    app.add_directive("course-glance", GlanceDirective)
    app.add_directive("course-benchmark", BenchmarkDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
