"""Checks for the exercises of chapter 8's memory notebook (what full attention, Perceiver AR and MEGABYTE
pay for a long window, and whether a model reads only the past).

The package holds the three models and their FLOP counts (:mod:`dltoolbox.memory`); the exercises ask for
what it does not compute (MEGABYTE's attention scores at any patch size, the longest window whose scores
fit in a memory, the first prediction a changed byte reaches), and the checks compare with the instructor's
references (or, in a student's copy of the package, the visible cases' stored results).
"""
import math

import torch
import torch.nn as nn

from . import ExerciseError, call, expect, hidden_cases, passed, reference, stored
from .. import gpt, memory


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool)


VISIBLE_1 = [(256, 8), (4096, 16), (64, 1)]


def exercise_1(megabyte_scores, hidden=False):
    """Exercise 8.1: the query-key scores of one global and one local MEGABYTE layer on T bytes in patches of P."""
    cases, scores = VISIBLE_1, reference(__name__, "megabyte_scores")
    if hidden:
        cases = hidden_cases(__name__, "exercise_1")
    wanted = [scores(T, P) for T, P in cases] if scores is not None else stored("memory.exercise_1")
    for (T, P), want in zip(cases, wanted):
        got = call(megabyte_scores, T, P, exercise="8.1")
        expect(_is_count(got), f"megabyte_scores should return an int, got {type(got).__name__}",
               "a count of scores: use // for the number of patches")
        hint = ("the global model attends between the T/P patches, (T/P)² scores; the local model attends "
                "within each of the T/P patches, P² scores each, T·P in all")
        if got == T * T:
            hint = "that is full attention's T²: MEGABYTE attends between patches, then within each patch"
        elif got == (T // P) ** 2 or got == T * P:
            hint = "count both models: (T/P)² between the patches and P² inside each of the T/P patches"
        expect(got == want, f"T = {T}, P = {P}: got {got:,} scores, expected {want:,}", hint)
    for T, P in [(cases[0][0] + 1, cases[0][1] if cases[0][1] > 1 else 2), (cases[0][0], 0)]:
        try:
            call(megabyte_scores, T, P, exercise="8.1")
        except ExerciseError as error:
            if error.raised != "ValueError":
                raise
        else:
            expect(False, f"T = {T}, P = {P} was accepted", "raise ValueError unless P >= 1 and T is a whole "
                   "number of patches (T % P == 0)")
    return passed("8.1", "MEGABYTE's scores, between the patches and within them")


VISIBLE_2 = [(16 * 2 ** 30, 2, 4, 1), (8 * 2 ** 30, 12, 12, 8), (100, 1, 1, 1)]


def exercise_2(longest_window, hidden=False):
    """Exercise 8.2: the longest window whose attention weights (float32) fit in a memory of M bytes."""
    cases, longest = VISIBLE_2, reference(__name__, "longest_window")
    if hidden:
        cases = hidden_cases(__name__, "exercise_2")
    wanted = [longest(*case) for case in cases] if longest is not None else stored("memory.exercise_2")
    for (M, layers, heads, batch), want in zip(cases, wanted):
        got = call(longest_window, M, layers, heads, batch, exercise="8.2")
        expect(_is_count(got), f"longest_window should return an int, got {type(got).__name__}",
               "the window is a whole number of bytes: round down (math.isqrt)")
        hint = ("the weights take layers · heads · batch · T² · 4 bytes (float32): the answer is the largest T "
                "with that at most M, a whole number (math.isqrt)")
        if got == math.isqrt(M // (layers * heads * 4)) != want:
            hint = "every sequence of the batch keeps its own T × T weights: multiply by the batch size too"
        elif got == math.isqrt(M // (layers * heads * batch * 8)) != want:
            hint = "the weights are float32, 4 bytes each, not 8"
        expect(got == want, f"M = {M:,} bytes, {layers} layers × {heads} heads, batch {batch}: got T = {got:,}, "
               f"expected {want:,}", hint)
    return passed("8.2", "the longest window whose attention weights fit")


class _Lagged(nn.Module):
    """Predictions at position p read the byte `lag` places before it (none before the window's start)."""

    def __init__(self, lag):
        super().__init__()
        self.lag, self.table = lag, nn.Embedding(256, 256)

    def forward(self, idx, targets=None):
        shifted = torch.roll(idx, self.lag, dims=1)
        shifted[:, :self.lag] = 0
        return self.table(shifted), None


class _Peeking(nn.Module):
    """A broken model: position p also reads the window's last byte (a look into the future)."""

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(256, 256)

    def forward(self, idx, targets=None):
        return self.table(idx) + self.table(idx[:, -1:]), None


class _Constant(nn.Module):
    """Reads nothing: the same logits everywhere."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(256))

    def forward(self, idx, targets=None):
        return self.bias.expand(*idx.shape, 256), None


def _model(kind):
    """The models the causality exercise probes, built from fixed seeds."""
    torch.manual_seed(0)
    if kind == "gpt":
        return gpt.GPT(gpt.GPTConfig(vocab_size=256, block_size=32, n_embd=16, n_head=2, n_layer=1)).eval()
    if kind == "megabyte":
        return memory.build(memory.config_for("megabyte", 32, patch_size=4, global_embd=16, global_layer=1,
                                              local_embd=8, local_layer=1, n_head=2)).eval()
    if kind.startswith("lagged"):
        return _Lagged(int(kind[len("lagged"):])).eval()
    return {"peeking": _Peeking, "constant": _Constant}[kind]().eval()


def _window(seed, T=32):
    return torch.randint(256, (1, T), generator=torch.Generator().manual_seed(seed))


VISIBLE_3 = [("gpt", 0, 10), ("lagged2", 1, 5), ("peeking", 2, 31), ("constant", 3, 7)]


def exercise_3(first_affected, hidden=False):
    """Exercise 8.3: the first position whose logits change when byte t is changed (None if none does)."""
    cases, first = VISIBLE_3, reference(__name__, "first_affected")
    if hidden:
        cases = hidden_cases(__name__, "exercise_3")
    wanted = ([first(_model(kind), _window(seed), t) for kind, seed, t in cases] if first is not None else
              stored("memory.exercise_3"))
    for (kind, seed, t), want in zip(cases, wanted):
        idx = _window(seed)
        got = call(first_affected, _model(kind), idx.clone(), t, exercise="8.3")
        expect(got is None or _is_count(got), f"first_affected should return a position (an int) or None, got "
               f"{type(got).__name__}")
        hint = ("replace byte t by another value ((idx[0, t] + 1) % 256), run the model on both windows with "
                "torch.no_grad(), and return the first position whose logits differ at all (torch.equal, not a "
                "tolerance), None when no position's do")
        if want is None:
            expect(got is None, f"a model that reads nothing: got position {got}, expected None", hint)
            continue
        expect(got == want, f"{kind} model, byte {t} changed: got position {got}, expected {want}", hint)
    return passed("8.3", "the first prediction a changed byte reaches")
