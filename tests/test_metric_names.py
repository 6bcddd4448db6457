"""The Results page's readable names: chapters/metrics.yml names every metric of every results cell, once."""
from pathlib import Path

from dltoolbox import results
from dltoolbox.course.book import sphinxext

ROOT = Path(__file__).resolve().parents[1]


def notebooks():
    return sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_every_reported_metric_has_a_readable_name_and_a_unit_and_nothing_else_does():
    names = sphinxext.metric_names(ROOT)
    assert set(names) == {p.relative_to(ROOT).as_posix() for p in notebooks()}
    for path in notebooks():
        reported = list(results.read_results(path))
        named = names[path.relative_to(ROOT).as_posix()]
        assert list(named) == reported, f"{path.name}: metrics.yml lists {list(named)}, the results cell {reported}"
        for key, (name, unit) in named.items():
            assert name.strip() and "_" not in name and len(name) <= 80, (path.name, key, name)
            assert isinstance(unit, str), (path.name, key, unit)


def test_a_malformed_entry_is_a_clear_error(tmp_path):
    import pytest

    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "metrics.yml").write_text("chapters/a.ipynb:\n  acc: just a name\n")
    with pytest.raises(ValueError, match="acc.*\\[name, unit\\]"):
        sphinxext.metric_names(tmp_path)
