import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dltoolbox import games, imitation, selfplay
from dltoolbox.experiments import replays as experiment
from dltoolbox.games import Games, RandomAgent, ScriptedAgent, State


@pytest.fixture(scope="module")
def data(one_thread):
    torch.manual_seed(0)
    replays = games.generate_replays(300, seed=1)
    return replays, imitation.to_tensors(replays)


def test_board_net_shapes_and_bad_input():
    net = imitation.BoardNet()
    boards = torch.zeros(5, 6, 7, dtype=torch.int8)
    assert net(boards).shape == (5, 7)
    assert imitation.BoardNet(out=1)(boards).shape == (5, 1)
    with pytest.raises(ValueError, match="expected boards of shape"):
        net(torch.zeros(5, 7, 6))


def test_policy_probs_sum_to_one_with_zero_on_illegal_moves(data):
    replays, _ = data
    net = imitation.BoardNet()
    probs = imitation.policy_probs(net, replays["boards"][:50], replays["masks"][:50])
    np.testing.assert_allclose(probs.sum(1), 1)
    assert np.all(probs[~replays["masks"][:50]] == 0)


def test_bc_overfits_one_batch_and_train_rejects_an_unknown_kind(data):
    _, tensors = data
    small = {k: v[:64] for k, v in tensors.items()}
    net = imitation.BoardNet()
    history = imitation.train(net, small, "policy", num_steps=150, batch_size=64, lr=1e-2, eval_every=50,
                              valid=small)
    assert history["train_loss"][-1] < history["train_loss"][0] / 2
    assert history["valid_metric"][-1] > 0.8
    with pytest.raises(ValueError, match="kind must be"):
        imitation.train(net, small, "critic")


def test_value_training_lowers_its_loss(data):
    _, tensors = data
    net = imitation.BoardNet(out=1)
    before = imitation.value_loss(net, tensors)
    imitation.train(net, tensors, "value", num_steps=100, batch_size=256, eval_every=50)
    assert imitation.value_loss(net, tensors) < before


def test_split_holds_out_whole_games(data):
    replays, _ = data
    train, valid = imitation.split_games(replays, 0.1)
    assert not set(replays["game"][train]) & set(replays["game"][valid])
    assert len(set(replays["game"][valid])) == 30


class ConstantValue(torch.nn.Module):
    """A value net that says 0.5 for every position."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, boards):
        return self.w.expand(len(boards), 1)


def test_action_values_score_wins_exactly_and_search_sees_a_loss():
    state = State.initial()
    for m in [0, 6, 1, 6, 2]:
        state = state.play(m)  # O to move: X threatens 3, O threatens nothing yet
    view = Games.from_states([state]).own_view()
    q1 = imitation.action_values(ConstantValue(), view, depth=1)[0]
    np.testing.assert_allclose(q1, 0.5)
    q2 = imitation.action_values(ConstantValue(), view, depth=2)[0]
    assert q2[3] == 0.5 and all(q2[c] == 0 for c in range(7) if c != 3), "every move but the block loses"
    win = State.initial()
    for m in [0, 6, 1, 6, 2, 5]:
        win = win.play(m)
    assert imitation.action_values(ConstantValue(), Games.from_states([win]).own_view())[0, 3] == 1
    with pytest.raises(ValueError, match="depth must be 1 or 2"):
        imitation.action_values(ConstantValue(), view, depth=3)


def test_neural_agents_never_choose_an_illegal_move(data):
    net, value = imitation.BoardNet(), imitation.BoardNet(out=1)
    agents = [imitation.PolicyAgent(net), imitation.ValueGuidedAgent(net, value, depth=1),
              imitation.ValueGuidedAgent(net, value, depth=2, greedy=True)]
    for agent in agents:
        batch, turn = Games(40), 0
        while not batch.done.all():
            moves = agent.act_batch(batch) if turn % 2 == 0 else RandomAgent(seed=turn).act_batch(batch)
            live = ~batch.done
            assert batch.legal_mask()[live, moves[live]].all()
            batch.play(moves)
            turn += 1
    full_but_one = State.initial()
    for m in [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0]:
        full_but_one = full_but_one.play(m)
    assert all(agent.act(full_but_one) in full_but_one.legal_moves() for agent in agents)


def test_match_alternates_colours_and_pairs_openings():
    result = imitation.play_match(ScriptedAgent(0.0), RandomAgent(), num_games=40, seed=3)
    assert result["a_first"].tolist() == [True, False] * 20
    assert result["a_score"].mean() > 0.8
    again = imitation.play_match(ScriptedAgent(0.0), RandomAgent(), num_games=40, seed=3)
    np.testing.assert_array_equal(result["a_score"], again["a_score"])
    with pytest.raises(ValueError, match="even number"):
        imitation.play_match(RandomAgent(), RandomAgent(), num_games=41)


def test_match_between_identical_agents_is_fair_and_first_move_matters():
    result = imitation.play_match(RandomAgent(), RandomAgent(), num_games=400, seed=0)
    assert abs(result["a_score"].mean() - 0.5) < 0.08
    first = result["a_score"][result["a_first"]].mean()
    assert first > result["a_score"][~result["a_first"]].mean()


def test_wilson_interval_by_hand():
    low, high = imitation.wilson_interval(340, 400)
    assert low == pytest.approx(0.8117, abs=1e-4) and high == pytest.approx(0.8817, abs=1e-4)
    assert imitation.wilson_interval(0, 10)[0] == 0.0
    with pytest.raises(ValueError, match="n must be positive"):
        imitation.wilson_interval(0, 0)


def test_summarised_match_scores_and_their_table():
    scores = [{("scripted", "random"): imitation.play_match(ScriptedAgent(0.0), RandomAgent(), 20, seed=s)["a_score"]}
              for s in (0, 1)]
    rows = experiment.summarise(scores)
    assert rows[0]["games"] == 20 and rows[0]["seeds"] == 2 and rows[0]["low"] <= rows[0]["win"] <= rows[0]["high"]
    assert "| scripted | random | 20 |" in experiment.format_table(rows)


def test_kl_to_reference_is_zero_for_itself_and_positive_otherwise(data):
    _, tensors = data
    net, other = imitation.BoardNet(), imitation.BoardNet()
    boards, masks = tensors["boards"][:100], tensors["masks"][:100]
    assert selfplay.kl_to_reference(net, net, boards, masks).item() == pytest.approx(0, abs=1e-6)
    assert selfplay.kl_to_reference(net, other, boards, masks).item() > 0


def test_self_play_rewards_are_zero_sum_and_finetune_returns_a_history(data):
    _, tensors = data
    net = imitation.BoardNet()
    boards, masks, moves, reward = selfplay.self_play(net, 20, np.random.default_rng(0))
    assert masks[np.arange(len(moves)), moves].all()
    assert set(np.unique(reward)) <= {-1.0, 0.0, 1.0}
    reference = copy.deepcopy(net)
    history = selfplay.finetune(net, reference, tensors, num_steps=4, games_per_step=16, kl_coef=0.5,
                                eval_every=2, eval_games=10)
    assert history["step"] == [0, 2, 4] and len(history["pg_loss"]) == 4
    assert history["kl_to_bc"][0] == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="kl_coef must be non-negative"):
        selfplay.finetune(net, reference, tensors, kl_coef=-1)


def test_calibration_bins_and_error_by_hand():
    data = {"boards": torch.zeros(4, 6, 7, dtype=torch.int8), "outcome": torch.tensor([1, 1, 0, -1])}
    cal = imitation.calibration(ConstantValue(), data, bins=10)  # predicts 0.5 everywhere
    assert cal["count"][5] == 4 and cal["count"].sum() == 4
    assert cal["predicted"][5] == 0.5 and cal["observed"][5] == pytest.approx(0.625)
    assert cal["ece"] == pytest.approx(0.125) and np.isnan(cal["observed"][0])


def test_summarise_gives_the_mean_over_seeds_and_an_interval():
    games_ = [np.array([1.0, 1.0, 0.0, 0.5]), np.array([1.0, 0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0, 0.0])]
    row = experiment.summarise([{("a", "b"): g} for g in games_])[0]
    assert row["win"] == pytest.approx(0.5) and row["low"] < 0.5 < row["high"]
    assert row["games"] == 4 and row["seeds"] == 3 and row["draw"] == pytest.approx(1 / 12)
    assert "| a | b | 4 |" in experiment.format_table([row], interval="95% interval (3 seeds)")


def test_agents_take_the_beta_chosen_for_their_depth():
    states = {net: imitation.BoardNet(out=1 if net == "value" else 7).state_dict()
              for net in ("bc", "winners", "value")}
    agents = experiment.agents(states, {1: 3.0, 2: 5.0})
    assert (agents["BC + value"].beta, agents["BC + value"].depth) == (3.0, 1)
    assert (agents["BC + value + search"].beta, agents["BC + value + search"].depth) == (5.0, 2)
    scores = experiment.play_test_matches({"seed": 0, "states": states, "betas": {1: 3.0, 2: 5.0},
                                          "opponent": "random", "num_games": 4})
    assert set(scores) == set(agents) | {"scripted(0.05)"} and all(len(s) == 4 for s in scores.values())


def test_committed_beta_table_tries_experiment_betas_for_both_depths_on_validation_games():
    # that the table chooses from its rows and that the notebook trains its choice: tests/test_sweep_registry.py
    chapter = Path(__file__).resolve().parents[1] / "chapters" / "05_replays"
    table = json.loads((chapter / "sweep.json").read_text())
    assert set(table["chosen"]) == {"1", "2"} and table["arm"] == "depth" and table["metric"] == "win"
    for depth in (1, 2):  # the grid the chapter's code names, with three seeds
        rows = [(r["beta"], r["seed"]) for r in table["rows"] if r["depth"] == depth]
        assert sorted(rows) == sorted((b, s) for b in experiment.BETAS for s in (0, 1, 2))
    assert table["config"]["validation_seed"] == experiment.VALIDATION_SEED != experiment.TEST_SEED


def test_replay_records_every_move_of_one_game_with_the_movers_probabilities():
    record, final = imitation.replay(ScriptedAgent(0.1, seed=1), RandomAgent(seed=2))
    assert final.done and len(record) >= 7
    for ply, (state, probs, move) in enumerate(record):
        assert state.player == (1 if ply % 2 == 0 else -1), "X moves first, then the players alternate"
        assert move in state.legal_moves() and probs[move] > 0
        assert abs(probs.sum() - 1) < 1e-9 and (probs[[c not in state.legal_moves() for c in range(7)]] == 0).all()
    assert (record[-1][0].play(record[-1][2]).board == final.board).all()
    again, _ = imitation.replay(ScriptedAgent(0.1, seed=1), RandomAgent(seed=2))
    assert [m for _, _, m in again] == [m for _, _, m in record], "the same seeds replay the same game"


def test_replay_browser_has_one_frame_per_position_with_alt_text():
    pytest.importorskip("IPython")
    value = imitation.BoardNet(out=1)
    record, final = imitation.replay(RandomAgent(seed=3), RandomAgent(seed=4))
    page = experiment.replay_browser(record, final, value, names={1: "random A", -1: "random B"}).data
    assert 'class="figure-browser"' in page and f'max="{len(record)}"' in page
    assert page.count('"alt": "') == len(record) + 1 and "random A (X) to move" in page
    assert ("X wins" in page) or ("O wins" in page) or ("draw" in page)
