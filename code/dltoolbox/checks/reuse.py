"""Checks for the exercises of the chapter on reusing weights (few-shot episodes, Frozen, LM initialisation).

Where the package holds a neighbour of an exercise's answer (prototype scores, the confidence interval,
copying and freezing weights), the exercise asks for something it does not compute, and the check
compares with the instructor's reference (or, in a student's copy of the package, with the visible
cases' stored results). The measuring exercises (6.6, 6.9) run on models of the checker's own under the
grader: their reference is measured here, on the same models.
"""
import math

import torch
import torch.nn as nn

from . import call, expect, hidden_cases, is_remote, not_the_package, passed, probe, reference, stored
from .. import fewshot, frozen, gpt, transfer


def _episode(seed, E=3, n_way=4, k_shot=2, n_query=3, dim=5):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(E, n_way * k_shot, dim, generator=g)
    labels = torch.arange(n_way).repeat_interleave(k_shot).expand(E, -1)
    perm = torch.randperm(n_way * k_shot, generator=g)                  # labels need not be sorted
    query = torch.randn(E, n_way * n_query, dim, generator=g)
    return support[:, perm], labels[:, perm].clone(), query, n_way


VISIBLE_1 = [(1, dict()), (2, dict(E=1, n_way=2, k_shot=3, n_query=2, dim=2))]


def exercise_1(nearest_logits, hidden=False):
    """6.1: minus the squared Euclidean distance from each query to the nearest support example of each
    class, shape (E, Q, N) (the package's fewshot.prototype_logits measures to the class means instead)."""
    cases, nearest = VISIBLE_1, reference(__name__, "nearest_logits")
    if hidden:
        cases = cases + hidden_cases(__name__, "exercise_1")
    wanted = ([nearest(*_episode(seed, **kw)) for seed, kw in cases] if nearest is not None else
              [torch.tensor(w) for w in stored("reuse.exercise_1")])
    for (seed, kw), want in zip(cases, wanted):
        support, labels, query, n_way = _episode(seed, **kw)
        got = call(nearest_logits, support, labels, query, n_way, exercise="6.1")
        expect(isinstance(got, torch.Tensor) and got.shape == want.shape,
               f"expected a tensor of shape {tuple(want.shape)} (episodes, queries, classes), got "
               f"{getattr(got, 'shape', type(got).__name__)}", "one score per query and per class")
        expect(bool((got <= 1e-6).all()), "some scores are positive",
               "return minus the squared distance: closer examples get higher scores")
        prototypes = fewshot.prototype_logits(support, labels, query, n_way)
        not_the_package(torch.allclose(got, prototypes, atol=1e-4) and not torch.allclose(want, prototypes, atol=1e-4),
                        "6.1", "fewshot.prototype_logits (distances to the class means)",
                        "the distance to each class's nearest support example")
        expect(torch.allclose(got, want, atol=1e-4),
               f"scores differ from the reference by up to {(got - want).abs().max():.3g}",
               "for each class take the smallest SQUARED Euclidean distance to one of its support examples (use "
               "the labels, they are not sorted), and return minus it")
    return passed("6.1", "each class scores its nearest support example")


VISIBLE_2 = [([1.0, 0.0, 1.0, 1.0], 0.2), ([0.2, 0.4, 0.6, 0.8, 1.0], 0.05)]  # pilot accuracies, half-width


def exercise_2(episodes_needed, hidden=False):
    """6.2: the fewest episodes whose 95% half-width 1.96·s/√n is at most the one asked for, s from a pilot."""
    cases, needed = VISIBLE_2, reference(__name__, "episodes_needed")
    if hidden:
        cases = cases + hidden_cases(__name__, "exercise_2")()
    wanted = [needed(xs, h) for xs, h in cases] if needed is not None else stored("reuse.exercise_2")
    for (xs, half), want in zip(cases, wanted):
        got = call(episodes_needed, torch.tensor(xs, dtype=torch.float64), half, exercise="6.2")
        interval = fewshot.accuracy_ci(xs)
        not_the_package(isinstance(got, tuple) and len(got) == 2 and all(isinstance(v, float) for v in got)
                        and all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(got, interval)), "6.2",
                        "fewshot.accuracy_ci (the interval of the pilot itself)", "the number of episodes needed")
        expect(isinstance(got, int) and not isinstance(got, bool),
               f"return a whole number of episodes (an int), got {type(got).__name__}",
               "round up: math.ceil(...)")
        expect(got == want, f"{got} episodes for a half-width of {half} from a pilot of {len(xs)} episodes, "
               f"expected {want}",
               "solve 1.96 · s / √n ≤ half_width for n, s the pilot's sample standard deviation (n − 1 in its "
               "denominator), and round up")
    return passed("6.2", "episodes needed for a confidence interval of a given width")


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
        lm = gpt.GPT(frozen.lm_config(n_embd=16, n_head=2, n_layer=1))
        vision = frozen.WordPrefix(lm.tok_emb, frozen.encode(" ".join(frozen.DIGITS)))
        images = torch.rand(60, 1, 8, 8)
    return lm, vision, images, torch.arange(60) % 10


def exercise_6(naming_chance_gap, lm=None, vision=None, images=None, labels=None, hidden=False):
    """6.6: forced-choice accuracy at N ways, its chance level 1/N, their difference, and the difference as
    a share of the way from chance to perfect (the package's fewshot_naming measures the accuracy only).

    The student's function(lm, vision, images, labels, n_way, generator) is run and its accuracy compared
    with the checker's own run of fewshot_naming on the same inputs (300 episodes, the same generator).
    The model given is used where it lives in the checker's process (a notebook's own check); under the
    grader it lives in the student's kernel, so the checker's own small models are used instead.
    """
    from ..seeding import generator

    if lm is None and not hidden:
        raise TypeError("exercise_6 needs the model: check.exercise_6(naming_chance_gap, lm, vision, images, labels)")
    ways = [3] + (list(hidden_cases(__name__, "exercise_6")) if hidden else [])
    if is_remote(lm):
        models = [_small_captioner(0)] + ([_small_captioner(1)] if hidden else [])
    else:
        models = [(lm, vision, images, labels)] + ([_small_captioner(0)] if hidden else [])
    for m, v, X, y in models:
        for n_way in ways:
            got = call(naming_chance_gap, m, v, X, y, n_way, generator(9), exercise="6.6")
            keys = {"forced_choice", "chance", "gap", "normalised_gap"}
            not_the_package(isinstance(got, dict) and {"open_ended", "forced_choice_ci"} <= set(got)
                            and not keys <= set(got), "6.6", "fz.fewshot_naming (the accuracies alone)",
                            "the gap and the normalised gap beside them")
            expect(isinstance(got, dict) and keys <= set(got) and
                   all(isinstance(got[k], (int, float)) and not isinstance(got[k], bool) for k in keys),
                   "return a dict with numbers for 'forced_choice', 'chance', 'gap' and 'normalised_gap'")
            chance = 1 / n_way
            expect(math.isclose(got["chance"], chance, rel_tol=1e-6), f"chance for {n_way} ways is 1/{n_way}",
                   "one right name among n_way")
            want = frozen.fewshot_naming(m, v, X, y, n_way=n_way, num_episodes=300, generator=generator(9))
            expect(math.isclose(float(got["forced_choice"]), want["forced_choice"], abs_tol=1e-4),
                   f"forced-choice accuracy {float(got['forced_choice']):.4f} at {n_way} ways, but this model "
                   f"measures {want['forced_choice']:.4f} on these images",
                   "run fz.fewshot_naming on the model, images and generator you are given, with 300 episodes, and "
                   "report its 'forced_choice' (not 'open_ended')")
            gap = want["forced_choice"] - chance
            expect(math.isclose(got["gap"], gap, abs_tol=1e-4), "gap must be forced_choice − chance")
            expect(math.isclose(got["normalised_gap"], gap / (1 - chance), abs_tol=1e-4),
                   "normalised_gap must be the gap divided by the most it could be, 1 − chance",
                   "0 at chance, 1 for a perfect score, whatever the number of names")
    return passed("6.6", "forced-choice accuracy measured on the model, beside chance")


def _pair_modules():
    src = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 3))
    dst = nn.Sequential(nn.Embedding(9, 4), nn.Linear(4, 3), nn.Linear(3, 2))  # a larger vocabulary
    return src, dst


def _copy_case(seed):
    """The weights of a source and a (larger) target network, drawn by the checker."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        src, dst = _pair_modules()
    return ({k: v.detach().clone() for k, v in src.state_dict().items()},
            {k: v.detach().clone() for k, v in dst.state_dict().items()})


def _copy_outcome(copy_by_name, src_state, dst_state, mapping, mismatch):
    """The target's tensors after a copy, whether any shares memory with the source, what a mismatch did
    (run where `copy_by_name` lives: under the grader, the student's kernel)."""
    src, dst = _pair_modules()
    src.load_state_dict(src_state)
    dst.load_state_dict(dst_state)
    try:
        copy_by_name(src, dst, mapping)
    except Exception as error:  # noqa: BLE001
        return {"copy_raised": type(error).__name__}
    after = {k: v.detach().clone() for k, v in dst.state_dict().items()}
    ptrs = {p.data_ptr() for p in src.parameters()}
    shared = any(p.data_ptr() in ptrs for p in dst.parameters())
    raised, unchanged = None, None
    if mismatch:
        src.load_state_dict(src_state)
        dst = _pair_modules()[1]
        dst.load_state_dict(dst_state)
        try:
            copy_by_name(src, dst, mismatch)
            raised = ""
        except Exception as error:  # noqa: BLE001
            raised = type(error).__name__
        unchanged = all(torch.equal(v, dst_state[k]) for k, v in dst.state_dict().items())
    return {"copy_raised": None, "after": after, "shared": bool(shared), "raised": raised, "unchanged": unchanged}


VISIBLE_7 = ({"0.weight": "0.weight"}, None)  # mapping, a mismatch


def exercise_7(copy_by_name, hidden=False):
    """6.7: copy the named tensors and nothing else, into the leading block of a larger target tensor; a
    source tensor that does not fit raises ValueError before anything changes."""
    mapping, mismatch = hidden_cases(__name__, "exercise_7") if hidden else VISIBLE_7
    src_state, dst_state = _copy_case(3 if hidden else 0)
    own = reference(__name__, "copy_by_name")
    got = probe(_copy_outcome, copy_by_name, src_state, dst_state, mapping, mismatch, exercise="6.7")
    expect(isinstance(got, dict), "the check could not read what your copy did")
    package = _copy_outcome(transfer.copy_weights, src_state, dst_state, mapping, mismatch)
    not_the_package(got.get("copy_raised") == "ValueError" and package["copy_raised"] == "ValueError", "6.7",
                    "transfer.copy_weights (it refuses a larger target)", "a copy into the leading block of a "
                    "larger tensor")
    expect(got.get("copy_raised") is None, "copying into a larger target raised an exception",
           "a target tensor may be larger than its source: copy into target[:n, :m], the source's shape")
    want = (_copy_outcome(own, src_state, dst_state, mapping, mismatch)["after"] if own is not None else
            {k: torch.tensor(v, dtype=dst_state[k].dtype) for k, v in stored("reuse.exercise_7").items()})
    after = got["after"]
    expect(isinstance(after, dict) and sorted(after) == sorted(want), "the target's parameters changed names")
    for name in want:
        expect(isinstance(after[name], torch.Tensor) and after[name].shape == want[name].shape
               and torch.equal(after[name], want[name]),
               f"{name} is not what the copy should leave there",
               "copy the source's values into the leading block (the source's shape) of each tensor named in "
               "the mapping, {target_name: source_name}; leave the rest of it and every other tensor alone")
    expect(not got["shared"], "target now shares memory with the source",
           "copy the values (tensor.copy_ under torch.no_grad()), do not assign the tensor")
    if mismatch:
        expect(got["raised"] != "", "a source tensor that does not fit its target did not raise", "check shapes first")
        expect(got["raised"] == "ValueError", "a source tensor that does not fit raised another exception than "
               "ValueError")
        expect(got["unchanged"] is True, "the target changed before the ValueError",
               "check every pair of the mapping before copying any")
    return passed("6.7", "exactly the intended tensors were copied")


def _freeze_net():
    return nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)), nn.ReLU(), nn.Linear(8, 2))


def _freeze_case(seed):
    """Weights (and running statistics) of the checker's network, and a batch, drawn by the checker."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _freeze_net()
        with torch.no_grad():
            net[0][1].running_mean.normal_()
            net[0][1].running_var.uniform_(0.5, 2.0)
        batch = torch.randn(16, 4) * 2 + 1
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, batch


def _freeze_outcome(freeze_module, state, batch):
    """The network after `freeze_module(net[0])` and one training step in training mode: which parameters
    require gradients, which got one, every tensor after (run where `freeze_module` lives)."""
    net = _freeze_net()
    net.load_state_dict(state)
    freeze_module(net[0])
    net.train()                               # as a training loop does, after the freezing
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    net(batch).pow(2).sum().backward()
    opt.step()
    return {"requires_grad": {n: bool(p.requires_grad) for n, p in net.named_parameters()},
            "has_grad": {n: p.grad is not None for n, p in net.named_parameters()},
            "after": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def exercise_8(freeze_module, hidden=False):
    """6.8: after freezing, training the model (in training mode) leaves the module unchanged — weights and
    running statistics — gives it no gradients, and trains the rest as usual."""
    state, batch = _freeze_case(hidden_cases(__name__, "exercise_8") if hidden else 0)
    own = reference(__name__, "freeze_module")
    got = probe(_freeze_outcome, freeze_module, state, batch, exercise="6.8")
    expect(isinstance(got, dict) and {"requires_grad", "has_grad", "after"} <= set(got),
           "the check could not read what freezing did")
    frozen_names = [n for n in state if n.startswith("0.")]
    expect(all(not got["requires_grad"].get(n, True) for n in frozen_names if n in got["requires_grad"]),
           "frozen parameters still require gradients", "set requires_grad to False on every parameter of the module")
    expect(not any(got["has_grad"].get(n, True) for n in got["has_grad"] if n.startswith("0.")),
           "a frozen parameter received a gradient")
    after = got["after"]
    expect(isinstance(after, dict) and sorted(after) == sorted(state), "the network's tensors changed names")
    package = _freeze_outcome(transfer.freeze, state, batch)["after"]
    stats = [n for n in frozen_names if "running" in n]
    not_the_package(all(torch.equal(after[n], package[n]) for n in stats) and
                    not all(torch.equal(package[n], state[n]) for n in stats), "6.8",
                    "transfer.freeze (requires_grad only)", "a module whose running statistics stay fixed too")
    for n in frozen_names:
        expect(isinstance(after[n], torch.Tensor) and torch.equal(after[n], state[n]),
               "the frozen module changed during training" + (" (its BatchNorm's running statistics)"
                                                              if "running" in n or "batches" in n else ""),
               "a later model.train() puts the module back in training mode, where BatchNorm updates its running "
               "statistics: keep the frozen module in evaluation mode whatever mode the model is put in")
    want = (_freeze_outcome(own, state, batch)["after"] if own is not None else
            {k: torch.tensor(v, dtype=state[k].dtype) for k, v in stored("reuse.exercise_8").items()})
    expect(all(isinstance(after[n], torch.Tensor) and after[n].shape == want[n].shape
               and torch.allclose(after[n].double(), want[n].double(), atol=1e-5) for n in want),
           "the rest of the network did not train as it should beside the frozen module",
           "touch only the module you were given; it computes as in evaluation mode (running statistics), so "
           "the gradients of the other layers are those of the network in that state")
    return passed("6.8", "frozen means unchanged, also the running statistics, and gradient-free")


def _small_translators():
    """Two different small translators (one trained briefly, one not) and test pairs, a third of whose targets
    are the first model's translation and a third the second's (so that each gets some exactly right)."""
    from .. import decoding, seq2seq, translation

    with torch.random.fork_rng(devices=[]):
        splits = translation.make_splits(seed=3, n_train=300, n_valid=10, n_test=120)
        src, tgt = translation.source_vocab(), translation.target_vocab()
        untrained = seq2seq.build_model(src, tgt, num_embed=16, num_hiddens=32, seed=1)
        trained = seq2seq.build_model(src, tgt, num_embed=16, num_hiddens=32, seed=2)
        seq2seq.train(trained, splits["train"], num_steps=60, batch_size=32, lr=1e-2, seed=2, desc="6.9 check model")
    pairs = splits["test"]
    sources = [s for s, _ in pairs]
    outputs = [decoding.greedy_decode(model, sources) for model in (untrained, trained)]
    pairs = [(s, [outputs[0][i], outputs[1][i], list(t)][i % 3]) for i, (s, t) in enumerate(pairs)]
    return untrained, trained, pairs


def exercise_9(low_data_effect, random_model, lm_model, pairs, hidden=False):
    """6.9: BLEU of two models on the pairs whose source has at least `min_length` tokens, their difference,
    and how many of those pairs only one of the two translates exactly right (the discordant pairs).

    The student's function(random_model, lm_model, pairs, min_length) is run and compared with the checker's
    own measurement of the same models on the same long sentences; with hidden=True also at other lengths
    and with the two models swapped. The models given are used where they live in the checker's process
    (a notebook's own check); under the grader they live in the student's kernel, so the checker's own
    small translators are used instead.
    """
    from .. import decoding

    lengths = [13] + (list(hidden_cases(__name__, "exercise_9")) if hidden else [])
    if is_remote(random_model) or is_remote(lm_model) or is_remote(pairs):
        random_model, lm_model, pairs = _small_translators()
    cases = [(random_model, lm_model, pairs)] + ([(lm_model, random_model, pairs)] if hidden else [])
    keys = ("random", "lm_init", "difference", "lm_only", "random_only")
    for r_model, l_model, items in cases:
        for n in lengths:
            long = [(s, t) for s, t in items if len(s) >= n]
            if not long:
                continue
            got = call(low_data_effect, r_model, l_model, items, n, exercise="6.9")
            expect(isinstance(got, dict) and set(keys) <= set(got),
                   "return a dict with keys 'random', 'lm_init', 'difference', 'lm_only', 'random_only'")
            expect(all(isinstance(got[k], (int, float)) and not isinstance(got[k], bool) for k in keys),
                   "values must be numbers")
            measured = {}
            for key, model in (("random", r_model), ("lm_init", l_model)):
                result = decoding.evaluate(model, long)
                measured[key] = [list(h) == list(t) for h, (_, t) in zip(result["hypotheses"], long)]
                want = result["bleu"]
                expect(math.isclose(float(got[key]), want, abs_tol=1e-6),
                       f"'{key}': BLEU {float(got[key]):.4f}, but that model measures {want:.4f} on the "
                       f"{len(long)} pairs whose source has at least {n} tokens",
                       "evaluate the model you are given (decoding.evaluate(...)['bleu']) on the pairs whose "
                       "source has at least min_length tokens, and only on those")
            expect(math.isclose(got["difference"], got["lm_init"] - got["random"], abs_tol=1e-6),
                   "difference must be lm_init − random")
            lm_only = sum(b and not a for a, b in zip(measured["random"], measured["lm_init"]))
            random_only = sum(a and not b for a, b in zip(measured["random"], measured["lm_init"]))
            expect(got["lm_only"] == lm_only and got["random_only"] == random_only,
                   f"discordant pairs ({got['lm_only']}, {got['random_only']}), expected ({lm_only}, {random_only})",
                   "count the long pairs that only the LM-initialised model translates exactly right (greedy "
                   "hypothesis == target), and those that only the random one does")
    return passed("6.9", "BLEU and the discordant pairs measured on the long sentences, for the models given")
