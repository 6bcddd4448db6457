import pytest
import torch

from dltoolbox import frozen as fz
from dltoolbox.experiments import reuse as experiment
from dltoolbox.gpt import GPT
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
    lm = GPT(fz.lm_config(block_size=12, n_embd=16, n_head=2, n_layer=1))
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
    lm = GPT(fz.lm_config(block_size=12, n_embd=16, n_head=2, n_layer=1))
    before = fz.perplexity(lm, stream)
    fz.train_lm(lm, stream, num_steps=60, batch_size=8, lr=1e-2, generator=generator(0))
    assert fz.perplexity(lm, stream) < min(1.5, before / 5)


def test_frozen_captioner_leaves_the_lm_unchanged():
    torch.manual_seed(0)
    lm = GPT(fz.lm_config(block_size=12, n_embd=16, n_head=2, n_layer=1))
    vision = fz.VisionPrefix(n_embd=16, num_tokens=2)
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    images, labels = torch.rand(20, 1, 8, 8), torch.arange(20) % 10
    history = fz.train_captioner(lm, vision, images, labels, num_steps=30, batch_size=10, generator=generator(0))
    assert history["loss"][-1] < history["loss"][0]
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())
    assert all(p.grad is None for p in lm.parameters())
    caps = fz.generate_captions(lm, vision, images[:3])
    assert caps.shape == (3, 4) and torch.equal(caps[:, 0], fz.caption_tokens(labels[:3])[:, 0])


def test_caption_targets_score_only_the_caption():
    assert fz.caption_tokens(torch.tensor([7])).tolist() == [fz.encode("shows a seven .").tolist()]
    named = fz.caption_tokens(torch.tensor([7]), fz.NAMED_CAPTION)
    assert named.tolist() == [fz.encode(". it shows a seven .").tolist()]


def test_descriptions_name_the_digit_they_describe():
    assert torch.equal(fz.make_corpus(500, seed=0), fz.make_corpus(500, seed=0, describe_first=False))
    words = fz.decode(fz.make_corpus(3000, seed=0, describe_first=True)).split()
    shows = [i for i in range(5, len(words) - 1) if words[i - 2:i] == ["shows", "a"]]
    assert len(shows) > 20 and all(words[i - 5] == words[i] and words[i - 4] == "." for i in shows)


def test_word_prefix_is_a_mix_of_the_word_embeddings():
    torch.manual_seed(0)
    lm = GPT(fz.lm_config(block_size=12, n_embd=16, n_head=2, n_layer=1))
    ids = fz.encode(" ".join(fz.DIGITS))
    vision = fz.WordPrefix(lm.tok_emb, ids)
    images = torch.rand(5, 1, 8, 8)
    w = vision.word_weights(images)
    torch.testing.assert_close(w.sum(-1), torch.ones(5))
    torch.testing.assert_close(vision(images), (w @ lm.tok_emb.weight[ids]).unsqueeze(1))
    with torch.no_grad():                                                # a one-hot mix is the word itself
        vision.net[-1].bias.copy_(torch.arange(10) * 100.0)
        vision.net[-1].weight.zero_()
    assert (fz.nearest_words(lm, vision, images) == ids[9]).all()
    fz.train_captioner(lm, vision, images, torch.arange(5), num_steps=3, batch_size=5, generator=generator(0),
                       template=fz.NAMED_CAPTION)
    assert fz.generate_captions(lm, vision, images, template=fz.NAMED_CAPTION).shape == (5, 6)
    torch.testing.assert_close(vision.words, lm.tok_emb.weight[ids])    # the LM's embeddings stay as they were


def test_run_arm_scores_the_same_items_for_every_arm():
    torch.manual_seed(0)
    state = GPT(fz.lm_config(n_embd=16, n_head=2, n_layer=1)).state_dict()
    cfg = dict(n_embd=16, n_head=2, n_layer=1)
    out = [experiment.frozen_run_arm({"lm_state": state, "config": cfg, "arm": a, "seed": 1, "steps": 2,
                                      "episodes": 20, "held_out_tokens": 500, "caption": fz.NAMED_CAPTION,
                                      "describe_first": True}) for a in experiment.FROZEN_ARMS]
    assert [o["arm"] for o in out] == list(experiment.FROZEN_ARMS)
    assert all(o["caption_correct"].shape == (397,) and o["forced_correct"][3].shape == (20,) for o in out)
    assert out[0]["ppl"] == out[2]["ppl"] != out[1]["ppl"]                 # only fine-tuning changes the LM
    assert out[1]["lm_state"] is not None and out[0]["lm_state"] is None
    with pytest.raises(ValueError, match="arm"):
        experiment.frozen_run_arm({"lm_state": state, "config": cfg, "arm": "both", "seed": 0, "steps": 1})


def test_fewshot_naming_returns_accuracies_and_chance():
    torch.manual_seed(0)
    lm = GPT(fz.lm_config(block_size=32, n_embd=16, n_head=2, n_layer=1))
    vision = fz.VisionPrefix(n_embd=16)
    images, labels = torch.rand(40, 1, 8, 8), torch.arange(40) % 10
    out = fz.fewshot_naming(lm, vision, images, labels, n_way=3, num_episodes=10, generator=generator(0))
    assert out["chance"] == pytest.approx(1 / 3) and 0 <= out["forced_choice"] <= 1 and 0 <= out["open_ended"] <= 1
    with pytest.raises(ValueError, match="n_way"):
        fz.fewshot_naming(lm, vision, images, labels, n_way=1)
