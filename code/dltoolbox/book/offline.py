"""Sphinx extension: serve MathJax, RequireJS and the widgets' HTML manager from the built book.

On `config-inited` it makes sure ``_vendor/`` holds the pinned packages (see :mod:`dltoolbox.book.assets`;
fetched from the npm registry only when missing) and adds it to ``html_static_path``; ``_config.yml``'s
``mathjax_path`` and ``nb_ipywidgets_js`` name the files, relative to ``_static/``.
"""
from pathlib import Path

from sphinx.util import logging

from . import assets

logger = logging.getLogger(__name__)


def add_vendored_assets(app, config):
    vendor = Path(app.confdir) / "_vendor"
    fetched = assets.fetch(vendor)
    if fetched:
        logger.info(f"fetched for offline pages: {', '.join(fetched)}")
    config.html_static_path.append(str(vendor))


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


def fix_page_scripts(app, pagename, templatename, context, doctree):
    """Per page: drop scripts added twice, and tell RequireJS where the widget manager's files are.

    sphinx-thebe's inline settings (``const THEBE_JS_URL = ...``) reach every page twice under Jupyter
    Book, and the second copy is a script error. The HTML manager finds its fonts relative to its AMD
    module's address, which RequireJS resolves from the page's folder unless told the way to _static/;
    and it calls MathJax 2's API (see MATHJAX2_QUEUE).
    """
    from sphinx.builders.html._assets import _JavaScript

    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # an inline script is added once with filename None and again with "" (same body)
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    for i, script in enumerate(kept):
        if "mathjax/" in str(getattr(script, "filename", "")):
            kept.insert(i, _JavaScript(None, body=MATHJAX2_QUEUE))
            break
    for i, script in enumerate(kept):
        if str(getattr(script, "filename", "")).endswith("requirejs/require.js"):
            where = context["pathto"]("_static/html-manager/dist", 1)
            # the manager's own module, and the widget modules it defines inline (@jupyter-widgets/controls
            # ...), whose fonts webpack also looks for beside the module's address
            config = (f'require.config({{paths: {{"@jupyter-widgets/html-manager/dist": "{where}", '
                      f'"@jupyter-widgets": "{where}"}}}});')
            kept.insert(i + 1, _JavaScript(None, body=config))
            break
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", add_vendored_assets)
    app.connect("html-page-context", fix_page_scripts, priority=900)   # after myst-nb adds its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
