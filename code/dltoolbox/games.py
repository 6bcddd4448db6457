"""Connect Four, batched in NumPy: rules, legal-move masks, scripted "human" players and their replays.

A board is an int8 array ``(R, C)`` (row 0 at the bottom): +1 for the first player's discs, -1 for the
second's, 0 for empty. A batch of boards is ``(N, R, C)``. A move is a column index.
"""
from dataclasses import dataclass

import numpy as np

ROWS, COLS, CONNECT = 6, 7, 4


def new_boards(num_games, rows=ROWS, cols=COLS):
    """`num_games` empty boards, (N, R, C) int8."""
    if rows < CONNECT and cols < CONNECT:
        raise ValueError(f"a {rows}x{cols} board has no line of {CONNECT}")
    return np.zeros((num_games, rows, cols), dtype=np.int8)


def legal_mask(boards):
    """(N, C) bool: the columns whose top cell is empty."""
    return boards[:, -1, :] == 0


def drop(boards, moves, players):
    """New boards with each player's disc dropped into its column; ValueError on an illegal move."""
    boards = np.asarray(boards)
    moves = np.asarray(moves, dtype=np.int64)
    n, rows, cols = boards.shape
    bad = (moves < 0) | (moves >= cols)
    if bad.any():
        raise ValueError(f"illegal move {int(moves[bad][0])}: columns are numbered 0 to {cols - 1}")
    heights = (boards != 0).sum(axis=1)  # (N, C)
    row = heights[np.arange(n), moves]
    if (row >= rows).any():
        raise ValueError(f"illegal move {int(moves[row >= rows][0])}: that column is full")
    out = boards.copy()
    out[np.arange(n), row, moves] = np.broadcast_to(np.asarray(players, dtype=np.int8), (n,))
    return out


def lines(rows=ROWS, cols=COLS):
    """(L, 4) flat cell indices of every line of four on a rows x cols board (69 on 6x7)."""
    found = []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for r in range(rows):
            for c in range(cols):
                cells = [(r + i * dr, c + i * dc) for i in range(CONNECT)]
                if all(0 <= rr < rows and 0 <= cc < cols for rr, cc in cells):
                    found.append([rr * cols + cc for rr, cc in cells])
    return np.array(found, dtype=np.int64).reshape(-1, CONNECT)


_LINES = {}


def _lines(rows, cols):
    if (rows, cols) not in _LINES:
        index = lines(rows, cols)
        incidence = np.zeros((len(index), rows * cols), dtype=np.float32)  # (L, R*C)
        np.put_along_axis(incidence, index, 1.0, axis=1)
        _LINES[rows, cols] = index, incidence
    return _LINES[rows, cols]


def wins(boards, players):
    """(N,) bool: does `players` (a scalar or one per board) have a line of four?"""
    n, rows, cols = boards.shape
    mine = (boards == np.asarray(players, dtype=np.int8).reshape(-1, 1, 1)).reshape(n, rows * cols)
    return mine[:, _lines(rows, cols)[0]].all(axis=2).any(axis=1)


def threats(boards, player):
    """(N, R*C) bool: the empty cells where `player` would complete a line of four."""
    n, rows, cols = boards.shape
    index, incidence = _lines(rows, cols)
    flat = boards.reshape(n, rows * cols)
    three = ((flat == player)[:, index].sum(axis=2) == CONNECT - 1).astype(np.float32)  # (N, L)
    return (three @ incidence > 0) & (flat == 0)


@dataclass(frozen=True, eq=False)
class State:
    """One game position: the board, whose turn it is (+1 or -1), and the winner once it is over."""
    board: np.ndarray
    player: int = 1
    winner: int = 0
    done: bool = False

    @staticmethod
    def initial(rows=ROWS, cols=COLS):
        """The empty board, first player to move."""
        return State(new_boards(1, rows, cols)[0])

    def legal_moves(self):
        """The columns one may play; empty once the game is over."""
        return [] if self.done else [int(c) for c in np.flatnonzero(legal_mask(self.board[None])[0])]

    def play(self, move):
        """The position after `move`; ValueError if the game is over or the move is illegal."""
        if self.done:
            raise ValueError("the game is over: no move may follow the end")
        if not isinstance(move, (int, np.integer)) or isinstance(move, bool):
            raise ValueError(f"a move is a column number, got {move!r}")
        board = drop(self.board[None], [int(move)], self.player)
        won = bool(wins(board, self.player)[0])
        full = not legal_mask(board).any()
        return State(board[0], -self.player, self.player if won else 0, won or full)

    def __str__(self):
        symbols = {1: "X", -1: "O", 0: "."}
        lines = [" ".join(symbols[int(v)] for v in row) for row in self.board[::-1]]
        return "\n".join(lines + [" ".join(str(c) for c in range(self.board.shape[1]))])


class Games:
    """A batch of N games played in lockstep: boards (N, R, C), players to move, done and winner (N,)."""

    def __init__(self, num_games, rows=ROWS, cols=COLS):
        self.boards = new_boards(num_games, rows, cols)
        self.players = np.ones(num_games, dtype=np.int8)
        self.done = np.zeros(num_games, dtype=bool)
        self.winner = np.zeros(num_games, dtype=np.int8)

    @staticmethod
    def from_states(states):
        """A batch holding copies of the given `State`s."""
        games = Games(len(states), *states[0].board.shape)
        games.boards = np.stack([s.board for s in states]).astype(np.int8)
        games.players = np.array([s.player for s in states], dtype=np.int8)
        games.done = np.array([s.done for s in states], dtype=bool)
        games.winner = np.array([s.winner for s in states], dtype=np.int8)
        return games

    def __len__(self):
        return len(self.boards)

    def legal_mask(self):
        """(N, C) bool; all False for finished games."""
        return legal_mask(self.boards) & ~self.done[:, None]

    def own_view(self):
        """Boards from the mover's side: +1 own discs, -1 the opponent's, (N, R, C) int8."""
        return self.boards * self.players[:, None, None]

    def play(self, moves):
        """Play one move in every unfinished game (moves of finished games are ignored)."""
        moves = np.asarray(moves, dtype=np.int64)
        if moves.shape != (len(self),):
            raise ValueError(f"expected {len(self)} moves, got shape {moves.shape}")
        live = np.flatnonzero(~self.done)
        if len(live) == 0:
            raise ValueError("every game is over: no move may follow the end")
        boards = drop(self.boards[live], moves[live], self.players[live])
        won = wins(boards, self.players[live])
        self.boards[live] = boards
        self.winner[live[won]] = self.players[live[won]]
        self.done[live] = won | ~legal_mask(boards).any(axis=1)
        self.players[live] = -self.players[live]

    def state(self, i):
        """Game `i` as a `State`."""
        return State(self.boards[i].copy(), int(self.players[i]), int(self.winner[i]), bool(self.done[i]))


def tactics(boards):
    """For own-view boards (N, R, C): (N, C) bool arrays `win` (playing there wins), `block` (the
    opponent would win there) and `unsafe` (it lets the opponent win on the cell above)."""
    n, rows, cols = boards.shape
    legal = legal_mask(boards)
    height = np.minimum((boards != 0).sum(axis=1), rows - 1)  # (N, C) landing row
    above = np.minimum(height + 1, rows - 1)
    cell, cell_above = height * cols + np.arange(cols), above * cols + np.arange(cols)
    mine, theirs = threats(boards, 1), threats(boards, -1)
    win = legal & np.take_along_axis(mine, cell, axis=1)
    block = legal & np.take_along_axis(theirs, cell, axis=1)
    unsafe = legal & (height + 1 < rows) & np.take_along_axis(theirs, cell_above, axis=1)
    return win, block, unsafe


def heuristic_probs(boards, center=1.0):
    """The scripted player's move distribution (N, C): win, else block, else a safe central move."""
    win, block, unsafe = tactics(boards)
    legal = legal_mask(boards)
    cols = boards.shape[2]
    weights = np.exp(-center * np.abs(np.arange(cols) - (cols - 1) / 2))[None, :]
    safe = legal & ~unsafe
    choice = np.where(win.any(1, keepdims=True), win,
                      np.where(block.any(1, keepdims=True), block,
                               np.where(safe.any(1, keepdims=True), safe, legal)))
    probs = choice * np.where(win.any(1, keepdims=True) | block.any(1, keepdims=True), 1.0, weights)
    return probs / np.maximum(probs.sum(1, keepdims=True), 1e-12)


def sample_moves(probs, rng):
    """One move per row of `probs` (N, C), drawn with the NumPy generator `rng`; never a zero-probability one."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.argmax(cdf > u, axis=1)


class Agent:
    """A player: `probs(games)` gives (N, C) move probabilities; `act(state) -> move` plays one position."""
    name = "agent"

    def __init__(self, seed=0, greedy=False):
        self.rng = np.random.default_rng(seed)
        self.greedy = greedy

    def probs(self, games):
        raise NotImplementedError

    def act_batch(self, games):
        """One legal move per unfinished game of `games` (-1 for finished ones)."""
        probs = self.probs(games) * games.legal_mask()
        moves = np.argmax(probs, axis=1) if self.greedy else sample_moves(probs, self.rng)
        return np.where(games.done, -1, moves)

    def act(self, state):
        """The move this agent plays in `state` (a `State`)."""
        if state.done:
            raise ValueError("the game is over: no move may follow the end")
        return int(self.act_batch(Games.from_states([state]))[0])


class RandomAgent(Agent):
    """Uniform over the legal moves."""
    name = "random"

    def probs(self, games):
        return games.legal_mask().astype(float)


class ScriptedAgent(Agent):
    """A noisy heuristic "human": a uniformly random move with probability `noise`, else `heuristic_probs`."""

    def __init__(self, noise=0.1, seed=0, center=1.0):
        super().__init__(seed)
        if not 0 <= noise <= 1:
            raise ValueError(f"noise is a probability, got {noise}")
        self.noise, self.center, self.name = noise, center, f"scripted({noise:g})"

    def probs(self, games):
        legal = games.legal_mask().astype(float)
        uniform = legal / np.maximum(legal.sum(1, keepdims=True), 1)
        return self.noise * uniform + (1 - self.noise) * heuristic_probs(games.own_view(), self.center)


SKILLS = (0.05, 0.2, 0.4, 0.7)  # noise of the replay players, from strong to weak


def generate_replays(num_games, seed=0, skills=SKILLS, rows=ROWS, cols=COLS):
    """Games between scripted players of random skill. Returns per-position arrays (mover's view):
    boards (P, R, C) int8, masks (P, C), moves, outcome (+1 mover won, 0 draw, -1 lost), game, noise."""
    rng = np.random.default_rng(seed)
    skills = np.asarray(skills, dtype=float)
    noise = skills[rng.integers(len(skills), size=(num_games, 2))]  # (N, 2): first and second player
    games, steps = Games(num_games, rows, cols), []
    while not games.done.all():
        live = ~games.done
        view, mask = games.own_view(), games.legal_mask()
        seat = (games.players == -1).astype(int)
        eps = noise[np.arange(num_games), seat][:, None]
        uniform = mask / np.maximum(mask.sum(1, keepdims=True), 1)
        probs = eps * uniform + (1 - eps) * heuristic_probs(view)
        moves = np.where(live, sample_moves(probs * mask, rng), 0)
        steps.append((view[live], mask[live], moves[live], np.flatnonzero(live), games.players[live],
                      eps[live, 0]))
        games.play(moves)
    boards, masks, moves, game, player, eps = (np.concatenate(x) for x in zip(*steps))
    order = np.lexsort((np.arange(len(game)), game))  # positions grouped by game, in order of play
    outcome = (games.winner[game] * player).astype(np.int8)
    return {"boards": boards[order], "masks": masks[order], "moves": moves[order],
            "outcome": outcome[order], "game": game[order], "noise": eps[order],
            "winner": games.winner.copy()}


def draw_board(board, probs=None, title=None, ax=None):
    """Draw a board (X red, O yellow) and, if given, the move probabilities (C,) above its columns."""
    import matplotlib.pyplot as plt
    rows, cols = board.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * cols + 0.4, 0.6 * rows + 1.0))
    ax.set_facecolor("#2b5aa8")
    colours = {1: "#d62728", -1: "#f2c80f", 0: "white"}
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(plt.Circle((c, r), 0.4, color=colours[int(board[r, c])]))
    if probs is not None:
        for c, p in enumerate(probs):
            ax.text(c, rows - 0.35, f"{p:.0%}" if p > 0 else "", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(-0.5, rows + 0.3)
    ax.set_xticks(range(cols))
    ax.set_yticks([])
    ax.set_aspect("equal")
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
