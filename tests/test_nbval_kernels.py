"""The nbval plugin runs each notebook once more in a kernel started with another CPU kernel setting."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from dltoolbox.course import nbval_kernels


def test_unknown_setting_is_a_clear_error():
    with pytest.raises(pytest.UsageError, match="unknown or no setting"):
        nbval_kernels.parse_kernels("default,avx9000")
    with pytest.raises(pytest.UsageError, match="unknown or no setting"):
        nbval_kernels.parse_kernels("")
    assert nbval_kernels.parse_kernels(" native , default ") == ["native", "default"]


def test_environment_is_restored(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS", raising=False)
    with nbval_kernels.environment({"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}):
        assert os.environ["ATEN_CPU_CAPABILITY"] == "default"
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2" and "MKL_ENABLE_INSTRUCTIONS" not in os.environ


def probe(tmp_path, kernels):
    """Run the probe notebook under the plugin; pytest's summary and the (setting, capability) of each run."""
    out = tmp_path / "probe.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", nbval_kernels.MARK)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "dltoolbox.course.nbval_kernels", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--nbval-lax", "--nbval-current-env", f"--nbval-cpu-kernels={kernels}", "-c", os.devnull,
         "--rootdir", str(ROOT), "-q", str(ROOT / "tests/fixtures/kernel_probe/probe.ipynb")],
        capture_output=True, text=True, timeout=300, env={**env, "PROBE_OUT": str(out)}, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = sorted((r["setting"], r["capability"]) for r in map(json.loads, out.read_text().splitlines()))
    return proc.stdout, runs


def test_each_notebook_runs_natively_and_on_the_forced_kernels(tmp_path):
    summary, runs = probe(tmp_path, "native,default")
    assert "2 passed" in summary
    assert [s for s, _ in runs] == ["default", "native"]
    assert dict(runs)["default"] == "DEFAULT"


def test_without_native_only_the_forced_kernels_run(tmp_path):
    summary, runs = probe(tmp_path, "default")
    assert "1 passed, 1 deselected" in summary
    assert runs == [("default", "DEFAULT")]
