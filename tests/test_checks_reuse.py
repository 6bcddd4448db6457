import math
import types

import pytest
import torch
import torch.nn as nn

from dltoolbox import fewshot as fs
from dltoolbox import frozen
from dltoolbox import transfer
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import reuse as check


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- reference solutions ------------------------------------------------------------------------------

def nearest_logits(support, support_y, query, n_way):
    d = ((query.unsqueeze(2) - support.unsqueeze(1)) ** 2).sum(-1)                  # (E, Q, M)
    same = nn.functional.one_hot(support_y, n_way).bool()                            # (E, M, N)
    return -d.unsqueeze(-1).masked_fill(~same.unsqueeze(1), float("inf")).min(2).values


def episodes_needed(accuracies, half_width):
    s = torch.as_tensor(accuracies, dtype=torch.float64).std(unbiased=True).item()
    return math.ceil((1.96 * s / half_width) ** 2)


def cosine(s, sy, q, n, scale=10.0):
    p = fs.class_means(s, sy, n)
    return scale * nn.functional.normalize(q, dim=-1) @ nn.functional.normalize(p, dim=-1).transpose(1, 2)


def targets(caps, P):
    out = torch.full((caps.shape[0], P + caps.shape[1]), -100, dtype=torch.int64)
    out[:, P - 1:-1] = caps
    return out


def gap(lm, vision, X, y, n, g):
    r = frozen.fewshot_naming(lm, vision, X, y, n_way=n, num_episodes=300, generator=g)
    forced, chance = r["forced_choice"], r["chance"]
    return {"forced_choice": forced, "chance": chance, "gap": forced - chance,
            "normalised_gap": (forced - chance) / (1 - chance)}


def copy_by_name(source, target, mapping):
    src, dst = dict(source.named_parameters()), dict(target.named_parameters())
    for t, s in mapping.items():
        if src[s].dim() != dst[t].dim() or any(a > b for a, b in zip(src[s].shape, dst[t].shape)):
            raise ValueError(f"{s} does not fit into {t}")
    with torch.no_grad():
        for t, s in mapping.items():
            dst[t][tuple(slice(0, n) for n in src[s].shape)].copy_(src[s])


def freeze_module(module):
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    module.train = types.MethodType(lambda self, mode=True: self, module)


def long_sentence_effect(random_model, lm_model, pairs, min_length):
    """A correct 6.9: BLEU of both models on the long pairs, the difference, and the discordant pairs."""
    from dltoolbox import decoding

    long = [(s, t) for s, t in pairs if len(s) >= min_length]
    r, l = (decoding.evaluate(m, long) for m in (random_model, lm_model))
    right_r = [h == list(t) for h, (_, t) in zip(r["hypotheses"], long)]
    right_l = [h == list(t) for h, (_, t) in zip(l["hypotheses"], long)]
    return {"random": r["bleu"], "lm_init": l["bleu"], "difference": l["bleu"] - r["bleu"],
            "lm_only": sum(b and not a for a, b in zip(right_r, right_l)),
            "random_only": sum(a and not b for a, b in zip(right_r, right_l))}


@pytest.fixture(scope="module")
def translators():
    torch.set_num_threads(1)
    return check._small_translators()


def test_reference_solutions_pass(capsys, translators):
    check.exercise_1(nearest_logits, hidden=True)
    check.exercise_2(episodes_needed, hidden=True)
    check.exercise_3(cosine, hidden=True)
    check.exercise_4(targets, hidden=True)
    check.exercise_5(lambda L, C: C.gather(1, L.gather(1, C).argmax(1, keepdim=True)).squeeze(1), hidden=True)
    check.exercise_6(gap, *check._small_captioner(1), hidden=True)
    check.exercise_7(copy_by_name, hidden=True)
    check.exercise_8(freeze_module, hidden=True)
    a, b, pairs = translators
    check.exercise_9(long_sentence_effect, a, b, pairs, hidden=True)
    assert capsys.readouterr().out.count("✓ Exercise") == 9


def test_the_visible_checks_work_without_the_hidden_references(monkeypatch):
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_1(nearest_logits) and check.exercise_2(episodes_needed)
    assert check.exercise_7(copy_by_name) and check.exercise_8(freeze_module)


@pytest.mark.parametrize("exercise, package_call, what", [
    (check.exercise_1, fs.prototype_logits, "fewshot.prototype_logits"),
    (check.exercise_2, lambda accuracies, half_width: fs.accuracy_ci(accuracies), "fewshot.accuracy_ci"),
    (check.exercise_7, transfer.copy_weights, "transfer.copy_weights"),
    (check.exercise_8, transfer.freeze, "transfer.freeze"),
])
def test_one_call_of_the_package_earns_nothing(exercise, package_call, what):
    with pytest.raises(ExerciseError, match=f"course's own {what}") as raised:
        exercise(package_call, hidden=True)
    assert raised.value.kind == "package"


def test_wrong_nearest_scores_fail_with_hints():
    def plain_distance(s, sy, q, n):                                   # not squared
        return -(-nearest_logits(s, sy, q, n)).sqrt()

    with pytest.raises(ExerciseError, match="SQUARED"):
        check.exercise_1(plain_distance)

    def assumes_sorted(s, sy, q, n):                                   # ignores the labels
        return nearest_logits(s, torch.arange(n).repeat_interleave(s.shape[1] // n).expand(s.shape[0], -1), q, n)

    with pytest.raises(ExerciseError, match="labels"):
        check.exercise_1(assumes_sorted)
    with pytest.raises(ExerciseError, match="not implemented"):
        check.exercise_1(lambda *a: (_ for _ in ()).throw(NotImplementedError()))


def test_wrong_episode_counts_and_cosine_fail():
    with pytest.raises(ExerciseError, match="n − 1"):
        check.exercise_2(lambda a, h: math.ceil((1.96 * a.std(unbiased=False).item() / h) ** 2))
    with pytest.raises(ExerciseError, match="an int"):
        check.exercise_2(lambda a, h: (1.96 * a.std().item() / h) ** 2)

    def unnormalised(s, sy, q, n, scale=10.0):
        return scale * q @ fs.class_means(s, sy, n).transpose(1, 2)

    with pytest.raises(ExerciseError, match="normalise"):
        check.exercise_3(unnormalised)


def test_wrong_targets_and_choices_fail():
    def off_by_one(caps, P):
        out = torch.full((caps.shape[0], P + caps.shape[1]), -100, dtype=torch.int64)
        out[:, P:] = caps
        return out

    with pytest.raises(ExerciseError, match="next token|predicts"):
        check.exercise_4(off_by_one)
    with pytest.raises(ExerciseError, match="ignore the global argmax"):
        check.exercise_5(lambda L, C: L.argmax(1))


def test_more_ways_must_be_measured_on_the_model():
    lm, vision, X, y = check._small_captioner(3)
    with pytest.raises(ExerciseError, match="measures"):                 # a made-up accuracy
        check.exercise_6(lambda lm, v, X, y, n, g: {"forced_choice": 0.6, "chance": 1 / n, "gap": 0.6 - 1 / n,
                                                    "normalised_gap": (0.6 - 1 / n) / (1 - 1 / n)}, lm, vision, X, y)

    def open_ended(lm, vision, X, y, n, g):                             # the wrong accuracy
        r = frozen.fewshot_naming(lm, vision, X, y, n_way=n, num_episodes=300, generator=g)
        return dict(gap(lm, vision, X, y, n, g), forced_choice=r["open_ended"])

    def other_episodes(lm, vision, X, y, n, g):                         # not the generator it was given
        return gap(lm, vision, X, y, n, torch.Generator().manual_seed(1))

    for wrong in (open_ended, other_episodes):
        with pytest.raises(ExerciseError, match="measures"):
            check.exercise_6(wrong, lm, vision, X, y, hidden=True)
    with pytest.raises(ExerciseError, match="1 − chance"):
        check.exercise_6(lambda *a: dict(gap(*a), normalised_gap=gap(*a)["gap"]), lm, vision, X, y)
    with pytest.raises(ExerciseError, match="course's own fz.fewshot_naming"):   # the package's measurement alone
        check.exercise_6(lambda lm, v, X, y, n, g: frozen.fewshot_naming(lm, v, X, y, n_way=n, num_episodes=300,
                                                                         generator=g), lm, vision, X, y)


def test_wrong_copy_and_freeze_fail():
    def copy_everything(src, dst, mapping):
        dst.load_state_dict(src.state_dict(), strict=False)

    with pytest.raises(ExerciseError):
        check.exercise_7(copy_everything, hidden=True)

    def share(src, dst, mapping):
        s, d = dict(src.named_parameters()), dict(dst.named_modules())
        for t, n in mapping.items():
            mod, attr = t.rsplit(".", 1)
            setattr(d[mod], attr, s[n])

    with pytest.raises(ExerciseError):
        check.exercise_7(share, hidden=True)

    def checks_while_copying(source, target, mapping):                   # the target changes before the error
        src, dst = dict(source.named_parameters()), dict(target.named_parameters())
        for t, s in mapping.items():
            if src[s].dim() != dst[t].dim() or any(a > b for a, b in zip(src[s].shape, dst[t].shape)):
                raise ValueError("does not fit")
            with torch.no_grad():
                dst[t][tuple(slice(0, n) for n in src[s].shape)].copy_(src[s])

    with pytest.raises(ExerciseError, match="before the ValueError"):
        check.exercise_7(checks_while_copying, hidden=True)

    def eval_only(module):                                              # eval() does not freeze
        module.eval()

    with pytest.raises(ExerciseError, match="requires_grad|require gradients"):
        check.exercise_8(eval_only)

    def requires_grad_and_eval(module):                                 # a later net.train() undoes eval()
        transfer.freeze(module)
        module.eval()

    with pytest.raises(ExerciseError, match="running statistics"):
        check.exercise_8(requires_grad_and_eval)


def test_exercise_9_measures_the_models_it_is_given_on_the_long_sentences_only(translators):
    from dltoolbox import decoding

    a, b, pairs = translators
    whole = lambda r, l, p, n: long_sentence_effect(r, l, p, 0)                       # ignores the length
    fixed = lambda r, l, p, n: {"random": 1.0, "lm_init": 2.0, "difference": 1.0, "lm_only": 0, "random_only": 0}
    ignores_models = lambda r, l, p, n: long_sentence_effect(a, b, p, n)             # always the same two models
    assert decoding.evaluate(a, pairs)["bleu"] != decoding.evaluate(b, pairs)["bleu"], "the two models differ"
    for wrong in (whole, fixed):
        with pytest.raises(ExerciseError, match="BLEU"):
            check.exercise_9(wrong, a, b, pairs)
    check.exercise_9(ignores_models, a, b, pairs)                                   # visible case: the same models
    with pytest.raises(ExerciseError, match="BLEU"):
        check.exercise_9(ignores_models, a, b, pairs, hidden=True)                  # hidden: the models swapped
    with pytest.raises(ExerciseError, match="difference"):
        check.exercise_9(lambda r, l, p, n: {**long_sentence_effect(r, l, p, n), "difference": 0.0}, a, b, pairs)
    with pytest.raises(ExerciseError, match="discordant"):
        check.exercise_9(lambda r, l, p, n: {**long_sentence_effect(r, l, p, n), "lm_only": 0, "random_only": 0},
                         a, b, pairs, hidden=True)
