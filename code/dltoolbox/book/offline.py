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


def setup(app):
    app.connect("config-inited", add_vendored_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
