"""Hidden cases of the scale checks (dltoolbox.checks.scale), and the reference answers of exercises 7.1-7.3."""
import math

import numpy as np

exercise_1 = [("gpt", 12_345), ("embedded", 7)]

exercise_2 = [(1.9, {"a": 7.5, "alpha": 0.076, "c": 1.69}), (0.7, {"a": 2.0, "alpha": 1.3, "c": 0.0})]

exercise_3 = ([{"N": 50, "tokens": [1_000, 1_000_000], "loss": [3.3, 2.4]},
               {"N": 500, "tokens": [1_000, 100_000], "loss": [3.0, 1.9]},
               {"N": 5_000, "tokens": [100, 20_000], "loss": [3.1, 1.7]},
               {"N": 5_000, "tokens": [100, 20_000], "loss": [3.3, 1.9]},
               {"N": 50_000, "tokens": [10, 2_000], "loss": [3.4, 2.2]}],
              [3e7, 1e8, 6e8, 1e10])


def training_flops(model, n_tokens):
    """Exercise 7.1: 6·N·D with N the weights that multiply: parameters of two or more dimensions outside
    nn.Embedding tables (biases and normalisation gains left out)."""
    import torch
    embedded = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return 6 * sum(p.numel() for p in model.parameters() if p.dim() >= 2 and id(p) not in embedded) * n_tokens


def size_for_loss(L, fit):
    """Exercise 7.2: the N at which L(N) = a·N^(−α) + c reaches the loss L; ValueError when L <= c."""
    if L <= fit["c"]:
        raise ValueError(f"the law never reaches a loss of {L} (c = {fit['c']})")
    return (fit["a"] / (L - fit["c"])) ** (1 / fit["alpha"])


def isoflop_optimum(runs, budget):
    """Exercise 7.3: the minimum of a parabola in log N fitted to the sizes' (seed-averaged) losses at
    D = budget / 6N; None with fewer than 3 sizes taking part or a parabola that opens downwards."""
    from ...scaling import loss_at_tokens
    sizes, losses = [], []
    for N in sorted({r["N"] for r in runs}):
        values = [loss_at_tokens(r, budget / (6 * N)) for r in runs if r["N"] == N]
        if all(v is not None for v in values):
            sizes.append(N)
            losses.append(sum(values) / len(values))
    if len(sizes) < 3:
        return None
    a, b, _ = np.polyfit(np.log(sizes), losses, 2)
    return float(math.exp(-b / (2 * a))) if a > 0 else None


def visible_results():
    from ...checks import scale
    return {"scale.exercise_1": [training_flops(scale._model(kind), tokens) for kind, tokens in scale.VISIBLE_1],
            "scale.exercise_2": [size_for_loss(L, fit) for L, fit in scale.VISIBLE_2],
            "scale.exercise_3": [isoflop_optimum(scale.VISIBLE_3[0], C) for C in scale.VISIBLE_3[1]]}
