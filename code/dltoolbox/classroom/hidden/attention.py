"""Hidden cases of the attention checks (dltoolbox.checks.attention), and the reference answer of exercise 4.1."""
import torch

exercise_1 = (11, (5, 9, 3, 4, 6), 1.5)  # seed, (B, T, Cq, Ck, H), scale of the weights


def exercise_2():
    """Rows of attention weights (one of them one-hot) and their entropies."""
    g = torch.Generator().manual_seed(5)
    rows = torch.softmax(torch.randn(3, 6, 7, generator=g) * 3, -1)
    rows[0, 0] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    return rows, -(rows * rows.clamp_min(1e-30).log()).sum(-1)


exercise_3 = (7, (5, 6, 4, 8))  # seed, (Cq, Ck, B, T)
exercise_4 = (9, (2, 3, 7, 5))
exercise_5 = [(3, 2, 100, 2), (1, 12, 2048, 8)]
exercise_6 = [(33, 4), (64, 16)]


def coverage_weights(query, keys, mask, W_q, W_k, v, coverage, w_c):
    """Exercise 4.1: softmax over j of v^T tanh(W_q q + W_k k_j + w_c c_j), zero at padding."""
    scores = torch.tanh((query @ W_q.T)[:, None, :] + keys @ W_k.T + coverage[..., None] * w_c) @ v
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def visible_results():
    from ...checks import attention
    return {"attention.exercise_1": coverage_weights(*attention._additive_case(*attention.VISIBLE_1)).tolist()}
