"""The package works installed from a wheel, not only from a checkout: its data ships inside it."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import ROOT
from dltoolbox import locations, ngram
from dltoolbox.course import interview

CODE = ROOT / "code"
PACKAGE = CODE / "dltoolbox"
SEED = ROOT / "seeds" / "000_236d15bae6bd2c15.txt"
SHIPPED = PACKAGE / "data" / "transcript.txt"
TRANSCRIPT_SHA256 = "47cfecaebfdb6265a51bb4f64ca948be5afc8dba275d95c69417b38f06946f22"
DEVIL_SHA256 = "6a4cdb18a85020e7c57ef435a80d1719104533476d081e7977e0b2dc32a01e6a"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_shipped_transcript_is_the_seed_byte_for_byte():
    seed, shipped = SEED.read_bytes(), SHIPPED.read_bytes()
    assert sha256(seed) == TRANSCRIPT_SHA256 == locations.TRANSCRIPT_SHA256
    assert shipped == seed


def test_the_package_reads_its_data_from_inside_itself():
    assert interview.TRANSCRIPT.name == "transcript.txt"
    assert str(interview.TRANSCRIPT) == str(SHIPPED)
    assert len(interview.transcript_lines()) == 579
    for name, (path, digest) in ngram.CORPORA.items():
        assert str(path).startswith(str(PACKAGE / "data")), name
        assert sha256(ngram.load_corpus(name).encode("utf-8")) == digest


def test_pyproject_ships_every_data_file():
    config = tomllib.loads((CODE / "pyproject.toml").read_text())
    assert config["build-system"]["build-backend"] == "setuptools.build_meta"
    assert set(config["tool"]["setuptools"]["package-data"]["dltoolbox"]) >= {"data/*", "data/**/*"}


def test_in_a_checkout_the_checkout_paths_resolve():
    assert locations.IN_CHECKOUT
    assert locations.ROOT == ROOT
    assert locations.checkout_path("chapters") == ROOT / "chapters"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """dltoolbox built into a wheel from a copy of ./code and pip-installed into a bare folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src" / "code"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(CODE, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    env = {**os.environ, "PIP_NO_INDEX": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    build = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source)],
                           capture_output=True, text=True, timeout=120, env=env)
    assert build.returncode == 0, (
        "building the wheel failed (it needs setuptools in this environment; torch's requirements pull it in):\n"
        + build.stdout + build.stderr)
    wheels = sorted((tmp / "dist").glob("dltoolbox-*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site"
    install = subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheels[0])],
                             capture_output=True, text=True, timeout=120, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    return tmp, wheels[0], site


def test_the_wheel_holds_the_data_files(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in sorted((PACKAGE / "data").rglob("*")):
        if path.is_file():
            assert f"dltoolbox/data/{path.relative_to(PACKAGE / 'data').as_posix()}" in names
    assert "dltoolbox/data/transcript.txt" in names and "dltoolbox/data/devils_dictionary.txt" in names


PROBE = """
import hashlib, json
import dltoolbox, dltoolbox.course.interview as interview, dltoolbox.ngram as ngram, dltoolbox.locations as locations
from dltoolbox.classroom import cli, grading, release
out = {
    "file": dltoolbox.__file__,
    "lines": len(interview.transcript_lines()),
    "first_line": interview.transcript_lines()[0],
    "corpora": {name: hashlib.sha256(ngram.load_corpus(name).encode("utf-8")).hexdigest() for name in ngram.CORPORA},
    "located": interview.locate("you could actually generate text from end-gram models"),
    "in_checkout": locations.IN_CHECKOUT,
    "errors": [],
}
for call in (lambda: locations.checkout_path("chapters"), release.chapter_folders, grading.find_sources):
    try:
        call()
    except locations.CheckoutNotFound as error:
        out["errors"].append(str(error))
out["main"] = cli.main(["check"])
print(json.dumps(out))
"""


def test_the_installed_package_finds_its_data_without_the_checkout(installed):
    tmp, _, site = installed
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", PYTHONSAFEPATH="1")
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(site)), "the installed copy, not the checkout, was imported"
    assert out["lines"] == 579
    assert out["first_line"] == SEED.read_text(encoding="utf-8").splitlines()[0]
    assert out["corpora"] == {"interview": TRANSCRIPT_SHA256, "devil": DEVIL_SHA256}
    assert out["located"] == [185, 186]
    assert out["in_checkout"] is False
    assert len(out["errors"]) == 3, "chapters/ is only in a checkout: a clear error, not a wrong path"
    for error in out["errors"]:
        assert "chapters" in error and "checkout" in error and "explicitly" in error
    assert out["main"] == 2 and "error: " in run.stderr and "checkout" in run.stderr
