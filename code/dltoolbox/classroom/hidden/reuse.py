"""Hidden cases of the checks on reusing weights (dltoolbox.checks.reuse)."""
import torch

exercise_1 = [(3, dict(E=5, n_way=5, k_shot=5, n_query=4, dim=16)), (4, dict(E=2, n_way=3, k_shot=3, dim=1))]


def exercise_2():
    """More samples of accuracies."""
    g = torch.Generator().manual_seed(0)
    return [torch.rand(600, generator=g).tolist(), [0.5, 0.5]]


exercise_3 = [5, 6, 7]


def exercise_4():
    """Captions and prefix lengths."""
    return [(torch.tensor([[3, 4]]), 3), (torch.randint(0, 30, (4, 6), generator=torch.Generator().manual_seed(0)), 4)]


def exercise_5():
    """Logits, candidates and the right choice."""
    g = torch.Generator().manual_seed(1)
    L = torch.randn(20, 30, generator=g)
    C = torch.stack([torch.randperm(30, generator=g)[:3] for _ in range(20)])
    return L, C, C.gather(1, L.gather(1, C).argmax(1, keepdim=True)).squeeze(1)


exercise_6 = [3, 4]
exercise_7 = ({"0.weight": "0.weight", "1.bias": "1.bias"}, {"2.weight": "1.weight"})  # mapping, a mismatch
exercise_8 = True  # the layer that was not frozen must get a gradient
exercise_9 = (9, 17)  # other source lengths for the long-sentence BLEU
