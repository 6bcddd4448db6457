"""The book builds from the stored outputs with warnings as errors, and its internal links resolve."""
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out / "_build" / "html"


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
