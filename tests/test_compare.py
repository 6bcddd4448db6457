import json
import os

import numpy as np
import pytest

from dltoolbox import compare
from dltoolbox.experiments import sweeps


def test_mean_interval_matches_t_table():
    mean, half = compare.mean_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) · s / √n
    with pytest.raises(ValueError):
        compare.mean_interval([1.0])
    with pytest.raises(ValueError):
        compare.mean_interval([1.0, float("nan")])


def test_paired_seed_interval_removes_the_shared_seed_effect():
    a, b = np.array([0.5, 0.7, 0.9]), np.array([0.4, 0.6, 0.8])  # seeds vary a lot, the gap does not
    mean, half = compare.paired_seed_interval(a, b)
    assert mean == pytest.approx(0.1) and half == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        compare.paired_seed_interval([1, 2, 3], [1, 2])


def test_paired_bootstrap_covers_a_known_difference_and_is_seeded():
    rng = np.random.default_rng(1)
    base = rng.normal(size=400)
    a, b = base + 0.3 + rng.normal(scale=0.1, size=400), base
    out = compare.paired_bootstrap(a, b, seed=3)
    assert out["low"] < 0.3 < out["high"] and out["high"] - out["low"] < 0.05
    assert out == compare.paired_bootstrap(a, b, seed=3)
    seeds = compare.paired_bootstrap(np.stack([a, a]), np.stack([b, b]))
    assert seeds["low"] < 0.3 < seeds["high"]
    with pytest.raises(ValueError):
        compare.paired_bootstrap(a, b[:-1])


def test_mcnemar_counts_discordant_items_and_is_exact():
    a = np.array([1] * 10 + [0] * 0 + [1] * 5)
    b = np.array([0] * 10 + [1] * 5)
    out = compare.mcnemar(a, b)
    assert (out["a_only"], out["b_only"]) == (10, 0)
    assert out["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert compare.mcnemar([1, 0], [1, 0])["p_value"] == 1.0
    with pytest.raises(ValueError):
        compare.mcnemar([1, 0], [1])


def _square(x):
    return x * x


def test_run_parallel_keeps_order_and_matches_serial():
    assert compare.run_parallel(_square, [3, 1, 2], processes=2) == [9, 1, 4]
    assert compare.run_parallel(_square, [3, 1, 2], processes=1) == [9, 1, 4]
    with pytest.raises(ValueError):
        compare.run_parallel(_square, [1], processes=0)



def _pid(_):
    import os

    return os.getpid()


def test_the_suite_never_runs_more_training_processes_than_cores(monkeypatch):
    monkeypatch.delenv("DLTOOLBOX_PROCESSES", raising=False)
    monkeypatch.setattr(compare.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")  # two workers on two cores: one process each
    assert compare.processes_for(2) == 1
    assert set(compare.run_parallel(_pid, range(3), processes=2)) == {__import__("os").getpid()}
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1")
    assert compare.processes_for(2) == 2 and compare.processes_for(4) == 2
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert compare.processes_for(3) == 3
    monkeypatch.setenv("DLTOOLBOX_PROCESSES", "1")
    assert compare.processes_for(3) == 1
    monkeypatch.setenv("DLTOOLBOX_PROCESSES", "two")
    with pytest.raises(ValueError, match="DLTOOLBOX_PROCESSES"):
        compare.processes_for(2)


def test_a_chapter_s_runs_do_not_depend_on_how_many_processes_train_them(monkeypatch):
    from dltoolbox import scaling as sc
    from dltoolbox.experiments import scale

    configs = [sc.RunConfig(width=16, num_steps=6, warmup=2, eval_every=3, seed=s) for s in (0, 1)]
    monkeypatch.setenv("DLTOOLBOX_PROCESSES", "1")
    alone = scale.run_family(configs, processes=2)
    monkeypatch.delenv("DLTOOLBOX_PROCESSES")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    together = scale.run_family(configs, processes=2)
    assert [r["loss"] for r in alone] == [r["loss"] for r in together]


ROWS = [{"arm": "a", "lr": 0.1, "seed": 0, "loss": 1.0}, {"arm": "a", "lr": 0.1, "seed": 1, "loss": 3.0},
        {"arm": "a", "lr": 0.3, "seed": 0, "loss": 1.5}, {"arm": "a", "lr": 0.3, "seed": 1, "loss": 1.6},
        {"arm": "b", "lr": 0.1, "seed": 0, "loss": 0.5}, {"arm": "b", "lr": 0.1, "seed": 1, "loss": 0.7},
        {"arm": "b", "lr": 0.3, "seed": 0, "loss": 0.9}, {"arm": "b", "lr": 0.3, "seed": 1, "loss": 0.9}]


def test_best_settings_per_arm_by_mean_over_seeds():
    best = sweeps.best_settings(ROWS, ["lr"], "loss", "min", arm="arm")
    assert best == {"a": {"lr": 0.3}, "b": {"lr": 0.1}}  # a: 2.0 vs 1.55 — the mean, not the best seed
    assert sweeps.best_settings(ROWS, ["lr"], "loss", "max", arm="arm") == {"a": {"lr": 0.1}, "b": {"lr": 0.3}}
    with pytest.raises(ValueError):
        sweeps.best_settings(ROWS, ["lr"], "loss", "lowest")
    with pytest.raises(ValueError):
        sweeps.best_settings([{"lr": 1}], ["lr"], "loss")


def test_chosen_refuses_an_edited_table(tmp_path):
    table = sweeps.finish({"rows": ROWS, "settings": ["lr"], "metric": "loss", "goal": "min", "arm": "arm"})
    assert sweeps.chosen(table, allow_edge=True) == {"a": {"lr": 0.3}, "b": {"lr": 0.1}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table))
    assert sweeps.chosen(path, allow_edge=True) == table["chosen"]
    edited = {**table, "chosen": {"a": {"lr": 0.1}, "b": {"lr": 0.1}}}
    with pytest.raises(ValueError, match="not its rows' best"):
        sweeps.chosen(edited)


def test_unknown_sweep_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sweep"):
        sweeps.run("nonesuch")


def test_seed_difference_is_a_t_interval_over_per_seed_differences():
    a = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1], [0, 1, 0, 1]], dtype=float)
    b = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [1, 1, 0, 1], [0, 0, 0, 1]], dtype=float)
    out = compare.seed_difference(a, b)
    per_seed = (a - b).mean(axis=1)
    mean, half = compare.mean_interval(per_seed)
    assert out["per_seed"] == pytest.approx(per_seed.tolist()) and out["seeds"] == 4
    assert (out["difference"], out["low"], out["high"]) == pytest.approx((mean, mean - half, mean + half))
    assert compare.seed_difference(a.mean(1), b.mean(1))["low"] == pytest.approx(out["low"])
    with pytest.raises(ValueError):
        compare.seed_difference(a, b[:3])
    with pytest.raises(ValueError):
        compare.seed_difference(a[:1], b[:1])  # one seed has no interval


def _coverage(interval, simulations=300, seeds=4, items=200, true_gap=0.05, seed_sd=0.03, item_sd=0.3):
    """How often `interval(a, b) -> (low, high)` covers the true expected difference, when each training
    seed shifts the difference by its own amount (sd `seed_sd`) and items add noise (sd `item_sd`)."""
    rng = np.random.default_rng(12345)
    hits = 0
    for _ in range(simulations):
        b = rng.normal(size=(seeds, items))
        a = b + true_gap + rng.normal(scale=seed_sd, size=(seeds, 1)) + rng.normal(scale=item_sd, size=(seeds, items))
        low, high = interval(a, b)
        hits += low <= true_gap <= high
    return hits / simulations


def test_seed_interval_covers_the_true_difference_and_the_item_bootstrap_does_not():
    def by_seeds(a, b):
        out = compare.seed_difference(a, b)
        return out["low"], out["high"]

    def by_items(a, b):
        out = compare.paired_bootstrap(a, b, resamples=200)
        return out["low"], out["high"]

    assert 0.92 <= _coverage(by_seeds) <= 0.98  # a 95% interval, over seeds
    assert _coverage(by_items) < 0.8  # items only: far too narrow once seeds differ
    # With no seed-to-seed spread the item bootstrap is right, so the test above measures the seeds' effect.
    assert _coverage(by_items, seed_sd=0.0) > 0.9


def test_budget_states_steps_seconds_and_flops():
    table = compare.budget({"plain": {"steps": 400, "seconds": [20.0, 22.0], "parameters": 1000, "tokens": 50},
                            "attention": {"steps": 1200, "seconds": [63.0], "parameters": 2000, "tokens": 150}})
    assert "| plain | 400 | 21.0 | 1,000 | 3.00e+05 |" in table.markdown
    assert "| attention | 1,200 | 63.0 | 2,000 | 1.80e+06 |" in table.markdown
    with pytest.raises(ValueError, match="lacks"):
        compare.budget({"a": {"steps": 1}})


def _hygiene(_):
    from dltoolbox import progress
    return progress.enabled(), os.environ.get(progress.DISABLE_ENV_VAR)


def test_run_parallel_silences_the_jobs_bars_and_leaves_this_process_as_it_was(monkeypatch):
    """Workers: no bars. Here: the jobs' bars off while they run, and the setting restored after."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.delenv("DLTOOLBOX_PROCESSES", raising=False)
    monkeypatch.delenv("DLTOOLBOX_NO_PROGRESS", raising=False)
    assert [bars for bars, _ in compare.run_parallel(_hygiene, [0, 1], processes=2)] == [False] * 2
    assert compare.run_parallel(_hygiene, [0], processes=1) == [(False, "1")]
    assert "DLTOOLBOX_NO_PROGRESS" not in os.environ
    monkeypatch.setenv("DLTOOLBOX_NO_PROGRESS", "0")
    compare.run_parallel(_hygiene, [0], processes=1)
    assert os.environ["DLTOOLBOX_NO_PROGRESS"] == "0"
