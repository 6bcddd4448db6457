import math

import numpy as np
import pytest

from dltoolbox import ngram
from dltoolbox.words import OpenVocabularyWords

TEXT = "abracadabra"


@pytest.fixture(scope="module")
def devil_sample():
    text = ngram.normalise(ngram.load_corpus("devil"), "lower")[:20000]
    return ngram.split(ngram.tokenize(text))


def test_counts_match_a_hand_computed_example():
    counts = ngram.ngram_counts(TEXT, 2)
    assert counts[("a", "b")] == 2 and counts[("r", "a")] == 2 and counts[("a", "c")] == 1
    assert sum(counts.values()) == len(TEXT) - 1
    model = ngram.NGramModel(3, "none").fit(TEXT)
    assert model.num_ngrams() == 5 + 7 + 7 and model.variant(1).num_ngrams() == 5
    assert model.count(("a",)) == 5 and model.count(("a", "b", "r")) == 2 and model.count(("z",)) == 0
    # "a" is followed by b, c, d, b: P(b | a) = 2/4; the final "a" has no next token
    assert model.variant(2).prob("a", "b") == pytest.approx(0.5)
    assert model.prob("ab", "r") == pytest.approx(1.0)


def test_add_k_hand_computed():
    model = ngram.NGramModel(2, "add_k", k=1.0).fit(TEXT)  # V = 5: a b c d r
    assert model.prob("a", "b") == pytest.approx((2 + 1) / (4 + 5))
    assert model.prob("a", "a") == pytest.approx(1 / 9)


@pytest.mark.parametrize("smoothing", ngram.SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_probabilities_sum_to_one_for_every_context(smoothing, order):
    model = ngram.NGramModel(order, smoothing).fit(TEXT, vocab="xyz")
    contexts = [TEXT[i:i + j] for i in range(len(TEXT)) for j in range(order)] + ["zzzz", "x", ""]
    for context in contexts:
        p = model.distribution(context)
        assert p.shape == (8,) and (p >= 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12), (context, p.sum())
        assert p[model.index["b"]] == pytest.approx(model.prob(context, "b"))


@pytest.mark.parametrize("smoothing, kwargs", [("add_k", {"k": 0.01}), ("kneser_ney", {"discount": 0.9})])
def test_smoothing_never_gives_zero_to_an_unseen_event(smoothing, kwargs):
    model = ngram.NGramModel(4, smoothing, **kwargs).fit(TEXT, vocab="xyz")
    for context in ["abr", "zzz", "dab", ""]:
        assert (model.distribution(context) > 0).all()
    assert np.isfinite(model.log2_probs("xyzzy abracadabra".replace(" ", ""))).all()
    unsmoothed = ngram.NGramModel(4, "none").fit(TEXT, vocab="xyz")
    assert unsmoothed.prob("abr", "x") == 0 and math.isinf(ngram.cross_entropy(unsmoothed, "abx"))


def test_kneser_ney_uses_continuation_counts():
    # "a" and "b" occur equally often, but "b" only ever follows "x": its lower-order weight is small
    text = "xb" * 8 + "acadaeafagahaiaj"
    model = ngram.NGramModel(2, "kneser_ney").fit(text)
    assert model.count(("a",)) == model.count(("b",)) == 8
    assert model.prob("", "a") > 4 * model.prob("", "b")  # unigram level: distinct left neighbours
    assert model.prob("j", "a") > 4 * model.prob("j", "b")  # "j" is never followed: back to that level


def test_sampling_is_reproducible_with_a_seed_and_temperature_sharpens():
    model = ngram.NGramModel(3, "kneser_ney").fit(TEXT * 3)
    one = model.sample(50, np.random.default_rng(7))
    two = model.sample(50, np.random.default_rng(7))
    assert one == two and len(one) == 50 and set(one) <= set(TEXT)
    assert model.sample(50, np.random.default_rng(8)) != one
    cold = model.sample(30, np.random.default_rng(1), temperature=0.05, prompt="ab")
    assert "".join(cold).startswith("racadabra")


def test_char_word_and_byte_levels_run_through_the_same_code():
    text = "the cat sat on the mat. the cat ran — naïve!"
    for level in ngram.LEVELS:
        tokens = ngram.tokenize(text, level)
        model = ngram.NGramModel(2, "kneser_ney").fit(tokens)
        assert np.isfinite(ngram.cross_entropy(model, tokens))
        assert ngram.detokenize(tokens, level).replace(" ", "") == text.replace(" ", "") or level == "word"
    assert ngram.tokenize(text, "word")[:5] == ["the", "cat", "sat", "on", "the"]
    assert len(ngram.tokenize("naïve", "byte")) == 6 and ngram.detokenize(ngram.tokenize("naïve", "byte"), "byte") == "naïve"


def test_normalise_to_shannons_alphabet():
    assert ngram.normalise("It's 1948: A Theory!", "shannon") == "IT S A THEORY"
    assert set(ngram.normalise(ngram.load_corpus("interview"), "shannon")) <= set(ngram.SHANNON_ALPHABET)
    assert ngram.normalise(" A\n\n b ", "lower") == "a b"


def test_variant_shares_counts_and_matches_a_fresh_fit(devil_sample):
    train, held = devil_sample
    big = ngram.NGramModel(5, "kneser_ney").fit(train, vocab=held)
    for order in (2, 4):
        fresh = ngram.NGramModel(order, "kneser_ney").fit(train, vocab=held)
        assert ngram.cross_entropy(big.variant(order), held[:2000]) == pytest.approx(
            ngram.cross_entropy(fresh, held[:2000]), rel=1e-12)


def test_held_out_bits_fall_with_smoothing_and_train_bits_fall_with_order(devil_sample):
    train, held = devil_sample
    model = ngram.NGramModel(6, "none").fit(train, vocab=held)
    train_bits = [ngram.cross_entropy(model.variant(n), train[:3000]) for n in range(1, 7)]
    assert all(a > b for a, b in zip(train_bits, train_bits[1:]))
    assert math.isinf(ngram.cross_entropy(model, held)) and ngram.zero_fraction(model, held) > 0.05
    kn = [ngram.cross_entropy(model.variant(n, "kneser_ney"), held) for n in range(1, 7)]
    assert min(kn) < ngram.cross_entropy(model.variant(1), held) - 1.0
    assert ngram.perplexity(1.0) == 2.0 and math.isinf(ngram.perplexity(math.inf))


def test_corpora_are_shipped_and_checksummed():
    devil = ngram.load_corpus("devil")
    assert len(devil) > 300_000 and "ZOOLOGY, n." in devil
    assert "Shannon" in ngram.load_corpus("interview")


@pytest.mark.parametrize("call, message", [
    (lambda: ngram.NGramModel(3, "none").fit([]), "empty corpus"),
    (lambda: ngram.NGramModel(0), "order must be an int >= 1"),
    (lambda: ngram.NGramModel(2.5), "order must be an int >= 1"),
    (lambda: ngram.NGramModel(2, "laplace"), "unknown smoothing 'laplace'"),
    (lambda: ngram.NGramModel(2, "add_k", k=0), "k > 0"),
    (lambda: ngram.NGramModel(2, "kneser_ney", discount=1.5), "discount in"),
    (lambda: ngram.NGramModel(2).prob("a", "b"), "not fitted"),
    (lambda: ngram.NGramModel(2).fit("ab").prob("a", "q"), "not in the model's vocabulary"),
    (lambda: ngram.NGramModel(2).fit("ab").variant(3), "order must be 1..2"),
    (lambda: ngram.NGramModel(2).fit("ab").sample(3, rng=0), "numpy.random.Generator"),
    (lambda: ngram.NGramModel(2).fit("ab").sample(3, np.random.default_rng(0), temperature=0), "temperature"),
    (lambda: ngram.tokenize("ab", "sentence"), "unknown level"),
    (lambda: ngram.normalise("ab", "greek"), "unknown alphabet"),
    (lambda: ngram.load_corpus("shakespeare"), "unknown corpus"),
    (lambda: ngram.cross_entropy(ngram.NGramModel(1).fit("ab"), ""), "empty token sequence"),
])
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_variants_with_another_discount_do_not_share_remembered_probabilities():
    model = ngram.NGramModel(3, "kneser_ney").fit(TEXT * 2)
    first = ngram.cross_entropy(model, TEXT)
    other = model.variant(discount=0.9)
    assert ngram.cross_entropy(other, TEXT) == pytest.approx(
        ngram.cross_entropy(ngram.NGramModel(3, "kneser_ney", discount=0.9).fit(TEXT * 2), TEXT), rel=1e-12)
    assert ngram.cross_entropy(model, TEXT) == first != ngram.cross_entropy(other, TEXT)


def test_context_seen_hand_example():
    model = ngram.NGramModel(3, "none").fit("abcab")
    # two-character contexts followed by something in training: "ab", "bc", "ca" ("ba" never occurs)
    assert model.context_seen("abcba").tolist() == [True, True, True, True, False]
    assert model.context_seen("ba", n=1).tolist() == [True, True]
    with pytest.raises(ValueError, match="n must be 1..3"):
        model.context_seen("ab", n=4)


def test_gram_seen_hand_example():
    model = ngram.NGramModel(3, "none").fit("abcab")
    # trigrams counted in training: "abc", "bca", "cab"; in "abcba", "bcb" and "cba" never occurred
    assert model.gram_seen("abcba").tolist() == [True, True, True, False, False]
    assert model.gram_seen("abca", n=2).tolist() == [True] * 4 and model.gram_seen("acb", n=2).tolist() == [True, False, False]
    # an unseen context means an unseen n-gram, never the other way round
    text = "abcbacab"
    assert not (~model.context_seen(text) & model.gram_seen(text)).any()
    with pytest.raises(ValueError, match="n must be 1..3"):
        model.gram_seen("ab", n=0)


def test_open_vocabulary_words_charge_every_character_and_know_only_training_words():
    train = "the cat sat on the mat. the cat ran, the dog sat. a cat, a dog."
    held = "the cat sat, the zebra."
    model = OpenVocabularyWords(2).fit(train, alphabet="abcdefghijklmnopqrstuvwxyz")
    assert "zebra" not in model.known and "the" in model.known and "mat" not in model.known  # seen once
    costs = model.bits(held)
    assert costs["unknown"] == 1 and costs["spelling"] > 0 and costs["chars"] == len(held)
    assert costs["spaces"] > 0 and costs["words"] > 0
    total = costs["words"] + costs["spelling"] + costs["spaces"]
    assert model.bits_per_char(held) == pytest.approx(total / len(held))
    # a known-word text has nothing to spell, and an unknown word costs more than a known one
    assert model.bits("the cat sat.")["spelling"] == 0
    assert model.bits_per_char("the zebra sat.") > model.bits_per_char("the cat sat.")
    # spacing: a space before a word is nearly certain, before a full stop nearly impossible
    assert model.bits("the cat")["spaces"] < 1 and model.bits("the cat .")["spaces"] > 1
    with pytest.raises(ValueError, match="not fitted"):
        OpenVocabularyWords().bits("a")
    with pytest.raises(ValueError, match="min_count"):
        OpenVocabularyWords(min_count=0)


def test_choose_kneser_ney_scores_every_setting_and_keeps_the_best_on_validation():
    text = list("the cat sat on the mat. the dog sat on the log. ") * 6
    fit, valid = text[:240], text[240:]
    vocab = sorted(set(text))
    order, discount, log2 = ngram.choose_kneser_ney(fit, valid, vocab, (1, 2, 3, 4), (0.5, 0.9))
    bits = {(n, d): -ngram.scored(ngram.NGramModel(n, "kneser_ney", discount=d).fit(fit, vocab), fit, valid).mean()
            for n in (1, 2, 3, 4) for d in (0.5, 0.9)}
    assert (order, discount) == min(bits, key=bits.get) and order > 1
    assert len(log2) == len(valid) and abs(-log2.mean() - bits[order, discount]) < 1e-12
    with pytest.raises(ValueError, match="at least one"):
        ngram.choose_kneser_ney(fit, valid, vocab, (), (0.5,))
