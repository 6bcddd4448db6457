"""Choose the device a notebook trains on: CUDA, then Apple MPS, then CPU."""
import os

import torch

ENV_VAR = "DLTOOLBOX_DEVICE"
CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available():
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(name=None):
    """Return a torch.device: `name`, else $DLTOOLBOX_DEVICE, else the best available one."""
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
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} was requested but CUDA is not available here; use cpu or auto")
    if kind == "mps" and not _mps_available():
        raise RuntimeError(f"device {requested!r} was requested but Apple MPS is not available here; use cpu or auto")
    return torch.device(requested)
