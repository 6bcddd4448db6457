"""The book builds from the stored outputs with warnings as errors, its internal links resolve, and every
page works offline in a real browser.

Browser section (Debian's chromium, driven by Playwright, every non-file request blocked), per page: the
article is there, nothing was requested from the network, no script raised, every image loaded and has
alt text, every equation was typeset by MathJax, every stored widget was drawn, and at a phone's width
(390 px) nothing overflows sideways. Screenshots go to _build/screenshots/ (not committed).
"""
import json
import os
import re
import shutil
import subprocess
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


def test_running_times_page_shows_the_latest_benchmark(html):
    page = (html / "chapters/benchmark.html").read_text()
    bench = ROOT / "chapters" / "benchmark.json"
    if bench.exists():
        for name in json.loads(bench.read_text())["notebooks"]:
            assert Path(name).name in page
    else:
        assert "No benchmark has been recorded yet" in page


def test_results_page_puts_each_paper_beside_its_measurement(html):
    from dltoolbox.course.book import glance

    page = (html / "chapters/results.html").read_text()
    glance_part = page.split('class="course-glance', 1)[1].split("</table>", 1)[0]
    rows = glance.rows(ROOT)
    cards = glance_part.split('<tr class="glance-row ')[1:]
    assert len(cards) == len(rows), "one row per claim"
    for card in cards:   # each claim's row has its verdict, what was measured and what the paper found
        assert 'class="glance-badge' in card and 'class="glance-measured"' in card and 'class="glance-paper"' in card
    for verdict, n in glance.counts(rows).items():
        assert glance_part.count(f"</span> {verdict}</strong>") == n
    assert "Sutskever" in glance_part and "Bahdanau" in glance_part, "citations resolved to their authors"


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


# --- the browser section: the same build, in a real browser -----------------------------------------

SHOTS = ROOT / "_build" / "screenshots"

STATE = """() => ({
  article: (document.querySelector('article.bd-article') || {innerText: ''}).innerText.length,
  images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  unlabelled: Array.from(document.querySelectorAll('article.bd-article img')).filter(i => !(i.alt || '').trim()).map(i => i.src),
  math: document.querySelectorAll('.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
  widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
  drawn: document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, '
                                   + '.jupyter-widgets.widget-hbox, .jupyter-widgets.widget-vbox, '
                                   + '.jupyter-widgets.widget-output').length,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
})"""
SETTLED = """() => (!window.MathJax || (MathJax.startup && MathJax.startup.document
                     && document.querySelectorAll('.math').length <= document.querySelectorAll('mjx-container').length))
             && document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length
                <= document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, '
                                             + '.jupyter-widgets.widget-hbox, .jupyter-widgets.widget-vbox, '
                                             + '.jupyter-widgets.widget-output').length"""


def chromium():
    """Debian's chromium, installed with apt when missing and possible; else skip with the reason."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, capture_output=True, timeout=900, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env)
            subprocess.run(install, capture_output=True, timeout=900, env=env)
        found = shutil.which("chromium")
    if not found:
        pytest.skip("Debian's chromium is not installed and could not be (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")
    executable = chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def offline_context(browser, width, **options):
    """A browser context `width` px wide in which every non-file request is blocked and listed in `problems`.

    Returns (context, problems); `options` go to browser.new_context (e.g. color_scheme="dark")."""
    context = browser.new_context(viewport={"width": width, "height": 900}, **options)
    problems = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            problems.append(f"network request: {r.request.url}")
            r.abort()

    context.route("**/*", route)
    return context, problems


def visit(browser, url, width, shot, settle=True):
    """Open `url` at `width` with every non-file request blocked; what the page shows and what went wrong."""
    context, problems = offline_context(browser, width)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}")
            if request.url.startswith("file://") else None)
    page.goto(url, wait_until="load")
    if settle:  # wait for MathJax and the widgets (what is still missing after 15 s is reported)
        try:
            page.wait_for_function(SETTLED, timeout=15_000)
        except Exception:  # noqa: BLE001 - reported through the state below
            pass
    state = page.evaluate(STATE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / shot), full_page=False)
    context.close()
    return state, problems


def pages(html):
    """The book's pages, less the index and search pages and the redirect (index.html) to the landing page."""
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.parts
                  and p.name not in ("genindex.html", "search.html")
                  and 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8")[:2000])


def test_every_page_works_offline_in_a_browser(html, browser):
    """Every page, offline, at 1200 px and 390 px; a per-page report goes to _build/screenshots/pages.json."""
    failures, report = {}, {}
    for path in pages(html):
        name = str(path.relative_to(html))
        state, problems = visit(browser, path.as_uri(), 1200, name.replace("/", "_") + ".png")
        if state["article"] < 100:
            problems.append("no article text")
        if state["images"]:
            problems.append(f"images not loaded: {state['images'][:3]}")
        if state["unlabelled"]:
            problems.append(f"images without alt text: {state['unlabelled'][:3]}")
        if state["typeset"] < state["math"]:
            problems.append(f"{state['math'] - state['typeset']} of {state['math']} equations not typeset")
        if state["drawn"] < state["widgets"]:
            problems.append(f"{state['widgets']} stored widgets, {state['drawn']} drawn")
        phone, phone_problems = visit(browser, path.as_uri(), 390, name.replace("/", "_") + ".phone.png",
                                      settle=False)
        if phone["overflow"] > 1:
            phone_problems.append(f"at 390 px the page is {phone['overflow']} px too wide")
        problems += [p for p in phone_problems if p not in problems]
        report[name] = {"article_chars": state["article"], "images_broken": len(state["images"]),
                        "equations": [state["typeset"], state["math"]], "widgets": [state["drawn"], state["widgets"]],
                        "phone_overflow_px": max(phone["overflow"], 0), "problems": problems}
        if problems:
            failures[name] = problems
    (SHOTS / "pages.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    assert not failures, failures


# What marks a kernel-free interactive figure in a built page: dltoolbox.plots' browsers and chapter 7's explorer.
KERNEL_FREE = ('class="figure-browser"', 'class="text-browser"', 'id="scale-n"')


def test_every_chapter_with_a_notebook_has_a_kernel_free_interactive_figure(html):
    missing = []
    for chapter in sorted(p for p in (ROOT / "chapters").iterdir() if p.is_dir() and list(p.glob("*.ipynb"))):
        built = [html / p.relative_to(ROOT).with_suffix(".html") for p in chapter.iterdir()
                 if p.suffix in (".ipynb", ".md")]
        if not any(marker in page.read_text(errors="replace") for page in built if page.exists()
                   for marker in KERNEL_FREE):
            missing.append(chapter.name)
    assert not missing, f"no kernel-free interactive figure in {missing}"


def test_every_kernel_free_browser_flips_what_it_shows(html, browser):
    """Each figure or text browser (dltoolbox.plots) shows another frame when its slider moves."""
    context = browser.new_context()
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    page, seen = context.new_page(), {"figure-browser": 0, "text-browser": 0}
    for path in sorted(html.rglob("*.html")):
        text = path.read_text(errors="replace")
        if not any(f'class="{kind}"' in text for kind in seen):
            continue
        page.goto(path.as_uri(), wait_until="load")
        for kind in seen:
            shows = "e => e.src" if kind == "figure-browser" else "e => e.textContent"
            for browser_ in page.query_selector_all(f".{kind}"):
                seen[kind] += 1
                shown = lambda: (browser_.eval_on_selector("img" if kind == "figure-browser" else "pre", shows),
                                 browser_.eval_on_selector("output", "e => e.textContent"))
                before = shown()
                browser_.eval_on_selector("input", "e => { e.value = e.max; e.dispatchEvent(new Event('input')); }")
                after = shown()
                assert after[0] != before[0] and after[1] != before[1], f"{path.name}: the {kind} did not change"
                if kind == "figure-browser":
                    assert browser_.eval_on_selector("img", "e => e.complete && e.naturalWidth > 0 && e.alt.length > 0")
    context.close()
    assert seen["figure-browser"] >= 2, "the seq2seq and attention pages each have a figure browser"
    assert seen["text-browser"] >= 1, "the n-gram notebook has a text browser"


def test_the_kernel_free_explorer_answers_a_slider(html, browser):
    """Chapter 7's explorer computes in the page: moving a slider changes the prediction, with no kernel."""
    context = browser.new_context()
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    page = context.new_page()
    page.goto((html / "chapters/07_scale/scale.html").as_uri(), wait_until="load")
    before = page.inner_text("#scale-prediction")
    page.eval_on_selector("#scale-n", "e => { e.value = 8; e.dispatchEvent(new Event('input')); }")
    after = page.inner_text("#scale-prediction")
    context.close()
    assert before.startswith("predicted test loss") and after.startswith("predicted test loss")
    assert after != before
