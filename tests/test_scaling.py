"""Chapter 7's tools: FLOP counting checked by hand, the scaling-law fit, the compute-optimal choice."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dltoolbox import gpt, scaling
from dltoolbox.experiments import scale

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "07_scale"


class TwoLayer(nn.Module):
    """x -> W2 relu(W1 x), no biases: its FLOPs can be counted by hand."""

    def __init__(self, a, b, c):
        super().__init__()
        self.first, self.second = nn.Linear(a, b, bias=False), nn.Linear(b, c, bias=False)

    def forward(self, x, targets):
        logits = self.second(torch.relu(self.first(x)))
        return logits, F.cross_entropy(logits, targets)


def test_measured_flops_match_the_hand_count():
    a, b, c, B = 7, 11, 5, 3
    model = TwoLayer(a, b, c)
    flops = scaling.measured_flops(model, torch.randn(B, a), torch.zeros(B, dtype=torch.long))
    assert flops["forward"] == 2 * B * (a * b + b * c)              # one multiply and one add per weight
    # backward: every weight's gradient (2 per weight), and the input gradient of the second layer only:
    # the first layer's input is data, which needs no gradient
    assert flops["backward"] == 2 * B * (a * b + b * c) + 2 * B * b * c
    assert flops["total"] == 4 * B * a * b + 6 * B * b * c
    n = scaling.non_embedding_parameters(model)
    assert n == a * b + b * c and flops["total"] <= scaling.training_flops(n, B)


def test_six_n_d_counts_the_weights_and_the_attention_term_the_rest():
    """The counted step splits into the weights' products (what 6ND counts: just under it, since N's biases
    and gains multiply nothing) and the attention's dense products, twice Kaplan et al.'s causal count."""
    model = scaling.make_model(scaling.RunConfig(width=32), vocab_size=84)
    X = torch.randint(84, (4, 32))
    flops = scaling.measured_flops(model, X, X)
    estimate = scaling.training_flops(scaling.non_embedding_parameters(model), X.numel())
    assert flops["weights"] + flops["attention"] == flops["total"]
    assert 0.9 < flops["weights"] / estimate < 1.0
    assert flops["attention"] == 2 * scaling.attention_flops(2, 32, 32, X.numel())


def test_non_embedding_parameters_leave_out_the_tables():
    model = gpt.GPT(gpt.GPTConfig(vocab_size=20, block_size=8, n_embd=16, n_head=4, n_layer=1))
    total = sum(p.numel() for p in model.parameters())
    assert scaling.non_embedding_parameters(model) == total - 20 * 16 - 8 * 16


def test_training_flops_and_bad_input():
    assert scaling.training_flops(1_000, 20_000) == 120_000_000
    with pytest.raises(ValueError):
        scaling.training_flops(-1, 5)


def test_fit_recovers_a_known_exponent():
    rng = np.random.default_rng(0)
    N = np.geomspace(2_000, 200_000, 6)
    L = scaling.power_law(N, 30.0, 0.3, 1.5) * (1 + 0.002 * rng.standard_normal(6))
    fit = scaling.fit_power_law(N, L)
    assert abs(fit["alpha"] - 0.3) < 0.03 and abs(fit["c"] - 1.5) < 0.1
    assert fit["alpha_se"] < 0.05
    with pytest.raises(ValueError):
        scaling.fit_power_law(N[:3], L[:3])
    with pytest.raises(ValueError):
        scaling.fit_power_law(-N, L)


def run(N, tokens, loss):
    return {"N": N, "tokens": tokens, "loss": loss}


def test_loss_at_tokens_interpolates_in_log_tokens_and_never_extrapolates():
    r = run(10, [100, 10_000], [3.0, 1.0])
    assert scaling.loss_at_tokens(r, 1_000) == pytest.approx(2.0)
    assert scaling.loss_at_tokens(r, 50) is None and scaling.loss_at_tokens(r, 20_000) is None


def test_compute_optimal_picks_the_lowest_loss_at_equal_compute():
    small = run(100, [1_000, 100_000], [3.0, 2.0])       # C = 6e5 -> D = 1000 (3.0); C = 6e7 -> D = 1e5 (2.0)
    big = run(1_000, [100, 10_000], [2.8, 1.5])           # C = 6e5 -> D = 100 (2.8);  C = 6e7 -> D = 1e4 (1.5)
    assert scaling.compute_optimal([small, big], 6e5)["best_N"] == 1_000
    tiny_budget = scaling.compute_optimal([small, big, run(100, [1_000, 100_000], [3.2, 2.2])], 6e7)
    assert tiny_budget["losses"][100] == pytest.approx(2.1)   # the two seeds of N = 100 are averaged
    with pytest.raises(ValueError):
        scaling.compute_optimal([small, big], 6e9)            # no size has a checkpoint at that D


def test_run_config_checks_its_fields():
    with pytest.raises(ValueError):
        scaling.RunConfig(width=10, n_head=4)
    with pytest.raises(ValueError):
        scaling.RunConfig(width=8, num_steps=0)


def test_a_short_run_is_reproducible_and_records_checkpoints():
    corpus = scaling.char_corpus()
    config = scaling.RunConfig(width=8, num_steps=6, eval_every=3, seed=1)
    a, b = scaling.train_run(config, corpus), scaling.train_run(config, corpus)
    assert a["loss"] == b["loss"] and a["tokens"] == [3 * 32 * 32, 6 * 32 * 32]
    assert a["N"] == scaling.non_embedding_parameters(scaling.make_model(config, len(corpus.vocab)))


def test_corpus_splits_are_disjoint_and_complete():
    corpus = scaling.char_corpus()
    total = len(corpus.train) + len(corpus.valid) + len(corpus.test)
    assert total == 383_070 and len(corpus.valid) == len(corpus.test) == int(0.05 * total)
    assert "".join(corpus.vocab[i] for i in corpus.train[:5].tolist()) == scaling.ngram.load_corpus("devil")[:5]


def test_committed_lr_sweep_tries_the_sweep_lrs_for_every_width_of_the_family():
    # that the table chooses from its rows and that the notebook trains its choice: tests/test_sweep_registry.py
    table = json.loads((CHAPTER / "lr_sweep.json").read_text())
    assert sorted(int(w) for w in table["chosen"]) == list(scale.FAMILY_WIDTHS)
    assert {r["lr"] for r in table["rows"]} == set(scale.SWEEP_LRS)


def test_loss_surface_fit_and_its_optimum():
    N, D = np.meshgrid(np.geomspace(1e3, 1e5, 5), np.geomspace(1e4, 1e6, 5))
    truth = dict(E=1.5, A=40.0, alpha=0.4, B=60.0, beta=0.35)
    L = scaling.loss_surface(N.ravel(), D.ravel(), **truth)
    fit = scaling.fit_loss_surface(N.ravel(), D.ravel(), L)
    assert abs(fit["alpha"] - 0.4) < 0.02 and abs(fit["beta"] - 0.35) < 0.02 and abs(fit["E"] - 1.5) < 0.05
    best = scaling.optimal_size(truth, 1e12)
    assert best["N"] * best["D"] * 6 == pytest.approx(1e12)
    grid = np.geomspace(best["N"] / 10, best["N"] * 10, 2001)                # a brute-force check
    brute = grid[np.argmin(scaling.loss_surface(grid, 1e12 / (6 * grid), **truth))]
    assert brute == pytest.approx(best["N"], rel=0.01)


def test_account_says_how_each_number_was_obtained():
    rows = {r["system"]: scaling.account(r) for r in scale.LANDMARKS}
    assert rows["GPT-3"]["flops"] == 3.14e23 and rows["GPT-3"]["flops_from"] == "reported"
    assert rows["Chinchilla"]["flops"] == pytest.approx(5.88e23) and rows["Chinchilla"]["flops_from"] == "6ND"
    s2s = rows["seq2seq (Sutskever et al.)"]
    assert s2s["device_days"] == 80 and s2s["flops"] == pytest.approx(80 * 86400 * 1e12)
    assert s2s["energy_kWh"] == pytest.approx(80 * 24 * 0.3)
    assert rows["AlphaStar league"]["device_days"] == 12 * 32 * 44
    assert rows["GPT-3"]["days_from"] == "FLOPs / rate"
    laptop = scaling.account({"system": "here", "N": 1e5, "D": 1e6, "devices": 2, "device": "CPU core",
                              "days": 1 / 24})
    assert laptop["energy_kWh"] == pytest.approx(2 / 24 * 24 * 10 / 1000)
    with pytest.raises(ValueError):
        scaling.account({"system": "nothing known"})


def test_fit_without_a_constant_is_kaplans_straight_line():
    N = np.geomspace(1_000, 100_000, 5)
    fit = scaling.fit_power_law(N, 9.0 * N ** -0.076, constant=False)
    assert fit["c"] == 0.0 and abs(fit["alpha"] - 0.076) < 1e-4 and fit["a"] == pytest.approx(9.0, rel=1e-3)
    with pytest.raises(ValueError):
        scaling.fit_power_law(N, -np.ones(5), constant=False)


def test_the_kernel_free_explorer_carries_the_fit_and_refuses_a_broken_one():
    surface = dict(E=1.5, A=40.0, alpha=0.4, B=60.0, beta=0.35)
    page = scale.explorer_html(surface, cpu_rate=5e9, accelerator_rate=3e13)
    assert '"alpha": 0.4' in page and 'id="scale-n"' in page and 'id="scale-prediction"' in page
    assert "http" not in page                                   # nothing to fetch: it works offline
    with pytest.raises(ValueError):
        scale.explorer_html({**surface, "beta": float("nan")}, cpu_rate=5e9, accelerator_rate=3e13)
