"""Progress bars for training loops: a widget in Jupyter, text in a terminal, silent when asked."""
import os

from tqdm.auto import tqdm

DISABLE_ENV_VAR = "DLTOOLBOX_NO_PROGRESS"


def progress(iterable=None, desc=None, total=None, **kwargs):
    """tqdm.auto with course defaults; set $DLTOOLBOX_NO_PROGRESS=1 to silence it."""
    kwargs.setdefault("disable", os.environ.get(DISABLE_ENV_VAR, "") not in ("", "0"))
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, desc=desc, total=total, **kwargs)
