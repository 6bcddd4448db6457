"""The book as one PDF: Jupyter Book's single-page HTML build of the same sources, printed by Chromium.

    python -m dltoolbox.course.book.pdf                 # writes _build/pdf/the-deep-learning-toolbox.pdf

Nothing is re-run: the pages show the notebooks' stored outputs, as the website does. Chromium (Debian's
`chromium`, driven by Playwright, every request outside the build refused) opens the single page, lets the
book's own MathJax typeset every equation, checks that none failed and that no TeX was left raw in the
prose, and prints it. An interactive figure prints its default frame (a figure browser its first figure,
a control that needs a kernel its note). The website links the PDF from its landing page when one has been
built before the website (:class:`PdfLinkDirective`); the workflow builds it first.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ...locations import ROOT  # the repository, when the package is used from a checkout

PDF_NAME = "the-deep-learning-toolbox.pdf"
OUT = ROOT / "_build" / "pdf"

# Text nodes outside code, scripts and typeset equations that still hold TeX: an equation MathJax missed.
_RAW_TEX = r"""() => {
  const skip = "PRE, CODE, SCRIPT, STYLE, MJX-CONTAINER, TEXTAREA, .highlight, .cell_input";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const text = node.textContent;
    if (/\$\$|\\(begin|frac|sum|mathrm|operatorname)\b|\\\(|\\\[/.test(text)) found.push(text.trim().slice(0, 120));
  }
  return found;
}"""


def chapter_titles(root=ROOT):
    """The first heading of each chapter page in the table of contents, in order."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    titles = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            source = Path(root) / f"{chapter['file']}.md"
            if source.exists():
                heading = next((line[2:].strip() for line in source.read_text(encoding="utf-8").splitlines()
                                if line.startswith("# ")), None)
                if heading:
                    titles.append(heading)
    return titles


def build_single_page(out, root=ROOT):
    """Jupyter Book's singlehtml build of the book into `out`; the path of its page."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jupyter_book), "build", str(root), "--builder", "singlehtml", "--path-output",
                           str(out), "-n", "--keep-going"], capture_output=True, text=True, timeout=1800)
    import yaml

    root_doc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))["root"]
    page = Path(out) / "_build" / "singlehtml" / f"{root_doc}.html"  # index.html only redirects to it
    if proc.returncode != 0 or not page.exists():
        raise RuntimeError("the single-page build failed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    return page


def print_page(page, pdf, executable=None):
    """Print the built page to `pdf` in Chromium, offline; what the page held, as a report."""
    from playwright.sync_api import sync_playwright

    executable = executable or shutil.which("chromium")  # else Playwright's own (python -m playwright install)
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as error:  # noqa: BLE001  (Playwright raises its own Error)
            raise RuntimeError("no Chromium to print with: install Debian's chromium (apt-get install chromium) "
                               f"or Playwright's (python -m playwright install chromium): {error}") from None
        try:
            context = browser.new_context()
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                          else route.abort())
            view = context.new_page()
            view.goto(Path(page).resolve().as_uri(), wait_until="load", timeout=300_000)
            view.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || true")
            report = {
                "headings": view.evaluate("() => [...document.querySelectorAll('h1, h2')].map("
                                          "h => h.textContent.replace(/[#¶]/g, '').trim())"),
                "equations": view.evaluate("() => document.querySelectorAll('mjx-container').length"),
                "math_errors": view.evaluate("() => document.querySelectorAll('mjx-merror').length"),
                "raw_tex": view.evaluate(_RAW_TEX),
            }
            view.emulate_media(media="print")
            Path(pdf).parent.mkdir(parents=True, exist_ok=True)
            view.pdf(path=str(pdf), format="A4", print_background=True, outline=True,
                     margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
    report["pages"] = page_count(pdf)
    return report


def page_count(pdf):
    """The pages of a PDF file (its /Type /Page objects)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", Path(pdf).read_bytes()))


def build(out=OUT, root=ROOT, executable=None):
    """The whole PDF: build the single page, print it, check it. Returns the report (and writes it beside
    the PDF as JSON); raises when an equation failed, TeX was left raw or a chapter is missing."""
    out = Path(out)
    pdf = out / PDF_NAME
    report = print_page(build_single_page(out / "singlehtml", root), pdf, executable)
    plain = lambda text: text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    missing = [t for t in chapter_titles(root) if not any(plain(t) in plain(h) for h in report["headings"])]
    report.update(pdf=str(pdf), chapters=chapter_titles(root), missing_chapters=missing)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    problems = ([f"{report['math_errors']} equation(s) MathJax could not typeset"] if report["math_errors"] else []) \
        + ([f"TeX left raw: {report['raw_tex'][:3]}"] if report["raw_tex"] else []) \
        + ([f"chapters missing: {missing}"] if missing else [])
    if problems:
        raise RuntimeError("; ".join(problems))
    return report


def setup(app):
    """Sphinx extension: the {course-pdf} directive (a link to the PDF when one was built)."""
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class PdfLinkDirective(SphinxDirective):
        """A link to the book's PDF when `_build/pdf/` holds one (copied beside the website's pages), else
        the command that makes it: never a dead link."""

        def run(self):
            built = Path(self.env.srcdir) / "_build" / "pdf" / PDF_NAME
            para = nodes.paragraph()
            if built.exists():
                self.env.note_dependency(str(built))
            if built.exists() and self.env.app.builder.format == "html" and self.env.app.builder.name == "html":
                para += nodes.Text("The whole book is also a PDF, to read offline or print: ")
                para += nodes.raw("", f'<a href="{PDF_NAME}" download>{PDF_NAME}</a>', format="html")
                para += nodes.Text(f" ({built.stat().st_size / 2 ** 20:.1f} MB).")
            else:
                para += nodes.Text("The whole book can be printed to one PDF: ")
                para += nodes.literal("", "python -m dltoolbox.course.book.pdf")
                para += nodes.Text(" (the course's workflow links it here).")
            return [para]

    def copy_pdf(app, exception):
        built = Path(app.srcdir) / "_build" / "pdf" / PDF_NAME
        if exception is None and app.builder.name == "html" and built.exists():
            shutil.copy2(built, Path(app.outdir) / PDF_NAME)

    app.add_directive("course-pdf", PdfLinkDirective)
    app.connect("build-finished", copy_pdf)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.course.book.pdf", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help="folder for the PDF, its single-page build and report")
    args = parser.parse_args(argv)
    try:
        report = build(args.out)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {report['pdf']}: {report['pages']} pages, {len(report['chapters'])} chapters, "
          f"{report['equations']} equations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
