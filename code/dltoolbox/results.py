"""The headline numbers of a notebook run: validated, rounded, and read back from stored outputs."""
import ast
import json
import math
import numbers
from pathlib import Path

RESULTS_TAG = "results"


def report(metrics, digits=4):
    """Return `metrics` as a plain dict of rounded numbers, for a notebook's `results` cell.

    In a notebook each metric is also glued (myst-nb) under its name, so a chapter page can quote it:
    {glue:text}`imitation.ipynb::search_win_vs_bc:.1%`.
    """
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
    _glue(out)
    return out


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
            report(value)  # validates
            return value
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
