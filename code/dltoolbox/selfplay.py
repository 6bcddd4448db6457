"""Self-play policy gradient from an imitation policy, with an optional KL leash back to it."""
import multiprocessing
import os

import numpy as np
import torch

from .games import Games, ScriptedAgent, generate_replays, sample_moves
from .imitation import (BoardNet, PolicyAgent, masked_logits, move_accuracy, play_match, policy_probs,
                        split_games, to_tensors, train)
from .progress import DISABLE_ENV_VAR, progress


def kl_to_reference(policy, reference, boards, masks, logp=None):
    """Mean KL(reference || policy) over positions (B,), the distillation term toward `reference`
    (pass the policy's log-probabilities `logp` (B, C) if they are already computed)."""
    if logp is None:
        logp = torch.log_softmax(masked_logits(policy, boards, masks), dim=1)  # (B, C)
    with torch.no_grad():
        logq = torch.log_softmax(masked_logits(reference, boards, masks), dim=1)
    terms = torch.where(masks, logq.exp() * (logq - logp), torch.zeros_like(logp))
    return terms.sum(1).mean()


def self_play(policy, num_games, rng, rows=6, cols=7):
    """Games of `policy` against itself: own-view boards (P, R, C), masks, moves and the mover's result."""
    games, steps = Games(num_games, rows, cols), []
    while not games.done.all():
        live = ~games.done
        view, masks = games.own_view()[live], games.legal_mask()[live]
        moves = np.zeros(num_games, dtype=np.int64)
        moves[live] = sample_moves(policy_probs(policy, view, masks), rng)
        steps.append((view, masks, moves[live], np.flatnonzero(live), games.players[live]))
        games.play(moves)
    boards, masks, moves, game, player = (np.concatenate(x) for x in zip(*steps))
    return boards, masks, moves, (games.winner[game] * player).astype(np.float32)


# Scripted opponents (noise, centre preference) that never take part in training. Settings are chosen
# against the validation pool; the final numbers are measured against the test pool only.
VALID_POOL = ((0.05, 2.0), (0.25, 0.5))
TEST_POOL = ((0.0, 1.0), (0.1, 0.0), (0.15, 2.5), (0.3, 1.5))


def pool_scores(policy, pool, num_games=200, seed=0):
    """Per-game scores (P, games) of `policy` against each scripted player of `pool` (1 win, ½ draw)."""
    agent = PolicyAgent(policy, "fine-tuned")
    return np.stack([play_match(agent, ScriptedAgent(noise, center=centre), num_games, seed=seed + i)["a_score"]
                     for i, (noise, centre) in enumerate(pool)])


def leash_metrics(policy, reference, human, num_games=200, seed=0, pool=None):
    """Win rates of `policy` against `reference` and against a strong scripted player (or, given `pool`,
    the mean over its scripted players), KL to `reference` and agreement with the human moves in `human`
    (a dict of tensors from `imitation.to_tensors`)."""
    with torch.no_grad():
        kl = kl_to_reference(policy, reference, human["boards"], human["masks"]).item()
    vs_ref = play_match(PolicyAgent(policy, "fine-tuned"), PolicyAgent(reference), num_games, seed=seed)["a_score"]
    if pool is None:
        vs = play_match(PolicyAgent(policy, "fine-tuned"), ScriptedAgent(0.05), num_games, seed=seed + 1)["a_score"]
        key = "win_vs_scripted"
    else:
        vs, key = pool_scores(policy, pool, num_games, seed=seed + 1), "win_vs_pool"
    return {"win_vs_bc": float((vs_ref == 1).mean()), key: float((vs == 1).mean()),
            "kl_to_bc": kl, "human_agreement": move_accuracy(policy, human)}


def finetune(policy, reference, human, num_steps=100, games_per_step=128, kl_coef=0.0, lr=1e-3, seed=0,
             eval_every=10, eval_games=200, desc=None, baseline=False, pool=None):
    """REINFORCE by self-play (reward +1 win, -1 loss) plus `kl_coef` * KL(reference || policy).

    With `baseline`, a value net V(s) learns the mover's result (squared error) alongside, and the policy
    gradient weighs log pi(a|s) by the advantage r - V(s) instead of r: the same gradient on average,
    less variance. Returns a history: per step `pg_loss`, `kl`; every `eval_every` steps the `leash_metrics`.
    """
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be non-negative, got {kl_coef}")
    device = next(policy.parameters()).device
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    if baseline:
        torch.manual_seed(seed)
        value = BoardNet(out=1, num_hiddens=64).to(device)
        value_opt = torch.optim.Adam(value.parameters(), lr=lr)
    history = {"step": [], "pg_loss": [], "kl": []}
    for step in progress(range(num_steps + 1), desc=desc or f"self-play, KL coefficient {kl_coef:g}"):
        if step % eval_every == 0:
            history["step"].append(step)
            for key, value_ in leash_metrics(policy, reference, human, eval_games, seed=step, pool=pool).items():
                history.setdefault(key, []).append(value_)
        if step == num_steps:
            break
        boards, masks, moves, reward = (torch.as_tensor(x).to(device) for x in self_play(policy, games_per_step, rng))
        advantage = reward
        if baseline:
            v = torch.tanh(value(boards)[:, 0])
            value_loss = ((v - reward) ** 2).mean()
            value_opt.zero_grad()
            value_loss.backward()
            value_opt.step()
            advantage = reward - v.detach()
            history.setdefault("value_loss", []).append(value_loss.item())
        logp = torch.log_softmax(masked_logits(policy, boards, masks), dim=1)
        pg_loss = -(advantage * logp.gather(1, moves[:, None])[:, 0]).mean()
        kl = kl_to_reference(policy, reference, boards, masks)
        loss = pg_loss + kl_coef * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["pg_loss"].append(pg_loss.item())
        history["kl"].append(kl.item())
    return history


# ---- the chapter's experiment: three arms, seeds in parallel, a validation sweep of the KL weight ----
ARMS = {"scratch": "RL from scratch", "free": "RL from BC, no KL", "leash": "RL from BC + KL to BC"}
RUN = {"num_steps": 150, "games_per_step": 128, "lr": 1e-3, "eval_every": 50, "eval_games": 100}
KL_GRID = (0.03, 0.1, 0.3)   # the leash arm's weights; the free arm is the weight 0
SWEEP_SEEDS = (100, 101)            # training seeds of the sweep, apart from the notebook's
CURVE_POSITIONS = 10_000                # held-out human positions measured during training
TEST_SEED = 9000                         # the openings of the test games, the same for every arm and seed


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
    if multiprocessing.parent_process() is not None:  # a worker's bars would only clutter the terminal
        os.environ.setdefault(DISABLE_ENV_VAR, "1")
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


def sweep(processes=2):
    """Validation table of the KL weight (python -m dltoolbox.experiments.sweeps kl_leash): win rate on VALID_POOL."""
    from .compare import run_parallel
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
