"""Hidden cases of the attention checks (dltoolbox.checks.attention)."""
import torch

exercise_1 = (11, (5, 9, 3, 4, 6), 4.0)  # seed, (B, T, Cq, Ck, H), scale of the weights


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
