"""Checks for the exercises of the chapter on reusing weights (few-shot episodes, Frozen, LM initialisation)."""
import math

import torch
import torch.nn as nn

from . import call, expect, hidden_cases, passed, probe
from .. import fewshot, frozen, transfer


def _episode(seed, E=3, n_way=4, k_shot=2, n_query=3, dim=5):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(E, n_way * k_shot, dim, generator=g)
    labels = torch.arange(n_way).repeat_interleave(k_shot).expand(E, -1)
    perm = torch.randperm(n_way * k_shot, generator=g)                  # labels need not be sorted
    query = torch.randn(E, n_way * n_query, dim, generator=g)
    return support[:, perm], labels[:, perm].clone(), query, n_way


def exercise_1(prototype_logits, hidden=False):
    """6.1: minus squared Euclidean distance from each query to each class mean, shape (E, Q, N)."""
    cases = [(1, dict()), (2, dict(E=1, n_way=2, k_shot=1, n_query=1, dim=2))]
    if hidden:
        cases += hidden_cases(__name__, "exercise_1")
    for seed, kw in cases:
        support, labels, query, n_way = _episode(seed, **kw)
        got = call(prototype_logits, support, labels, query, n_way, exercise="6.1")
        want = fewshot.prototype_logits(support, labels, query, n_way)
        expect(isinstance(got, torch.Tensor) and got.shape == want.shape,
               f"expected a tensor of shape {tuple(want.shape)} (episodes, queries, classes), got "
               f"{getattr(got, 'shape', type(got).__name__)}", "one score per query and per class")
        expect(bool((got <= 1e-6).all()), "some scores are positive",
               "return minus the squared distance: closer prototypes get higher scores")
        expect(torch.allclose(got, want, atol=1e-4),
               f"scores differ from the reference by up to {(got - want).abs().max():.3g}",
               "average the support features of each class (use the labels, they are not sorted), then take "
               "minus the SQUARED Euclidean distance")
    return passed("6.1", "prototypes are class means, scores are minus squared distances")


def exercise_2(mean_and_ci, hidden=False):
    """6.2: the mean accuracy over episodes and the 95% confidence half-width 1.96·s/√n."""
    samples = [[1.0, 0.0, 1.0, 1.0], [0.2, 0.4, 0.6, 0.8, 1.0]]
    if hidden:
        samples += hidden_cases(__name__, "exercise_2")()
    for xs in samples:
        got = call(mean_and_ci, torch.tensor(xs), exercise="6.2")
        expect(isinstance(got, tuple) and len(got) == 2, "return a tuple (mean, half_width)")
        mean, half = (float(v) for v in got)
        want_mean, want_half = fewshot.accuracy_ci(xs)
        expect(math.isclose(mean, want_mean, abs_tol=1e-6), f"mean {mean:.4f}, expected {want_mean:.4f}")
        expect(math.isclose(half, want_half, rel_tol=1e-3, abs_tol=1e-9),
               f"half-width {half:.5f} for {len(xs)} episodes, expected {want_half:.5f}",
               "1.96 × the sample standard deviation (n − 1 in the denominator) / √n")
    return passed("6.2", "95% confidence intervals over episodes")


def exercise_3(cosine_prototype_logits, hidden=False):
    """6.3: scale × cosine similarity between each query and each class mean."""
    for seed in hidden_cases(__name__, "exercise_3") if hidden else [5]:
        support, labels, query, n_way = _episode(seed)
        got = call(cosine_prototype_logits, support, labels, query, n_way, 10.0, exercise="6.3")
        protos = fewshot.class_means(support, labels, n_way)
        want = 10.0 * torch.nn.functional.normalize(query, dim=-1) @ torch.nn.functional.normalize(protos, dim=-1).transpose(1, 2)
        expect(isinstance(got, torch.Tensor) and got.shape == want.shape,
               f"expected shape {tuple(want.shape)}, got {getattr(got, 'shape', None)}")
        expect(bool((got.abs() <= 10.0 + 1e-4).all()), "scores exceed the scale",
               "normalise both queries and prototypes to unit length before the dot product")
        expect(torch.allclose(got, want, atol=1e-4), "scores differ from scale × cos(query, class mean)",
               "prototypes are the class means of the raw features; normalise after averaging")
    return passed("6.3", "cosine prototypes")


def exercise_4(prefix_targets, hidden=False):
    """6.4: targets for a caption after a P-token prefix: -100 everywhere except positions P-1 .. P+T-2."""
    cases = [(torch.tensor([[5, 6, 7, 1]]), 1), (torch.tensor([[5, 6, 9, 1], [5, 6, 8, 1]]), 2)]
    if hidden:
        cases += hidden_cases(__name__, "exercise_4")()
    for caps, P in cases:
        got = call(prefix_targets, caps, P, exercise="6.4")
        want = torch.full((caps.shape[0], P + caps.shape[1]), -100, dtype=torch.int64)
        want[:, P - 1:-1] = caps
        expect(isinstance(got, torch.Tensor) and got.shape == want.shape,
               f"expected shape {tuple(want.shape)} (batch, prefix + caption), got {getattr(got, 'shape', None)}",
               "one target per input position: prefix positions plus caption positions")
        expect(torch.equal(got.long(), want),
               f"for prefix length {P}, targets {got[0].tolist()} should be {want[0].tolist()}",
               "position t predicts token t+1: the last prefix position predicts the caption's first word, "
               "and the caption's last position has nothing to predict (-100)")
    return passed("6.4", "each position predicts the next token; the prefix itself is never scored")


def exercise_5(forced_choice, hidden=False):
    """6.5: among each row's candidate ids, the one with the highest logit."""
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 1.0, 4.0]])
    cands = torch.tensor([[2, 3], [1, 2]])
    cases = [(logits, cands, torch.tensor([3, 2]))]
    if hidden:
        cases.append(hidden_cases(__name__, "exercise_5")())
    for L, C, want in cases:
        got = call(forced_choice, L, C, exercise="6.5")
        expect(isinstance(got, torch.Tensor) and got.shape == want.shape, f"expected shape {tuple(want.shape)}")
        expect(torch.equal(got.long(), want), f"chose {got.tolist()[:5]}, expected {want.tolist()[:5]}",
               "return token ids (not positions within the candidate list), and ignore the global argmax")
    return passed("6.5", "forced choice among the names in the prompt")


def _small_captioner(seed):
    """An untrained tiny LM and word prefix, and random images: a model the checker can rebuild anywhere."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = frozen.TinyGPT(frozen.LMConfig(n_embd=16, n_head=2, n_layer=1))
        vision = frozen.WordPrefix(lm.tok_emb, frozen.encode(" ".join(frozen.DIGITS)))
        images = torch.rand(60, 1, 8, 8)
    return lm, vision, images, torch.arange(60) % 10


def exercise_6(naming_chance_gap, lm=None, vision=None, images=None, labels=None, hidden=False):
    """6.6: forced-choice accuracy at N ways, its chance level 1/N and their difference.

    Given a model (lm, vision, images, labels), the student's function(lm, vision, images, labels, n_way,
    generator) is run on it and its accuracy is compared with the checker's own run of fewshot_naming on the
    same inputs (300 episodes, the same generator); with hidden=True also on a small model the checker builds.
    Without a model, the older form function(n_way) is checked for its chance level and gap only.
    """
    if lm is None and not hidden:
        return _exercise_6_arithmetic(naming_chance_gap, [3])
    if lm is None:
        return _exercise_6_arithmetic(naming_chance_gap, hidden_cases(__name__, "exercise_6"))
    from ..seeding import generator

    cases = [3] + (list(hidden_cases(__name__, "exercise_6")) if hidden else [])
    models = [(lm, vision, images, labels)] + ([_small_captioner(0)] if hidden else [])
    for m, v, X, y in models:
        for n_way in cases:
            got = call(naming_chance_gap, m, v, X, y, n_way, generator(9), exercise="6.6")
            expect(isinstance(got, dict) and {"forced_choice", "chance", "gap"} <= set(got),
                   "return a dict with keys 'forced_choice', 'chance', 'gap'")
            expect(math.isclose(got["chance"], 1 / n_way, rel_tol=1e-6), f"chance for {n_way} ways is 1/{n_way}",
                   "call fewshot_naming with n_way set to the argument")
            want = frozen.fewshot_naming(m, v, X, y, n_way=n_way, num_episodes=300, generator=generator(9))
            expect(math.isclose(float(got["forced_choice"]), want["forced_choice"], abs_tol=1e-4),
                   f"forced-choice accuracy {float(got['forced_choice']):.4f} at {n_way} ways, but this model "
                   f"measures {want['forced_choice']:.4f} on these images",
                   "run fewshot_naming on the model, images and generator you are given, with 300 episodes, and "
                   "report its 'forced_choice' (not 'open_ended')")
            expect(math.isclose(got["gap"], got["forced_choice"] - got["chance"], abs_tol=1e-6),
                   "gap must be forced_choice − chance")
    return passed("6.6", "forced-choice accuracy measured on the model, beside chance")


def _exercise_6_arithmetic(naming_chance_gap, ways):
    for n_way in ways:
        got = call(naming_chance_gap, n_way, exercise="6.6")
        expect(isinstance(got, dict) and {"forced_choice", "chance", "gap"} <= set(got),
               "return a dict with keys 'forced_choice', 'chance', 'gap'")
        expect(math.isclose(got["chance"], 1 / n_way, rel_tol=1e-6), f"chance for {n_way} ways is 1/{n_way}",
               "call fewshot_naming with n_way set to the argument")
        expect(0.0 <= got["forced_choice"] <= 1.0, "accuracy must be between 0 and 1")
        expect(math.isclose(got["gap"], got["forced_choice"] - got["chance"], abs_tol=1e-6),
               "gap must be forced_choice − chance")
    return passed("6.6", "accuracy reported beside chance")


def _pair(seed):
    torch.manual_seed(seed)
    src = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 3))
    dst = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 3), nn.Linear(3, 2))
    return src, dst


def _copy_outcome(copy_by_name, mapping, mismatch):
    """The target's tensors after the student's copy, whether it shares memory, what a mismatch raised."""
    src, dst = _pair(0)
    call(copy_by_name, src, dst, mapping, exercise="6.7")
    after = {k: v.clone() for k, v in dst.state_dict().items()}
    shared = after and dst.state_dict()["0.weight"].data_ptr() == src.state_dict()["0.weight"].data_ptr()
    raised = None
    if mismatch:
        try:
            copy_by_name(src, dst, mismatch)
            raised = ""
        except Exception as error:  # noqa: BLE001
            raised = type(error).__name__
    return {"after": after, "shared": bool(shared), "raised": raised}


def exercise_7(copy_by_name, hidden=False):
    """6.7: copy the named tensors and nothing else; a shape mismatch is a ValueError."""
    mapping, mismatch = ({"0.weight": "0.weight"}, None) if not hidden else hidden_cases(__name__, "exercise_7")
    src, dst = _pair(0)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    got = probe(_copy_outcome, copy_by_name, mapping, mismatch, exercise="6.7")
    after = got["after"]
    expect(isinstance(after, dict) and sorted(after) == sorted(before), "the target's parameters changed names")
    for name in after:
        if name in mapping:
            expect(torch.equal(after[name], src.state_dict()[mapping[name]]), f"{name} was not copied")
        else:
            expect(torch.equal(after[name], before[name]), f"{name} changed but was not in the mapping",
                   "copy only the tensors named in the mapping")
    expect(not got["shared"],
           "target now shares memory with the source", "copy the values (tensor.copy_), do not assign the tensor")
    if mismatch:
        expect(got["raised"] != "", "copying a (3, 4) tensor into a (2, 3) one did not raise", "check shapes first")
        expect(got["raised"] == "ValueError", f"a shape mismatch raised {got['raised']}, expected ValueError")
    return passed("6.7", "exactly the intended tensors were copied")


def _freeze_outcome(freeze_module):
    """A small net trained one step after the student froze its first layer: what changed, what got gradients."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    call(freeze_module, net[0], exercise="6.8")
    before = net[0].weight.clone()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    net(torch.randn(16, 4)).pow(2).sum().backward()
    opt.step()
    return {"frozen": all(not p.requires_grad for p in net[0].parameters()), "frozen_grad": net[0].weight.grad is None,
            "before": before.detach(), "after": net[0].weight.detach().clone(),
            "others": all(p.requires_grad for p in net[2].parameters()), "others_grad": net[2].weight.grad is not None}


def exercise_8(freeze_module, hidden=False):
    """6.8: after freezing, a training step leaves the module unchanged and gives it no gradients."""
    got = probe(_freeze_outcome, freeze_module, exercise="6.8")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        first = nn.Linear(4, 8).weight.detach()
    expect(got["frozen"], "frozen parameters still require gradients",
           "set requires_grad to False on every parameter of the module")
    expect(got["frozen_grad"], "a frozen parameter received a gradient")
    expect(torch.equal(got["before"], first) and torch.equal(got["before"], got["after"]),
           "the frozen layer changed during training")
    expect(got["others"], "freezing one layer froze another", "touch only the parameters of the module you were given")
    if hidden:
        expect(got["others_grad"] == hidden_cases(__name__, "exercise_8"), "the layer that was not frozen got no gradient")
    return passed("6.8", "frozen means unchanged and gradient-free")


def _small_translators():
    """Two different small translators (one trained briefly, one not) and test pairs: rebuilt anywhere."""
    from .. import seq2seq, translation

    with torch.random.fork_rng(devices=[]):
        splits = translation.make_splits(seed=3, n_train=300, n_valid=10, n_test=120)
        src, tgt = translation.source_vocab(), translation.target_vocab()
        untrained = seq2seq.build_model(src, tgt, num_embed=16, num_hiddens=32, seed=1)
        trained = seq2seq.build_model(src, tgt, num_embed=16, num_hiddens=32, seed=2)
        seq2seq.train(trained, splits["train"], num_steps=60, batch_size=32, lr=1e-2, seed=2, desc="6.9 check model")
    return untrained, trained, splits["test"]


def exercise_9(low_data_effect, random_model, lm_model, pairs, hidden=False):
    """6.9: BLEU of two models on the pairs whose source has at least 13 tokens, and their difference.

    The student's function(random_model, lm_model, pairs, min_length) is run and compared with the checker's
    own measurement of the same models on the same long sentences; with hidden=True also at other lengths,
    with the two models swapped, and on the checker's own small translators.
    """
    from .. import seq2seq

    lengths = [13] + (list(hidden_cases(__name__, "exercise_9")) if hidden else [])
    cases = [(random_model, lm_model, pairs)]
    if hidden:
        cases += [(lm_model, random_model, pairs), _small_translators()]
    for r_model, l_model, items in cases:
        for n in lengths:
            long = [(s, t) for s, t in items if len(s) >= n]
            if not long:
                continue
            got = call(low_data_effect, r_model, l_model, items, n, exercise="6.9")
            expect(isinstance(got, dict) and {"random", "lm_init", "difference"} <= set(got),
                   "return a dict with keys 'random', 'lm_init', 'difference'")
            expect(all(isinstance(got[k], (int, float)) for k in ("random", "lm_init", "difference")),
                   "values must be numbers")
            for key, model in (("random", r_model), ("lm_init", l_model)):
                want = seq2seq.evaluate(model, long)["bleu"]
                expect(math.isclose(float(got[key]), want, abs_tol=1e-6),
                       f"'{key}': BLEU {float(got[key]):.4f}, but that model measures {want:.4f} on the "
                       f"{len(long)} pairs whose source has at least {n} tokens",
                       "evaluate the model you are given (seq2seq.evaluate(...)['bleu']) on the pairs whose "
                       "source has at least min_length tokens, and only on those")
            expect(math.isclose(got["difference"], got["lm_init"] - got["random"], abs_tol=1e-6),
                   "difference must be lm_init − random")
    return passed("6.9", "BLEU measured on the long sentences, for the models given")
