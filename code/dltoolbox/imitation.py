"""Learning from replays: behavioural cloning, an offline value of the winner, value-guided agents, matches.

Boards are seen from the mover's side (``Games.own_view``): +1 own discs, -1 the opponent's.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .games import Agent, Games, RandomAgent, ScriptedAgent, drop, generate_replays, legal_mask, sample_moves, wins
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


def head_to_head(agents, opponents, num_games=400, seed=0):
    """Each agent against each opponent: rows of score (wins + draws/2), win rate and its 95% interval."""
    rows = []
    for i, (name, agent) in enumerate(agents.items()):
        for j, (opp_name, opp) in enumerate(opponents.items()):
            if agent is opp:
                continue
            result = play_match(agent, opp, num_games, seed=seed + 1000 * i + j)
            wins_ = int((result["a_score"] == 1).sum())
            low, high = wilson_interval(wins_, num_games)
            rows.append({"agent": name, "opponent": opp_name, "games": num_games, "win": wins_ / num_games,
                         "draw": float((result["a_score"] == 0.5).mean()),
                         "score": float(result["a_score"].mean()), "low": low, "high": high})
    return rows


def format_table(rows, games="games", interval="95% interval"):
    """A Markdown table of `head_to_head` (or `summarise`) rows."""
    lines = [f"| agent | opponent | {games} | win rate | {interval} | draws |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['agent']} | {r['opponent']} | {r['games']} | {r['win']:.1%} | "
                     f"{r['low']:.1%}–{r['high']:.1%} | {r['draw']:.1%} |")
    return "\n".join(lines)


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


# ---- the experiment of the chapter: training seeds, the validation sweep of beta, the test matches ----
ARCHIVE = {"num_games": 20_000, "seed": 0}
NUM_STEPS = 2000
BETAS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]   # the grid every arm (search depth) is tuned over
VALIDATION_SEED, TEST_SEED = 5000, 9000       # match seeds (openings) of validation and of test games
_cache = {}


def archive():
    """The replay archive and its train / held-out / winners' tensors (cached in each process)."""
    if "archive" not in _cache:
        replays = generate_replays(**ARCHIVE)
        train_mask, valid_mask = split_games(replays)
        _cache["archive"] = {"replays": replays, "train": to_tensors(replays, select=train_mask),
                             "valid": to_tensors(replays, select=valid_mask),
                             "winners": to_tensors(replays, select=train_mask & (replays["outcome"] == 1))}
    return _cache["archive"]


NETS = {"bc": ("policy", "train", 1), "winners": ("policy", "winners", 2), "value": ("value", "train", 3),
        "heldout_bc": ("policy", "train", 4)}  # name -> (kind, data, offset of its seed)


def train_net(job):
    """Train the net `job["net"]` (see NETS) for training seed `job["seed"]`; its state, history and scores."""
    torch.set_num_threads(1)
    kind, split, offset = NETS[job["net"]]
    data, seed = archive(), 10 * job["seed"] + offset
    torch.manual_seed(seed)
    net = BoardNet(out=7 if kind == "policy" else 1)
    history = train(net, data[split], kind, job.get("num_steps", NUM_STEPS), valid=data["valid"], eval_every=200,
                    seed=seed, desc=f"{job['net']}, seed {job['seed']}")
    out = {"state": net.state_dict(), "history": history}
    if kind == "policy":
        out["accuracy"] = move_accuracy(net, data["valid"])
    else:
        out.update(bce=value_loss(net, data["valid"]), calibration=calibration(net, data["valid"]))
    return out


def load(state):
    """A BoardNet holding a `train_net` state."""
    net = BoardNet(out=state["body.4.bias"].shape[0])
    net.load_state_dict(state)
    return net.eval()


def agents(states, betas):
    """The offline agents of one seed from its nets' states and the chosen beta per search depth."""
    bc, value = load(states["bc"]), load(states["value"])
    return {"BC": PolicyAgent(bc, "BC"),
            "BC, winners' moves": PolicyAgent(load(states["winners"]), "BC, winners' moves"),
            "BC + value": ValueGuidedAgent(bc, value, betas[1], depth=1, name="BC + value"),
            "BC + value + search": ValueGuidedAgent(bc, value, betas[2], depth=2, name="BC + value + search")}


def play_test_matches(job):
    """Every agent of one seed against one test opponent, all on the same openings: per-game scores."""
    torch.set_num_threads(1)
    players = {**agents(job["states"], job["betas"]), "scripted(0.05)": ScriptedAgent(0.05)}
    opponent = {"BC": players["BC"], "scripted(0.05)": ScriptedAgent(0.05), "random": RandomAgent()}[job["opponent"]]
    seed = TEST_SEED + 100 * job["seed"] + ["BC", "scripted(0.05)", "random"].index(job["opponent"])
    return {name: play_match(agent, opponent, job["num_games"], seed=seed)["a_score"]
            for name, agent in players.items() if name != job["opponent"]}


def validation_run(seed, num_games=400, betas=BETAS):
    """Beta sweep of one training seed against the held-out pool: a BC net of another seed and scripted(0.2)."""
    torch.set_num_threads(1)
    states = {name: train_net({"net": name, "seed": seed})["state"] for name in ("bc", "value", "heldout_bc")}
    bc, value = load(states["bc"]), load(states["value"])
    pool = {"heldout_bc": PolicyAgent(load(states["heldout_bc"]), "held-out BC"), "scripted_0.2": ScriptedAgent(0.2)}
    rows = []
    for depth in (1, 2):
        for beta in betas:
            row = {"depth": depth, "beta": beta, "seed": seed}
            for j, (name, opponent) in enumerate(pool.items()):
                score = play_match(ValueGuidedAgent(bc, value, beta, depth), opponent, num_games,
                                   seed=VALIDATION_SEED + 100 * seed + j)["a_score"]
                row[f"win_vs_{name}"] = float(np.mean(score == 1))
            row["win"] = float(np.mean([row[f"win_vs_{name}"] for name in pool]))
            rows.append(row)
    return rows


def sweep(processes=2, seeds=(0, 1, 2)):
    """The validation table of beta per search depth (python -m dltoolbox.experiments.sweeps imitation)."""
    from .compare import run_parallel
    rows = [row for part in run_parallel(validation_run, list(seeds), processes, desc="beta sweep") for row in part]
    return {"rows": rows, "settings": ["beta"], "metric": "win", "goal": "max", "arm": "depth",
            "config": {**ARCHIVE, "num_steps": NUM_STEPS, "games_per_opponent": 400,
                       "pool": ["BC of another training seed", "scripted(0.2)"], "validation_seed": VALIDATION_SEED}}


def summarise(scores):
    """`head_to_head`-like rows from per-seed match scores [{(agent, opponent): per-game scores}, ...]:
    the mean win rate over seeds and its 95% t-interval, and the mean draw rate."""
    from .compare import mean_interval
    rows = []
    for key in scores[0]:
        wins_ = [float(np.mean(s[key] == 1)) for s in scores]
        mean, half = mean_interval(wins_)
        rows.append({"agent": key[0], "opponent": key[1], "games": len(scores[0][key]), "win": mean,
                     "low": max(0.0, mean - half), "high": min(1.0, mean + half), "seeds": len(scores),
                     "draw": float(np.mean([np.mean(s[key] == 0.5) for s in scores]))})
    return rows


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


def replay_browser(record, final, value_net, names, title=None):
    """A kernel-free figure browser over a replayed game (`replay`): each position with the mover's move
    probabilities above the columns and `value_net`'s estimate for the side to move, then the result."""
    from matplotlib.figure import Figure  # not pyplot: dozens of frames, none of them left open

    from .games import draw_board
    from .plots import figure_browser

    side = {1: "X", -1: "O"}
    frames = []
    for ply, (state, probs, move) in enumerate(record, start=1):
        value = win_probability(value_net, Games.from_states([state]).own_view())[0]
        mover = f"{names[state.player]} ({side[state.player]})"
        fig = Figure(figsize=(3.6, 3.4))
        ax = fig.subplots()
        draw_board(state.board, probs, title=f"ply {ply}: {mover} to move, value {value:.2f}", ax=ax)
        frames.append((f"ply {ply}: {mover} plays column {move}", fig,
                       f"Board before ply {ply}, {mover} to move: it gives column {move} probability "
                       f"{probs[move]:.0%} and plays it; the value network gives the mover {value:.2f}."))
    result = "draw" if final.winner == 0 else f"{side[final.winner]} wins ({names[final.winner]})"
    fig = Figure(figsize=(3.6, 3.4))
    ax = fig.subplots()
    draw_board(final.board, title=f"after {len(record)} plies: {result}", ax=ax)
    frames.append((f"the end: {result}", fig, f"Final board after {len(record)} plies: {result}."))
    return figure_browser(frames, label="ply", title=title)
