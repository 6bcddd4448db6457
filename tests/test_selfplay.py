"""The KL leash experiment: baseline, opponent pools, the arms' runs, and the committed sweep table."""
import json

import numpy as np
import pytest
import torch

from conftest import ROOT
from dltoolbox import games, imitation, selfplay
from dltoolbox.experiments import replays as experiment

CHAPTER = ROOT / "chapters" / "05_replays"
TINY = {"num_steps": 2, "games_per_step": 8, "eval_every": 1, "eval_games": 4}


@pytest.fixture(scope="module")
def setup(one_thread):
    torch.manual_seed(0)
    replays = games.generate_replays(60, seed=3)
    return imitation.BoardNet(), imitation.to_tensors(replays)


def test_kl_with_given_log_probs_is_the_same(setup):
    net, human = setup
    other = imitation.BoardNet()
    b, m = human["boards"][:50], human["masks"][:50]
    logp = torch.log_softmax(imitation.masked_logits(other, b, m), 1)
    torch.testing.assert_close(selfplay.kl_to_reference(other, net, b, m, logp),
                               selfplay.kl_to_reference(other, net, b, m))


def test_the_value_baseline_learns_and_the_policy_moves(setup):
    net, human = setup
    policy = imitation.BoardNet()
    policy.load_state_dict(net.state_dict())
    history = selfplay.finetune(policy, net, human, num_steps=3, games_per_step=16, eval_every=3, eval_games=4,
                                baseline=True, pool=experiment.VALID_POOL)
    assert len(history["value_loss"]) == 3 and all(np.isfinite(history["value_loss"]))
    assert history["kl_to_bc"][0] == pytest.approx(0, abs=1e-6) and history["kl_to_bc"][-1] > 0
    assert set(history) >= {"win_vs_bc", "win_vs_pool", "human_agreement"}


def test_pools_are_disjoint_and_not_the_replay_players():
    replay_players = {(noise, 1.0) for noise in games.SKILLS}
    valid, test = set(experiment.VALID_POOL), set(experiment.TEST_POOL)
    assert not valid & test and not (valid | test) & replay_players
    assert len(test) == len(experiment.TEST_POOL) >= 3


def test_arms_start_where_they_should_and_return_test_scores(setup):
    net, human = setup
    results = {job["arm"]: experiment.run_arm({**job, "test_games": 4})
               for job in experiment.jobs(["scratch", "free", "leash"], [1], net, human, kl_coef=0.5, run=TINY)}
    assert results["free"]["history"]["kl_to_bc"][0] == pytest.approx(0, abs=1e-6)
    assert results["leash"]["history"]["kl_to_bc"][0] == pytest.approx(0, abs=1e-6)
    assert results["scratch"]["history"]["kl_to_bc"][0] > 1e-4, "from scratch means not from BC"
    assert [results[a]["kl_coef"] for a in ("scratch", "free", "leash")] == [0.0, 0.0, 0.5]
    for r in results.values():
        assert r["test_scores"].shape == (len(experiment.TEST_POOL), 4)
        assert r["human_hits"].shape == (len(human["moves"]),) and r["kl_to_bc"] >= 0


def test_committed_kl_sweep_tries_the_kl_grid_and_seeds_at_the_notebooks_budget():
    # that the table chooses from its rows and that the notebook trains its choice: tests/test_sweep_registry.py
    table = json.loads((CHAPTER / "kl_sweep.json").read_text())
    chosen = table["chosen"]
    assert chosen["free"] == {"kl_coef": 0.0} and chosen["leash"]["kl_coef"] in experiment.KL_GRID
    tried = {(r["arm"], r["kl_coef"], r["seed"]) for r in table["rows"]}
    assert tried == {("free", 0.0, s) for s in experiment.SWEEP_SEEDS} | \
        {("leash", c, s) for c in experiment.KL_GRID for s in experiment.SWEEP_SEEDS}
    assert table["config"]["num_steps"] == experiment.RUN["num_steps"], "the sweep ran the notebook's budget"


def test_the_notebook_trains_the_validation_choice_and_scores_on_the_test_pool_only():
    table = json.loads((CHAPTER / "kl_sweep.json").read_text())
    assert set(map(tuple, table["config"]["valid_pool"])).isdisjoint(experiment.TEST_POOL), "test players never tune"
    cells = json.loads((CHAPTER / "kl_leash.ipynb").read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert 'table = json.loads(Path("kl_sweep.json").read_text())' in source
    assert 'KL = chosen["leash"]["kl_coef"]' in source
    assert "experiment.jobs(ARMS, SEEDS, bc_net, human, kl_coef=KL)" in source
    assert "SEEDS = (0, 1, 2, 3)" in source and set(experiment.SWEEP_SEEDS).isdisjoint({0, 1, 2, 3})
