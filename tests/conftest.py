import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def chapter_notebooks():
    return sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def chapter_pages():
    return sorted((ROOT / "chapters").glob("[0-9][0-9]_*/index.md"))


@pytest.fixture
def root():
    return ROOT


def load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Unit tests run on one CPU thread, as the notebooks do: tiny models are fastest and reproducible so."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# The slow tier: what builds the book or drives a browser, grades in sandboxes and kernels, builds a wheel,
# starts torchrun, or runs a notebook. `pytest tests -m "not slow"` is the fast loop (README, "Tests").
SLOW_FILES = {"test_book.py", "test_book_audit.py", "test_book_clutter.py", "test_book_controls.py",
              "test_book_pdf.py", "test_book_reader.py", "test_results_page.py", "test_assignments.py",
              "test_classroom_hostile.py", "test_classroom_robust.py", "test_classroom_sandbox.py",
              "test_classroom_trust.py", "test_distributed.py", "test_packaging.py", "test_nbval_kernels.py"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: the slow tier (book and browser, grading, wheel, torchrun, notebooks)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES or item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def html(tmp_path_factory):
    """The book built from the stored outputs with warnings as errors: once per run, shared by the
    pytest-xdist workers (the first to need it builds it, under a lock, in the run's own folder)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base  # the run's folder, not the worker's
    out, built = shared / "book", shared / "book" / "_build" / "html" / "index.html"
    with FileLock(str(shared / "book.lock")):
        if not built.exists():
            jupyter_book = Path(sys.executable).with_name("jupyter-book")
            proc = subprocess.run(
                [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
                capture_output=True, text=True, timeout=900,
            )
            if proc.returncode != 0:
                built.unlink(missing_ok=True)
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out / "_build" / "html"
