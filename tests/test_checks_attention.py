import math

import pytest
import torch
from torch import nn

from dltoolbox.attention import AdditiveAttention, masked_softmax
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import attention as check


# ---- reference solutions -----------------------------------------------------------------------

def additive_weights(query, keys, mask, W_q, W_k, v, coverage, w_c):
    scores = torch.tanh((query @ W_q.T)[:, None, :] + keys @ W_k.T + coverage[..., None] * w_c) @ v  # (B, T)
    return masked_softmax(scores, mask)


def without_coverage(query, keys, mask, W_q, W_k, v, coverage, w_c):
    """The package's AdditiveAttention with the given weights: not the exercise's answer."""
    module = AdditiveAttention(W_q.shape[1], W_k.shape[1], W_q.shape[0])
    with torch.no_grad():
        module.W_q.weight.copy_(W_q), module.W_k.weight.copy_(W_k), module.v.weight.copy_(v[None])
    return module(query, keys, mask)[1]


def attention_entropy(weights):
    return -torch.xlogy(weights, weights).sum(-1)


class Multiplicative(nn.Module):
    def __init__(self, query_size, key_size):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, keys):
        return self.W(keys)

    def forward(self, query, keys, mask=None, projected_keys=None):
        projected_keys = self.project_keys(keys) if projected_keys is None else projected_keys
        weights = masked_softmax((projected_keys * query[:, None, :]).sum(-1), mask)
        return torch.bmm(weights[:, None], keys)[:, 0], weights


def causal_attention(q, k, v):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, -1) @ v


def attention_memory(batch, heads, length, bytes_per_number=4):
    return batch * heads * length * length * bytes_per_number


def local_mask(size, window):
    return torch.ones(size, size, dtype=torch.bool).tril().triu(-(window - 1))


SOLUTIONS = {1: additive_weights, 2: attention_entropy, 3: Multiplicative, 4: causal_attention,
             5: attention_memory, 6: local_mask}


@pytest.mark.parametrize("k", sorted(SOLUTIONS))
@pytest.mark.parametrize("hidden", [False, True])
def test_reference_solutions_pass(k, hidden, capsys):
    assert getattr(check, f"exercise_{k}")(SOLUTIONS[k], hidden=hidden) is None  # no stray output in a cell
    assert f"✓ Exercise 4.{k} passed" in capsys.readouterr().out


def _fails(k, solution, *fragments):
    with pytest.raises(ExerciseError) as info:
        getattr(check, f"exercise_{k}")(solution)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_the_visible_check_works_without_the_hidden_reference(monkeypatch):
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_1(additive_weights) is None
    _fails(1, without_coverage, "course's own")


def test_unimplemented_exercise_says_so():
    def todo(*args):
        raise NotImplementedError()
    _fails(1, todo, "not implemented yet")


def test_wrong_answers_fail_with_hints():
    _fails(1, lambda q, k, m, Wq, Wk, v, c, wc: torch.softmax(
        torch.tanh((q @ Wq.T)[:, None] + k @ Wk.T + c[..., None] * wc) @ v, -1),
        "padded positions", "Hint: set the scores of padded positions")
    _fails(1, lambda q, k, m, Wq, Wk, v, c, wc: masked_softmax(((q @ Wq.T)[:, None] + k @ Wk.T + c[..., None] * wc) @ v,
                                                             m), "differ from v^T tanh")
    _fails(1, without_coverage, "course's own AdditiveAttention")
    _fails(2, lambda w: -(w * w.log()).sum(-1), "NaN", "xlogy")
    _fails(2, lambda w: -(w * torch.log2(w.clamp_min(1e-30))).sum(-1), "wrong entropies")

    class NoMask(Multiplicative):
        def forward(self, query, keys, mask=None, projected_keys=None):
            return super().forward(query, keys, None, projected_keys)
    _fails(3, NoMask, "not softmax over j")
    _fails(3, lambda q, k: nn.Linear(q, k, bias=False), "attribute W")

    def unscaled(q, k, v):
        T = q.shape[-2]
        s = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        return torch.softmax(s, -1) @ v
    _fails(4, unscaled, "sqrt(d)")
    _fails(4, lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v,
           "future")
    _fails(5, lambda b, h, t, w=4: b * h * t * w, "expected")
    _fails(6, lambda size, window: torch.ones(size, size, dtype=torch.bool).triu(-(window - 1)), "future")
    _fails(6, lambda size, window: torch.ones(size, size, dtype=torch.bool).tril().triu(-window), "exactly")
