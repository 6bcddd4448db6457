import json

import numpy as np
import pytest

from dltoolbox import compare, sweeps


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
    assert sweeps.chosen(table) == {"a": {"lr": 0.3}, "b": {"lr": 0.1}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table))
    assert sweeps.chosen(path) == table["chosen"]
    edited = {**table, "chosen": {"a": {"lr": 0.1}, "b": {"lr": 0.1}}}
    with pytest.raises(ValueError, match="not its rows' best"):
        sweeps.chosen(edited)


def test_unknown_sweep_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sweep"):
        sweeps.run("nonesuch")


def test_every_registered_sweep_names_a_function_that_exists():
    import importlib

    for name, (target, out) in sweeps.SWEEPS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function, None)), name
        assert out.startswith("chapters/") and out.endswith(".json"), name
