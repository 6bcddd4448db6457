"""The book as a PDF (dltoolbox.course.book.pdf): printed from the single-page build, every chapter in it, every
equation typeset, no TeX left raw; and the landing page links it only when it exists."""
import pytest

from conftest import ROOT
from dltoolbox.course.book import pdf


def test_the_book_prints_to_a_pdf_with_every_chapter_and_its_equations(tmp_path):
    from test_book import chromium

    report = pdf.build(tmp_path, executable=chromium())
    assert (tmp_path / pdf.PDF_NAME).read_bytes()[:5] == b"%PDF-"
    assert report["missing_chapters"] == [] and len(report["chapters"]) >= 11
    assert report["math_errors"] == 0 and report["raw_tex"] == []
    assert report["equations"] > 20, "the chapters' equations are typeset by the book's MathJax"
    assert report["pages"] > 100, report["pages"]
    print(f"{report['pages']} pages, {report['equations']} equations")


def test_page_count_counts_pages_not_the_page_tree(tmp_path):
    made = tmp_path / "x.pdf"
    made.write_bytes(b"%PDF-1.4\n1 0 obj <</Type /Pages /Kids [2 0 R 3 0 R]>>\n2 0 obj <</Type /Page>>\n"
                     b"3 0 obj <</Type/Page /Parent 1 0 R>>\n")
    assert pdf.page_count(made) == 2


def test_every_chapter_of_the_table_of_contents_is_looked_for():
    titles = pdf.chapter_titles(ROOT)
    assert titles[0] == "One conversation, one toolbox" and "Attention" in titles
    assert len(titles) == sum(1 for _ in (ROOT / "chapters").glob("[0-9][0-9]_*/index.md")) + 4


def test_the_landing_page_links_the_pdf_only_when_it_was_built(html):
    import re

    page = re.sub(r"<[^>]+>", "", (html / "intro.html").read_text())  # the text (index.html only redirects)
    if (ROOT / "_build" / "pdf" / pdf.PDF_NAME).exists():
        assert pdf.PDF_NAME in page and (html / pdf.PDF_NAME).exists()
    else:
        assert "python -m dltoolbox.course.book.pdf" in page and pdf.PDF_NAME not in page
