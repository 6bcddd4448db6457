"""Every page of the built book in a real browser (Debian's chromium, driven by Playwright), offline.

Per page: the article is there, nothing was requested from the network, no script raised, every image
loaded and has alt text, every equation was typeset by MathJax, every stored widget was drawn, and at a phone's width
(390 px) nothing overflows sideways. Screenshots go to _build/screenshots/ (not committed).
"""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SHOTS = ROOT / "_build" / "screenshots"

STATE = """() => ({
  article: (document.querySelector('article.bd-article') || {innerText: ''}).innerText.length,
  images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  unlabelled: Array.from(document.querySelectorAll('article.bd-article img')).filter(i => !(i.alt || '').trim()).map(i => i.src),
  math: document.querySelectorAll('.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
  widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
  drawn: document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, '
                                   + '.jupyter-widgets.widget-hbox, .jupyter-widgets.widget-vbox').length,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
})"""
SETTLED = """() => (!window.MathJax || (MathJax.startup && MathJax.startup.document
                     && document.querySelectorAll('.math').length <= document.querySelectorAll('mjx-container').length))
             && document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length
                <= document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, '
                                             + '.jupyter-widgets.widget-hbox, .jupyter-widgets.widget-vbox').length"""


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


def visit(browser, url, width, shot, settle=True):
    """Open `url` at `width` with every non-file request blocked; what the page shows and what went wrong."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    problems = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            problems.append(f"network request: {r.request.url}")
            r.abort()

    context.route("**/*", route)
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
    failures = {}
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
        if problems:
            failures[name] = problems
    assert not failures, failures


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
