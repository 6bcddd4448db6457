import json
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
