"""Make runs reproducible: one call seeds every generator and fixes the CPU thread count."""
import os
import random

import numpy as np
import torch

THREADS_ENV_VAR = "DLTOOLBOX_THREADS"
DEFAULT_THREADS = 1  # the course's models are small: a second thread costs more CPU than it saves


def seed_everything(seed=0, threads=None):
    """Seed Python, NumPy and PyTorch, and fix torch's CPU threads (results depend on them)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if threads is None:
        threads = int(os.environ.get(THREADS_ENV_VAR, DEFAULT_THREADS))
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return seed


def generator(seed, device="cpu"):
    """A fresh torch.Generator seeded with `seed`, for sampling that does not touch global state."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
