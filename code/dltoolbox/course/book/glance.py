"""Results at a glance: one row per chapter claim, built from the notebooks at build time.

Each row puts side by side the claim as a predicate over the notebook's results, its verdict, what the
course measured and what a paper found (with its citation and figure). The verdict is computed by
:mod:`dltoolbox.course.book.verdicts` from the stored run and the runs under every CPU kernel setting
(chapters/kernel_spread.json): reproduced, not reproduced or inconclusive. Nobody writes it. The claims
and the papers' figures live in a small data file, `chapters/claims.yml`.

The page groups the rows under the chapters' names (the chapter pages' titles, in the order of
`_toc.yml`), counts the verdicts above them, shows each verdict as a badge with a sign and a word (so it
reads without colour), links each claim to the section of the notebook that measures it, and folds
"every metric" into one closed `<details>` per notebook. The layout is in `_static/results.css`.
"""
import json
import math
import re
from pathlib import Path, PurePosixPath

import yaml
from docutils import nodes
from sphinx.util import logging

from ... import results
from . import verdicts

CLAIMS_FILE = verdicts.CLAIMS_FILE
BENCHMARK_FILE = Path("chapters") / "benchmark.json"
TOC_FILE = Path("_toc.yml")
CSS_FILE = "results.css"   # in _static/
logger = logging.getLogger(__name__)
# what a verdict looks like on the page: a sign and the word, so it reads without colour
BADGES = {verdicts.REPRODUCED: "✓", verdicts.NOT_REPRODUCED: "✗", verdicts.INCONCLUSIVE: "?"}
COLUMNS = ("claim, tested here", "verdict", "measured", "the paper found")


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
    """The rows as a plain MyST Markdown table (citations and notebook links resolved by Sphinx)."""
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


# --- what the page is made of: pure functions of the rows and the repository -------------------------

def badge_text(verdict):
    """The verdict as the page shows it, sign and word: '✓ reproduced', '✗ not reproduced', '? inconclusive'."""
    return f"{BADGES[verdict]} {verdict}"


def badge_class(verdict):
    """The CSS class of a verdict's badge: glance-reproduced, glance-not-reproduced, glance-inconclusive."""
    return "glance-" + verdict.replace(" ", "-")


def counts(rows_):
    """{verdict: how many rows have it}, every verdict (zero included), in the order of BADGES."""
    out = {verdict: 0 for verdict in BADGES}
    for row in rows_:
        out[row["verdict"]] += 1
    return out


def count_text(rows_):
    """The verdicts counted, e.g. '18 reproduced · 5 not reproduced · 4 inconclusive'."""
    return " · ".join(f"{n} {verdict}" for verdict, n in counts(rows_).items())


def page_title(path):
    """The first level-1 heading of a Markdown page or a notebook's Markdown cells (its title), or None."""
    path = Path(path)
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        text = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                         for c in cells if c.get("cell_type") == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and line.startswith("# "):
            return line[2:].strip()
    return None


def docname(path):
    """Sphinx's name of a page: its path from the book's root, with '/' and without .md or .ipynb."""
    path = PurePosixPath(str(path).replace("\\", "/"))
    return str(path.with_suffix("") if path.suffix in (".md", ".ipynb") else path)


def _source(root, doc):
    """The source file of a document named in _toc.yml (its suffix may be left out there)."""
    path = Path(root) / doc
    if path.suffix in (".md", ".ipynb") and path.exists():
        return path
    for suffix in (".md", ".ipynb"):
        if path.with_suffix(suffix).exists():
            return path.with_suffix(suffix)
    raise ValueError(f"{TOC_FILE}: {doc} has no .md or .ipynb file")


def chapters(root):
    """The book's chapters in the order of _toc.yml: number (in a numbered part, else None), the chapter
    page's docname and title, and the docnames of its pages (the chapter page, then its sections)."""
    root = Path(root)
    toc = yaml.safe_load((root / TOC_FILE).read_text(encoding="utf-8"))
    parts = toc.get("parts") or [{"chapters": toc.get("chapters", []), "numbered": toc.get("numbered", False)}]
    out = []
    for part in parts:
        for number, entry in enumerate(part.get("chapters", []), start=1):
            doc = docname(entry["file"]) if "file" in entry else None
            if doc is None:
                continue
            pages, todo = [doc], list(entry.get("sections", []))
            while todo:  # sections of sections, depth first
                section = todo.pop(0)
                if "file" in section:
                    pages.append(docname(section["file"]))
                todo[:0] = section.get("sections", [])
            out.append({"number": number if part.get("numbered") else None, "doc": doc,
                        "title": page_title(_source(root, doc)) or Path(doc).parent.name, "pages": pages})
    return out


def chapter_name(chapter):
    """'2. From Shannon's n-grams to neural language models', as the sidebar numbers it."""
    return f"{chapter['number']}. {chapter['title']}" if chapter["number"] else chapter["title"]


def grouped(rows_, root):
    """[(chapter, its rows)] in the order of _toc.yml, each chapter's rows in its notebooks' order then
    claims.yml's; chapters without claims left out. ValueError for a claim whose notebook is in no chapter."""
    found = chapters(root)
    where = {page: (i, j) for i, chapter in enumerate(found) for j, page in enumerate(chapter["pages"])}
    keyed = []
    for k, row in enumerate(rows_):
        doc = docname(row["notebook"])
        if doc not in where:
            raise ValueError(f"{CLAIMS_FILE}: {row['notebook']} is in no chapter of {TOC_FILE}")
        keyed.append((where[doc], k, row))
    out = []
    for (i, _), _, row in sorted(keyed, key=lambda t: (t[0], t[1])):
        if not out or out[-1][0] is not found[i]:
            out.append((found[i], []))
        out[-1][1].append(row)
    return out


def _plain(markdown_text):
    """A heading's text without inline Markdown marks or typographic quotes, to compare titles."""
    text = re.sub(r"[`*_]", "", markdown_text)
    return text.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})).strip()


def results_section(notebook):
    """The heading nearest above a notebook's `results` cell (the section that measures its claims), or None."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    heading = None
    for cell in cells:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell.get("cell_type") == "code" and results.RESULTS_TAG in cell.get("metadata", {}).get("tags", []):
            return heading
        if cell.get("cell_type") == "markdown":
            for line in source.splitlines():
                match = re.match(r"#{1,6}\s+(.+)", line)
                if match:
                    heading = match[1].strip()
    return None


def notebooks(root):
    """The chapter notebooks in the order of _toc.yml, each with its chapter: [(notebook path, chapter)]."""
    root = Path(root)
    out = []
    for chapter in chapters(root):
        for page in chapter["pages"]:
            if (root / page).with_suffix(".ipynb").exists():
                out.append(((root / page).with_suffix(".ipynb"), chapter))
    return out


def runtime_text(seconds):
    return f"runs in {seconds:.0f} s" if seconds is not None else "runtime not measured"


# --- the page's nodes -----------------------------------------------------------------------------------

class element(nodes.Element):
    """An HTML element with its tag and attributes (a table's parts, details, summary); elsewhere its content."""


def visit_element(self, node):
    self.body.append(self.starttag(node, node["tag"], "", **node.get("attrs", {})))


def depart_element(self, node):
    self.body.append(f"</{node['tag']}>")


def passthrough(self, node):
    pass


def make(tag, *children, classes=(), **attrs):
    node = element(tag=tag, attrs={k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()},
                   classes=list(classes))
    node.extend(children)
    return node


def link(children, doc, section=None, classes=()):
    """A link to `doc` (a docname), at the anchor of its section titled `section` when it has one;
    resolved when the page is written (resolve_links)."""
    node = nodes.inline("", "", *children, classes=list(classes))
    node["glance_doc"] = doc
    node["glance_section"] = section or ""
    return node


def section_anchor(env, doc, title):
    """'#results': the anchor of `doc`'s section titled `title` in the book's table of contents, or ''."""
    toc = env.tocs.get(doc)
    if toc is None or not title:
        return ""
    for ref in toc.findall(nodes.reference):
        if _plain(ref.astext()) == _plain(title) and ref.get("anchorname"):
            return ref["anchorname"]
    return ""


def resolve_links(app, doctree, docname):
    """Turn each placeholder of `link` into a reference to the page (and section) it names."""
    for node in list(doctree.findall(nodes.inline)):
        if "glance_doc" not in node.attributes:
            continue
        target = node["glance_doc"]
        if target not in app.env.all_docs:
            del node["glance_doc"], node["glance_section"]
            continue
        uri = app.builder.get_relative_uri(docname, target) + section_anchor(app.env, target, node["glance_section"])
        # a reference must sit in a text element: the placeholder (an inline) stays, around it
        ref = nodes.reference("", "", *node.children, refuri=uri, internal=True, classes=node["classes"])
        node.children, node["classes"] = [], []
        node += ref
        del node["glance_doc"], node["glance_section"]


def badge(verdict, count=None):
    """A verdict's badge (badge_text), '✓ reproduced' or with a count '✓ 18 reproduced': the sign hidden from
    screen readers, which read the word."""
    sign, word = badge_text(verdict).split(" ", 1)
    return nodes.strong("", "", make("span", nodes.Text(sign), classes=["glance-sign"], aria_hidden="true"),
                        nodes.Text(f" {word}" if count is None else f" {count} {word}"),
                        classes=["glance-badge", badge_class(verdict)])


def setup(app):
    from sphinx.util.docutils import SphinxDirective

    class GlanceBase(SphinxDirective):
        """What the Results page's directives share: the judged claims, and Markdown parsed inline."""

        def inline(self, text):
            """Markdown text parsed (roles resolved later), its paragraph unwrapped."""
            parsed = self.parse_text_to_nodes(text)
            if len(parsed) == 1 and isinstance(parsed[0], nodes.paragraph):
                return list(parsed[0].children)
            return parsed

        def table_rows(self):
            root = Path(self.env.srcdir)
            for name in (CLAIMS_FILE, BENCHMARK_FILE, TOC_FILE, verdicts.SPREAD_FILE):
                self.env.note_dependency(str(root / name))
            try:
                table = rows(root)
                groups = grouped(table, root)
            except ValueError as error:
                raise self.error(str(error))
            for row in table:
                self.env.note_dependency(str(root / row["notebook"]))
            for chapter, _ in groups:
                self.env.note_dependency(str(_source(root, chapter["doc"])))
            return table, groups

    class CountDirective(GlanceBase):
        """The verdicts counted: '18 reproduced · 5 not reproduced · 4 inconclusive', each as its badge."""

        def run(self):
            table, groups = self.table_rows()
            para = nodes.paragraph(classes=["glance-count"])
            para += nodes.inline("", f"{len(table)} claims tested against their papers, in {len(groups)} chapters: ",
                                 classes=["glance-count-lead"])
            for i, (verdict, n) in enumerate(counts(table).items()):
                if i:
                    para += nodes.inline("", " · ", classes=["glance-sep"])
                para += badge(verdict, n)
            return [para]

    class GlanceDirective(GlanceBase):
        """The results-at-a-glance table, grouped by chapter; notebooks, claims, benchmark and toc are
        build dependencies."""

        def run(self):
            root = Path(self.env.srcdir)
            table, groups = self.table_rows()
            head = make("thead", make("tr", *[make("th", nodes.inline("", h), scope="col", role="columnheader")
                                              for h in COLUMNS], role="row"), role="rowgroup")
            caption = make("caption", nodes.inline(
                "", "Each claim under its chapter: the claim (linked to the notebook section that measures it), "
                    "its verdict, what the notebook measured, and what the paper found."))
            out = make("table", caption, head, classes=["glance-table"], role="table")
            for chapter, chapter_rows in groups:
                name = make("th", link([nodes.inline("", chapter_name(chapter))], chapter["doc"]),
                            scope="rowgroup", colspan=str(len(COLUMNS)), role="rowheader")
                body = make("tbody", make("tr", name, classes=["glance-chapter"], role="row"), role="rowgroup")
                for row in chapter_rows:
                    notebook = root / row["notebook"]
                    doc = docname(row["notebook"])
                    claim = make("th", link(self.inline(row["claim"]), doc, results_section(notebook),
                                            classes=["glance-claim-link"]),
                                 nodes.inline("", "", *self.inline(
                                     f"`{row['metric']}`: {verdicts.predicate_text(row)} · "
                                     f"the notebook {runtime_text(row['seconds'])}"),
                                     classes=["glance-predicate"]),
                                 classes=["glance-claim"], scope="row", role="rowheader")
                    verdict = make("td", badge(row["verdict"]), classes=["glance-verdict"], role="cell",
                                   data_label="verdict")
                    measured = make("td", nodes.inline("", "", *self.inline(row["measured"]), classes=["glance-value"]),
                                    nodes.inline("", interval_text(row), classes=["glance-interval"]),
                                    *[nodes.emphasis("", f"({c})", classes=["glance-caveat"]) for c in row["caveats"]],
                                    classes=["glance-measured"], role="cell", data_label="measured")
                    paper = make("td", *self.inline(f"{row['paper']} ({{cite:t}}`{row['cite']}`, {row['figure']})"),
                                 classes=["glance-paper"], role="cell", data_label="the paper found")
                    body += make("tr", claim, verdict, measured, paper,
                                 classes=["glance-row", badge_class(row["verdict"])], role="row")
                out += body
            return [nodes.container("", out, classes=["course-glance"])]

    class MetricsDirective(GlanceBase):
        """Every metric of every chapter notebook's `results` cell, one closed <details> per notebook,
        each metric with its range across CPU kernels."""

        def run(self):
            from . import sphinxext

            root = Path(self.env.srcdir)
            spread = sphinxext.kernel_spread(root)
            for name in (verdicts.SPREAD_FILE, Path("chapters") / "metrics.yml", TOC_FILE):
                self.env.note_dependency(str(root / name))
            try:
                names = sphinxext.metric_names(root)
            except ValueError as error:
                raise self.error(str(error))
            out = []
            if spread:
                m = spread["machine"]
                settings = "; ".join(f"{name}: " + (" ".join(f"{k}={v}" for k, v in env_.items())
                                                    or "as PyTorch chooses")
                                     for name, env_ in spread["settings"].items())
                out.append(nodes.paragraph(text=f"A range in brackets is over one run of each notebook per CPU "
                                                f"kernel setting ({settings}) on an {m['arch']} {m['cpu']} with "
                                                f"PyTorch {m['torch']}, written by python -m dltoolbox.course.notebooks "
                                                "spread."))
            for path, chapter in notebooks(root):
                doc = path.relative_to(root).with_suffix("").as_posix()
                if doc not in self.env.found_docs:
                    continue
                self.env.note_dependency(str(path))
                try:
                    metrics = results.read_results(path)
                except ValueError as error:
                    logger.warning(str(error), location=(self.env.docname, self.lineno))
                    continue
                key = path.relative_to(root).as_posix()
                ranges = (spread or {}).get("notebooks", {}).get(key, {})
                named = names.get(key, {})
                body = []
                for metric, value in metrics.items():
                    if metric not in named:
                        logger.warning(
                            f"{path.name}: metric {metric!r} has no readable name in chapters/metrics.yml",
                            location=(self.env.docname, self.lineno))
                    name, unit = named.get(metric, (metric, ""))
                    shown = nodes.inline()
                    shown += nodes.Text(name)
                    shown += nodes.inline(text=f" — {metric}", classes=["metric-key"])
                    body.append([shown, nodes.Text(unit), nodes.Text(sphinxext.spread_text(ranges.get(metric), value))])
                title = page_title(path) or path.stem
                summary = make("summary", nodes.inline("", title, classes=["glance-metrics-title"]),
                               nodes.inline("", "", nodes.literal("", path.name),
                                            nodes.Text(f" · {len(metrics)} metrics"), classes=["glance-metrics-meta"]))
                section = results_section(path)
                where = nodes.paragraph(classes=["glance-metrics-where"])
                where += nodes.Text("Read from the cell tagged ")
                where += nodes.literal("", "results")
                where += nodes.Text(" in the notebook's ")
                where += link([nodes.inline("", f"{section} section" if section else "page")], doc, section)
                if chapter["number"]:
                    where += nodes.Text(f" (chapter {chapter['number']}, {chapter['title']})")
                where += nodes.Text(".")
                out.append(make("details", summary, where,
                                sphinxext.table(["metric (key)", "unit", "stored value (range across CPU kernels)"],
                                                (5, 2, 3), body, "course-results"),
                                classes=["glance-metrics"]))
            return [nodes.container("", *out, classes=["course-metrics"])]

    app.add_node(element, html=(visit_element, depart_element), latex=(passthrough, passthrough),
                 text=(passthrough, passthrough), man=(passthrough, passthrough),
                 texinfo=(passthrough, passthrough))
    app.connect("doctree-resolved", resolve_links)
    app.add_css_file(CSS_FILE, priority=800)  # the priority of _static's own CSS, so it is linked once

    class BenchmarkDirective(SphinxDirective):
        """The latest notebook benchmark (chapters/benchmark.json) as a table, or how to make one."""

        def run(self):
            from docutils.statemachine import StringList

            from ..notebooks import benchmark_markdown

            path = Path(self.env.srcdir) / BENCHMARK_FILE
            self.env.note_dependency(str(path))
            if path.exists():
                text = benchmark_markdown(json.loads(path.read_text(encoding="utf-8")))
            else:
                text = ("No benchmark has been recorded yet: run `python -m dltoolbox.course.notebooks benchmark` on a "
                        "quiet machine and commit `chapters/benchmark.json`.")
            container = nodes.container(classes=["course-benchmark"])
            self.state.nested_parse(StringList(text.splitlines(), source=str(BENCHMARK_FILE)), self.content_offset,
                                    container)
            return [container]

    app.add_directive("course-glance-count", CountDirective)
    app.add_directive("course-glance", GlanceDirective)
    app.add_directive("course-metrics", MetricsDirective)
    app.add_directive("course-benchmark", BenchmarkDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2"}
