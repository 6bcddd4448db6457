"""Data parallelism: 2 processes under torchrun (gloo) take the steps one process takes."""
import json
import os
import subprocess
import sys

import pytest
import torch

from dltoolbox import distributed, scaling

RUN = dict(num_steps=4, global_batch=8, width=16)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Both optimisers trained by 2 gloo processes under torchrun: {optimizer: (stats, parameters)}."""
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["DLTOOLBOX_DEVICE"] = "cpu"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "dltoolbox.distributed", "--steps", str(RUN["num_steps"]), "--global-batch",
               str(RUN["global_batch"]), "--width", str(RUN["width"]), "--optimizer", "sgd", "adamw",
               "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: (json.loads((out / name / "stats.json").read_text()), torch.load(out / name / "params.pt"))
            for name in ("sgd", "adamw")}


def one_process(optimizer):
    model, stats = distributed.train(**RUN, optimizer=optimizer, corpus=scaling.char_corpus())
    return stats, model.state_dict()


def test_two_gloo_processes_take_the_steps_of_one(two_processes):
    stats_one, params_one = one_process("sgd")
    stats_two, params_two = two_processes["sgd"]
    assert (stats_one["world_size"], stats_one["backend"]) == (1, "none")
    assert (stats_two["world_size"], stats_two["backend"]) == (2, "gloo")
    assert distributed.max_abs_difference(params_one, params_two) < 1e-5
    untrained = {k: torch.zeros_like(v) for k, v in params_one.items()}
    assert distributed.max_abs_difference(params_one, untrained) > 1e-3   # the runs did train


def test_with_adamw_only_the_key_bias_differs(two_processes):
    # The attention's key bias has a true gradient of zero (a bias on every key adds the same number to
    # all of a query's scores, which softmax ignores); Adam rescales what is left, rounding noise, into
    # full steps, and the noise differs between 1 and 2 processes. Every other weight agrees.
    _, adam_one = one_process("adamw")
    _, adam_two = two_processes["adamw"]
    key_bias_differs = False
    for name in adam_one:
        diff = (adam_one[name] - adam_two[name]).abs()
        if name.endswith("attn.W_k.bias"):
            key_bias_differs |= bool(diff.max() > 1e-5)
        else:
            assert diff.max() < 1e-5, name
    assert key_bias_differs


def test_an_uneven_global_batch_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="does not split evenly"):
        distributed.train(num_steps=2, global_batch=8)


def test_unknown_optimizer_and_different_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        distributed.train(num_steps=2, global_batch=8, width=8, optimizer="lion")
    with pytest.raises(ValueError):
        distributed.max_abs_difference({"a": torch.zeros(1)}, {"b": torch.zeros(1)})
