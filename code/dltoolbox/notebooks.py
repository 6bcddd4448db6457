"""Re-execute the course notebooks and store their outputs (what nbval and the book compare against).

    python -m dltoolbox.notebooks run                     # every notebook under chapters/
    python -m dltoolbox.notebooks run chapters/02_ngrams  # one chapter
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .interview import ROOT


def notebook_paths(paths):
    """The notebooks named by `paths` (files or folders), skipping checkpoints and build output."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such notebook or folder: {p}")
        if p.is_dir():
            found += [q for q in sorted(p.rglob("*.ipynb"))
                      if ".ipynb_checkpoints" not in q.parts and "_build" not in q.parts]
        elif p.suffix == ".ipynb":
            found.append(p)
        else:
            raise ValueError(f"not a notebook: {p}")
    return found


def execute(path, timeout=900):
    """Run a notebook top to bottom in a fresh kernel, in its own folder, and write it back in place."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,
    )
    client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    notebook.metadata.get("kernelspec", {}).update(
        {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    )
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="re-execute notebooks and store their outputs")
    run.add_argument("paths", nargs="*", default=[str(ROOT / "chapters")])
    run.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    os.environ.setdefault("DLTOOLBOX_DEVICE", "cpu")  # stored outputs are the CPU run's
    for path in notebook_paths(args.paths):
        start = time.perf_counter()
        print(f"running {path} ...", flush=True)
        execute(path, timeout=args.timeout)
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
