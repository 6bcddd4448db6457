"""Sphinx extension: styled, verified interview quotes; the transcript page; the course results table."""
import json
import posixpath
import re
from pathlib import Path, PurePosixPath

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

from ... import results
from .. import interview

logger = logging.getLogger(__name__)
TRANSCRIPT_DOC = "chapters/transcript"


class InterviewQuotes(SphinxTransform):
    """Turn a block quote ending in '— Speaker, interview lines N–M' into a checked, attributed quote."""

    default_priority = 700  # before smart quotes

    def apply(self):
        for quote in list(self.document.findall(nodes.block_quote)):
            paragraphs = [c for c in quote.children if isinstance(c, nodes.paragraph)]
            if len(paragraphs) < 2 or paragraphs[-1] is not quote.children[-1]:
                continue
            match = interview.ATTRIBUTION.match(" ".join(paragraphs[-1].astext().split()))
            if match is None:
                continue
            first, last = int(match["first"]), int(match["last"] or match["first"])
            text = " ".join(p.astext() for p in paragraphs[:-1])
            where = f"{self.env.docname}:{quote.line or 0}"
            try:
                interview.check_quote(interview.Quote(text, match["speaker"], first, last, where))
            except interview.QuoteError as error:
                logger.warning(f"misquote: {error}", location=quote, type="dltoolbox", subtype="quote")
            span = f"line {first}" if first == last else f"lines {first}–{last}"
            attribution = nodes.attribution()
            attribution += nodes.Text(f"{match['speaker']}, ")
            attribution += interview_link(span, first, last)
            quote.remove(paragraphs[-1])
            quote += attribution
            quote["classes"].append("interview-quote")
            anchor = self._anchor(f"quote-{first}-{last}")
            quote["ids"].append(anchor)
            self.document.ids[anchor] = quote
            for paragraph in paragraphs[:-1]:
                mark_editorial_notes(paragraph)
            quotes_of(self.env).append({"docname": self.env.docname, "first": first, "last": last,
                                        "speaker": match["speaker"], "anchor": anchor})

    def _anchor(self, base):
        """`base`, or base-2, base-3... when the page already has that id (one range quoted twice)."""
        anchor, n = base, 1
        while anchor in self.document.ids:
            n += 1
            anchor = f"{base}-{n}"
        return anchor


def quotes_of(env):
    """Every interview quote read so far: dicts of docname, first, last, speaker and the quote's anchor."""
    if not hasattr(env, "dltoolbox_quotes"):
        env.dltoolbox_quotes = []
    return env.dltoolbox_quotes


def purge_quotes(app, env, docname):
    env.dltoolbox_quotes = [q for q in quotes_of(env) if q["docname"] != docname]


def merge_quotes(app, env, docnames, other):
    """Parallel reading: take the quotes of the documents another process read."""
    quotes_of(env).extend(q for q in quotes_of(other) if q["docname"] in docnames)


def transcript_outdated(app, env, added, changed, removed):
    """The transcript lists the pages that quote each range: rewrite it whenever any page changes."""
    if TRANSCRIPT_DOC in env.found_docs and (added | changed | removed) - {TRANSCRIPT_DOC}:
        return [TRANSCRIPT_DOC]
    return []


def interview_link(text, line, last=None):
    """An inline node that becomes a link to the transcript page at `line`.

    The link goes to the range's first line, #line-N; a quote's link also carries its last line (the
    class interview-lines-N-M), from which _static/course.js makes it open the range, #lines-N-M, so
    that the transcript highlights every quoted line.
    """
    classes = ["interview-location"]
    if last is not None and last != line:
        classes.append(f"interview-lines-{line}-{last}")
    node = nodes.inline(text=f"interview {text}", classes=classes)
    node["interview_line"] = line
    return node


def mark_editorial_notes(paragraph):
    """Wrap each [ed.: ...] note in a styled inline element."""
    for text_node in list(paragraph.findall(nodes.Text)):
        parts = re.split(r"(\[ed\.:[^\]]+\])", text_node.astext())
        if len(parts) == 1:
            continue
        new = [nodes.inline(text=p, classes=["editorial-note"]) if p.startswith("[ed.:") else nodes.Text(p)
               for p in parts if p]
        text_node.parent.replace(text_node, new)


def resolve_interview_links(app, doctree, docname):
    """Point each quote's location at the transcript page's line anchor."""
    for node in list(doctree.findall(nodes.inline)):
        if "interview_line" not in node.attributes:
            continue
        if TRANSCRIPT_DOC not in app.env.all_docs:
            continue
        uri = app.builder.get_relative_uri(docname, TRANSCRIPT_DOC) + f"#line-{node['interview_line']}"
        ref = nodes.reference("", "", *node.children, refuri=uri, internal=True, classes=node["classes"])
        node.replace_self(ref)


# The interview's segments are listed once, in chapter 1's map of the interview (a Markdown table whose
# rows start "| first–last | what is discussed | chapters |"); the transcript page takes its headings from it.
MAP_PAGE = "chapters/01_toolbox/index.md"
MAP_HEADING = re.compile(r"^#+\s+The map of the interview\s*$", re.M)
MAP_ROW = re.compile(r"^\|\s*(\d+)\s*[–-]\s*(\d+)\s*\|(.*)\|(.*)\|\s*$")
MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def interview_segments(root):
    """Chapter 1's map of the interview: [(first, last, what is discussed, [chapter docnames])].

    A ValueError when the map is missing, or its rows do not run in order over the whole transcript.
    """
    path = Path(root) / MAP_PAGE
    text = path.read_text(encoding="utf-8")
    heading = MAP_HEADING.search(text)
    if heading is None:
        raise ValueError(f"{MAP_PAGE} has no section 'The map of the interview'")
    body = text[heading.end():]
    following = re.search(r"^#+\s", body, re.M)
    body = body[:following.start()] if following else body
    here = PurePosixPath(MAP_PAGE).parent
    segments = []
    for row in body.splitlines():
        match = MAP_ROW.match(row.strip())
        if match is None:
            continue
        first, last = int(match[1]), int(match[2])
        about = " ".join(match[3].replace("*", "").split())
        chapters = []
        for _, target in MD_LINK.findall(match[4]):
            chapters.append(posixpath.normpath(str(here / target)).removesuffix(".md").removesuffix(".ipynb"))
        if not chapters:  # "this one"
            chapters.append(str(here / "index"))
        segments.append((first, last, about, chapters))
    total = len(interview.transcript_lines())
    if not segments:
        raise ValueError(f"{MAP_PAGE}: the map of the interview has no rows '| first–last | ... | ... |'")
    if segments[0][0] != 1 or segments[-1][1] != total:
        raise ValueError(f"{MAP_PAGE}: the map runs over lines {segments[0][0]}–{segments[-1][1]}, not 1–{total}")
    for (a, b, *_), (c, d, *_) in zip(segments, segments[1:]):
        if not (a <= b and c <= d and b <= c <= b + 1):
            raise ValueError(f"{MAP_PAGE}: segment {c}–{d} does not follow {a}–{b}")
    return segments


def transcript_line(number, text):
    line = nodes.line(ids=[f"line-{number}"])
    line += nodes.inline(text=str(number), classes=["transcript-number"])
    line += nodes.literal(text=text, classes=["transcript-text"])  # literal: no smart quotes
    return line


class TranscriptDirective(Directive):
    """The whole transcript, one numbered, linkable line at a time, in a section per segment of the interview.

    The segments (chapter 1's map) become headings for the page's contents; where the map is missing or
    malformed, a warning, and the lines in one block. The notes after each quoted range, naming its
    speaker and linking back to the quoting pages, are added once every page has been read
    (resolve_transcript).
    """

    def run(self):
        env = self.state.document.settings.env
        env.note_dependency(str(Path(env.srcdir) / MAP_PAGE))
        lines = interview.transcript_lines()
        try:
            segments = interview_segments(env.srcdir)
        except (OSError, ValueError) as error:
            logger.warning(f"transcript without segment headings: {error}", location=(env.docname, self.lineno))
            block = nodes.line_block(classes=["interview-transcript"])
            for number, text in enumerate(lines, start=1):
                block += transcript_line(number, text)
            return [block]
        out = []
        starts = [first for first, *_ in segments] + [len(lines) + 1]
        for (first, last, about, chapters), end in zip(segments, starts[1:]):
            section = nodes.section(ids=[f"segment-{first}-{last}"],
                                    classes=["transcript-segment"])
            section += nodes.title(text=about[:1].upper() + about[1:])
            meta = nodes.paragraph(classes=["segment-meta"])
            meta += nodes.Text(f"Lines {first}–{last}, taken up in ")
            meta["segment_chapters"] = chapters  # linked with their numbered titles by resolve_transcript
            section += meta
            block = nodes.line_block(classes=["interview-transcript"])
            for number in range(first, end):  # a line two segments share opens the later one
                block += transcript_line(number, lines[number - 1])
            section += block
            out.append(section)
        return out


def quoted_ranges(env):
    """{(first, last): {"speakers": [...], "pages": [(docname, anchor), ...]}} over every quote in the book."""
    ranges = {}
    for q in sorted(quotes_of(env), key=lambda q: (q["first"], q["last"], q["docname"], q["anchor"])):
        entry = ranges.setdefault((q["first"], q["last"]), {"speakers": [], "pages": []})
        if q["speaker"] not in entry["speakers"]:
            entry["speakers"].append(q["speaker"])
        entry["pages"].append((q["docname"], q["anchor"]))
    return ranges


def page_label(env, docname):
    """A page as the table of contents names it: '2.1. Shannon's n-grams, measured'."""
    title = env.titles[docname].astext() if docname in env.titles else docname
    if docname == env.config.root_doc:
        return f"{title} (introduction)"
    number = env.toc_secnumbers.get(docname, {}).get("")
    return f"{'.'.join(map(str, number))}. {title}" if number else title


def resolve_transcript(app, doctree, docname):
    """On the transcript page: each segment's chapters linked; an anchor #lines-N-M for each quoted range,
    and after its last line a note naming the speaker the quotes attribute it to, with a link back to each."""
    if docname != TRANSCRIPT_DOC:
        return
    env = app.env
    for meta in doctree.findall(nodes.paragraph):
        if "segment_chapters" not in meta.attributes:
            continue
        for i, chapter in enumerate(meta["segment_chapters"]):
            meta += nodes.Text(", " if i else "")
            if chapter not in env.all_docs:
                logger.warning(f"{MAP_PAGE}: the map of the interview links to {chapter}, which is not in the book",
                               location=meta, type="dltoolbox", subtype="transcript")
                meta += nodes.Text(chapter)
                continue
            meta += nodes.reference("", page_label(env, chapter), internal=True,
                                    refuri=app.builder.get_relative_uri(TRANSCRIPT_DOC, chapter))
        meta += nodes.Text(".")
        del meta["segment_chapters"]
    lines = {node["ids"][0]: node for node in doctree.findall(nodes.line) if node["ids"]}
    ranges = quoted_ranges(env)
    for (first, last), entry in sorted(ranges.items(), key=lambda item: (item[0][1], item[0][0])):
        if f"line-{first}" not in lines or f"line-{last}" not in lines:
            continue
        target = f"line-{first}" if first == last else f"lines-{first}-{last}"
        if first != last:
            lines[f"line-{first}"].insert(0, nodes.inline(ids=[target], classes=["range-anchor"]))
        span = f"line {first}" if first == last else f"lines {first}–{last}"
        note = nodes.line(classes=["quoted-in"])
        note += nodes.Text(f"{' and '.join(entry['speakers'])}, ")
        note += nodes.reference("", span, refuri="#" + target, internal=True)
        note += nodes.Text(" — quoted in ")
        seen = []
        for page, anchor in entry["pages"]:
            if (page, anchor) in seen:
                continue
            if seen:
                note += nodes.Text(", ")
            seen.append((page, anchor))
            uri = app.builder.get_relative_uri(TRANSCRIPT_DOC, page) + "#" + anchor
            note += nodes.reference("", page_label(env, page), refuri=uri, internal=True, classes=["quoted-in-page"])
        last_line = lines[f"line-{last}"]
        parent = last_line.parent
        position = parent.index(last_line) + 1
        while position < len(parent) and "quoted-in" in parent[position].get("classes", []):
            position += 1  # several ranges ending on this line: in order of their first line
        parent.insert(position, note)


def table(header, widths, rows, css_class):
    """A docutils table: a header row of strings, then rows of inline nodes, with relative column widths."""
    def row(cells):
        line = nodes.row()
        for content in cells:
            entry, para = nodes.entry(), nodes.paragraph()
            para += content
            entry += para
            line += entry
        return line

    out = nodes.table(classes=[css_class])
    group = nodes.tgroup(cols=len(header))
    out += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    head += row([nodes.Text(h) for h in header])
    group += body
    for cells in rows:
        body += row(cells)
    return out


class GlossaryDirective(Directive):
    """A table of the transcript's speech-recognition errors and what was said."""

    def run(self):
        rows = []
        for heard, said in interview.GLOSSARY.items():
            first = interview.locate(heard)[0]
            rows.append([nodes.literal(text=heard), nodes.Text(said), interview_link(f"line {first}", first)])
        return [table(["the transcript has", "what was said", "first heard"], (3, 3, 2), rows,
                      "transcription-glossary")]


def executed_on(path):
    """The machine a notebook's stored outputs were computed on (its metadata), or None."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    return notebook.get("metadata", {}).get("dltoolbox", {}).get("executed_on")


def stored_run_sentence(machine):
    """What a reader needs to know about stored numbers: one run, on which CPU, and what varies."""
    threads = machine.get("threads", 1)
    return (f"The outputs shown are one stored run on an {machine['arch']} CPU ({machine['cpu']}, "
            f"PyTorch {machine['torch']} with its {machine['kernels']} kernels, {threads} "
            f"thread{'s' if threads != 1 else ''}). Numbers that come from training differ in their last "
            "digits on other processors; data, counts and hand-computed examples do not. Each notebook "
            "asserts its claims with margins that hold on every CPU kernel tested, and the results page "
            "gives each headline number's range across them.")


def note_stored_run(app, doctree):
    """Put a note under the title of each notebook page naming the machine its outputs come from."""
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb":
        return
    machine = executed_on(path)
    sections = list(doctree.findall(nodes.section))
    if machine is None or not sections:
        return
    note = nodes.note(classes=["stored-run"])
    note += nodes.paragraph(text=stored_run_sentence(machine))
    title = sections[0].next_node(nodes.title)
    sections[0].insert(sections[0].index(title) + 1, note)


class StoredRunDirective(Directive):
    """On a chapter page: the note on where its notebooks' numbers come from (the notebooks as arguments)."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self):
        env = self.state.document.settings.env
        here = Path(env.doc2path(env.docname)).parent
        machines = []
        for name in self.arguments[0].split():
            env.note_dependency(str(here / name))
            machine = executed_on(here / name)
            if machine is None:
                raise self.error(f"{name} has no record of the machine it ran on; re-run it with "
                                 "python -m dltoolbox.course.notebooks run")
            machines.append(machine)
        note = nodes.note(classes=["stored-run"])
        for machine in {json.dumps(m, sort_keys=True): m for m in machines}.values():  # one per machine
            note += nodes.paragraph(text=stored_run_sentence(machine))
        return [note]


def kernel_spread(root):
    """The committed ranges of every results metric across CPU kernel settings, or None."""
    path = Path(root) / "chapters" / "kernel_spread.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def metric_names(root):
    """chapters/metrics.yml: {notebook: {metric key: (readable name, unit)}}; ValueError on a malformed entry."""
    import yaml

    path = Path(root) / "chapters" / "metrics.yml"
    names = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = {}
    for notebook, metrics in names.items():
        out[notebook] = {}
        for key, entry in (metrics or {}).items():
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
                raise ValueError(f"{path}: {notebook}: {key!r} needs [name, unit], got {entry!r}")
            out[notebook][str(key)] = tuple(entry)
    return out


def spread_text(entry, stored):
    """A stored metric with its range across kernels: '0.95 (0.93–0.95)', or the value alone when all agree."""
    if entry is None:
        return f"{stored:g} (range not measured)"
    low, high = entry["min"], entry["max"]
    if low == high == stored:
        return f"{stored:g}"
    return f"{stored:g} ({low:g}–{high:g})"


class ResultsDirective(Directive):
    """A table of every chapter notebook's `results` cell, with each metric's range across CPU kernels."""

    def run(self):
        env = self.state.document.settings.env
        root = Path(env.srcdir)
        spread = kernel_spread(root)
        env.note_dependency(str(root / "chapters" / "kernel_spread.json"))
        names = metric_names(root)
        env.note_dependency(str(root / "chapters" / "metrics.yml"))
        rows = []
        for path in sorted((root / "chapters").rglob("*.ipynb")):
            if path.relative_to(root).with_suffix("").as_posix() not in env.found_docs:
                continue  # not in the table of contents (a checkpoint, a scratch copy)
            env.note_dependency(str(path))
            try:
                metrics = results.read_results(path)
            except ValueError as error:
                logger.warning(str(error), location=(env.docname, self.lineno))
                continue
            docname = path.relative_to(root).with_suffix("").as_posix()
            ranges = (spread or {}).get("notebooks", {}).get(path.relative_to(root).as_posix(), {})
            named = names.get(path.relative_to(root).as_posix(), {})
            for i, (key, value) in enumerate(metrics.items()):
                if key not in named:
                    logger.warning(f"{path.name}: metric {key!r} has no readable name in chapters/metrics.yml",
                                   location=(env.docname, self.lineno))
                rows.append((docname if i == 0 else None, key, named.get(key, (key, "")),
                             spread_text(ranges.get(key), value)))
        body = []
        for docname, key, (name, unit), shown in rows:
            ref = nodes.inline() if docname else nodes.Text("")
            if docname:
                ref += self._doc_ref(docname)
            metric = nodes.inline()
            metric += nodes.Text(name)
            metric += nodes.inline(text=f" — {key}", classes=["metric-key"])
            body.append([ref, metric, nodes.Text(unit), nodes.Text(shown)])
        results_table = table(["notebook", "metric (key)", "unit", "stored value (range across CPU kernels)"],
                              (2, 4, 2, 2), body, "course-results")
        out = []
        if spread:
            m = spread["machine"]
            settings = "; ".join(f"{name}: " + (" ".join(f"{k}={v}" for k, v in env_.items()) or "as PyTorch chooses")
                                 for name, env_ in spread["settings"].items())
            out.append(nodes.paragraph(text=f"A range in brackets is over one run of each notebook per CPU kernel setting "
                                            f"({settings}) on an {m['arch']} {m['cpu']} with PyTorch {m['torch']}, "
                                            "written by python -m dltoolbox.course.notebooks spread."))
        return out + [results_table]

    @staticmethod
    def _doc_ref(docname):
        from sphinx.addnodes import pending_xref
        ref = pending_xref("", refdomain="std", reftype="doc", reftarget="/" + docname, refexplicit=False)
        ref += nodes.inline(text=docname)
        return ref


def list_items_for_citations(app, pagename, templatename, context, doctree):
    """docutils gives each bibliography entry the deprecated role doc-biblioentry inside a role="list"
    container, which assistive technology then reads as a list with no items: make them list items."""
    if "body" in context and 'role="doc-biblioentry"' in context["body"]:
        context["body"] = context["body"].replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app):
    app.add_transform(InterviewQuotes)
    app.connect("doctree-resolved", resolve_interview_links)
    app.connect("doctree-resolved", resolve_transcript)
    app.connect("env-purge-doc", purge_quotes)
    app.connect("env-merge-info", merge_quotes)
    app.connect("env-get-outdated", transcript_outdated)
    app.add_directive("interview-transcript", TranscriptDirective)
    app.add_directive("course-results", ResultsDirective)
    app.add_directive("stored-run", StoredRunDirective)
    app.connect("doctree-read", note_stored_run)
    app.connect("html-page-context", list_items_for_citations)
    app.add_directive("transcription-glossary", GlossaryDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2", "env_version": 1}
