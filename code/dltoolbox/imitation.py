"""Learning from replays: behavioural cloning, an offline value of the winner, value-guided agents, matches.

Boards are seen from the mover's side (``Games.own_view``): +1 own discs, -1 the opponent's.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .games import Agent, Games, drop, legal_mask, sample_moves, wins
from .progress import progress


class BoardNet(nn.Module):
    """An MLP on own-view boards (N, R, C) -> (N, out): `out=C` move logits, or `out=1` a value logit."""

    def __init__(self, rows=6, cols=7, out=7, num_hiddens=128):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.body = nn.Sequential(nn.Linear(2 * rows * cols, num_hiddens), nn.ReLU(),
                                  nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
                                  nn.Linear(num_hiddens, out))

    def forward(self, boards):
        if boards.shape[1:] != (self.rows, self.cols):
            raise ValueError(f"expected boards of shape (N, {self.rows}, {self.cols}), got {tuple(boards.shape)}")
        x = torch.stack([boards == 1, boards == -1], dim=1).flatten(1).float()  # (N, 2*R*C)
        return self.body(x)


def masked_logits(net, boards, masks):
    """Move logits (N, C) with illegal moves at -inf."""
    return net(boards).masked_fill(~masks, float("-inf"))


def to_tensors(replays, device="cpu", select=None):
    """The replay arrays as tensors on `device` (optionally only the positions where `select` is True)."""
    keys = ("boards", "masks", "moves", "outcome")
    idx = slice(None) if select is None else np.flatnonzero(select)
    return {k: torch.as_tensor(np.ascontiguousarray(replays[k][idx])).to(device) for k in keys}


def split_games(replays, valid_fraction=0.1):
    """(train, valid) position masks: the last `valid_fraction` of the games are held out."""
    num_games = len(replays["winner"])
    valid = replays["game"] >= round(num_games * (1 - valid_fraction))
    return ~valid, valid


def _batch(data, idx, mirror):
    boards, masks, moves = data["boards"][idx], data["masks"][idx], data["moves"][idx]
    outcome = data["outcome"][idx]
    if mirror is not None:  # Connect Four is symmetric under a left-right flip
        flip = mirror[:, None, None]
        boards = torch.where(flip, boards.flip(2), boards)
        masks = torch.where(flip[:, 0], masks.flip(1), masks)
        moves = torch.where(mirror, masks.shape[1] - 1 - moves, moves)
    return boards, masks, moves, outcome


@torch.no_grad()
def move_accuracy(net, data, batch_size=8192):
    """Fraction of positions where the net's most likely move is the move played."""
    hits = 0
    for i in range(0, len(data["moves"]), batch_size):
        logits = masked_logits(net, data["boards"][i:i + batch_size], data["masks"][i:i + batch_size])
        hits += (logits.argmax(1) == data["moves"][i:i + batch_size]).sum().item()
    return hits / len(data["moves"])


def train(net, data, kind="policy", num_steps=1000, batch_size=512, lr=2e-3, seed=0, valid=None,
          eval_every=100, desc=None):
    """Train a policy (cross-entropy on the moves) or a value (BCE on the mover's score) from replays."""
    if kind not in ("policy", "value"):
        raise ValueError(f"kind must be 'policy' or 'value', got {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / num_steps)))
    history, losses, n = {"train_loss": [], "valid_metric": []}, [], len(data["moves"])
    device = data["moves"].device
    for step in progress(range(num_steps), desc=desc or f"training the {kind}"):
        idx = torch.randint(n, (batch_size,), generator=gen).to(device)
        mirror = (torch.rand(batch_size, generator=gen) < 0.5).to(device)
        boards, masks, moves, outcome = _batch(data, idx, mirror)
        if kind == "policy":
            loss = F.cross_entropy(masked_logits(net, boards, masks), moves)
        else:
            loss = F.binary_cross_entropy_with_logits(net(boards)[:, 0], (outcome.float() + 1) / 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % eval_every == 0:
            history["train_loss"].append(float(np.mean(losses)))
            losses = []
            if valid is not None:
                history["valid_metric"].append(move_accuracy(net, valid) if kind == "policy"
                                               else value_loss(net, valid))
    return history


@torch.no_grad()
def value_loss(net, data):
    """Binary cross-entropy of a value net's winner prediction on `data` (0.693 = a coin flip)."""
    logits = net(data["boards"])[:, 0]
    return F.binary_cross_entropy_with_logits(logits, (data["outcome"].float() + 1) / 2).item()


@torch.no_grad()
def policy_probs(net, boards, masks):
    """Move probabilities (N, C) of a policy net for own-view NumPy boards and masks."""
    device = next(net.parameters()).device
    if len(boards) == 0:
        return np.zeros(masks.shape)
    logits = masked_logits(net, torch.as_tensor(boards).to(device), torch.as_tensor(masks).to(device))
    return torch.softmax(logits.double(), dim=1).cpu().numpy()


@torch.no_grad()
def win_probability(value_net, boards):
    """The value net's expected score (N,) for the side to move on own-view NumPy boards."""
    device = next(value_net.parameters()).device
    if len(boards) == 0:
        return np.zeros(0)
    return torch.sigmoid(value_net(torch.as_tensor(boards).to(device))[:, 0].double()).cpu().numpy()


def action_values(value_net, boards, depth=1):
    """Q (N, C): the mover's expected score after each move (NaN if illegal), by a `depth`-ply search
    whose leaves are scored by the value net and whose wins, losses and draws are scored exactly."""
    if depth not in (1, 2):
        raise ValueError(f"depth must be 1 or 2, got {depth}")
    n, rows, cols = boards.shape
    q = np.full((n, cols), np.nan)
    legal = legal_mask(boards)
    game, move = np.nonzero(legal)
    after = drop(boards[game], move, 1)
    won, full = wins(after, 1), ~legal_mask(after).any(1)
    q[game, move] = np.where(won, 1.0, 0.5)
    rest = ~won & ~full
    if depth == 1:
        q[game[rest], move[rest]] = 1 - win_probability(value_net, -after[rest])
    else:
        q[game[rest], move[rest]] = np.nanmin(1 - action_values(value_net, -after[rest], depth=1), axis=1)
    return q


class PolicyAgent(Agent):
    """Plays the moves of a policy net (sampled, or the most likely one if `greedy`)."""

    def __init__(self, net, name="BC", seed=0, greedy=False):
        super().__init__(seed, greedy)
        self.net, self.name = net, name

    def probs(self, games):
        return policy_probs(self.net, games.own_view(), games.legal_mask())


class ValueGuidedAgent(Agent):
    """One-step policy improvement: probabilities proportional to prior(a) * exp(beta * Q(a))."""

    def __init__(self, prior_net, value_net, beta=8.0, depth=1, name=None, seed=0, greedy=False):
        super().__init__(seed, greedy)
        self.prior, self.value, self.beta, self.depth = prior_net, value_net, beta, depth
        self.name = name or f"value-guided (depth {depth})"

    def probs(self, games):
        view, masks = games.own_view(), games.legal_mask()
        live = ~games.done
        out = np.zeros(masks.shape)
        prior = policy_probs(self.prior, view[live], masks[live])
        q = np.nan_to_num(action_values(self.value, view[live], self.depth), nan=0.0)
        logits = np.log(np.maximum(prior, 1e-30)) + self.beta * q
        logits = np.where(masks[live], logits - logits.max(1, keepdims=True), -np.inf)
        p = np.exp(logits)
        out[live] = p / p.sum(1, keepdims=True)
        return out


def play_match(agent_a, agent_b, num_games=400, seed=0, opening_plies=2, rows=6, cols=7):
    """Play `num_games` games, A first in the even-numbered ones, after `opening_plies` random moves
    (each opening is played twice, colours swapped). Returns per-game arrays a_first and a_score."""
    if num_games < 2 or num_games % 2:
        raise ValueError(f"num_games must be a positive even number (colours alternate), got {num_games}")
    agent_a.rng, agent_b.rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    rng = np.random.default_rng([seed, 0])
    games = Games(num_games, rows, cols)
    a_first = np.arange(num_games) % 2 == 0
    for _ in range(opening_plies):
        games.play(np.repeat(sample_moves(games.legal_mask()[::2].astype(float), rng), 2))
    while not games.done.all():
        a_to_move = (games.players == 1) == a_first
        moves = np.where(a_to_move, agent_a.act_batch(games), agent_b.act_batch(games))
        games.play(moves)
    a_colour = np.where(a_first, 1, -1)
    a_score = np.where(games.winner == a_colour, 1.0, np.where(games.winner == 0, 0.5, 0.0))
    return {"a_first": a_first, "a_score": a_score}


def wilson_interval(successes, n, z=1.96):
    """The Wilson score interval (low, high) for a proportion `successes / n`."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@torch.no_grad()
def calibration(value_net, data, bins=10):
    """Reliability of a value net on `data`: per bin of predicted score, the mean prediction, the mean
    observed score (win 1, draw ½, loss 0) and the count; `ece` weighs |predicted − observed| by count."""
    p = torch.sigmoid(value_net(data["boards"])[:, 0]).double().cpu().numpy()
    y = (data["outcome"].double().cpu().numpy() + 1) / 2
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        predicted = np.bincount(which, p, bins) / count
        observed = np.bincount(which, y, bins) / count
    gap = np.where(count > 0, np.abs(predicted - observed), 0.0)
    return {"predicted": predicted, "observed": observed, "count": count, "ece": float((count * gap).sum() / len(p))}


def replay(x, o, state=None):
    """One game of agent `x` (X, moving first) against `o` from `state` (default: the empty board).

    Returns (record, final): one (position, the mover's move probabilities (C,), move) per move, and the
    final position.
    """
    from .games import State

    state = State.initial() if state is None else state
    record = []
    while not state.done:
        agent = x if state.player == 1 else o
        probs = agent.probs(Games.from_states([state]))[0] * legal_mask(state.board[None])[0]
        probs = probs / probs.sum()
        move = agent.act(state)
        record.append((state, probs, move))
        state = state.play(move)
    return record, state
