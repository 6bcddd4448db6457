"""Progress bars for training loops: a widget in Jupyter, text in a terminal, silent when asked.

A bar is there for whoever watches a run; it is never part of a notebook's results. So:

* ``$DLTOOLBOX_NO_PROGRESS=1`` silences every bar (``python -m dltoolbox.course.notebooks run`` sets it while it
  executes the notebooks it stores);
* a process started by :mod:`multiprocessing` (a worker of ``compare.run_parallel``) shows none: its bars
  would reach the notebook as raw text on stderr, interleaved with the other workers';
* in Jupyter the widget is displayed without a text stand-in, so a stored notebook holds no text for it
  and nbval, which compares every output's text but never a widget's view, has nothing to compare.
"""
import multiprocessing
import os

from tqdm.auto import tqdm

DISABLE_ENV_VAR = "DLTOOLBOX_NO_PROGRESS"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def enabled():
    """Whether bars are shown here: not when $DLTOOLBOX_NO_PROGRESS is set, nor in a worker process."""
    return os.environ.get(DISABLE_ENV_VAR, "") in ("", "0") and multiprocessing.parent_process() is None


def progress(iterable=None, desc=None, total=None, **kwargs):
    """tqdm.auto with course defaults; set $DLTOOLBOX_NO_PROGRESS=1 to silence it."""
    kwargs.setdefault("disable", not enabled())
    kwargs.setdefault("mininterval", 0.5)
    if kwargs["disable"] or not _is_widget_bar(tqdm):
        return tqdm(iterable, desc=desc, total=total, **kwargs)
    bar = tqdm(iterable, desc=desc, total=total, display=False, **kwargs)
    _show(bar)
    return bar


def _is_widget_bar(cls):
    """Whether tqdm.auto chose the Jupyter widget bar (tqdm.notebook) in this process."""
    try:
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, notebook_tqdm)


def _show(bar):
    """Display the bar's widget as a widget view only (no text/plain), as tqdm.notebook would otherwise."""
    from IPython.display import display

    container = getattr(bar, "container", None)
    if container is None:
        return
    bundle = getattr(container, "_repr_mimebundle_", None)
    data = bundle() if callable(bundle) else None
    if isinstance(data, dict) and WIDGET_VIEW in data:
        display({WIDGET_VIEW: data[WIDGET_VIEW]}, raw=True)
    else:  # another widget library version: display it as it comes
        display(container)
    bar.displayed = True
