"""Sphinx extension: styled, verified interview quotes; the transcript page; the course results table."""
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

from . import interview, results

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
            attribution += interview_link(span, first)
            quote.remove(paragraphs[-1])
            quote += attribution
            quote["classes"].append("interview-quote")
            for paragraph in paragraphs[:-1]:
                mark_editorial_notes(paragraph)


def interview_link(text, line):
    """An inline node that becomes a link to the transcript page at `line`."""
    node = nodes.inline(text=f"interview {text}", classes=["interview-location"])
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


class TranscriptDirective(Directive):
    """The whole transcript, one numbered, linkable line at a time."""

    def run(self):
        block = nodes.line_block(classes=["interview-transcript"])
        for number, text in enumerate(interview.transcript_lines(), start=1):
            line = nodes.line(ids=[f"line-{number}"])
            line += nodes.inline(text=str(number), classes=["transcript-number"])
            line += nodes.literal(text=text, classes=["transcript-text"])  # literal: no smart quotes
            block += line
        return [block]


class GlossaryDirective(Directive):
    """A table of the transcript's speech-recognition errors and what was said."""

    def run(self):
        table = nodes.table(classes=["transcription-glossary"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (3, 3, 2):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += ResultsDirective._row([nodes.Text("the transcript has"), nodes.Text("what was said"),
                                       nodes.Text("first heard")])
        body = nodes.tbody()
        group += body
        for heard, said in interview.GLOSSARY.items():
            first = interview.locate(heard)[0]
            body += ResultsDirective._row([nodes.literal(text=heard), nodes.Text(said),
                                           interview_link(f"line {first}", first)])
        return [table]


class ResultsDirective(Directive):
    """A table of every chapter notebook's `results` cell."""

    def run(self):
        env = self.state.document.settings.env
        root = Path(env.srcdir)
        rows = []
        for path in sorted((root / "chapters").rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            env.note_dependency(str(path))
            try:
                metrics = results.read_results(path)
            except ValueError as error:
                logger.warning(str(error), location=(env.docname, self.lineno))
                continue
            docname = path.relative_to(root).with_suffix("").as_posix()
            for i, (name, value) in enumerate(metrics.items()):
                rows.append((docname if i == 0 else None, name, value))
        table = nodes.table(classes=["course-results"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (3, 4, 2):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += self._row([nodes.Text("notebook"), nodes.Text("metric"), nodes.Text("value")])
        body = nodes.tbody()
        group += body
        for docname, name, value in rows:
            if docname:
                ref = nodes.inline()
                xref = self._doc_ref(docname)
                ref += xref
            else:
                ref = nodes.Text("")
            body += self._row([ref, nodes.literal(text=name), nodes.Text(f"{value:g}")])
        return [table]

    @staticmethod
    def _doc_ref(docname):
        from sphinx.addnodes import pending_xref
        ref = pending_xref("", refdomain="std", reftype="doc", reftarget="/" + docname, refexplicit=False)
        ref += nodes.inline(text=docname)
        return ref

    @staticmethod
    def _row(cells):
        row = nodes.row()
        for content in cells:
            entry = nodes.entry()
            para = nodes.paragraph()
            para += content
            entry += para
            row += entry
        return row


def setup(app):
    app.add_transform(InterviewQuotes)
    app.connect("doctree-resolved", resolve_interview_links)
    app.add_directive("interview-transcript", TranscriptDirective)
    app.add_directive("course-results", ResultsDirective)
    app.add_directive("transcription-glossary", GlossaryDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
