"""Checks for the exercises of chapter 7 (scale: compute accounting, the fitted law, compute-optimal size).

The package holds the chapter's own answers (scaling.non_embedding_parameters, power_law, compute_optimal);
the exercises ask for what it does not compute (the weights that multiply, the size a loss needs, the
minimum of the isoFLOP parabola), and the checks compare with the instructor's references (or, in a
student's copy of the package, the visible cases' stored results).
"""
import math

import torch
import torch.nn as nn

from . import ExerciseError, call, expect, hidden_cases, not_the_package, passed, reference, stored
from .. import scaling


def _model(kind):
    """Small models whose weights are easy to count by hand."""
    torch.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))            # 300 weights, 25 biases
    if kind == "embedded":
        return nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 8), nn.Linear(8, 50))      # 400 in the table
    if kind == "gpt":
        return scaling.make_model(scaling.RunConfig(width=16, n_layer=1), vocab_size=30)
    raise ValueError(kind)


VISIBLE_1 = [("mlp", 1_000), ("embedded", 20_000)]


def exercise_1(count_training_flops, hidden=False):
    """Exercise 7.1: training FLOPs ≈ 6 · N · tokens, N the weights that multiply (matrices outside embeddings)."""
    cases, flops = VISIBLE_1, reference(__name__, "training_flops")
    if hidden:
        cases = hidden_cases(__name__, "exercise_1")
    wanted = ([flops(_model(kind), tokens) for kind, tokens in cases] if flops is not None else
              stored("scale.exercise_1"))
    for (kind, tokens), want in zip(cases, wanted):
        model = _model(kind)
        got = call(count_training_flops, model, tokens, exercise="7.1")
        expect(isinstance(got, (int, float)) and not isinstance(got, bool) and math.isfinite(got),
               f"count_training_flops should return a number, got {type(got).__name__}")
        package = 6 * scaling.non_embedding_parameters(model) * tokens
        not_the_package(abs(got - package) <= 1e-9 * package and package != want, "7.1",
                        "scaling.non_embedding_parameters (biases and norms counted too)",
                        "the weights that multiply")
        everything = 6 * sum(p.numel() for p in model.parameters()) * tokens
        hint = ("leave out the nn.Embedding tables: looking a row up costs no multiply-adds"
                if abs(got - everything) < 1e-6 * everything else
                "count the parameters with two or more dimensions (weight matrices) outside nn.Embedding tables: "
                "a bias or a normalisation gain is an addition or a scaling, not a multiply-add per token; "
                "6 = 2 (forward) + 4 (backward)")
        expect(abs(got - want) <= 1e-9 * want, f"{kind} model, {tokens:,} tokens: got {got:.4g} FLOPs, "
               f"expected {want:.4g}", hint)
    return passed("7.1", "6·N·D with N the weights that multiply")


VISIBLE_2 = [(2.5, {"a": 5.0, "alpha": 0.1, "c": 1.0}), (0.6, {"a": 12.0, "alpha": 0.25, "c": 0.5})]


def exercise_2(size_for_loss, hidden=False):
    """Exercise 7.2: the model size at which the fitted law L(N) = a·N^(−α) + c predicts a loss L."""
    cases, size = VISIBLE_2, reference(__name__, "size_for_loss")
    if hidden:
        cases = hidden_cases(__name__, "exercise_2")
    wanted = [size(L, fit) for L, fit in cases] if size is not None else stored("scale.exercise_2")
    for (L, fit), want in zip(cases, wanted):
        got = call(size_for_loss, L, dict(fit), exercise="7.2")
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), "size_for_loss should return a number")
        predicted = float(scaling.power_law(L, fit["a"], fit["alpha"], fit["c"]))
        not_the_package(abs(got - predicted) < 1e-9 * abs(predicted), "7.2",
                        "scaling.power_law (the loss at a size)", "the size at a loss")
        expect(abs(got - want) < 1e-9 * max(1.0, abs(want)), f"L = {L}, fit {fit}: got N = {got:.6g}, expected "
               f"{want:.6g}", "solve L = a·N^(−α) + c for N: N = (a / (L − c)) ** (1 / alpha)")
    for fit in [fit for _, fit in cases][:1]:
        try:
            call(size_for_loss, fit["c"], dict(fit), exercise="7.2")
        except ExerciseError as error:
            if error.raised != "ValueError":
                raise
        else:
            expect(False, "a loss equal to c was accepted", "the law only tends to c: raise ValueError for L <= c")
    return passed("7.2", "the size the law needs for a loss")


VISIBLE_3 = ([{"N": 100, "tokens": [1_000, 100_000], "loss": [3.0, 2.0]},
              {"N": 300, "tokens": [300, 30_000], "loss": [3.0, 1.8]},
              {"N": 1_000, "tokens": [100, 10_000], "loss": [2.8, 1.5]},
              {"N": 10_000, "tokens": [100, 1_000], "loss": [2.9, 2.6]}],
             [6e6, 6e7, 3e8])


def exercise_3(isoflop_optimum, hidden=False):
    """Exercise 7.3: at a fixed compute budget, the minimum of a parabola in log N through the sizes' losses."""
    (runs, budgets), optimum = VISIBLE_3, reference(__name__, "isoflop_optimum")
    if hidden:
        runs, budgets = hidden_cases(__name__, "exercise_3")
    wanted = [optimum(runs, C) for C in budgets] if optimum is not None else stored("scale.exercise_3")
    for budget, want in zip(budgets, wanted):
        got = call(isoflop_optimum, [dict(r) for r in runs], budget, exercise="7.3")
        if want is None:
            expect(got is None, f"budget {budget:.3g} FLOPs: fewer than 3 sizes reach D = C / 6N, so there is no "
                   "parabola to fit", "return None when fewer than 3 sizes take part")
            continue
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), f"budget {budget:.3g} FLOPs: "
               f"expected a size (a number), got {type(got).__name__}")
        try:
            best = scaling.compute_optimal(runs, budget)["best_N"]
        except ValueError:
            best = None
        not_the_package(best is not None and got == best and abs(best - want) > 1e-6 * want, "7.3",
                        "scaling.compute_optimal (the best of the sizes tried)", "the minimum of the fitted parabola")
        expect(abs(got - want) <= 1e-6 * want, f"budget {budget:.3g} FLOPs: got N = {got:.6g}, expected {want:.6g}",
               "for each size D = budget / (6 N) and its seed-averaged loss there (sc.loss_at_tokens; sizes that "
               "do not reach D take no part); fit loss = a·x² + b·x + c with x = ln N (np.polyfit(x, loss, 2)) "
               "and return exp(−b / 2a)")
    return passed("7.3", "the minimum of the isoFLOP parabola at each budget")
