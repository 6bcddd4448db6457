"""Comparing models fairly: intervals over seeds, paired differences, and runs in parallel processes.

The course's rule for every comparison (README, "Comparing models fairly"): each arm gets the same tuning
effort on validation data; every headline number has at least 4 seeds; a difference between two arms is
measured *paired* — the same test items and the same seeds — and its headline interval is over seeds
(:func:`seed_difference`), so it includes training randomness: another seed could give another sign, and
only the seeds show how likely that is. :func:`paired_bootstrap` over test items, with the trained models
held fixed, measures test-set noise only; it is never the headline.
"""
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import numpy as np
from scipy import stats

from .progress import DISABLE_ENV_VAR, progress


def mean_interval(values, confidence=0.95):
    """Mean and the half-width of its Student t-interval over independent runs (seeds)."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"need at least 2 values in a 1-D sequence, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def paired_seed_interval(a, b, confidence=0.95):
    """Mean of a − b over seeds paired by position (seed i of each arm), and its t-interval half-width."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired runs need the same seeds: shapes {a.shape} and {b.shape}")
    return mean_interval(a - b, confidence)


def seed_difference(a, b, confidence=0.95):
    """The headline interval of a difference: paired t-interval over seeds of score(a) − score(b).

    `a`, `b`: each seed's score, shape (seeds,), or per-item scores of each seed, shape (seeds, items)
    (a seed's score is then its mean over the same items for both arms). Seed i of `a` is paired with
    seed i of `b`. Returns {"difference", "low", "high", "seeds", "per_seed"}.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim not in (1, 2):
        raise ValueError(f"need scores of the same shape, (seeds,) or (seeds, items); got {a.shape}, {b.shape}")
    per_seed = (a - b) if a.ndim == 1 else (a - b).mean(axis=1)
    mean, half = mean_interval(per_seed, confidence)
    return {"difference": mean, "low": mean - half, "high": mean + half, "seeds": len(per_seed),
            "per_seed": [float(d) for d in per_seed]}


def paired_bootstrap(a, b, resamples=2000, confidence=0.95, seed=0, statistic=np.mean):
    """Paired bootstrap of statistic(a) − statistic(b) over test items scored by both arms.

    Test-set noise with the trained models held fixed: it says nothing about another training seed, so
    it is a secondary interval; the headline interval is :func:`seed_difference`.

    `a`, `b`: per-item scores (e.g. 0/1 correct, bits), shape (items,) or (seeds, items); with seeds the
    same item columns are resampled for every seed, and the statistic is taken over all of them.
    Returns {"difference", "low", "high"}: the observed difference and its percentile interval.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] < 2:
        raise ValueError("need per-item scores of the same shape, (items,) or (seeds, items); "
                         f"got {a.shape}, {b.shape}")
    if resamples < 100:
        raise ValueError(f"resamples must be at least 100, got {resamples}")
    diff = a - b
    items = diff.shape[-1]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, items, size=(resamples, items))
    samples = np.array([statistic(diff[..., i]) for i in index])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return {"difference": float(statistic(diff)), "low": float(low), "high": float(high)}


def mcnemar(a_correct, b_correct):
    """McNemar's exact test for two classifiers scored on the same items (0/1 or bool per item).

    Returns {"a_only", "b_only", "p_value"}: items only A got right, only B got right, and the two-sided
    exact binomial p-value of that split under "no difference".
    """
    a, b = np.asarray(a_correct).astype(bool), np.asarray(b_correct).astype(bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need 1-D per-item results of the same length, got {a.shape}, {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(stats.binomtest(a_only, n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def processes_for(requested):
    """`requested` processes, or fewer where others already share the cores: under pytest-xdist (whose
    $PYTEST_XDIST_WORKER_COUNT the notebooks' kernels inherit) each worker's runs get cores // workers, so
    the suite never runs more training processes than there are cores; $DLTOOLBOX_PROCESSES caps it anywhere.
    """
    if requested < 1:
        raise ValueError(f"processes must be >= 1, got {requested}")
    cap = requested
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if workers.isdigit() and int(workers) > 0:
        cap = min(cap, max(1, (os.cpu_count() or 1) // int(workers)))
    limit = os.environ.get("DLTOOLBOX_PROCESSES", "")
    if limit:
        if not limit.isdigit() or int(limit) < 1:
            raise ValueError(f"$DLTOOLBOX_PROCESSES must be a whole number >= 1, got {limit!r}")
        cap = min(cap, int(limit))
    return cap


@contextmanager
def _quiet_jobs():
    """The jobs' own progress bars off while they run here, then as they were."""
    before = os.environ.get(DISABLE_ENV_VAR)
    os.environ[DISABLE_ENV_VAR] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[DISABLE_ENV_VAR]
        else:
            os.environ[DISABLE_ENV_VAR] = before


def run_parallel(function, jobs, processes=2, desc="runs"):
    """[function(job) for job in jobs], `processes` at a time in fresh (spawned) processes; same order.

    For independent runs such as seeds: `function` must be importable (defined in a module, not a
    notebook) and its jobs picklable. Each process seeds itself through the job, so results do not depend
    on `processes`, nor on :func:`processes_for` lowering it (during the test suite, or by
    $DLTOOLBOX_PROCESSES); with one, the jobs run here, one after another. One progress bar counts the
    jobs; the jobs' own bars stay off, here as in the workers (where :func:`dltoolbox.progress.enabled` is
    always false). The thread count is the job's to set (a worker starts with PyTorch's default, as this
    process did), so a job gives the same numbers either way.
    """
    jobs = list(jobs)
    processes = processes_for(processes)
    if processes == 1 or len(jobs) <= 1:
        bar = progress(jobs, desc=desc)
        with _quiet_jobs():
            return [function(job) for job in bar]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(processes, len(jobs)), mp_context=context) as pool:
        return list(progress(pool.map(function, jobs), total=len(jobs), desc=desc))


def count_parameters(module, trainable_only=False):
    """Number of scalar parameters (only the trainable ones if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def budget(arms):
    """Each arm's training budget stated three ways, as a table: steps, measured seconds, FLOPs ≈ 6·N·D.

    `arms`: {name: {"steps": optimiser steps, "seconds": [training seconds of each run], "parameters": N,
    "tokens": D, the training tokens one run processed}}. A comparison holds one of the three equal and says
    which; the table shows all three, so a reader can see what the other two did.
    """
    if not arms:
        raise ValueError("need at least one arm")
    lines = ["| arm | steps | seconds per run (mean, this CPU) | parameters | FLOPs per run ≈ 6·N·D |",
             "|---|---|---|---|---|"]
    for name, arm in arms.items():
        missing = {"steps", "seconds", "parameters", "tokens"} - set(arm)
        if missing:
            raise ValueError(f"arm {name!r} lacks {sorted(missing)}")
        seconds = float(np.mean(arm["seconds"]))
        lines.append(f"| {name} | {arm['steps']:,} | {seconds:.1f} | {arm['parameters']:,} | "
                     f"{6 * arm['parameters'] * arm['tokens']:.2e} |")
    from .results import Table

    return Table("\n".join(lines))
