"""Plot helpers shared by every chapter: one look, and training histories drawn from dicts of lists."""
import matplotlib

import matplotlib.pyplot as plt

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 10,
}


def setup():
    """Apply the course's matplotlib style."""
    matplotlib.rcParams.update(STYLE)


def plot_history(history, keys=None, xlabel="step", ylabel=None, ax=None, logy=False, title=None):
    """Draw the curves of a training history (a dict of equal-length lists) on one axis."""
    if not isinstance(history, dict) or not history:
        raise ValueError("history must be a non-empty dict of lists, as returned by a training function")
    keys = list(history) if keys is None else list(keys)
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(history)}")
    if ax is None:
        _, ax = plt.subplots()
    for key in keys:
        values = history[key]
        ax.plot(range(1, len(values) + 1), values, label=key)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(keys) > 1:
        ax.legend()
    return ax
