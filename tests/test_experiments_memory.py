"""Chapter 8's experiment protocol: the recall task's layout and splits, its scores on hand-made models, one
training run of each kind, what a step costs as the window grows, and the exponent and crossover fits."""
import json
import math

import pytest
import torch
from torch import nn

from dltoolbox import memory
from dltoolbox.attention import fit_exponent
from dltoolbox.experiments import memory as experiment

W = 64  # a short window for the tests
TINY = {"full": dict(n_embd=16, n_head=2, n_layer=1),
        "perceiver_ar": dict(n_latent=16, n_embd=16, n_head=2, n_layer=1),
        "megabyte": dict(patch_size=4, global_embd=16, global_layer=1, local_embd=8, local_layer=1, n_head=2)}
TINY_JOB = dict(window=W, steps=3, lr=3e-3, batch_size=4, n_eval=8, n_checkpoint=4, score_last=16)


def text(t):
    return bytes(t.tolist())


# --- the recall task -------------------------------------------------------------------------------------

def test_the_key_is_stated_after_its_marker_and_repeated_as_the_windows_last_bytes():
    X, Y = experiment.recall_examples(16, W)
    parts = experiment.layout(W)
    seq = torch.cat([X, Y[:, -1:]], dim=1)                                  # (B, W + 1): the whole example
    assert (Y[:, :-1] == X[:, 1:]).all()                                    # targets are the next bytes
    for row in seq:
        key = text(row[parts["key"].start:parts["key"].stop])
        assert text(row[:4]) == b"key=" and len(key) == 4 and key.isalpha() and key.islower()
        assert text(row[parts["recall"].start - 5:]) == b" key?" + key  # the recall ends the window
    assert list(parts["recall"]) == list(range(W - 3, W + 1))                # the last 4 targets
    assert len({text(row[4:8]) for row in seq}) > 12                         # keys differ between windows


def test_the_filler_is_a_stretch_of_the_splits_own_text():
    X, _ = experiment.recall_examples(8, W, split="test")
    parts = experiment.layout(W)
    test_text, train_text = (text(experiment.filler_text(s)) for s in ("test", "train"))
    for row in X:
        filler = text(row[parts["filler"].start:parts["filler"].stop])
        assert len(filler) == len(parts["filler"]) and filler in test_text and filler not in train_text


def test_the_splits_are_disjoint_and_cover_the_text():
    parts = [experiment.filler_text(s) for s in ("train", "valid", "test")]
    whole = torch.cat(parts)
    assert len(whole) > 300_000 and parts[0].max() < 128 and b"  " not in text(whole[:10_000])
    assert text(parts[0][-200:]) not in text(parts[2]) and text(parts[2][:200]) not in text(parts[0])
    with pytest.raises(ValueError, match="unknown split"):
        experiment.filler_text("dev")


def test_examples_are_deterministic_and_the_stream_moves_on():
    a, b = experiment.recall_examples(4, W), experiment.recall_examples(4, W)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(experiment.recall_examples(4, W, "valid")[0], a[0])
    assert not torch.equal(experiment.recall_examples(4, W, seed=1)[0], a[0])
    stream = experiment.recall_stream(4, W, seed=3)
    first, again = stream()[0], experiment.recall_stream(4, W, seed=3)()[0]
    assert torch.equal(first, again) and not torch.equal(stream()[0], first)


def test_a_smaller_key_alphabet_and_a_shorter_key():
    X, Y = experiment.recall_examples(64, W, key_len=2, letters=3)
    assert set(text(Y[:, -2:].flatten())) <= set(b"abc") and torch.equal(X[:, 4:6], Y[:, -2:])
    with pytest.raises(ValueError, match="no room"):
        experiment.layout(16, key_len=4)
    with pytest.raises(ValueError, match="letters"):
        experiment.recall_stream(4, W, letters=27)


# --- the scores ------------------------------------------------------------------------------------------------

class Fixed(nn.Module):
    """Logits for its last `predicts` positions: +20 on the next byte (looked up in `examples`, an (X, Y) pair
    whose rows it may be asked about in any chunks), or uniform where `examples` is None."""

    def __init__(self, examples=None, predicts=W, wrong_key=False):
        super().__init__()
        self.examples, self.predicts, self.wrong_key = examples, predicts, wrong_key

    def forward(self, idx, targets=None):
        logits = torch.zeros(*idx.shape, 256)
        if self.examples is not None:
            X, Y = self.examples
            answers = torch.stack([Y[(X == row).all(1).nonzero()[0, 0]] for row in idx])  # (b, T)
            if self.wrong_key:
                answers[:, -1] = (answers[:, -1] + 1) % 256  # the key's last byte wrong
            logits.scatter_(2, answers[..., None], 20.0)
        return logits[:, -self.predicts:], None


def test_a_model_that_knows_every_byte_recalls_all_and_pays_almost_no_bits():
    X, Y = experiment.recall_examples(16, W)
    for predicts in (W, 16):  # all positions, or only the last 16 as Perceiver AR
        s = experiment.score(Fixed((X, Y), predicts), X, Y, score_last=16)
        assert s["recall"] == 1.0 and s["recall_items"] == [1.0] * 16 and s["bits"] < 1e-6 and s["recall_bits"] < 1e-6


def test_recall_counts_key_bytes_and_bits_leave_the_key_out():
    X, Y = experiment.recall_examples(16, W)
    s = experiment.score(Fixed((X, Y), wrong_key=True), X, Y, score_last=16, chunk=5)
    assert s["recall"] == pytest.approx(0.75) and s["bits"] < 1e-6
    assert s["recall_bits"] == pytest.approx(20 / math.log(2) / 4, rel=1e-3)  # 20 nats on 1 key byte of 4
    uniform = experiment.score(Fixed(), X, Y, score_last=16)
    assert uniform["bits"] == pytest.approx(8.0) and uniform["recall_bits"] == pytest.approx(8.0)


def test_scoring_more_positions_than_a_model_predicts_is_refused():
    X, Y = experiment.recall_examples(4, W)
    with pytest.raises(ValueError, match="predicts only its last 8"):
        experiment.score(Fixed((X, Y), predicts=8), X, Y, score_last=16)
    with pytest.raises(ValueError, match="key_len <= score_last"):
        experiment.score(Fixed((X, Y)), X, Y, key_len=4, score_last=2)
    with pytest.raises(ValueError, match="no filler byte"):                 # " key?" and the key fill the last 9
        experiment.score(Fixed((X, Y)), X, Y, key_len=4, score_last=9)
    assert math.isfinite(experiment.score(Fixed(), X, Y, key_len=4, score_last=10)["bits"])


# --- one run -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", memory.KINDS)
def test_a_tiny_run_returns_every_score_finite(kind):
    job = {"kind": kind, "seed": 0, **TINY_JOB, **TINY[kind], "checkpoint_every": 2}
    r = experiment.run(job)
    cfg = memory.config_for(kind, W, **TINY[kind])
    assert r["job"] == job and r["parameters"] == sum(p.numel() for p in memory.build(cfg).parameters())
    for key in ("bits", "recall", "recall_bits", "train_seconds", "flops_per_byte", "train_flops", "loss"):
        assert math.isfinite(r[key]) and r[key] >= 0, key
    assert 0 <= r["recall"] <= 1 and len(r["recall_items"]) == 8 and r["curve"]["step"] == [2]
    predicted = 16 if kind == "perceiver_ar" else W
    assert r["train_flops"] == 3 * memory.flops_per_byte(cfg, W)["total"] * predicted * 4 * 3


def test_a_run_is_deterministic_and_its_seed_matters():
    job = {"kind": "megabyte", "seed": 0, **TINY_JOB, **TINY["megabyte"]}
    a, b, c = experiment.run(job), experiment.run(job), experiment.run({**job, "seed": 1})
    assert a["loss"] == b["loss"] and a["recall_items"] == b["recall_items"] and a["bits"] == b["bits"]
    assert c["loss"] != a["loss"]


@pytest.mark.parametrize("kind", memory.KINDS)
def test_a_run_scored_again_from_its_stored_weights_gives_its_scores(kind):
    job = {"kind": kind, "seed": 0, **TINY_JOB, **TINY[kind]}
    result = experiment.run(job)
    again = experiment.rescore({"job": result["job"], "state": result["state"]})  # what a stored run keeps
    assert {k: again[k] for k in ("recall", "recall_bits", "bits")} == \
        {k: result[k] for k in ("recall", "recall_bits", "bits")}
    assert experiment.rescore(result, on="valid")["bits"] != result["bits"]  # other windows, other bytes
    assert len(result["history"]["loss_per_50"]) == 1 and result["history"]["train_seconds"] > 0


def test_a_diverged_sweep_run_is_a_row_with_infinite_bits(monkeypatch):
    def diverge(job):
        raise FloatingPointError("the loss diverged")
    monkeypatch.setattr(experiment, "run", diverge)
    row = experiment._sweep_run({"kind": "full", "seed": 0, "lr": 1.0, "steps": 1})
    assert row["diverged"] and row["recall_bits"] == math.inf and row["bits"] == math.inf


def test_the_stored_jobs_give_each_kind_its_chosen_rate_and_equal_training_flops(tmp_path):
    rows = [{"kind": k, "lr": lr, "seed": 100, "valid_recall_bits": abs(lr - best)}
            for k, best in zip(memory.KINDS, (1e-3, 3e-3, 1e-3)) for lr in experiment.LR_GRID]
    from dltoolbox.experiments import sweeps
    table = sweeps.finish({"rows": rows, "settings": ["lr"], "metric": "valid_recall_bits", "goal": "min",
                           "arm": "kind"})
    path = tmp_path / "memory_sweep.json"
    path.write_text(json.dumps(table))
    jobs = experiment.stored_jobs(table=path)[:12]  # then Perceiver AR's smaller latent arrays
    assert [(j["kind"], j["lr"]) for j in jobs[::4]] == [("full", 1e-3), ("perceiver_ar", 3e-3), ("megabyte", 1e-3)]
    assert [j["seed"] for j in jobs] == list(experiment.STORED_SEEDS) * 3
    flops = {experiment.train_flops(memory.config_for(j["kind"], 256), 256, 8, j["steps"]) for j in jobs}
    assert max(flops) <= 1.01 * min(flops)


def test_a_job_with_a_missing_or_unknown_key_is_refused():
    with pytest.raises(ValueError, match="lacks"):
        experiment.run({"kind": "full", "seed": 0, "lr": 1e-3})
    with pytest.raises(ValueError, match="unknown job keys"):
        experiment.run({"kind": "full", "seed": 0, "lr": 1e-3, "steps": 1, "n_latent": 8})  # not a GPT size


def test_equal_compute_steps_spend_equal_flops():
    flops = experiment.train_flops(memory.config_for("full", 256), 256, 8, 400)
    for kind in memory.KINDS:
        steps = experiment.steps_for(kind, flops)
        spent = experiment.train_flops(memory.config_for(kind, 256), 256, 8, steps)
        assert spent == pytest.approx(flops, rel=0.01)
    # MEGABYTE predicts every byte at 124,928 FLOPs against full attention's 360,448 (memory's table)
    assert experiment.steps_for("full", flops) == 400 and experiment.steps_for("megabyte", flops) == 1154


def test_the_latent_scores_have_one_list_of_seeds_per_array_size_scored_on_the_same_bytes(monkeypatch):
    monkeypatch.setattr(experiment, "LATENTS", (16, 12))
    job = {**TINY_JOB, **{k: v for k, v in TINY["perceiver_ar"].items() if k != "n_latent"}, "kind": "perceiver_ar"}
    runs = [experiment.run({**job, "seed": s, "n_latent": n, "score_last": n}) for n in (16, 12) for s in (0, 1)]
    runs.append(experiment.run({**job, "kind": "full", "seed": 0, **TINY["full"]}))  # not Perceiver AR: left out
    curve = experiment.latent_scores(runs)
    assert curve["n_latent"] == [16, 12] and curve["score_last"] == 12
    assert all(math.isfinite(b) for bs in curve["bits"] for b in bs)
    assert [len(r) for r in curve["recall"]] == [2, 2] and all(0 <= r <= 1 for rs in curve["recall"] for r in rs)
    # the larger array scored on its last 12 predictions, not on its own 16
    assert curve["bits"][0][0] == experiment.rescore(runs[0], score_last=12)["bits"] != runs[0]["bits"]
    with pytest.raises(ValueError, match="not \\[16, 12\\]"):
        experiment.latent_scores(runs[:2])


def test_every_latent_array_predicts_more_than_the_recall_marker_and_key():
    assert experiment.LATENTS[0] == memory.PerceiverARConfig.n_latent and list(experiment.LATENTS) == sorted(
        experiment.LATENTS, reverse=True)
    assert min(experiment.LATENTS) > len(experiment.RECALL_MARK) + experiment.TASK["key_len"]


def test_the_stored_jobs_add_the_smaller_latent_arrays_at_perceiver_ars_rate_and_steps(tmp_path):
    rows = [{"kind": k, "lr": lr, "seed": 100, "valid_recall_bits": abs(lr - 1e-3)}
            for k in memory.KINDS for lr in experiment.LR_GRID]
    from dltoolbox.experiments import sweeps
    path = tmp_path / "memory_sweep.json"
    path.write_text(json.dumps(sweeps.finish({"rows": rows, "settings": ["lr"], "metric": "valid_recall_bits",
                                              "goal": "min", "arm": "kind"})))
    jobs = experiment.stored_jobs(table=path)
    par = [j for j in jobs if j["kind"] == "perceiver_ar"]
    assert [j.get("n_latent", 64) for j in par] == [n for n in experiment.LATENTS for _ in experiment.STORED_SEEDS]
    assert len({(j["lr"], j["steps"]) for j in par}) == 1


# --- cost as the window grows ---------------------------------------------------------------------------------

def test_cost_measures_every_kind_at_increasing_windows():
    windows = [32, 64, 128]
    table = experiment.cost(windows=windows, repeats=1, sizes=TINY)
    assert table["window"] == windows
    for kind in memory.KINDS:
        assert all(s > 0 for s in table[kind]["seconds"])
        assert table[kind]["saved_bytes"] == sorted(table[kind]["saved_bytes"]) and table[kind]["saved_bytes"][0] > 0
        assert set(table["summary"][kind]["flops"]) == {"region", "exponent", "end_slope", "crossover",
                                                        "cheaper_at_shortest"}
    assert table["summary"]["full"]["seconds"]["crossover"] is None
    with pytest.raises(ValueError, match="increasing"):
        experiment.cost(windows=[64, 32])


def test_saved_bytes_count_the_full_models_attention_weights_and_are_deterministic():
    cfg = memory.config_for("full", 128, **TINY["full"])  # 1 layer, 2 heads
    model = memory.build(cfg)
    X, Y = torch.randint(256, (2, 2, 128), generator=torch.Generator().manual_seed(0))
    first = experiment.saved_bytes(model, X, Y)
    assert first == experiment.saved_bytes(model, X, Y)
    assert first >= 2 * 2 * 128 * 128 * 4                            # at least the (B, heads, T, T) softmax
    perceiver = memory.build(memory.config_for("perceiver_ar", 128, **TINY["perceiver_ar"]))
    assert experiment.saved_bytes(perceiver, X, Y) < first / 2       # 16 latents: no T x T matrix


def test_the_exponent_fit_recovers_a_known_exponent_past_a_fixed_cost():
    lengths = [2 ** k for k in range(4, 13)]
    values = [max(0.5, 1e-6 * T ** 2) for T in lengths]            # a fixed cost per call, then T²
    region = experiment.growth_region(lengths, values)
    assert [lengths[i] for i in region] == [1024, 2048, 4096]
    assert fit_exponent([lengths[i] for i in region], [values[i] for i in region]) == pytest.approx(2)
    assert experiment.growth_region(lengths, [3.0 * T ** 1.5 for T in lengths]) == list(range(1, len(lengths)))
    assert experiment.growth_region(lengths, [5.0] * len(lengths)) == []
    added = [1.0 + 1e-6 * T ** 2 for T in lengths]                  # added, it bends the fit below 2
    region = experiment.growth_region(lengths, added)
    assert [lengths[i] for i in region] == [1024, 2048, 4096]
    assert 1.4 < fit_exponent([lengths[i] for i in region], [added[i] for i in region]) < 2


def test_the_growth_region_starts_at_the_cheapest_and_survives_a_noisy_step():
    lengths = [1, 2, 4, 8, 16, 32]
    values = [3.0, 1.0, 1.5, 2.5, 2.2, 9.0]                         # a slow first call, a dip, then growth
    assert experiment.growth_region(lengths, values) == [3, 4, 5]
    assert experiment.growth_region(lengths, values, factor=4) == [5]
    with pytest.raises(ValueError, match="factor"):
        experiment.growth_region(lengths, values, factor=1)


def test_the_crossover_of_two_power_laws_is_where_they_meet():
    lengths = [2 ** k for k in range(4, 11)]
    full, linear = [T ** 2 for T in lengths], [100.0 * T for T in lengths]
    assert experiment.crossover(lengths, linear, full) == pytest.approx(100.0)
    assert experiment.crossover(lengths, full, linear) is None       # never cheaper at the long end
    assert experiment.crossover(lengths, [1.0] * 7, full) == 16.0    # cheaper from the shortest on
    wobbly = [300.0, 100.0, 1e9, 1e9, 1e9, 1.0, 1.0]                 # cheaper, dearer, then cheaper for good
    assert 256 < experiment.crossover(lengths, wobbly, full) < 512


def test_summarise_fits_every_measure_and_crosses_against_full():
    lengths = [2 ** k for k in range(4, 11)]
    table = {"window": lengths, "full": {"seconds": [T ** 2 for T in lengths]},
             "perceiver_ar": {"seconds": [100.0 * T for T in lengths]}}
    s = experiment.summarise(table)
    assert s["full"]["seconds"]["exponent"] == pytest.approx(2) and s["full"]["seconds"]["crossover"] is None
    assert s["perceiver_ar"]["seconds"]["end_slope"] == pytest.approx(1)
    assert s["perceiver_ar"]["seconds"]["crossover"] == pytest.approx(100)
    assert not s["perceiver_ar"]["seconds"]["cheaper_at_shortest"]
    table["megabyte"] = {"seconds": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.5]}      # only the longest grows: no fit
    s = experiment.summarise(table)["megabyte"]["seconds"]
    assert s["region"] == [1024] and s["exponent"] is None and s["crossover"] == 16.0 and s["cheaper_at_shortest"]


def test_the_headline_jobs_give_every_kind_the_same_training_flops():
    jobs = experiment.equal_compute_jobs({"full": 1e-3, "perceiver_ar": 3e-3, "megabyte": 1e-2}, 500, seeds=(0, 1))
    assert [(j["kind"], j["seed"]) for j in jobs] == [(k, s) for k in memory.KINDS for s in (0, 1)]
    spent = {j["kind"]: experiment.train_flops(memory.config_for(j["kind"], 256), 256, 8, j["steps"]) for j in jobs}
    assert spent["megabyte"] == pytest.approx(spent["full"], rel=0.01)
    assert spent["perceiver_ar"] == pytest.approx(spent["full"], rel=0.01)
    assert jobs[0]["steps"] == 500 and jobs[0]["lr"] == 1e-3 and jobs[-1]["lr"] == 1e-2


def test_the_sweep_table_has_one_row_per_kind_rate_and_seed(monkeypatch):
    monkeypatch.setattr(experiment, "run", lambda job: {"recall": 0.5, "recall_bits": 1.0, "bits": 3.0,
                                                        "train_seconds": 1.0})
    table = experiment.sweep(lrs=(1e-3, 3e-3), full_steps=10, processes=1)
    assert len(table["rows"]) == 6 and {r["kind"] for r in table["rows"]} == set(memory.KINDS)
    assert table["metric"] == "valid_recall_bits" and table["goal"] == "min" and "on" not in table["config"]
