"""Hidden cases of the checks on learning from replays (dltoolbox.checks.replays), and the reference answers
of the exercises the package does not already answer (the checks ship only the visible cases' results,
in dltoolbox/checks/expected.py; ``python -m dltoolbox.classroom.hidden.replays`` writes them for every
hidden module that has a ``visible_results()``)."""
import math

import numpy as np
import torch

from ...games import legal_mask, tactics
from ...imitation import policy_probs

exercise_1 = [(1, 3), (399, 400), (45, 60), (7, 10)]


def agresti_coull(wins, games, z=1.96):
    """Exercise 5.1: the Agresti-Coull interval, p~ ± z sqrt(p~(1 - p~)/n~), n~ = n + z², clipped to [0, 1]."""
    n = games + z * z
    p = (wins + z * z / 2) / n
    half = z * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def symmetric(net, boards, masks):
    """Exercise 5.6: the network's move probabilities averaged over the board and, flipped back, its mirror."""
    p = policy_probs(net, boards, masks)
    q = policy_probs(net, boards[:, :, ::-1].copy(), masks[:, ::-1].copy())[:, ::-1]
    return (p + q) / 2
exercise_2 = (7, [500.0])  # seed, extra values of beta
exercise_3 = (11, 40)      # random positions: seed, number
exercise_4 = 5             # seeds
exercise_5 = 9
exercise_6 = 4


def improve(prior, q, beta):
    """Exercise 5.2: prior * exp(beta * Q), normalised."""
    logits = np.where(prior > 0, np.log(np.maximum(prior, 1e-300)) + beta * q, -np.inf)
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def safe(probs, boards):
    """Exercise 5.3: the probabilities restricted to moves that do not hand over a win."""
    _, _, unsafe = tactics(boards)
    legal = legal_mask(boards)
    keep = legal & ~unsafe
    keep = np.where(keep.any(1, keepdims=True), keep, legal)
    out = probs * keep
    return out / out.sum(1, keepdims=True)


def kl(policy_logits, reference_logits, masks):
    """Exercise 5.4: KL(reference || policy) over legal moves, averaged over positions."""
    logp = torch.log_softmax(policy_logits.masked_fill(~masks, float("-inf")), 1)
    logq = torch.log_softmax(reference_logits.masked_fill(~masks, float("-inf")), 1)
    return torch.where(masks, logq.exp() * (logq - logp), torch.zeros_like(logp)).sum(1).mean()


def visible_results():
    """The results the visible checks compare with, from the references above."""
    from ...checks import replays
    prior, q = replays._prior_and_values(3)
    boards = replays._boards()
    probs = legal_mask(boards) * np.linspace(1, 2, 7)[None]
    probs = probs / probs.sum(1, keepdims=True)
    gen = torch.Generator().manual_seed(1)
    p, r = torch.randn(8, 7, generator=gen), torch.randn(8, 7, generator=gen)
    masks = torch.rand(8, 7, generator=gen) < 0.7
    masks[:, 2] = True
    net, positions = replays._own_net(), replays._random_positions(0, 12)
    return {"replays.exercise_1": [list(agresti_coull(k, n)) for k, n in replays.VISIBLE_1],
            "replays.exercise_2": [improve(prior, q, beta).tolist() for beta in (0.0, 4.0, 50.0)],
            "replays.exercise_3": safe(probs, boards).tolist(),
            "replays.exercise_4": [float(kl(p, r, masks)), float(kl(r, p, masks))],
            "replays.exercise_6": symmetric(net, positions, legal_mask(positions)).tolist()}


def write_expected():
    """Write dltoolbox/checks/expected.py from every hidden module's visible_results()."""
    import importlib
    import pkgutil
    from pathlib import Path

    from ... import classroom
    results = {}
    for info in sorted(pkgutil.iter_modules(classroom.hidden.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{classroom.hidden.__name__}.{info.name}")
        if hasattr(module, "visible_results"):
            results.update(module.visible_results())
    target = Path(__file__).resolve().parents[2] / "checks" / "expected.py"
    body = ",\n".join(f"    {k!r}: {v!r}" for k, v in sorted(results.items()))
    target.write_text('"""The results the visible checks compare with, where the package holds no reference answer.\n\n'
                      'Written by ``python -m dltoolbox.classroom.hidden.replays`` from the instructor\'s references."""\n'
                      f"EXPECTED = {{\n{body},\n}}\n")
    return target


if __name__ == "__main__":
    print(f"wrote {write_expected()}")
