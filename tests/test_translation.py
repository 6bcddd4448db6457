"""The synthetic language pair: hand-checked translations, determinism, disjoint splits, clear errors."""
import pytest

from dltoolbox import translation as tr


@pytest.mark.parametrize("src, tgt", [
    ("the dog sleeps", "vok ka dorma ta"),
    ("some dogs sleep", "vok ra su dorma tu"),
    ("a big red cat sees the old birds", "mil rus mar ne pira ra veli ka o vidu ta"),
    ("the kings sing near a small cow", "rodo ra ka ulo tin ne be kanta tu"),
    ("the girl helps a boy with the cows today and a farmer runs",
     "nali ka hodi ulo ra ka kon kobu ne o hulpa ta e garen ne kura ta"),
])
def test_hand_checked_translations(src, tgt):
    assert " ".join(tr.translate(src)) == tgt


def test_vocab_round_trip_and_special_ids():
    v = tr.source_vocab()
    assert (v.pad, v.bos, v.eos, v.unk) == (0, 1, 2, 3)
    ids = v.encode("the dog sleeps", add_bos=True, add_eos=True)
    assert ids[0] == v.bos and ids[-1] == v.eos
    assert v.decode(ids + [v.pad, v.pad]) == ["the", "dog", "sleeps"]
    assert v.decode(ids, strip=False)[0] == "<bos>"


def test_every_generated_sentence_is_in_the_vocabularies():
    for src, tgt in tr.sample_pairs(300, 3, 47, seed=5):
        tr.source_vocab().encode(src)
        tr.target_vocab().encode(tgt)


def test_generator_is_deterministic_and_lengths_in_range():
    a = tr.sample_pairs(200, 5, 12, seed=3)
    assert a == tr.sample_pairs(200, 5, 12, seed=3)
    assert a != tr.sample_pairs(200, 5, 12, seed=4)
    assert {len(s) for s, _ in a} == set(range(5, 13))
    assert all(tr.translate(s) == t for s, t in a)


def test_splits_are_disjoint_and_unique():
    splits = tr.make_splits(seed=0, n_train=3000, n_valid=200, n_test=300)
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [3000, 200, 300]
    train, valid, test = (tr.sources(splits[k]) for k in ("train", "valid", "test"))
    assert len(train) == 3000 and len(valid) == 200 and len(test) == 300
    assert not (train & test) and not (train & valid) and not (valid & test)


def test_longer_test_set_is_longer_than_training_and_disjoint():
    splits = tr.make_splits(seed=0, n_train=500, n_valid=10, n_test=10, max_len=15)
    longer = tr.longer_test_set(splits, n=50, seed=1)
    assert min(len(s) for s, _ in longer) == 16
    assert not tr.sources(longer) & tr.sources(splits["train"])
    with pytest.raises(ValueError, match="not longer"):
        tr.longer_test_set(splits, n=5, min_len=10)


def test_target_sentences_exclude_given_sources():
    splits = tr.make_splits(seed=0, n_train=200, n_valid=10, n_test=50)
    test_targets = {" ".join(t) for _, t in splits["test"]}
    mono = tr.target_sentences(500, seed=9, exclude=tr.sources(splits["test"]))
    assert len(mono) == 500 and not {" ".join(t) for t in mono} & test_targets


@pytest.mark.parametrize("call, message", [
    (lambda: tr.source_vocab().encode("the unicorn sleeps"), "unknown token"),
    (lambda: tr.translate(""), "empty sentence"),
    (lambda: tr.translate("dog the sleeps"), "not a sentence"),
    (lambda: tr.sample_pairs(5, 2, 10), "min_len"),
    (lambda: tr.sample_pairs(5, 10, 60), "max_len"),
    (lambda: tr.sample_pairs(1000, 3, 3, max_tries=2000), "could only find"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
