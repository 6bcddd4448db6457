import pytest
import torch
import torch.nn as nn

from dltoolbox import fewshot as fs
from dltoolbox import frozen
from dltoolbox import transfer
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import reuse as check


def test_reference_solutions_pass(capsys):
    check.exercise_1(fs.prototype_logits, hidden=True)
    check.exercise_2(fs.accuracy_ci, hidden=True)

    def cosine(s, sy, q, n, scale=10.0):
        p = fs.class_means(s, sy, n)
        return scale * nn.functional.normalize(q, dim=-1) @ nn.functional.normalize(p, dim=-1).transpose(1, 2)

    check.exercise_3(cosine, hidden=True)

    def targets(caps, P):
        out = torch.full((caps.shape[0], P + caps.shape[1]), -100, dtype=torch.int64)
        out[:, P - 1:-1] = caps
        return out

    check.exercise_4(targets, hidden=True)
    check.exercise_5(lambda L, C: C.gather(1, L.gather(1, C).argmax(1, keepdim=True)).squeeze(1), hidden=True)

    def gap(lm, vision, X, y, n, g):
        r = frozen.fewshot_naming(lm, vision, X, y, n_way=n, num_episodes=300, generator=g)
        return {"forced_choice": r["forced_choice"], "chance": r["chance"], "gap": r["forced_choice"] - r["chance"]}

    check.exercise_6(gap, *check._small_captioner(1), hidden=True)
    check.exercise_7(transfer.copy_weights, hidden=True)
    check.exercise_8(transfer.freeze, hidden=True)
    a, b, pairs = check._small_translators()
    check.exercise_9(long_sentence_bleu, a, b, pairs, hidden=True)
    assert capsys.readouterr().out.count("✓ Exercise") == 9


def test_wrong_prototypes_fail_with_hints():
    def plain_distance(s, sy, q, n):                                   # not squared
        return -torch.cdist(q, fs.class_means(s, sy, n))

    with pytest.raises(ExerciseError, match="SQUARED"):
        check.exercise_1(plain_distance)

    def assumes_sorted(s, sy, q, n):                                   # ignores the labels
        protos = s.view(s.shape[0], n, -1, s.shape[-1]).mean(2)
        return -torch.cdist(q, protos).pow(2)

    with pytest.raises(ExerciseError, match="labels"):
        check.exercise_1(assumes_sorted)
    with pytest.raises(ExerciseError, match="not implemented"):
        check.exercise_1(lambda *a: (_ for _ in ()).throw(NotImplementedError()))


def test_wrong_ci_and_cosine_fail():
    with pytest.raises(ExerciseError, match="n − 1"):
        check.exercise_2(lambda a: (a.mean().item(), 1.96 * a.std(unbiased=False).item() / len(a) ** 0.5))
    with pytest.raises(ExerciseError, match="mean"):
        check.exercise_2(lambda a: (a.median().item(), 0.1))

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
    with pytest.raises(ExerciseError, match="1/3"):
        check.exercise_6(lambda n: {"forced_choice": 0.6, "chance": 0.5, "gap": 0.1})


def test_more_ways_must_be_measured_on_the_model():
    lm, vision, X, y = check._small_captioner(3)
    with pytest.raises(ExerciseError, match="measures"):                 # a made-up accuracy
        check.exercise_6(lambda lm, v, X, y, n, g: {"forced_choice": 0.6, "chance": 1 / n, "gap": 0.6 - 1 / n},
                         lm, vision, X, y)

    def open_ended(lm, vision, X, y, n, g):                             # the wrong accuracy
        r = frozen.fewshot_naming(lm, vision, X, y, n_way=n, num_episodes=300, generator=g)
        return {"forced_choice": r["open_ended"], "chance": r["chance"], "gap": r["open_ended"] - r["chance"]}

    def other_episodes(lm, vision, X, y, n, g):                         # not the generator it was given
        r = frozen.fewshot_naming(lm, vision, X, y, n_way=n, num_episodes=300, generator=torch.Generator().manual_seed(1))
        return {"forced_choice": r["forced_choice"], "chance": r["chance"], "gap": r["forced_choice"] - r["chance"]}

    for wrong in (open_ended, other_episodes):
        with pytest.raises(ExerciseError, match="measures"):
            check.exercise_6(wrong, lm, vision, X, y, hidden=True)


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

    with pytest.raises(ExerciseError, match="shares memory"):
        check.exercise_7(share)

    def eval_only(module):                                              # eval() does not freeze
        module.eval()

    with pytest.raises(ExerciseError, match="requires_grad|require gradients"):
        check.exercise_8(eval_only)

    def freeze_all_below(module):
        for p in module.parameters():
            p.requires_grad_(True)

    with pytest.raises(ExerciseError):
        check.exercise_8(freeze_all_below)
    a, b, pairs = check._small_translators()
    with pytest.raises(ExerciseError, match="difference"):
        check.exercise_9(lambda r, l, p, n: {**long_sentence_bleu(r, l, p, n), "difference": 0.0}, a, b, pairs)


def long_sentence_bleu(random_model, lm_model, pairs, min_length):
    """A correct 6.9: BLEU of both models on the pairs whose source has at least `min_length` tokens."""
    from dltoolbox import seq2seq

    long = [(s, t) for s, t in pairs if len(s) >= min_length]
    r, l = (seq2seq.evaluate(m, long)["bleu"] for m in (random_model, lm_model))
    return {"random": r, "lm_init": l, "difference": l - r}


def test_exercise_9_measures_the_models_it_is_given_on_the_long_sentences_only():
    from dltoolbox import seq2seq

    a, b, pairs = check._small_translators()
    whole = lambda r, l, p, n: long_sentence_bleu(r, l, p, 0)                       # ignores the length
    fixed = lambda r, l, p, n: {"random": 1.0, "lm_init": 2.0, "difference": 1.0}  # measures nothing
    ignores_models = lambda r, l, p, n: long_sentence_bleu(a, b, p, n)             # always the same two models
    assert seq2seq.evaluate(a, pairs)["bleu"] != seq2seq.evaluate(b, pairs)["bleu"], "the two models differ"
    for wrong in (whole, fixed):
        with pytest.raises(ExerciseError, match="BLEU"):
            check.exercise_9(wrong, a, b, pairs)
    check.exercise_9(ignores_models, a, b, pairs)                                   # visible case: the same models
    with pytest.raises(ExerciseError, match="BLEU"):
        check.exercise_9(ignores_models, a, b, pairs, hidden=True)                  # hidden: the models swapped
