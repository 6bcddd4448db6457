"""Stored runs: loaded only for exactly the jobs they were trained for, with their checksum; never a silent
wrong answer, and training them again on request writes nothing."""
import json

import pytest
import torch

from dltoolbox.experiments import stored


def fake_train(job):
    return {"job": job, "history": {"step": [1, 2], "train_bits": [2.0, 1.5]}, "extra": object(),
            "state": {"w": torch.full((2,), float(job["seed"]))}}


JOBS = [{"seed": 0, "train": {"steps": 2}}, {"seed": 1, "train": {"steps": 2}}]


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "runs.pt"
    stored.save(path, JOBS, [fake_train(j) for j in JOBS], "python -m dltoolbox.experiments.stored x", 1.0)
    return path


def test_save_then_load_gives_back_the_runs_in_order(saved):
    manifest = json.loads(stored.manifest_path(saved).read_text())
    assert manifest["jobs"] == JOBS and len(manifest["sha256"]) == 64
    runs = stored.load(saved, JOBS)
    assert [r["job"]["seed"] for r in runs] == [0, 1]
    assert torch.equal(runs[1]["state"]["w"], torch.ones(2)) and "extra" not in runs[0]


def test_other_jobs_are_refused(saved):
    other = [dict(JOBS[0]), {"seed": 1, "train": {"steps": 3}}]
    with pytest.raises(ValueError, match="other jobs"):
        stored.load(saved, other)
    with pytest.raises(ValueError, match="other jobs"):
        stored.load(saved, JOBS[:1])


def test_changed_bytes_are_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-20] ^= 1
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        stored.load(saved, JOBS)


def test_missing_manifest_or_file_is_a_clear_error(saved, tmp_path):
    stored.manifest_path(saved).unlink()
    with pytest.raises(FileNotFoundError, match="manifest"):
        stored.load(saved, JOBS)
    with pytest.raises(FileNotFoundError, match="manifest"):  # a file without its manifest is not trained over
        stored.runs(saved, JOBS, fake_train, processes=1)


def test_runs_loads_when_stored_and_trains_without_writing_when_asked(saved, tmp_path, monkeypatch):
    calls = []

    def counting(job):
        calls.append(job["seed"])
        return fake_train(job)

    monkeypatch.delenv(stored.RETRAIN_ENV, raising=False)
    results, where = stored.runs(saved, JOBS, counting, processes=1)
    assert where == "stored" and calls == []
    before = saved.read_bytes()
    monkeypatch.setenv(stored.RETRAIN_ENV, "1")
    results, where = stored.runs(saved, JOBS, counting, processes=1)
    assert where == "trained here" and calls == [0, 1] and saved.read_bytes() == before
    monkeypatch.delenv(stored.RETRAIN_ENV)
    missing = tmp_path / "none.pt"
    results, where = stored.runs(missing, JOBS, counting, processes=1)
    assert where == "trained here" and not missing.exists() and not stored.manifest_path(missing).exists()


def test_a_stored_file_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pt"
    torch.save([{"job": JOBS[0], "history": {}, "state": Evil()}], path)
    stored.manifest_path(path).write_text(json.dumps({"jobs": [JOBS[0]], "sha256": stored._sha256(path)}))
    with pytest.raises(Exception, match="(?i)weights only|unpickl|unsupported"):
        stored.load(path, [JOBS[0]])


@pytest.mark.parametrize("name", sorted(stored.STORED))
def test_each_committed_file_holds_the_jobs_its_code_names_now(name):
    # a change to a sweep's table or to a stored_jobs function must come with the runs trained again
    import importlib

    from dltoolbox.locations import ROOT

    jobs_target, train_target, path = stored.STORED[name]
    module, function = jobs_target.split(":")
    jobs = getattr(importlib.import_module(module), function)()
    manifest = json.loads(stored.manifest_path(ROOT / path).read_text())
    assert manifest["command"] == f"python -m dltoolbox.experiments.stored {name}"
    assert manifest["jobs"] == json.loads(json.dumps(jobs)), f"{path} holds other jobs than {jobs_target} names"
    assert stored._sha256(ROOT / path) == manifest["sha256"]
    assert hasattr(importlib.import_module(train_target.split(":")[0]), train_target.split(":")[1])
