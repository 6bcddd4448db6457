"""The headline numbers of a notebook run: validated, rounded, and read back from stored outputs."""
import ast
import json
import math
import numbers
from pathlib import Path

RESULTS_TAG = "results"
METRIC_NAMES = Path("chapters") / "metrics.yml"  # readable names and units, in the course checkout


class Results(dict):
    """The metrics of a `results` cell: a dict, shown in a notebook as a table with readable names.

    Its text (repr, and IPython's text/plain) is the plain dict's, which :func:`read_results` reads back
    from the stored output; Jupyter and the book show the HTML table instead.
    """

    def __init__(self, metrics, names=None):
        super().__init__(metrics)
        self.names = dict(names or {})

    def _repr_pretty_(self, printer, cycle):
        printer.pretty(dict(self))

    def _repr_html_(self):
        return results_html(self, self.names)


def report(metrics, digits=4):
    """Return `metrics` as a dict of rounded numbers (a :class:`Results`), for a notebook's `results` cell.

    In a notebook it shows as a table of readable names (chapters/metrics.yml) and values, and each metric is
    also glued (myst-nb) under its name, so a chapter page can quote it:
    {glue:text}`imitation.ipynb::search_win_vs_bc:.1%`.
    """
    out = _validated(metrics, digits)
    _glue(out)
    return Results(out, names_for(out))


def _validated(metrics, digits=4):
    """`metrics` as a plain dict of rounded numbers; a clear error for anything else (nothing is glued)."""
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("results must be a non-empty dict mapping metric names to numbers")
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric names must be non-empty strings, got {name!r}")
        if hasattr(value, "item") and callable(value.item):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"metric {name!r} must be a number, got {type(value).__name__}: {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} is not finite: {value}")
        out[name] = int(value) if isinstance(value, numbers.Integral) else round(float(value), digits)
    return out


def _metrics_file(root=None):
    """chapters/metrics.yml of the course checkout (or of `root`), or None where there is none."""
    from .locations import IN_CHECKOUT, ROOT

    if root is not None:
        candidates = [Path(root)]
    else:
        here = Path.cwd().resolve()
        candidates = ([ROOT] if IN_CHECKOUT else []) + [here, *here.parents]
    for folder in candidates:
        if (folder / METRIC_NAMES).is_file():
            return folder / METRIC_NAMES
    return None


def metric_names(root=None):
    """{notebook path: {metric key: (readable name, unit)}} from chapters/metrics.yml; {} without one."""
    path = _metrics_file(root)
    if path is None:
        return {}
    try:
        import yaml
    except ImportError:
        return {}
    table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(notebook): {str(key): tuple(entry) for key, entry in (metrics or {}).items()
                            if isinstance(entry, list) and len(entry) == 2}
            for notebook, metrics in table.items()}


def names_for(metrics, notebook=None, root=None):
    """The readable names of `metrics`' keys: {key: (name, unit)}, those of `notebook` (a path in the checkout)
    if given, else of the notebook in chapters/metrics.yml that names the most of them (one in the working
    folder first: a notebook's kernel runs in its own folder)."""
    table = metric_names(root)
    if not table:
        return {}
    if notebook is not None:
        return dict(table.get(Path(notebook).as_posix(), {}))
    file = _metrics_file(root)
    here = Path.cwd().resolve()
    home = file.parent.parent if file is not None else None

    def score(item):
        path, named = item
        in_folder = home is not None and (home / path).parent == here
        return sum(key in named for key in metrics), in_folder

    path, named = max(table.items(), key=score)
    return dict(named) if score((path, named))[0] else {}


def results_html(metrics, names=None):
    """`metrics` as a compact HTML table: each metric's readable name (its key on hover), value and unit; the
    key itself where it has no readable name."""
    from html import escape

    names = names or {}
    right = 'style="text-align: right; white-space: nowrap"'
    rows = []
    for key, value in metrics.items():
        name, unit = names.get(key, (key, ""))
        shown = f"{value:,}" if isinstance(value, numbers.Number) else str(value)
        rows.append(f'<tr><td title="{escape(key)}">{escape(name)}</td><td {right}>{escape(shown)}</td>'
                    f"<td>{escape(unit)}</td></tr>")
    return ('<div class="pst-scrollable-table-container"><table class="table course-results-cell">'
            f"<thead><tr><th>measured ({len(metrics)} numbers)</th><th {right}>value</th><th>unit</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def glue(name, value, display=True):
    """myst-nb's glue: store `value` under `name` for the book's pages (and show it, if `display`).

    Where myst-nb is not installed (e.g. on Colab) the value is only shown.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show
            show(value)
        return
    myst_glue(name, value, display=display)


def _glue(metrics):
    """Glue each metric for the book's pages, when running in a notebook kernel."""
    from IPython import get_ipython

    if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
        return
    for name, value in metrics.items():
        glue(name, value, display=False)


def results_cells(notebook):
    """The code cells of a notebook (a dict, as parsed from JSON) tagged `results`."""
    return [
        cell for cell in notebook.get("cells", [])
        if cell.get("cell_type") == "code" and RESULTS_TAG in cell.get("metadata", {}).get("tags", [])
    ]


def read_results(path):
    """The metrics stored in a notebook's `results` cell output; a clear error if there are none."""
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = results_cells(notebook)
    if len(cells) != 1:
        raise ValueError(f"{path}: expected exactly one cell tagged {RESULTS_TAG!r}, found {len(cells)}")
    for output in cells[0].get("outputs", []):
        text = output.get("data", {}).get("text/plain")
        if output.get("output_type") == "execute_result" and text is not None:
            text = "".join(text) if isinstance(text, list) else text
            value = ast.literal_eval(text)
            _validated(value)  # a clear error for what is not a results mapping; glues nothing: another
            return value       # notebook's metrics read here must not become this notebook's glue keys
    raise ValueError(f"{path}: the {RESULTS_TAG!r} cell has no stored result; re-execute the notebook")


class Table:
    """A Markdown table shown as Markdown in Jupyter and as HTML in the book, so pages can glue it."""

    def __init__(self, markdown):
        if not isinstance(markdown, str) or "|" not in markdown:
            raise ValueError("Table needs Markdown text with a table in it")
        self.markdown = markdown

    def __repr__(self):
        return self.markdown

    def _repr_markdown_(self):
        return self.markdown

    def _repr_html_(self):
        from markdown_it import MarkdownIt

        html = MarkdownIt("commonmark").enable("table").render(self.markdown)
        # the book theme's classes: styled like the page's own tables, scrolling sideways when too wide
        return html.replace("<table>", '<div class="pst-scrollable-table-container"><table class="table">') \
                   .replace("</table>", "</table></div>")
