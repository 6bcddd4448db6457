"""Results at a glance: one row per chapter claim, built from the notebooks at build time.

Each row puts side by side what a paper found (with its citation and figure), what the course measured
(numbers from the notebook's `results` cell), whether the effect appeared here, and the notebook's
runtime. Whether it appeared is not typed: the claim names the assertions of the notebook's claims cell
(the cell after `results`) that would establish it, by their messages, and the stored run decides —
**yes** when the claims cell holds every one of them and ran to its end, **partly** when it holds some,
**no** when none (the notebook asserts only what its numbers support, so a missing effect has no
assertion). The claims and the papers' figures live in a small data file, `chapters/claims.yml`.
"""
import ast
import json
from pathlib import Path

import yaml
from docutils import nodes

from .. import results

CLAIMS_FILE = Path("chapters") / "claims.yml"
BENCHMARK_FILE = Path("chapters") / "benchmark.json"
FIELDS = {"notebook", "cite", "figure", "paper", "measured", "assertions"}


def load_claims(root):
    """The claims of `root`/chapters/claims.yml, checked: a list of dicts with the fields above."""
    path = Path(root) / CLAIMS_FILE
    claims = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(claims, list) or not claims:
        raise ValueError(f"{path}: expected a non-empty list of claims")
    for i, claim in enumerate(claims):
        if not isinstance(claim, dict) or set(claim) != FIELDS:
            raise ValueError(f"{path}: claim {i + 1} must have exactly the fields {sorted(FIELDS)}, "
                             f"got {sorted(claim) if isinstance(claim, dict) else claim!r}")
        if not isinstance(claim["assertions"], list) or not claim["assertions"] \
                or not all(isinstance(a, str) and a for a in claim["assertions"]):
            raise ValueError(f"{path}: claim {i + 1} ({claim['paper'][:40]}…) needs a list of assertion messages")
    return claims


def claims_cell(notebook):
    """The code cell after a notebook's `results` cell (its claims), as a dict."""
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(cells) if results.RESULTS_TAG in c["metadata"].get("tags", [])]
    if len(tagged) != 1 or tagged[0] + 1 >= len(cells):
        raise ValueError("expected one cell tagged 'results' followed by the claims cell")
    return cells[tagged[0] + 1]


def assertion_messages(cell):
    """The messages of the claims cell's `assert test, "message"` statements (constant strings only)."""
    tree = ast.parse("".join(cell["source"]))
    return {node.msg.value for node in ast.walk(tree)
            if isinstance(node, ast.Assert) and isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str)}


def held(cell):
    """Whether the stored claims cell ran to its end: executed, and no error stored."""
    outputs = cell.get("outputs", [])
    return isinstance(cell.get("execution_count"), int) and not any(o.get("output_type") == "error" for o in outputs)


def verdict(claim, messages, ran):
    """'yes' / 'partly' / 'no': how many of the claim's assertions the (stored, passing) claims cell holds."""
    if not ran:
        return "no"
    found = sum(message in messages for message in claim["assertions"])
    return "yes" if found == len(claim["assertions"]) else "partly" if found else "no"


def runtimes(root):
    """{notebook path: seconds} from the latest notebook benchmark, or {} if there is none."""
    path = Path(root) / BENCHMARK_FILE
    if not path.exists():
        return {}
    return {name: row["seconds"] for name, row in json.loads(path.read_text())["notebooks"].items()}


def rows(root):
    """One dict per claim: the claim's fields plus `verdict`, `measured` (filled in) and `seconds`."""
    root = Path(root)
    times, out = runtimes(root), []
    for claim in load_claims(root):
        path = root / claim["notebook"]
        if not path.exists():
            raise ValueError(f"{CLAIMS_FILE}: no notebook {claim['notebook']}")
        notebook = json.loads(path.read_text(encoding="utf-8"))
        metrics = results.read_results(path)
        try:
            measured = claim["measured"].format(**metrics)
        except (KeyError, ValueError, IndexError) as error:
            raise ValueError(f"{CLAIMS_FILE}: {claim['notebook']}: cannot fill in {claim['measured']!r} from its "
                             f"results ({type(error).__name__}: {error})") from error
        cell = claims_cell(notebook)
        out.append({**claim, "measured": measured, "seconds": times.get(claim["notebook"]),
                    "verdict": verdict(claim, assertion_messages(cell), held(cell))})
    return out


def markdown(rows_):
    """The rows as a MyST Markdown table (citations and notebook links resolved by Sphinx)."""
    lines = ["| notebook | the paper found | here, measured | appeared? | runtime |", "|---|---|---|---|---|"]
    for row in rows_:
        doc = "/" + str(Path(row["notebook"]).with_suffix("")).replace("\\", "/")
        seconds = f"{row['seconds']:.0f} s" if row["seconds"] is not None else "not measured"
        cells = [f"{{doc}}`{Path(row['notebook']).stem} <{doc}>`",
                 f"{row['paper']} ({{cite:t}}`{row['cite']}`, {row['figure']})",
                 row["measured"], f"**{row['verdict']}**", seconds]
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
