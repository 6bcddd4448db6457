"""Every page of the built book passes an automated accessibility audit and loads only the scripts it uses.

* axe-core (pinned in ``dltoolbox.course.book.offline.AUDIT``, fetched from the npm registry like the book's other
  vendored scripts, with its licence, into ``_vendor/axe-core/``, which is kept out of the built book) is
  injected by Playwright into every page, offline (every non-file request blocked, as in test_book.py), at
  1280 px, in the light and the dark colour scheme. No page has a serious or critical violation, except
  the (page, rule) pairs in PENDING, whose cause lies outside the book's build; that set may only shrink.
  A table of every violation (page, scheme, rule, impact, elements) is printed, and the details (the
  elements' selectors and HTML) go to _build/audit/axe.json.
* MathJax loads only on pages that show an equation, RequireJS and the widget manager only on pages that
  still show a stored widget; each page's weight (the size of every file Chromium loaded for it, fonts and
  images included) is printed and goes to _build/audit/weights.json.

Set DLTOOLBOX_BOOK_HTML to the html folder of an existing build (``<out>/_build/html``) to audit that build
instead of building the book with warnings as errors (conftest's ``html``).
"""
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import ROOT
from dltoolbox.course.book import offline
from test_book import browser, offline_context  # noqa: F401 - browser: the fixture, used here

REPORT = ROOT / "_build" / "audit"
WIDTH = 1280
SCHEMES = ("light", "dark")
BLOCKING = ("critical", "serious")
IMPACTS = ("critical", "serious", "moderate", "minor")

# (page, rule id) pairs with a serious or critical violation whose cause lies outside the files that build
# the pages' scripts; this set may only shrink: when a pair no longer occurs, the test says so and it must
# be removed from here. The causes, by rule:
CAUSES = {
    # pydata-sphinx-theme 0.17.1's sidebar: each chapter's expand toggle, `.bd-sidenav details > summary`,
    # holds only a chevron icon (span.toctree-toggle[role=presentation]), so it has no name
    "summary-name": "sidebar `.bd-sidenav details > summary` (pydata toctree toggle) has no name",
    # pydata's `.theme-switch-button` (aria-label "Color mode"; Font Awesome's script turns its icons'
    # title="Light/Dark/System Settings" into <svg><title> text) and `.search-button-field` (aria-label
    # "Search", visible text "Search Ctrl+K"); on notebook pages also myst-nb's hide-input toggles,
    # `details.hide.above-input > summary[aria-label="Toggle hidden content"]` (text "Show code cell source")
    "label-content-name-mismatch": "`.theme-switch-button`, `.search-button-field`, and myst-nb's "
                                   "`summary[aria-label=\"Toggle hidden content\"]`: a name that leaves out their text",
    # docutils' HTML writer: `div.citation-list[role=list]` whose children carry role doc-biblioentry, which
    # ARIA 1.3 deprecates, so the list has no listitem
    "aria-required-children": "References: `div.citation-list[role=list]` with `div.citation[role=doc-biblioentry]` items",
}
BOOK_PAGES = (
    "chapters/01_toolbox/index.html", "chapters/02_ngrams/index.html", "chapters/02_ngrams/ngrams.html",
    "chapters/03_seq2seq/index.html", "chapters/03_seq2seq/seq2seq.html", "chapters/04_attention/attention.html",
    "chapters/04_attention/index.html", "chapters/04_attention/self_attention.html",
    "chapters/05_replays/imitation.html", "chapters/05_replays/index.html", "chapters/05_replays/kl_leash.html",
    "chapters/06_reuse/fewshot.html", "chapters/06_reuse/frozen.html", "chapters/06_reuse/index.html",
    "chapters/06_reuse/lm_init.html", "chapters/07_scale/index.html", "chapters/07_scale/scale.html",
    "chapters/benchmark.html", "chapters/references.html", "chapters/results.html", "chapters/transcript.html",
    "genindex.html", "intro.html", "search.html",
)
PENDING = set()


@pytest.fixture(scope="session")
def html(request):
    """An existing build when DLTOOLBOX_BOOK_HTML names one, else conftest's build (with -W)."""
    given = os.environ.get("DLTOOLBOX_BOOK_HTML")
    if given:
        path = Path(given)
        if not (path / "intro.html").is_file():
            pytest.fail(f"DLTOOLBOX_BOOK_HTML={given} is not a built book's html folder")
        return path
    return request.getfixturevalue("html")


@pytest.fixture(scope="session")
def axe():
    return offline.audit_engine(ROOT / "_vendor")


# The axe-core run: the default rule set (WCAG 2.0-2.2 A and AA, and best practices), violations only.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 300),
                              summary: (n.failureSummary || '').slice(0, 300)}))}));
}"""
DARK = """() => { document.documentElement.dataset.theme = 'dark'; document.documentElement.dataset.mode = 'dark'; }"""
BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"
# MathJax has typeset every equation and every stored widget view is drawn (test_book.py's SETTLED, with the
# Output widget counted too)
SETTLED = """() => (!window.MathJax || (MathJax.startup && MathJax.startup.document
                     && document.querySelectorAll('.math').length <= document.querySelectorAll('mjx-container').length))
             && document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length
                <= document.querySelectorAll(['container', 'inline-hbox', 'hbox', 'vbox', 'output']
                                             .map(kind => '.jupyter-widgets.widget-' + kind).join(', ')).length"""


def book_pages(html):
    """Every page of the build: its .html files outside _static/, less the redirect (index.html) to the landing page."""
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.parts
                  and 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8")[:2000])


def file_size(url):
    """The size on disk of a file:// address (query and fragment dropped); 0 for anything else."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return 0
    path = Path(unquote(parsed.path))
    return path.stat().st_size if path.is_file() else 0


def audit_page(browser, path, axe):  # noqa: F811 - the fixture's value
    """Open `path` offline at 1280 px in the light scheme, audit it, switch it to the dark scheme (pydata's
    theme switch and the media query) and audit it again: {scheme: violations}, the files it loaded, and
    any problem."""
    context, problems = offline_context(browser, WIDTH)
    loaded, found = [], {}
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.on("requestfinished", lambda request: loaded.append(request.url))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.emulate_media(color_scheme="light")
    page.goto(path.as_uri(), wait_until="load")
    try:  # MathJax and the widgets drawn (test_book.py fails a page where they are not)
        page.wait_for_function(SETTLED, timeout=60_000)
    except Exception:  # noqa: BLE001
        problems.append("not settled: MathJax or the widgets still drawing after 60 s (audited as it was)")
    page.wait_for_timeout(300)   # late fonts
    page.add_script_tag(path=str(axe))   # inlined: no request
    light = page.evaluate(BACKGROUND)
    for scheme in SCHEMES:
        if scheme == "dark":
            page.emulate_media(color_scheme="dark")
            page.evaluate(DARK)
            page.wait_for_timeout(300)   # the theme's colour transitions
            if page.evaluate(BACKGROUND) == light:
                problems.append(f"the dark scheme did not change the page's background ({light})")
        found[scheme] = page.evaluate(RUN_AXE)
    context.close()
    return found, loaded, problems


@pytest.fixture(scope="module")
def audit(html, browser, axe):  # noqa: F811
    """Every page in both schemes: {page: {scheme: violations}}, {page: [files loaded]}, {page: problems}."""
    found, loaded, problems = {}, {}, {}
    for path in book_pages(html):
        name = str(path.relative_to(html))
        started = time.monotonic()
        found[name], files, trouble = audit_page(browser, path, axe)
        print(f"audited {name} in {time.monotonic() - started:.0f} s", flush=True)
        loaded[name] = sorted(set(files))
        if trouble:
            problems[name] = sorted(set(trouble))
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / "axe.json").write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    return found, loaded, problems


def violation_table(found):
    rows = [f"{'page':<42} {'scheme':<6} {'rule':<32} {'impact':<9} elements"]
    for name, schemes in found.items():
        for scheme, violations in schemes.items():
            for v in sorted(violations, key=lambda v: (IMPACTS.index(v["impact"] or "minor"), v["id"])):
                rows.append(f"{name:<42} {scheme:<6} {v['id']:<32} {v['impact'] or '?':<9} {len(v['nodes'])}")
    summary = [f"{'page':<42} {'serious+critical light':>22} {'dark':>5}  rules"]
    for name, schemes in found.items():
        counts = {s: sum(1 for v in vs if v["impact"] in BLOCKING) for s, vs in schemes.items()}
        rules = sorted({v["id"] for vs in schemes.values() for v in vs if v["impact"] in BLOCKING})
        summary.append(f"{name:<42} {counts['light']:>22} {counts['dark']:>5}  {', '.join(rules) or '-'}")
    return "\n".join(rows) + "\n\n" + "\n".join(summary)


def test_every_page_passes_the_accessibility_audit_in_both_colour_schemes(audit):
    found, _loaded, problems = audit
    print("\naxe-core " + offline.AUDIT["axe-core"][1] + f" at {WIDTH} px, every violation:\n" + violation_table(found))
    for name, notes in problems.items():
        print(f"note: {name}: {'; '.join(notes)}")
    blocking = {(name, v["id"]) for name, schemes in found.items() for vs in schemes.values()
                for v in vs if v["impact"] in BLOCKING}
    print(f"\nallowed, pending a fix elsewhere ({len(PENDING)} (page, rule) pairs, may only shrink):")
    for rule, cause in CAUSES.items():
        pages_ = sorted(page for page, r in PENDING if r == rule)
        print(f"  {rule} on {len(pages_)} page(s): {cause}\n    " + ", ".join(pages_))
    assert not [n for notes in problems.values() for n in notes if not n.startswith("not settled")], problems
    new = {pair: [f"{s}: {len(v['nodes'])} × {v['nodes'][0]['target']}" for s, vs in found[pair[0]].items()
                  for v in vs if v["id"] == pair[1]] for pair in sorted(blocking - PENDING)}
    assert not new, f"serious or critical accessibility violations: {new}"
    fixed = PENDING - blocking
    assert not fixed, f"these pending pairs no longer occur; remove them from PENDING: {sorted(fixed)}"


# --- the pages' weight: only the scripts a page uses ------------------------------------------------

MATH = re.compile(r'class="[^"]*\bmath\b')     # Sphinx's inline and display math (not "mathjax_ignore")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PARTS = {"mathjax": "/_static/mathjax/", "widget manager": "/_static/html-manager/",
         "requirejs": "/_static/requirejs/", "font awesome": "/_static/scripts/fontawesome.js"}


def weights(loaded):
    """{page: {"total": bytes, part: bytes, ...}} from the files each page loaded."""
    table = {}
    for name, files in loaded.items():
        row = {"total": sum(file_size(url) for url in files)}
        for part, marker in PARTS.items():
            row[part] = sum(file_size(url) for url in files if marker in urlparse(url).path)
        table[name] = row
    return table


def test_pages_load_mathjax_and_the_widget_manager_only_where_they_are_used(html, audit):
    _found, loaded, _problems = audit
    table = weights(loaded)
    mb = lambda n: f"{n / 1e6:6.2f}"   # noqa: E731
    print(f"\n{'page':<42} {'total MB':>8} " + " ".join(f"{p:>14}" for p in PARTS))
    for name, row in table.items():
        print(f"{name:<42} {mb(row['total']):>8} " + " ".join(f"{mb(row[p]):>14}" for p in PARTS))
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / "weights.json").write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    unused = {}
    for name, files in loaded.items():
        text = (html / name).read_text(encoding="utf-8")
        paths = [urlparse(url).path for url in files]
        if not MATH.search(text) and any(PARTS["mathjax"] in p for p in paths):
            unused.setdefault(name, []).append("MathJax, with no equation on the page")
        if WIDGET_VIEW not in text:
            for part in ("widget manager", "requirejs"):
                if any(PARTS[part] in p for p in paths):
                    unused.setdefault(name, []).append(f"{part}, with no widget on the page")
        if MATH.search(text) and not any(PARTS["mathjax"] in p for p in paths):
            unused.setdefault(name, []).append("equations, and MathJax not loaded")
        if WIDGET_VIEW in text and not any(PARTS["widget manager"] in p for p in paths):
            unused.setdefault(name, []).append("stored widgets, and the widget manager not loaded")
    assert not unused, unused


def test_a_page_keeps_only_the_scripts_it_uses():
    """offline.fix_page_scripts on a page's script list (no build): MathJax goes where no equation shows, the
    widgets' state, RequireJS and the HTML manager where no widget shows, and both stay where they are used."""
    from types import SimpleNamespace

    from sphinx.builders.html._assets import _JavaScript

    config = SimpleNamespace(mathjax_path="mathjax/es5/tex-mml-chtml.js",
                             nb_ipywidgets_js={"requirejs/require.js": {}, "html-manager/dist/embed-amd.js": {}})
    app = SimpleNamespace(config=config)

    def scripts():
        return [_JavaScript("_static/doctools.js"),
                _JavaScript(None, body='window.MathJax = {"options": {}}'),
                _JavaScript("_static/mathjax/es5/tex-mml-chtml.js", defer="defer"),
                _JavaScript(None, type=WIDGET_STATE, body='{"state": {"a": {"model_name": "IntSliderModel"}}}'),
                _JavaScript("_static/requirejs/require.js"),
                _JavaScript("_static/html-manager/dist/embed-amd.js")]

    def kept(body):
        context = {"script_files": scripts(), "body": body, "pathto": lambda path, _: "../" + path}
        offline.fix_page_scripts(app, "page", "page.html", context, None)
        return [str(s.filename or s.attributes.get("type") or s.attributes["body"][:20]) for s in context["script_files"]]

    view = f'<script type="{WIDGET_VIEW}">{{"model_id": "a"}}</script>'
    assert kept("<p>prose</p>") == ["_static/doctools.js"]
    both = kept(f'<span class="math notranslate nohighlight">\\(x\\)</span>{view}')
    assert both[:6] == ["_static/doctools.js", 'window.MathJax = {"o', "window.MathJax = Obj",
                        "_static/mathjax/es5/tex-mml-chtml.js", WIDGET_STATE, "_static/requirejs/require.js"]
    assert both[6].startswith("require.config") and both[7].startswith("new MutationObserver")   # slider names
    assert both[8:] == ["_static/html-manager/dist/embed-amd.js"]
    assert kept(view)[1:] == both[4:], "no equation"
    assert kept('<div class="math notranslate nohighlight">\\[x\\]</div>') == both[:4], "no widget"
    assert kept('<section class="tex2jax_ignore mathjax_ignore"><p>no math</p></section>') == ["_static/doctools.js"]
