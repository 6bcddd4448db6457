"""Trained weights too costly for a notebook's two minutes: trained once by a command, committed with their
checksum, and loaded by the notebook, which trains them itself when asked to.

    python -m dltoolbox.experiments.stored NAME            # train the runs of NAME (see STORED) and write them

writes NAME's weights file and, beside it, a JSON manifest: the command, the jobs, the file's SHA-256, the
machine and the seconds it took. A notebook calls :func:`runs` with the jobs it wants: it gets the stored
runs when the manifest lists exactly those jobs and the file's checksum matches, and trains them (without
writing anything) when $DLTOOLBOX_RETRAIN=1 or no file was stored. A stored file for other jobs, or one
whose bytes changed, is refused with an error saying how to make it again: never a silent wrong answer.
"""
import argparse
import hashlib
import importlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from ..locations import ROOT

RETRAIN_ENV = "DLTOOLBOX_RETRAIN"
# name -> ("module:function" returning the jobs, "module:function" training one job, weights path)
STORED = {
    "ngrams_mlp": ("dltoolbox.experiments.ngrams:stored_jobs", "dltoolbox.experiments.ngrams:run", "chapters/02_ngrams/mlp_runs.pt"),
    "seq2seq": ("dltoolbox.experiments.seq2seq:stored_jobs", "dltoolbox.experiments.seq2seq:stored_run", "chapters/03_seq2seq/runs.pt"),
    "memory": ("dltoolbox.experiments.memory:stored_jobs", "dltoolbox.experiments.memory:run", "chapters/08_bytes/memory_runs.pt"),
}
KEPT = ("job", "history", "state")  # what a stored run keeps; anything else is recomputed from the weights


def manifest_path(path):
    return Path(path).with_suffix(".json")


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _plain(jobs):
    """The jobs as JSON would give them back (tuples become lists), for comparison with a manifest."""
    return json.loads(json.dumps(jobs))


def save(path, jobs, results, command, seconds):
    """Write the runs (their job, history and weights) to `path` and the manifest beside it."""
    path = Path(path)
    if len(jobs) != len(results):
        raise ValueError(f"{len(jobs)} jobs but {len(results)} results")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save([{key: result[key] for key in KEPT} for result in results], path)
    manifest = {"command": command, "file": path.name, "sha256": _sha256(path), "jobs": _plain(jobs),
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "torch": torch.__version__, "seconds": round(seconds, 1)}
    manifest_path(path).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def load(path, jobs):
    """The stored runs of exactly `jobs`, after checking the manifest and the file's checksum."""
    path, manifest_file = Path(path), manifest_path(path)
    if not path.is_file() or not manifest_file.is_file():
        raise FileNotFoundError(f"no stored runs at {path} (or no manifest {manifest_file.name} beside it)")
    manifest = json.loads(manifest_file.read_text())
    remake = f"make them again with `{manifest.get('command', 'python -m dltoolbox.experiments.stored')}`, or set {RETRAIN_ENV}=1"
    if manifest.get("jobs") != _plain(jobs):
        raise ValueError(f"{path} holds runs of other jobs than these: {remake}")
    if _sha256(path) != manifest.get("sha256"):
        raise ValueError(f"{path} does not match the checksum in {manifest_file.name} (changed or damaged): {remake}")
    results = torch.load(path, weights_only=True)  # tensors, numbers, strings and containers only: no code runs
    if len(results) != len(jobs) or any(_plain(r["job"]) != job for r, job in zip(results, _plain(jobs))):
        raise ValueError(f"{path}'s runs are not in the manifest's order: {remake}")
    return results


def runs(path, jobs, train, processes=2, desc="runs"):
    """The runs of `jobs`: stored ones if `path` holds exactly these jobs, else trained now (not written).

    Returns (results, where), `where` saying "stored" or "trained here".
    """
    from ..compare import run_parallel

    retrain = os.environ.get(RETRAIN_ENV, "") not in ("", "0")
    if not retrain and (Path(path).exists() or manifest_path(path).exists()):
        return load(path, jobs), "stored"
    return run_parallel(train, jobs, processes, desc=desc), "trained here"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.experiments.stored", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(STORED))
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    jobs_target, train_target, out = STORED[args.name]
    functions = [getattr(importlib.import_module(t.split(":")[0]), t.split(":")[1]) for t in (jobs_target, train_target)]
    jobs = functions[0]()
    from ..compare import run_parallel

    start = time.perf_counter()
    results = run_parallel(functions[1], jobs, args.processes, desc=args.name)
    manifest = save(ROOT / out, jobs, results, f"python -m dltoolbox.experiments.stored {args.name}", time.perf_counter() - start)
    print(f"wrote {out}: {len(jobs)} runs in {manifest['seconds']} s, sha256 {manifest['sha256'][:12]}…")


if __name__ == "__main__":
    main()
