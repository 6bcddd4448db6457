"""The repository keeps its promises: pinned dependencies, a CI script that runs the README's command."""
import re

from conftest import ROOT


def test_every_requirement_is_pinned_exactly():
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    assert "-e ./code" in lines
    unpinned = [l for l in lines if l != "-e ./code" and not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", l)]
    assert unpinned == []
    names = {l.split("==")[0].lower() for l in lines}
    for needed in ["jupyter-book", "myst-nb", "torch", "ipywidgets", "nbval", "nbgrader", "tqdm", "sacrebleu"]:
        assert needed in names, needed
    assert "jupyter-book==1.0.4.post1" in lines and "torch==2.13.0" in lines


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"<!-- test-command -->\n```(?:bash|sh)?\n(.+?)\n```", readme, re.S).group(1).strip()
    assert command in ci


def test_pages_workflow_publishes_the_build():
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert "actions/upload-pages-artifact" in workflow and "_build/html" in workflow
    assert "actions/deploy-pages" in workflow
