"""Choose the device a notebook trains on: CUDA when present, else the CPU; Apple MPS only on request.

The course's models are small (a few hundred thousand weights). On them a GPU's per-kernel launch overhead
usually costs more than its arithmetic saves, and Apple's MPS backend still has correctness gaps (operators
that fall back, or differ from the CPU), so `auto` never picks MPS: DLTOOLBOX_DEVICE=mps asks for it. Where
the choice concerns MPS, `get_device` prints a one-line note ("Device note: ...") with the reason; elsewhere
(Linux, Colab, an explicit cpu or cuda) it prints nothing.
"""
import os

import torch

ENV_VAR = "DLTOOLBOX_DEVICE"
CHOICES = ("auto", "cpu", "cuda", "mps")
NOTE_PREFIX = "Device note: "
MPS_NOT_CHOSEN = (
    "Apple MPS is available but auto uses the CPU: these models are too small to gain from a GPU, "
    f"and MPS has known correctness gaps ({ENV_VAR}=mps to try it)"
)
MPS_ON_REQUEST = (
    "Apple MPS on request: no notebook has been validated on it (known correctness gaps); "
    f"if a result looks wrong, compare with {ENV_VAR}=cpu"
)


def _mps_available():
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(name=None):
    """Return (torch.device, reason): `name`, else $DLTOOLBOX_DEVICE, else `auto`.

    `auto` is CUDA when it is available, else the CPU. `reason` is a one-line explanation where the
    choice concerns Apple MPS (available but passed over by `auto`, or requested), else None.
    """
    requested = name if name is not None else os.environ.get(ENV_VAR, "auto")
    requested = requested.strip().lower()
    kind = requested.split(":")[0]
    if kind not in CHOICES:
        raise ValueError(
            f"unknown device {requested!r} (from {'argument' if name is not None else ENV_VAR}); "
            f"choose one of {', '.join(CHOICES)}, e.g. {ENV_VAR}=cpu"
        )
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), None
        return torch.device("cpu"), (MPS_NOT_CHOSEN if _mps_available() else None)
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} was requested but CUDA is not available here; use cpu or auto")
    if kind == "mps":
        if not _mps_available():
            raise RuntimeError(
                f"device {requested!r} was requested but Apple MPS is not available here; use cpu or auto"
            )
        return torch.device(requested), MPS_ON_REQUEST
    return torch.device(requested), None


def get_device(name=None):
    """Return a torch.device (see `choose_device`), printing the one-line reason where there is one."""
    device, reason = choose_device(name)
    if reason:
        print(NOTE_PREFIX + reason, flush=True)
    return device
