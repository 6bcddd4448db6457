"""Checks for the exercises of chapter 7 (scale: compute accounting, the fitted law, compute-optimal size)."""
import math

import torch
import torch.nn as nn

from . import call, expect, hidden_cases, passed
from .. import scaling


def _model(kind):
    """Small models whose non-embedding parameters are easy to count by hand."""
    torch.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))            # 325 weights
    if kind == "embedded":
        return nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 8), nn.Linear(8, 50))      # 400 in the table
    if kind == "gpt":
        return scaling.make_model(scaling.RunConfig(width=16, n_layer=1), vocab_size=30)
    raise ValueError(kind)


def exercise_1(count_training_flops, hidden=False):
    """Exercise 7.1: training FLOPs ≈ 6 · (non-embedding parameters) · tokens."""
    cases = [("mlp", 1_000), ("embedded", 20_000)]
    if hidden:
        cases = hidden_cases(__name__, "exercise_1")
    for kind, tokens in cases:
        model = _model(kind)
        got = call(count_training_flops, model, tokens, exercise="7.1")
        expect(isinstance(got, (int, float)) and not isinstance(got, bool) and math.isfinite(got),
               f"count_training_flops should return a number, got {type(got).__name__}")
        want = 6 * scaling.non_embedding_parameters(model) * tokens
        everything = 6 * sum(p.numel() for p in model.parameters()) * tokens
        hint = ("leave out the nn.Embedding tables: looking a row up costs no multiply-adds"
                if abs(got - everything) < 1e-6 * everything and everything != want else
                "6 = 2 (forward: a multiply and an add per weight) + 4 (backward: two such products per weight)")
        expect(abs(got - want) <= 1e-9 * want, f"{kind} model, {tokens:,} tokens: got {got:.4g} FLOPs, "
               f"expected {want:.4g}", hint)
    return passed("7.1", "6·N·D with N counted without the embeddings")


def exercise_2(predict_loss, hidden=False):
    """Exercise 7.2: the loss the fitted law L(N) = a·N^(−α) + c predicts for a model size."""
    cases = [(10_000, {"a": 5.0, "alpha": 0.1, "c": 1.0}), (2_000_000, {"a": 12.0, "alpha": 0.25, "c": 0.5})]
    if hidden:
        cases = hidden_cases(__name__, "exercise_2")
    for N, fit in cases:
        got = call(predict_loss, N, dict(fit), exercise="7.2")
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), "predict_loss should return a number")
        want = float(scaling.power_law(N, fit["a"], fit["alpha"], fit["c"]))
        wrong_sign = fit["a"] * N ** fit["alpha"] + fit["c"]
        hint = ("the exponent is −α: bigger models have lower loss" if abs(got - wrong_sign) < 1e-9 * wrong_sign
                else "a * N ** (-alpha) + c")
        expect(abs(got - want) < 1e-9 * max(1.0, abs(want)), f"N = {N:,}, fit {fit}: got {got:.6g}, expected "
               f"{want:.6g}", hint)
    return passed("7.2", "the law's prediction")


def exercise_3(best_size, hidden=False):
    """Exercise 7.3: at a fixed compute budget, the model size whose run reaches the lowest loss."""
    runs = [{"N": 100, "tokens": [1_000, 100_000], "loss": [3.0, 2.0]},
            {"N": 1_000, "tokens": [100, 10_000], "loss": [2.8, 1.5]},
            {"N": 10_000, "tokens": [100, 1_000], "loss": [2.9, 2.6]}]
    budgets = [6e5, 6e7]
    if hidden:
        runs, budgets = hidden_cases(__name__, "exercise_3")
    for budget in budgets:
        got = call(best_size, [dict(r) for r in runs], budget, exercise="7.3")
        want = scaling.compute_optimal(runs, budget)
        expect(got == want["best_N"], f"budget {budget:.3g} FLOPs: got N = {got}, expected {want['best_N']} "
               f"(losses at D = C / 6N: {want['losses']})",
               "for each size D = budget / (6 N); compare the runs' losses at that D (sc.loss_at_tokens); "
               "sizes that never reach that D, or start after it, cannot take part")
    return passed("7.3", "the compute-optimal size at each budget")
