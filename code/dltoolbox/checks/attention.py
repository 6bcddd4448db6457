"""Checks for the exercises of the attention chapter (4.1–4.6); each prints its pass line and returns None."""
import math

import torch
import torch.nn.functional as F

from . import call, expect, hidden_cases, not_the_package, passed, probe, reference, stored
from ..attention import AdditiveAttention, causal_mask
from ..seq2seq import padding_mask


def _close(a, b, atol=1e-5):
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=1e-4)


VISIBLE_1 = (1, (2, 4, 2, 3, 5), 1.0)  # seed, (B, T, Cq, Ck, H), scale of the weights


def _additive_case(seed, sizes, scale):
    """The inputs of exercise 4.1: query, keys, mask, W_q, W_k, v, coverage, w_c."""
    B, T, Cq, Ck, H = sizes
    g = torch.Generator().manual_seed(seed)
    W_q, W_k = torch.randn(H, Cq, generator=g) * scale, torch.randn(H, Ck, generator=g) * scale
    v = torch.randn(H, generator=g) * scale
    query, keys = torch.randn(B, Cq, generator=g), torch.randn(B, T, Ck, generator=g)
    mask = padding_mask(torch.tensor([T, 1, 2, T - 1, 3][:B]), T)
    coverage = torch.rand(B, T, generator=g) * 2 * mask                  # attention already paid to each word
    w_c = torch.randn(H, generator=g) * 2 * scale
    return query, keys, mask, W_q, W_k, v, coverage, w_c


def exercise_1(additive_weights, hidden=False):
    """4.1: additive attention with coverage, softmax(v^T tanh(W_q q + W_k k_j + w_c c_j)), padding masked out.

    The package's AdditiveAttention has no coverage term: the weights are compared with the instructor's
    reference (or, in a student's copy of the package, the visible case's stored weights).
    """
    case = hidden_cases(__name__, "exercise_1") if hidden else VISIBLE_1
    args = _additive_case(*case)
    query, keys, mask, W_q, W_k, v, coverage, w_c = args
    B, T = mask.shape
    weights_of = reference(__name__, "coverage_weights")
    expected = weights_of(*args) if weights_of is not None else torch.tensor(stored("attention.exercise_1"))
    got = call(additive_weights, *args, exercise="4.1")
    expect(isinstance(got, torch.Tensor) and got.shape == (B, T),
           f"expected weights of shape (B, T) = {(B, T)}, got {getattr(got, 'shape', type(got).__name__)}",
           "score every source position of every sentence, then softmax over the source axis (dim=-1)")
    expect(torch.all(got[~mask] == 0), "padded positions get non-zero weight",
           "set the scores of padded positions to -inf before the softmax (scores.masked_fill(~mask, ...))")
    expect(torch.allclose(got.sum(-1), torch.ones(B), atol=1e-5), "the weights of a sentence do not sum to one",
           "the softmax runs over the source axis, the last one")
    module = AdditiveAttention(W_q.shape[1], W_k.shape[1], W_q.shape[0])
    with torch.no_grad():
        module.W_q.weight.copy_(W_q), module.W_k.weight.copy_(W_k), module.v.weight.copy_(v[None])
    without = module(query, keys, mask)[1].detach()
    not_the_package(_close(got, without) and not _close(expected, without), "4.1",
                    "AdditiveAttention (attention weights without coverage)", "the weights with the coverage term")
    expect(_close(got, expected), "the weights differ from v^T tanh(W_q q + W_k k_j + w_c c_j) followed by a softmax",
           "W_q has shape (H, Cq): W_q q is query @ W_q.T; add it to every position of keys @ W_k.T, add "
           "coverage[..., None] * w_c, then tanh, then multiply by v")
    passed("4.1", "additive attention weights with coverage")


def exercise_2(attention_entropy, hidden=False):
    """4.2: the entropy (nats) of each row of attention weights, zeros ignored."""
    rows = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    expected = torch.tensor([math.log(4), 0.0, math.log(2)])
    if hidden:
        rows, expected = hidden_cases(__name__, "exercise_2")()
    got = call(attention_entropy, rows, exercise="4.2")
    expect(isinstance(got, torch.Tensor) and got.shape == expected.shape,
           f"expected one entropy per row, shape {tuple(expected.shape)}, got {getattr(got, 'shape', got)}",
           "sum over the last axis only")
    expect(not torch.isnan(got).any(), "the entropy is NaN where a weight is exactly zero",
           "0 * log 0 counts as 0: use torch.xlogy(w, w) or clamp before the log")
    expect(_close(got, expected, atol=1e-4), "wrong entropies: a uniform row over n positions should give log(n), "
           "a one-hot row 0", "H(w) = -sum_j w_j log w_j, natural log")
    passed("4.2", "uniform rows give log n, one-hot rows give 0")


def _multiplicative_outputs(make_attention, weight, query, keys, mask):
    """What the student's module gives with W set to `weight`: its W's shape, context, weights."""
    Cq, Ck = weight.shape
    module = call(make_attention, Cq, Ck, exercise="4.3")
    W = getattr(module, "W", None)
    if not isinstance(W, torch.nn.Linear) or W.weight.shape != (Cq, Ck):
        return {"W": list(getattr(getattr(W, "weight", None), "shape", []))}
    with torch.no_grad():
        W.weight.copy_(weight)
    context, weights = call(module, query, keys, mask, exercise="4.3")
    projected = call(module.project_keys, keys, exercise="4.3")
    context2, _ = call(module, query, keys, mask, projected, exercise="4.3")
    return {"W": [Cq, Ck], "context": context, "weights": weights, "projected_context": context2}


def exercise_3(make_attention, hidden=False):
    """4.3: multiplicative ("general") attention score q^T W k with the AdditiveAttention interface."""
    seed, (Cq, Ck, B, T) = hidden_cases(__name__, "exercise_3") if hidden else (3, (3, 4, 2, 5))
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(Cq, Ck, generator=g)
    query, keys = torch.randn(B, Cq, generator=g), torch.randn(B, T, Ck, generator=g)
    mask = padding_mask(torch.tensor([T, 2, 1, T][:B]), T)
    got = probe(_multiplicative_outputs, make_attention, weight, query, keys, mask, exercise="4.3")
    expect(got["W"] == [Cq, Ck], "the module needs an attribute W = nn.Linear(key_size, query_size, bias=False)",
           "W maps a key to query space, so its weight has shape (query_size, key_size)")
    scores = torch.einsum("bq,btq->bt", query, keys @ weight.T).masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, -1)
    expect(_close(got["weights"], weights), "the weights are not softmax over j of q^T W k_j (with padding masked out)",
           "score = (W(keys) * query[:, None, :]).sum(-1), then mask, then softmax over the source")
    expect(_close(got["context"], torch.bmm(weights[:, None], keys)[:, 0]),
           "the context is not the weighted sum of the keys", "context = (weights[:, :, None] * keys).sum(1)")
    expect(_close(got["projected_context"], torch.bmm(weights[:, None], keys)[:, 0]),
           "forward(query, keys, mask, projected_keys) must use project_keys' output",
           "the attention decoder computes project_keys(enc_outputs) once and passes it to every step")
    passed("4.3", "multiplicative attention has the same interface and drops into the decoder")


def exercise_4(causal_attention, hidden=False):
    """4.4: causal scaled dot-product attention written out, checked against PyTorch."""
    seed, shape = hidden_cases(__name__, "exercise_4") if hidden else (4, (1, 4, 3))
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
    got = call(causal_attention, q, k, v, exercise="4.4")
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    expect(isinstance(got, torch.Tensor) and got.shape == expected.shape,
           f"expected an output of shape {tuple(expected.shape)}, got {getattr(got, 'shape', got)}",
           "return weights @ values, not the weights")
    full = F.scaled_dot_product_attention(q, k, v)
    expect(not _close(got, full) or _close(full, expected), "the output looks at future positions",
           "mask scores where key j > query i with -inf before the softmax (torch.ones(T, T).tril())")
    expect(_close(got, expected), "the output differs from softmax(Q K^T / sqrt(d) + causal mask) V",
           "divide the scores by sqrt(d), the size of the last axis of the queries")
    passed("4.4", "matches torch.nn.functional.scaled_dot_product_attention(is_causal=True)")


def exercise_5(attention_memory, hidden=False):
    """4.5: bytes of the attention weights of one layer: batch * heads * T * T * bytes per number."""
    cases = [(1, 1, 64, 4), (8, 8, 4096, 4)] + (hidden_cases(__name__, "exercise_5") if hidden else [])
    for batch, heads, length, width in cases:
        got = call(attention_memory, batch, heads, length, width, exercise="4.5")
        want = batch * heads * length * length * width
        expect(got == want, f"attention_memory({batch}, {heads}, {length}, {width}) gave {got}, expected {want}",
               "one weight per (query, key) pair, per head, per sentence")
    passed("4.5", "8 sentences x 8 heads x 4096 tokens need 4 GiB for one layer's weights")


def exercise_6(local_mask, hidden=False):
    """4.6: a sliding-window causal mask: query i sees keys i - window + 1 ... i."""
    for size, window in [(6, 2), (5, 1), (4, 9)] + (hidden_cases(__name__, "exercise_6") if hidden else []):
        got = call(local_mask, size, window, exercise="4.6")
        i, j = torch.arange(size)[:, None], torch.arange(size)[None, :]
        want = (j <= i) & (j > i - window)
        expect(isinstance(got, torch.Tensor) and got.dtype == torch.bool and got.shape == (size, size),
               f"local_mask({size}, {window}) must be a ({size}, {size}) bool tensor", "True = may attend")
        expect(not (got & ~causal_mask(size)).any(), f"local_mask({size}, {window}) lets queries see the future",
               "keep only j <= i (tril)")
        expect(torch.equal(got, want), f"local_mask({size}, {window}) is wrong: each query must see exactly "
               f"its last {window} positions (fewer at the start)", "combine tril() with triu(-(window - 1))")
    passed("4.6", "each query sees a window of fixed size, so the cost grows linearly with T")
