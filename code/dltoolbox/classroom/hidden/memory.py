"""Hidden cases of the memory checks (dltoolbox.checks.memory), and the reference answers of exercises 8.1-8.3."""
import math

import torch

exercise_1 = [(1024, 4), (8192, 32), (48, 3)]

exercise_2 = [(80 * 2 ** 30, 32, 32, 4), (2 ** 20, 2, 4, 3), (3 * 10 ** 9, 6, 8, 1)]

exercise_3 = [("megabyte", 5, 13), ("lagged3", 6, 0), ("gpt", 7, 31), ("peeking", 8, 4), ("constant", 9, 0)]


def megabyte_scores(T, P):
    """Exercise 8.1: (T/P)² scores between the patches (one global layer) + P² within each of the T/P patches
    (one local layer); ValueError unless P >= 1 and P divides T."""
    if P < 1 or T % P:
        raise ValueError(f"a window of {T} bytes is not a whole number of patches of {P}")
    return (T // P) ** 2 + (T // P) * P * P


def longest_window(memory_bytes, n_layer, n_head, batch_size=1):
    """Exercise 8.2: the largest T with n_layer · n_head · batch_size · T² float32 weights in memory_bytes."""
    return math.isqrt(memory_bytes // (n_layer * n_head * batch_size * 4))


@torch.no_grad()
def first_affected(model, idx, t):
    """Exercise 8.3: the first position whose logits change when byte t of idx changes; None if none does."""
    changed = idx.clone()
    changed[0, t] = (changed[0, t] + 1) % 256
    a, b = model(idx)[0], model(changed)[0]
    differs = [p for p in range(a.shape[1]) if not torch.equal(a[:, p], b[:, p])]
    return differs[0] if differs else None


def visible_results():
    from ...checks import memory
    return {"memory.exercise_1": [megabyte_scores(T, P) for T, P in memory.VISIBLE_1],
            "memory.exercise_2": [longest_window(*case) for case in memory.VISIBLE_2],
            "memory.exercise_3": [first_affected(memory._model(kind), memory._window(seed), t)
                                  for kind, seed, t in memory.VISIBLE_3]}
