"""Hidden cases of the checks on reusing weights (dltoolbox.checks.reuse), and the reference answers of the
exercises whose answer the package does not hold (6.1, 6.2, 6.7, 6.8)."""
import math
import types

import torch

exercise_1 = [(3, dict(E=5, n_way=5, k_shot=5, n_query=4, dim=16)), (4, dict(E=2, n_way=3, k_shot=3, dim=1))]


def exercise_2():
    """More pilot runs of per-episode accuracies, and the half-widths asked for."""
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(600, generator=g).tolist(), 0.013), ([0.5, 0.25, 0.75, 0.5, 1.0], 0.07),
            ((torch.rand(40, generator=g) > 0.3).double().tolist(), 0.021)]


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
exercise_7 = ({"0.weight": "0.weight", "1.bias": "1.bias", "1.weight": "1.weight"},  # mapping, a mismatch
              {"0.weight": "0.weight", "2.weight": "1.weight"})
exercise_8 = 3  # the seed of the hidden case's weights and batch
exercise_9 = (9, 17)  # other source lengths for the long-sentence BLEU


def nearest_logits(support, support_y, query, n_way):
    """Exercise 6.1: minus the squared distance from each query to the nearest support example of each class."""
    d = ((query.unsqueeze(2) - support.unsqueeze(1)) ** 2).sum(-1)                 # (E, Q, M)
    same = torch.nn.functional.one_hot(support_y, n_way).bool()                    # (E, M, N)
    d = d.unsqueeze(-1).masked_fill(~same.unsqueeze(1), float("inf"))              # (E, Q, M, N)
    return -d.min(2).values


def episodes_needed(accuracies, half_width):
    """Exercise 6.2: the fewest episodes whose 95% half-width 1.96 s / sqrt(n) is at most `half_width`."""
    a = torch.as_tensor(accuracies, dtype=torch.float64)
    return math.ceil((1.96 * a.std(unbiased=True).item() / half_width) ** 2)


def copy_by_name(source, target, mapping):
    """Exercise 6.7: copy by name, into the leading block of a larger target tensor; ValueError first."""
    src, dst = dict(source.named_parameters()), dict(target.named_parameters())
    for t, s in mapping.items():
        if src[s].dim() != dst[t].dim() or any(a > b for a, b in zip(src[s].shape, dst[t].shape)):
            raise ValueError(f"{s} {tuple(src[s].shape)} does not fit into {t} {tuple(dst[t].shape)}")
    with torch.no_grad():
        for t, s in mapping.items():
            dst[t][tuple(slice(0, n) for n in src[s].shape)].copy_(src[s])


def _stay_in_eval(self, mode=True):
    return self


def freeze_module(module):
    """Exercise 6.8: no gradients, no change, evaluation mode whatever mode the model is put in."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    module.train = types.MethodType(_stay_in_eval, module)


def visible_results():
    from ...checks import reuse
    out = {"reuse.exercise_1": [nearest_logits(*reuse._episode(seed, **kw)).tolist() for seed, kw in reuse.VISIBLE_1],
           "reuse.exercise_2": [episodes_needed(xs, h) for xs, h in reuse.VISIBLE_2]}
    copied = reuse._copy_outcome(copy_by_name, *reuse._copy_case(0), *reuse.VISIBLE_7)
    out["reuse.exercise_7"] = {k: v.tolist() for k, v in copied["after"].items()}
    frozen = reuse._freeze_outcome(freeze_module, *reuse._freeze_case(0))
    out["reuse.exercise_8"] = {k: v.tolist() for k, v in frozen["after"].items()}
    return out
