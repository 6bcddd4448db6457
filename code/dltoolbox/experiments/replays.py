"""Chapter 5's experiments (chapters/05_replays/imitation.ipynb and kl_leash.ipynb): the replay archive and
the training seeds of the imitation networks, the validation sweep of beta, the test matches and their
table, the replay browser; then the KL leash's arms, their opponent pools and the sweep of the KL weight.

    python -m dltoolbox.experiments.sweeps imitation   # beta per search depth, on the held-out pool
    python -m dltoolbox.experiments.sweeps kl_leash    # the KL weight, on the validation pool
"""

import numpy as np
import torch

from ..compare import mean_interval, run_parallel
from ..games import Games, RandomAgent, ScriptedAgent, generate_replays
from ..imitation import (BoardNet, PolicyAgent, ValueGuidedAgent, calibration, masked_logits, move_accuracy,
                         play_match, split_games, to_tensors, train, value_loss, win_probability)
from ..selfplay import finetune, kl_to_reference, pool_scores

# ---- imitation.ipynb: training seeds, the validation sweep of beta, the test matches ----
ARCHIVE = {"num_games": 20_000, "seed": 0}
NUM_STEPS = 2000
BETAS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]   # the grid every arm (search depth) is tuned over
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


def imitation_sweep(processes=2, seeds=(0, 1, 2)):
    """The validation table of beta per search depth (python -m dltoolbox.experiments.sweeps imitation)."""
    rows = [row for part in run_parallel(validation_run, list(seeds), processes, desc="beta sweep") for row in part]
    return {"rows": rows, "settings": ["beta"], "metric": "win", "goal": "max", "arm": "depth",
            "config": {**ARCHIVE, "num_steps": NUM_STEPS, "games_per_opponent": 400,
                       "pool": ["BC of another training seed", "scripted(0.2)"], "validation_seed": VALIDATION_SEED}}


def summarise(scores):
    """`head_to_head`-like rows from per-seed match scores [{(agent, opponent): per-game scores}, ...]:
    the mean win rate over seeds and its 95% t-interval, and the mean draw rate."""
    rows = []
    for key in scores[0]:
        wins_ = [float(np.mean(s[key] == 1)) for s in scores]
        mean, half = mean_interval(wins_)
        rows.append({"agent": key[0], "opponent": key[1], "games": len(scores[0][key]), "win": mean,
                     "low": max(0.0, mean - half), "high": min(1.0, mean + half), "seeds": len(scores),
                     "draw": float(np.mean([np.mean(s[key] == 0.5) for s in scores]))})
    return rows


def format_table(rows, games="games", interval="95% interval"):
    """A Markdown table of `head_to_head` (or `summarise`) rows."""
    lines = [f"| agent | opponent | {games} | win rate | {interval} | draws |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['agent']} | {r['opponent']} | {r['games']} | {r['win']:.1%} | "
                     f"{r['low']:.1%}–{r['high']:.1%} | {r['draw']:.1%} |")
    return "\n".join(lines)


def replay_browser(record, final, value_net, names, title=None):
    """A kernel-free figure browser over a replayed game (`replay`): each position with the mover's move
    probabilities above the columns and `value_net`'s estimate for the side to move, then the result."""
    from matplotlib.figure import Figure  # not pyplot: dozens of frames, none of them left open

    from ..games import draw_board
    from ..plots import figure_browser

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


# ---- kl_leash.ipynb: three arms, seeds in parallel, a validation sweep of the KL weight ----
# Scripted opponents (noise, centre preference) that never take part in training. Settings are chosen
# against the validation pool; the final numbers are measured against the test pool only.
VALID_POOL = ((0.05, 2.0), (0.25, 0.5))
TEST_POOL = ((0.0, 1.0), (0.1, 0.0), (0.15, 2.5), (0.3, 1.5))

ARMS = {"scratch": "RL from scratch", "free": "RL from BC, no KL", "leash": "RL from BC + KL to BC"}
RUN = {"num_steps": 150, "games_per_step": 128, "lr": 1e-3, "eval_every": 50, "eval_games": 100}
KL_GRID = (0.03, 0.1, 0.3)   # the leash arm's weights; the free arm is the weight 0
SWEEP_SEEDS = (100, 101)            # training seeds of the sweep, apart from the notebook's
CURVE_POSITIONS = 10_000                # held-out human positions measured during training
# the test games' openings: TEST_SEED (above), the same for every arm and seed


def bc_policy(num_games=20_000, num_steps=2000, device="cpu"):
    """The BC policy and the held-out human positions, as the chapter trains them (archive seed 0)."""
    replays = generate_replays(num_games, seed=0)
    train_mask, valid_mask = split_games(replays)
    torch.manual_seed(0)
    net = BoardNet().to(device)
    train(net, to_tensors(replays, device, select=train_mask), "policy", num_steps, eval_every=500, seed=1, desc="BC")
    return net, to_tensors(replays, device, select=valid_mask)


def run_arm(job):
    """One run of an arm: job {"arm", "seed", "kl_coef", "bc_state", "human" (NumPy arrays), "pool",
    optional "test"}. Returns the history on the validation pool and, with "test", the final test scores."""
    torch.set_num_threads(1)
    human = {k: torch.as_tensor(v) for k, v in job["human"].items()}
    reference = BoardNet()
    reference.load_state_dict(job["bc_state"])
    torch.manual_seed(job["seed"])
    policy = BoardNet()
    if job["arm"] != "scratch":
        policy.load_state_dict(job["bc_state"])
    kl_coef = job["kl_coef"] if job["arm"] == "leash" else 0.0
    config = {**RUN, **job.get("run", {})}
    curve = {k: v[:CURVE_POSITIONS] for k, v in human.items()}  # a subset keeps the evaluations cheap
    history = finetune(policy, reference, curve, kl_coef=kl_coef, seed=job["seed"], baseline=True,
                       pool=VALID_POOL, desc=f"{job['arm']}, seed {job['seed']}", **config)
    out = {"arm": job["arm"], "seed": job["seed"], "kl_coef": kl_coef, "history": history}
    if job.get("test"):
        with torch.no_grad():
            logits = masked_logits(policy, human["boards"], human["masks"])
            out["human_hits"] = (logits.argmax(1) == human["moves"]).numpy()
            out["kl_to_bc"] = kl_to_reference(policy, reference, human["boards"], human["masks"]).item()
        out["test_scores"] = pool_scores(policy, TEST_POOL, job.get("test_games", 200), seed=TEST_SEED)
    return out


def jobs(arms, seeds, bc_net, human, kl_coef=0.0, test=True, run=None):
    """The jobs of `run_arm` for every arm and seed (arm-major: all seeds of one arm, then the next)."""
    state = {k: v.cpu() for k, v in bc_net.state_dict().items()}
    arrays = {k: v.cpu().numpy() for k, v in human.items()}
    return [{"arm": arm, "seed": seed, "kl_coef": kl_coef, "bc_state": state, "human": arrays, "test": test,
             "run": run or {}} for arm in arms for seed in seeds]


def kl_sweep(processes=2):
    """Validation table of the KL weight (python -m dltoolbox.experiments.sweeps kl_leash): win rate on VALID_POOL."""
    torch.set_num_threads(1)
    bc_net, human = bc_policy()
    todo = jobs(["free"], SWEEP_SEEDS, bc_net, human, test=False)
    for coef in KL_GRID:
        todo += jobs(["leash"], SWEEP_SEEDS, bc_net, human, kl_coef=coef, test=False)
    rows = []
    for out in run_parallel(run_arm, todo, processes, desc="KL sweep"):
        h = out["history"]
        rows.append({"arm": out["arm"], "kl_coef": out["kl_coef"], "seed": out["seed"],
                     "valid_win": round(float(np.mean(h["win_vs_pool"][-2:])), 4),
                     "kl_to_bc": round(h["kl_to_bc"][-1], 4), "human_agreement": round(h["human_agreement"][-1], 4)})
    return {"rows": rows, "settings": ["kl_coef"], "metric": "valid_win", "goal": "max", "arm": "arm",
            "config": {**RUN, "baseline": "value", "valid_pool": [list(p) for p in VALID_POOL],
                       "valid_metric": "win rate against the validation pool, mean of the last two evaluations"}}
