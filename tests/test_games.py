import numpy as np
import pytest

from dltoolbox import games
from dltoolbox.games import Games, RandomAgent, ScriptedAgent, State


def play(moves):
    state = State.initial()
    for m in moves:
        state = state.play(m)
    return state


def test_every_column_is_legal_at_the_start_and_discs_stack():
    state = State.initial()
    assert state.legal_moves() == list(range(7))
    for c in range(7):
        after = state.play(c)
        assert after.board[0, c] == 1 and after.board.sum() == 1 and after.player == -1
    assert play([3, 3]).board[1, 3] == -1


def test_a_full_column_is_no_longer_legal_and_is_rejected():
    state = play([0] * 6)
    assert 0 not in state.legal_moves() and state.legal_moves() == list(range(1, 7))
    with pytest.raises(ValueError, match="column is full"):
        state.play(0)
    with pytest.raises(ValueError, match="numbered 0 to 6"):
        state.play(7)
    with pytest.raises(ValueError, match="a move is a column number"):
        state.play("3")


@pytest.mark.parametrize("moves, name", [
    ([0, 0, 1, 1, 2, 2, 3], "horizontal"),
    ([6, 5, 6, 5, 6, 5, 6], "vertical"),
    ([0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3], "diagonal /"),
    ([6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3], "diagonal \\"),
])
def test_wins_on_every_line_direction(moves, name):
    before = play(moves[:-1])
    assert not before.done
    after = before.play(moves[-1])
    assert after.done and after.winner == 1, name
    assert after.legal_moves() == []
    with pytest.raises(ValueError, match="game is over"):
        after.play(4)


def test_second_player_can_win_too():
    state = play([0, 1, 0, 1, 0, 1, 6, 1])
    assert state.done and state.winner == -1


def test_wins_counts_all_69_lines_and_only_lines_of_four():
    assert len(games.lines()) == 69
    for line in games.lines():
        board = np.zeros(42, dtype=np.int8)
        board[line] = -1
        assert games.wins(board.reshape(1, 6, 7), -1)[0] and not games.wins(board.reshape(1, 6, 7), 1)[0]
        board[line[0]] = 0
        assert not games.wins(board.reshape(1, 6, 7), -1)[0]


def test_a_full_board_without_a_line_is_a_draw():
    # columns filled in pairs so that no four line up: a known drawn pattern
    order = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0,
             2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2,
             4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4,
             6, 6, 6, 6, 6, 6]
    state = play(order[:-1])
    assert not state.done
    state = state.play(order[-1])
    assert state.done and state.winner == 0 and state.legal_moves() == []
    with pytest.raises(ValueError, match="game is over"):
        state.play(6)


def test_batched_games_agree_with_single_games():
    rng = np.random.default_rng(0)
    batch, singles = Games(200), [State.initial() for _ in range(200)]
    while not batch.done.all():
        moves = games.sample_moves(batch.legal_mask() | batch.done[:, None], rng)
        batch.play(moves)
        singles = [s if s.done else s.play(int(m)) for s, m in zip(singles, moves)]
    assert all((s.board == b).all() and s.winner == w for s, b, w in zip(singles, batch.boards, batch.winner))
    with pytest.raises(ValueError, match="every game is over"):
        batch.play(np.zeros(200, dtype=int))


def test_batch_rejects_an_illegal_move_and_a_wrong_number_of_moves():
    batch = Games(2)
    for _ in range(6):
        batch.play([0, 1])
    with pytest.raises(ValueError, match="column is full"):
        batch.play([0, 2])
    with pytest.raises(ValueError, match="expected 2 moves"):
        batch.play([1])


def test_tactics_find_wins_blocks_and_unsafe_moves():
    board = np.zeros((1, 6, 7), dtype=np.int8)
    board[0, 0, [0, 1, 2]] = 1
    board[0, 0, [4, 5]] = -1
    board[0, 1, [4, 5, 6]] = -1
    board[0, 0, 6] = 1
    win, block, unsafe = games.tactics(board)
    assert win[0].tolist() == [False, False, False, True, False, False, False]
    assert not block[0].any(), "the opponent's threat on row 1 cannot be played yet"
    assert unsafe[0].tolist() == [False, False, False, True, False, False, False]
    board = np.zeros((1, 6, 7), dtype=np.int8)
    board[0, 0, [4, 5, 6]] = -1
    board[0, 0, [0, 1]] = 1
    win, block, unsafe = games.tactics(board)
    assert block[0].tolist() == [False, False, False, True, False, False, False] and not win.any()


def test_scripted_player_takes_a_win_and_agents_never_play_illegal_moves():
    state = play([0, 6, 1, 6, 2, 5])
    assert ScriptedAgent(0.0).act(state) == 3
    rng = np.random.default_rng(1)
    batch = Games(300)
    agents = [RandomAgent(seed=2), ScriptedAgent(0.3, seed=3)]
    turn = 0
    while not batch.done.all():
        moves = agents[turn % 2].act_batch(batch)
        legal = batch.legal_mask()
        live = ~batch.done
        assert legal[live, moves[live]].all()
        assert (moves[~live] == -1).all()
        batch.play(moves)
        turn += 1
    with pytest.raises(ValueError, match="game is over"):
        RandomAgent().act(batch.state(0))
    with pytest.raises(ValueError, match="noise is a probability"):
        ScriptedAgent(1.5)
    del rng


def test_replays_are_deterministic_and_consistent():
    a, b = games.generate_replays(300, seed=4), games.generate_replays(300, seed=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = games.generate_replays(300, seed=5)
    assert not np.array_equal(a["moves"][:50], c["moves"][:50])
    assert a["masks"][np.arange(len(a["moves"])), a["moves"]].all(), "every recorded move is legal"
    # the mover's own discs: equal to the opponent's count or one fewer (first player) in every position
    own = (a["boards"] == 1).reshape(len(a["moves"]), -1).sum(1)
    opp = (a["boards"] == -1).reshape(len(a["moves"]), -1).sum(1)
    assert np.all((opp - own == 0) | (opp - own == 1))
    last = np.r_[a["game"][1:] != a["game"][:-1], True]
    assert np.all(a["outcome"][last] >= 0), "the last mover of a game won it or drew"
