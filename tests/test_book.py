"""The book builds from the stored outputs with warnings as errors, and its internal links resolve."""
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import ROOT


def test_landing_page_and_chapters_exist(html):
    assert (html / "index.html").exists()
    for page in ["intro", "chapters/01_toolbox/index", "chapters/results", "chapters/transcript"]:
        assert (html / f"{page}.html").exists(), page


def test_quotes_render_styled_with_a_link_to_the_transcript(html):
    page = (html / "chapters/01_toolbox/index.html").read_text()
    assert page.count('class="interview-quote"') >= 3
    assert 'href="../transcript.html#line-95"' in page
    assert 'class="editorial-note"' in page
    transcript = (html / "chapters/transcript.html").read_text()
    assert transcript.count('id="line-') == 579


def test_internal_links_resolve(html):
    broken = []
    for page in html.rglob("*.html"):
        if "_static" in page.parts:
            continue
        text = page.read_text(errors="replace")
        for href in re.findall(r'href="([^"]+)"', text):
            url = urlparse(href)
            if url.scheme or href.startswith(("#", "mailto:", "//")):
                continue
            target = (page.parent / unquote(url.path)).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(html)} -> {href}")
            elif url.fragment and target.suffix == ".html":
                ids = set(re.findall(r'id="([^"]+)"', target.read_text(errors="replace")))
                if url.fragment not in ids:
                    broken.append(f"{page.relative_to(html)} -> {href} (no such anchor)")
    assert broken == []


def test_results_page_lists_every_notebook(html):
    page = (html / "chapters/results.html").read_text()
    for nb in sorted((ROOT / "chapters").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in nb.parts:
            assert nb.stem in page


def test_no_hidden_test_reaches_the_built_book_or_its_downloads(html):
    leaks = [str(p.relative_to(html)) for p in html.rglob("*") if p.is_file()
             and p.suffix not in (".png", ".jpg", ".woff", ".woff2", ".ttf", ".eot")
             and b"BEGIN HIDDEN TESTS" in p.read_bytes()]
    assert leaks == []
    downloads = list(html.rglob("_sources/**/*.ipynb"))
    assert downloads, "the notebooks are offered for download"
    for path in downloads:
        text = path.read_text()
        assert "hidden=True" not in text, path
        if "### BEGIN SOLUTION" in text:
            assert "check.exercise_" in text, f"{path}: the visible check call stays"


def test_glued_tables_and_numbers_and_the_stored_run_notes_render(html):
    page = (html / "chapters/04_attention/index.html").read_text()
    assert page.count("<table") >= 2 and "exact match, attention" in page
    assert 'class="admonition note stored-run"' in page or "stored-run" in page
    replays = (html / "chapters/05_replays/index.html").read_text()
    assert "pasted-text" in replays and "{glue" not in replays
    notebook = (html / "chapters/04_attention/attention.html").read_text()
    assert "one stored run on an" in notebook
    results = (html / "chapters/results.html").read_text()
    assert "range across CPU kernels" in results


def test_the_book_loads_no_script_or_style_from_the_network(html):
    remote = re.compile(r"""<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)
    offenders = {}
    for page in html.rglob("*.html"):
        tags = [t for t in remote.findall(page.read_text(encoding="utf-8"))
                if not t.lower().startswith("<link") or 'rel="stylesheet"' in t or "rel=stylesheet" in t]
        if tags:
            offenders[str(page.relative_to(html))] = tags[:3]
    assert not offenders, offenders
    assert (html / "_static/mathjax/es5/tex-mml-chtml.js").is_file()
    assert (html / "_static/requirejs/require.js").is_file()
    assert (html / "_static/html-manager/dist/embed-amd.js").is_file()
    page = (html / "chapters/02_ngrams/ngrams.html").read_text()
    assert 'src="../../_static/mathjax/es5/tex-mml-chtml.js' in page
    assert 'src="../../_static/html-manager/dist/embed-amd.js' in page
    for name in ("mathjax", "requirejs", "html-manager"):                   # vendored with their licences
        folder = html / "_static" / name
        assert (folder / "LICENSE").is_file() or '"license"' in (folder / "package.json").read_text()
