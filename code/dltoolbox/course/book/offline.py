"""Sphinx extension: serve MathJax, RequireJS and the widgets' HTML manager from the built book.

On `config-inited` it makes sure ``_vendor/`` holds the pinned packages (see :mod:`dltoolbox.course.book.assets`;
fetched from the npm registry only when missing) and adds it to ``html_static_path``; ``_config.yml``'s
``mathjax_path`` and ``nb_ipywidgets_js`` name the files, relative to ``_static/``.

Per page it keeps only the scripts the page uses: MathJax where the page shows an equation, RequireJS
and the widget manager where it still shows a stored widget (see :func:`fix_page_scripts`).

:data:`AUDIT` pins the accessibility engine the book's browser test injects into every page
(``tests/test_book_audit.py``); :func:`audit_engine` fetches it the same way into ``_vendor/axe-core/``,
which is kept out of the built book.
"""
import re
from pathlib import Path

from sphinx.util import logging

from . import assets

logger = logging.getLogger(__name__)


# name -> (npm package, version, SHA-256 of its tarball, files of the package to keep, licence), as in
# assets.PACKAGES. Used by the tests only; its LICENSE and package.json come with it.
AUDIT = {
    "axe-core": ("axe-core", "4.14.1", "e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745",
                 ["axe.min.js", "LICENSE-3RD-PARTY.txt"], "MPL-2.0"),
}


def audit_engine(vendor):
    """The path of axe-core's ``axe.min.js`` under `vendor` (``_vendor/``), fetched from the npm registry
    (pinned, checked) when missing."""
    assets.fetch(Path(vendor), AUDIT)
    return Path(vendor) / "axe-core" / "axe.min.js"


def add_vendored_assets(app, config):
    vendor = Path(app.confdir) / "_vendor"
    fetched = assets.fetch(vendor)
    if fetched:
        logger.info(f"fetched for offline pages: {', '.join(fetched)}")
    config.html_static_path.append(str(vendor))
    # the test-only packages stay out of _static/ (a pattern here also matches a folder at the top of
    # every html_static_path entry; the source folder has no such folder)
    config.exclude_patterns.extend(name for name in AUDIT if name not in config.exclude_patterns)


# The widgets' HTML manager typesets a widget's label with MathJax 2's MathJax.Hub.Queue; the book loads
# MathJax 3, which has no Hub. This stand-in (added to the page's MathJax settings before MathJax loads,
# kept once it is ready) forwards
# such calls to MathJax 3's typesetPromise, holding any made before MathJax is ready.
MATHJAX2_QUEUE = """window.MathJax = Object.assign(window.MathJax || {}, {startup: {ready() {
  MathJax.startup.defaultReady();
  const waiting = (window.dltoolboxMathQueue || []);
  MathJax.Hub = {Queue(job) { const el = job && job[2]; return MathJax.typesetPromise(el ? [el] : undefined); }};
  MathJax.startup.promise.then(() => waiting.forEach(el => MathJax.typesetPromise([el])));
}}, Hub: {Queue(job) { (window.dltoolboxMathQueue = window.dltoolboxMathQueue || []).push(job && job[2]); }}});"""


# The widgets' sliders are drawn by noUiSlider, whose handle (role="slider") has no accessible name: the
# widget's description is a <label> with nothing to point at. This names each handle after the description
# of its own widget (a slider with no description stays unnamed, and the book's audit reports it).
WIDGET_SLIDER_NAMES = """new MutationObserver(() => document.querySelectorAll(
    '.jupyter-widgets [role="slider"]:not([aria-label]):not([aria-labelledby])').forEach(handle => {
  const label = handle.closest('.widget-slider') && handle.closest('.widget-slider').querySelector(':scope > .widget-label');
  if (!label || !label.textContent.trim()) return;
  label.id = label.id || 'widget-label-' + (window.dltoolboxLabels = (window.dltoolboxLabels || 0) + 1);
  handle.setAttribute('aria-labelledby', label.id);
})).observe(document.documentElement, {childList: true, subtree: true});"""


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# What MathJax typesets in a page: MyST marks the page's sections mathjax_ignore and names these classes in
# processHtmlClass, so Sphinx's math (class "math") and any TeX inside an element of class output_area.
EQUATION = re.compile(r'class="[^"]*\b(?:math|tex2jax_process|mathjax_process)\b')
OUTPUT_AREA = re.compile(r'class="[^"]*\boutput_area\b')
TEX = re.compile(r'\\\(|\\\[|\$\$|\\begin\{')
# TeX in a widget's label (the HTML manager typesets descriptions and HTMLMath widgets with MathJax)
WIDGET_TEX = re.compile(r'HTMLMathModel|\$[^$"\n]+\$|\\\\\(')


def _filename(script):
    return str(getattr(script, "filename", script) or "")


def _attributes(script):
    return getattr(script, "attributes", {}) or {}


def page_needs(body, scripts):
    """(MathJax, widgets): whether the page's body shows an equation (or may: TeX in an output area, in a
    widget's label), and whether it shows a stored widget."""
    widgets = WIDGET_VIEW in body
    state = "".join(_attributes(s).get("body", "") for s in scripts if _attributes(s).get("type") == WIDGET_STATE)
    math = bool(EQUATION.search(body) or (OUTPUT_AREA.search(body) and TEX.search(body))
                or (widgets and WIDGET_TEX.search(state)))
    return math, widgets


def drop_unused(app, scripts, math, widgets):
    """The scripts less MathJax (with its settings) where `math` is false, and less the widgets' state,
    RequireJS and the HTML manager where `widgets` is false.

    Sphinx adds MathJax to a page whose toctree includes a page with an equation (the landing page, a
    chapter's page), and myst-nb's widget scripts come with a notebook's widget state, which can outlive
    the widgets' views; neither is used there.
    """
    def static(path):   # Sphinx puts a script's path under _static/ unless it is an address
        return {str(path), f"_static/{path}"}

    mathjax = static(app.config.mathjax_path) if app.config.mathjax_path else set()
    widget_files = set().union(*map(static, app.config.nb_ipywidgets_js or {}))
    kept = []
    for script in scripts:
        name, attributes = _filename(script), _attributes(script)
        if not math and (name in mathjax or attributes.get("type") == "text/x-mathjax-config"
                         or (not name and attributes.get("body", "").lstrip().startswith("window.MathJax"))):
            continue
        if not widgets and (name in widget_files or attributes.get("type") == WIDGET_STATE):
            continue
        kept.append(script)
    return kept


def fix_page_scripts(app, pagename, templatename, context, doctree):
    """Per page: keep only the scripts the page uses, drop scripts added twice, and tell RequireJS where the
    widget manager's files are.

    MathJax stays where the page shows an equation, the widgets' state, RequireJS and the HTML manager
    where it shows a stored widget (:func:`drop_unused`). sphinx-thebe's inline settings
    (``const THEBE_JS_URL = ...``) reach every page twice under Jupyter Book, and the second copy is a
    script error. The HTML manager finds its fonts relative to its AMD module's address, which RequireJS
    resolves from the page's folder unless told the way to _static/; it calls MathJax 2's API (see
    MATHJAX2_QUEUE); and its sliders need a name (WIDGET_SLIDER_NAMES).
    """
    from sphinx.builders.html._assets import _JavaScript

    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # an inline script is added once with filename None and again with "" (same body)
        key = (_filename(script), tuple(sorted(_attributes(script).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    kept = drop_unused(app, kept, *page_needs(context.get("body") or "", kept))
    for i, script in enumerate(kept):
        if "mathjax/" in _filename(script):
            kept.insert(i, _JavaScript(None, body=MATHJAX2_QUEUE))
            break
    for i, script in enumerate(kept):
        if _filename(script).endswith("requirejs/require.js"):
            where = context["pathto"]("_static/html-manager/dist", 1)
            # the manager's own module, and the widget modules it defines inline (@jupyter-widgets/controls
            # ...), whose fonts webpack also looks for beside the module's address
            config = (f'require.config({{paths: {{"@jupyter-widgets/html-manager/dist": "{where}", '
                      f'"@jupyter-widgets": "{where}"}}}});')
            kept[i + 1:i + 1] = [_JavaScript(None, body=config), _JavaScript(None, body=WIDGET_SLIDER_NAMES)]
            break
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", add_vendored_assets)
    app.connect("html-page-context", fix_page_scripts, priority=900)   # after myst-nb adds its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
