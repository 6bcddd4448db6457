"""The repository keeps its promises: pinned dependencies, a CI script that runs the README's command, Binder, Pages."""
import re

import yaml

from conftest import ROOT


CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def lock():
    """requirements.txt as {normalised name: pinned version}."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_requirement_is_pinned_exactly():
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    assert "-e ./code" in lines and CPU_INDEX in lines
    unpinned = [l for l in lines if l not in ("-e ./code", CPU_INDEX)
                and not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", l)]
    assert unpinned == []
    names = {l.split("==")[0].lower() for l in lines}
    for needed in ["jupyter-book", "myst-nb", "torch", "ipywidgets", "nbval", "nbgrader", "tqdm", "sacrebleu"]:
        assert needed in names, needed
    assert "jupyter-book==1.0.4.post1" in lines and "torch==2.13.0" in lines


def test_direct_dependencies_are_pinned_inside_their_ranges():
    from packaging.requirements import Requirement

    pins = lock()
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            name = canonical(requirement.name)
            assert name in pins, f"{name} is a direct dependency but not in the lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {line}"


def test_the_lock_is_complete():
    """Every package installed beside the course (from requirements.txt) is pinned there, at that version."""
    import importlib.metadata
    import sysconfig

    pins = lock()
    bundled = {"pip", "dltoolbox"}  # pip comes with the venv; the course's own package is -e ./code
    # site-packages only: setuptools puts its vendored copies (setuptools/_vendor) on sys.path when imported
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    installed = {canonical(d.metadata["Name"]): d.version.split("+")[0]
                 for d in importlib.metadata.distributions(path=site)}
    unpinned = sorted(name for name in installed if name not in pins and name not in bundled)
    assert unpinned == [], f"installed but missing from requirements.txt: {unpinned}"
    differ = sorted((n, v, pins[n]) for n, v in installed.items() if n in pins and v != pins[n])
    assert differ == [], f"installed versions differ from the lock: {differ}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"<!-- test-command -->\n```(?:bash|sh)?\n(.+?)\n```", readme, re.S).group(1).strip()
    assert command in ci


def test_binder_runtime_pins_python_3_11_or_later():
    runtime = (ROOT / "runtime.txt").read_text().strip()  # repo2docker's format: python-X.Y
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, runtime
    assert (int(match[1]), int(match[2])) >= (3, 11)


def _steps(job):
    return [step.get("uses", "") + " " + step.get("run", "") for step in job["steps"]]


def test_pages_workflow_publishes_the_build():  # tests every change, deploys only main
    text = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}, "pages/id-token only on the deploy job"
    assert "concurrency" not in workflow, "the pages concurrency group is the deploy job's alone"
    jobs = workflow["jobs"]
    assert {"test", "build", "deploy"} <= set(jobs)

    test, build, deploy = jobs["test"], jobs["build"], jobs["deploy"]
    assert "if" not in test, "the tests run on every push and pull request"
    setup = next(s for s in test["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["uses"] == "actions/setup-python@v7"
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    assert {"3.11", "3.13"} <= set(test["strategy"]["matrix"]["python"])
    assert setup["with"]["cache"] == "pip" and setup["with"]["cache-dependency-path"] == "requirements.txt"
    assert any("bash .ci/run" in s for s in _steps(test))
    upload = next(s for s in test["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["uses"] == "actions/upload-artifact@v7" and upload["if"] == "failure()"
    assert "cuda" not in text.lower(), "no CUDA download: torch comes from requirements.txt"

    assert build["needs"] == "test" or build["needs"] == ["test"]
    assert "github.event_name == 'push'" in build["if"] and "refs/heads/main" in build["if"]
    assert "workflow_dispatch" in build["if"]
    assert any("jupyter-book build . -W -n --keep-going" in s for s in _steps(build))
    pages = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert pages["uses"] == "actions/upload-pages-artifact@v5" and pages["with"]["path"] == "_build/html"
    assert "pages" not in build.get("permissions", {}) and "id-token" not in build.get("permissions", {})

    assert deploy["needs"] == "build" or deploy["needs"] == ["build"]
    assert "github.ref == 'refs/heads/main'" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    assert deploy["environment"]["name"] == "github-pages"
    assert any(s.startswith("actions/deploy-pages@v5") for s in _steps(deploy))
