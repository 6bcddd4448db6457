"""Self-play policy gradient from an imitation policy, with an optional KL leash back to it."""
import numpy as np
import torch

from .games import Games, ScriptedAgent, sample_moves
from .imitation import BoardNet, PolicyAgent, masked_logits, move_accuracy, play_match, policy_probs
from .progress import progress


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
