import math

import numpy as np
import pytest
import torch

from dltoolbox import lm, neural_lm
from dltoolbox.experiments import ngrams as experiment


def small(vocab_size=7, context=3):
    torch.manual_seed(0)
    return neural_lm.MLPLanguageModel(neural_lm.MLPConfig(vocab_size, context, num_embed=4, num_hiddens=16))


def test_forward_shapes_and_loss_starts_near_uniform():
    model = small()
    idx = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(0))
    logits, loss = model(idx)
    assert logits.shape == (2, 5, 7) and loss is None  # (B, T, V)
    _, loss = model(idx, torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(1)))
    assert abs(loss.item() - math.log(7)) < 0.5


def test_each_position_sees_only_its_k_previous_tokens():
    model = small(context=3)
    idx = torch.tensor([[1, 2, 3, 4, 5, 6]])
    changed = idx.clone()
    changed[0, 1] = 0  # affects positions 1, 2, 3 only
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.equal(a[0, 0], b[0, 0]) and torch.equal(a[0, 4:], b[0, 4:])
    assert not torch.allclose(a[0, 1:4], b[0, 1:4])
    assert model.contexts(idx)[0, 0].tolist() == [7, 7, 1]  # padded with id vocab_size


def test_overfits_one_batch_and_ignores_masked_targets():
    model = small()
    X = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 0, 1, 2]])
    y = torch.tensor([[1, 2, 3, 4, 5, 6, 0, 1, 2, 3]])
    y[0, :2] = lm.IGNORE
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        _, loss = model(X, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_generate_is_reproducible_with_a_generator_and_keeps_the_prompt():
    model = small()
    start = torch.tensor([[1, 2]])
    one = model.generate(start, 20, generator=torch.Generator().manual_seed(3))
    two = model.generate(start, 20, generator=torch.Generator().manual_seed(3))
    assert one.shape == (1, 22) and torch.equal(one, two) and one[0, :2].tolist() == [1, 2]
    assert ((0 <= one) & (one < 7)).all()


def test_training_lowers_held_out_bits_and_returns_a_history():
    text = ("abcab" * 400)
    ids = torch.tensor([ord(c) - ord("a") for c in text])
    model = small(vocab_size=3, context=2)
    before = neural_lm.bits_per_token(model, ids[-200:])
    history = neural_lm.train_lm(model, ids[:1600], ids[-200:], steps=60, batch_size=8, block_size=16,
                                 lr=1e-2, eval_every=20, generator=torch.Generator().manual_seed(0))
    assert history["step"] == [20, 40, 60] and len(history["valid_bits"]) == 3
    assert history["valid_bits"][-1] < before - 0.5


@pytest.mark.parametrize("call, message", [
    (lambda: small()(torch.tensor([1, 2])), "shape \\(B, T\\)"),
    (lambda: small()(torch.tensor([[1, 9]])), "token ids must be in 0..6"),
    (lambda: small().generate(torch.tensor([[1]]), 3, temperature=-0.5), "temperature must be >= 0"),
    (lambda: neural_lm.MLPLanguageModel(neural_lm.MLPConfig(vocab_size=0)), "must be >= 1"),
    (lambda: neural_lm.batches(torch.arange(5), 2, 8, 3, torch.Generator()), "fewer than a window"),
    (lambda: neural_lm.bits_per_token(small(), torch.tensor([1])), "at least two"),
    (lambda: neural_lm.train_lm(small(), torch.arange(7), torch.arange(7), steps=0), "steps and eval_every"),
])
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = neural_lm.MLPLanguageModel(neural_lm.MLPConfig(7, 3, num_embed=4, num_hiddens=16, dropout=0.5))
    idx = torch.tensor([[1, 2, 3, 4]])
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    with pytest.raises(ValueError, match="dropout must be in"):
        neural_lm.MLPLanguageModel(neural_lm.MLPConfig(7, dropout=1.0))


def test_early_stopping_keeps_the_weights_of_the_best_validation_step():
    ids = torch.tensor([ord(c) - ord("a") for c in "abcab" * 400])
    model = small(vocab_size=3, context=2)
    history = neural_lm.train_lm(model, ids[:1600], ids[-200:], steps=60, batch_size=8, block_size=16, lr=0.2,
                                 eval_every=10, generator=torch.Generator().manual_seed(0), keep_best=True)
    best = history["valid_bits"].index(min(history["valid_bits"]))
    assert history["best_step"] == history["step"][best]
    assert neural_lm.bits_per_token(model, ids[-200:]) == pytest.approx(min(history["valid_bits"]), abs=1e-6)


def test_log2_probs_match_the_loss_and_interpolation_is_a_mixture():
    model = small()
    ids = torch.tensor([1, 2, 3, 4, 5, 6, 0, 1])
    log2 = neural_lm.log2_probs(model, ids)
    assert log2.shape == (7,) and -log2.mean().item() == pytest.approx(neural_lm.bits_per_token(model, ids), rel=1e-5)
    a, b = np.log2([0.5, 0.25]), np.log2([0.25, 0.5])
    assert np.allclose(neural_lm.interpolate(a, b, 1.0), a) and np.allclose(neural_lm.interpolate(a, b, 0.0), b)
    assert np.allclose(2 ** neural_lm.interpolate(a, b, 0.5), [0.375, 0.375])
    # a model that is right where the other is wrong earns weight; a useless one gets none
    good, bad = np.log2([0.9, 0.9, 0.1]), np.log2([0.1, 0.1, 0.9])
    assert 0 < neural_lm.mixture_weight(good, bad) < 1
    assert neural_lm.mixture_weight(np.log2([0.01] * 3), np.log2([0.5] * 3)) == 0.0
    with pytest.raises(ValueError, match="weight must be in"):
        neural_lm.interpolate(a, b, 1.5)
    with pytest.raises(ValueError, match="same tokens"):
        neural_lm.interpolate(a, b[:1], 0.5)



def test_job_for_puts_model_sizes_in_the_config_and_the_rest_in_training():
    import inspect

    job = experiment.job_for({"lr": 0.03, "dropout": 0.1, "steps": 500}, 7)
    assert job["seed"] == 7 and job["config"]["dropout"] == 0.1 and job["train"]["lr"] == 0.03
    assert job["train"]["steps"] == 500 and job["data"] == "fit"
    assert experiment.job_for({"lr": 0.03}, 7, data="train")["data"] == "train"
    assert neural_lm.MLPConfig(vocab_size=5, **job["config"]).num_hiddens == experiment.SWEEP_FIXED["num_hiddens"]
    assert set(job["train"]) <= set(inspect.signature(neural_lm.train_lm).parameters)


def test_committed_mlp_sweep_is_on_validation_over_the_whole_grid_and_the_stored_runs_train_on_all_the_text():
    # that the table chooses from its rows and that the notebook trains its choice: tests/test_sweep_registry.py
    import json
    from itertools import product
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "chapters" / "02_ngrams"
    table = json.loads((root / "sweep.json").read_text())
    chosen = table["chosen"]["None"]  # one arm
    assert table["metric"] == "valid_bits" and table["config"] == experiment.SWEEP_FIXED
    assert set(chosen) == set(experiment.SWEEP_GRID) and set(experiment.SWEEP_GRID["dropout"]) >= {0.0, 0.1}
    seeds = {}
    for row in table["rows"]:
        seeds.setdefault(tuple(row[k] for k in table["settings"]), set()).add(row["seed"])
    assert set(seeds) == set(product(*experiment.SWEEP_GRID.values()))  # every setting of the grid was tried
    assert all(s == set(experiment.SWEEP_SEEDS) for s in seeds.values())  # with the same seeds: the same effort
    assert set(experiment.SWEEP_SEEDS).isdisjoint({0, 1, 2, 3}), "the notebook's seeds are not the sweep's"
    # the same tuning effort as the n-gram model: at least as many settings as its orders x discounts
    assert len(seeds) >= len(experiment.KN_ORDERS) * len(experiment.KN_DISCOUNTS)
    # the committed weights are the chosen setting's, trained on all the training text like the counts
    manifest = json.loads((root / "mlp_runs.json").read_text())
    assert manifest["jobs"] == json.loads(json.dumps(experiment.stored_jobs()))
    assert all(job["data"] == "train" for job in manifest["jobs"])


def test_run_on_all_the_training_text_has_no_validation_to_stop_on():
    job = experiment.job_for({"lr": 0.01, "dropout": 0.0, "steps": 3, "eval_every": 3, "num_hiddens": 8,
                             "batch_size": 2, "block_size": 8}, 0, data="train")
    result = experiment.run(job)
    assert "valid_log2" not in result and result["history"]["valid_bits"] == []
    assert "best_step" not in result["history"] and result["held_log2"].ndim == 1
    with pytest.raises(ValueError, match="data"):
        experiment.run({**job, "data": "held"})
    with pytest.raises(ValueError, match="keep_best"):
        neural_lm.train_lm(neural_lm.MLPLanguageModel(neural_lm.MLPConfig(vocab_size=5)), torch.arange(5).repeat(20),
                           None, steps=2, keep_best=True)


def _table(rows):
    return {"rows": rows, "settings": list(experiment.SWEEP_GRID), "metric": "valid_bits", "goal": "min", "arm": None}


def _grid_rows(score):
    from itertools import product

    return [{"lr": lr, "dropout": d, "steps": n, "seed": 100, "valid_bits": score(lr, d, n)}
            for lr, d, n in product(*experiment.SWEEP_GRID.values())]


def test_beyond_the_grid_tries_the_next_value_of_each_setting_chosen_at_its_largest():
    # the best at the largest lr and steps: one run beyond each, around the choice
    rows = _grid_rows(lambda lr, d, n: 3 - lr - n / 1e5 + abs(d - 0.1))
    jobs = experiment.beyond_jobs(_table(rows))
    got = {(j["train"]["lr"], j["config"]["dropout"], j["train"]["steps"], j["seed"]) for j in jobs}
    assert got == {(0.04, 0.1, 20000, 100), (0.02, 0.1, 50000, 100)}
    # once tried, and worse, nothing more to run: the choice is inside
    worse = [{"lr": lr, "dropout": 0.1, "steps": n, "seed": 100, "valid_bits": 9.0} for lr, _, n, _ in got]
    assert experiment.beyond_jobs(_table(rows + worse)) == []
    # a choice inside every grid needs nothing
    assert experiment.beyond_jobs(_table(_grid_rows(lambda lr, d, n: abs(lr - 0.01) + abs(n - 8000) / 1e4))) == []
    # better beyond: the next step further
    better = [{**w, "valid_bits": 1.0 if w["steps"] == 50000 else 9.0} for w in worse]
    assert [(j["train"]["steps"], j["train"]["lr"]) for j in experiment.beyond_jobs(_table(rows + better))] == [(125000, 0.02)]
