import pytest
import torch

from dltoolbox import frozen as fz
from dltoolbox.seeding import generator


def test_vocabulary_round_trip_and_unknown_words():
    ids = fz.encode("two plus three is five .")
    assert fz.decode(ids) == "two plus three is five ."
    with pytest.raises(ValueError, match="not in the vocabulary"):
        fz.encode("two plus banana")


def test_corpus_is_deterministic_and_its_sums_are_right():
    a, b = fz.make_corpus(3000, seed=0), fz.make_corpus(3000, seed=0)
    assert torch.equal(a, b) and len(a) == 3000 and not torch.equal(a, fz.make_corpus(3000, seed=1))
    words = fz.decode(a).split()
    sums = [i for i in range(len(words) - 4) if words[i + 1] == "plus" and words[i + 3] == "is"]
    assert len(sums) > 20
    for i in sums:
        x, y, z = (fz.DIGITS.index(words[j]) for j in (i, i + 2, i + 4))
        assert x + y == z


def test_lm_shapes_prefix_and_causality():
    torch.manual_seed(0)
    lm = fz.TinyGPT(fz.LMConfig(block_size=12, n_embd=16, n_head=2, n_layer=1))
    idx = torch.randint(0, len(fz.VOCAB), (2, 5))
    logits, loss = lm(idx)
    assert logits.shape == (2, 5, len(fz.VOCAB)) and loss is None
    prefix = torch.randn(2, 3, 16)
    logits_p, loss = lm(idx, targets=torch.zeros(2, 8, dtype=torch.long), prefix=prefix)
    assert logits_p.shape == (2, 8, len(fz.VOCAB)) and loss.ndim == 0
    idx2 = idx.clone()
    idx2[:, -1] = (idx2[:, -1] + 1) % len(fz.VOCAB)                 # changing the last token changes no earlier output
    torch.testing.assert_close(lm(idx2)[0][:, :-1], logits[:, :-1])
    with pytest.raises(ValueError, match="longer than block_size"):
        lm(torch.zeros(1, 13, dtype=torch.long))


def test_lm_overfits_a_tiny_stream_and_perplexity_falls():
    torch.manual_seed(0)
    stream = fz.encode(" ".join(["two plus three is five ."] * 40))
    lm = fz.TinyGPT(fz.LMConfig(block_size=12, n_embd=16, n_head=2, n_layer=1))
    before = fz.perplexity(lm, stream)
    fz.train_lm(lm, stream, num_steps=60, batch_size=8, lr=1e-2, generator=generator(0))
    assert fz.perplexity(lm, stream) < min(1.5, before / 5)


def test_frozen_captioner_leaves_the_lm_unchanged():
    torch.manual_seed(0)
    lm = fz.TinyGPT(fz.LMConfig(block_size=12, n_embd=16, n_head=2, n_layer=1))
    vision = fz.VisionPrefix(n_embd=16, num_tokens=2)
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    images, labels = torch.rand(20, 1, 8, 8), torch.arange(20) % 10
    history = fz.train_captioner(lm, vision, images, labels, num_steps=30, batch_size=10, generator=generator(0))
    assert history["loss"][-1] < history["loss"][0]
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())
    assert all(p.grad is None for p in lm.parameters())
    caps = fz.generate_captions(lm, vision, images[:3])
    assert caps.shape == (3, 4) and 0 <= fz.caption_accuracy(lm, vision, images, labels) <= 1


def test_caption_targets_score_only_the_caption():
    assert fz.caption_tokens(torch.tensor([7])).tolist() == [fz.encode("shows a seven .").tolist()]


def test_fewshot_naming_returns_accuracies_and_chance():
    torch.manual_seed(0)
    lm = fz.TinyGPT(fz.LMConfig(block_size=32, n_embd=16, n_head=2, n_layer=1))
    vision = fz.VisionPrefix(n_embd=16)
    images, labels = torch.rand(40, 1, 8, 8), torch.arange(40) % 10
    out = fz.fewshot_naming(lm, vision, images, labels, n_way=3, num_episodes=10, generator=generator(0))
    assert out["chance"] == pytest.approx(1 / 3) and 0 <= out["forced_choice"] <= 1 and 0 <= out["open_ended"] <= 1
    with pytest.raises(ValueError, match="n_way"):
        fz.fewshot_naming(lm, vision, images, labels, n_way=1)
