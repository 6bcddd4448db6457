import math

import pytest
import torch
import torch.nn.functional as F

from dltoolbox import attention, decoding, seq2seq
from dltoolbox.experiments import attention as experiment


def test_padding_mask_marks_real_tokens():
    mask = seq2seq.padding_mask(torch.tensor([3, 1, 0]), max_len=4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False], [False] * 4]
    assert seq2seq.padding_mask([2, 2]).shape == (2, 2)


@pytest.mark.parametrize("lengths, max_len, message", [
    (torch.tensor([[1, 2]]), None, "1-d"),
    (torch.tensor([2, -1]), None, "non-negative"),
    (torch.tensor([5, 1]), 3, "shorter than the longest"),
])
def test_padding_mask_rejects_bad_input(lengths, max_len, message):
    with pytest.raises(ValueError, match=message):
        seq2seq.padding_mask(lengths, max_len)


def test_causal_mask_blocks_the_future():
    mask = attention.causal_mask(4)
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False],
                             [True, True, True, False], [True, True, True, True]]
    with pytest.raises(ValueError, match="size >= 1"):
        attention.causal_mask(0)


def test_causal_attention_output_does_not_depend_on_later_tokens():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 6, 8, generator=g)
    y = x.clone()
    y[:, 4:] = torch.randn(1, 2, 8, generator=g)  # change only the future of position 3
    mask = attention.causal_mask(6)
    out_x, w = attention.scaled_dot_product_attention(x, x, x, mask)
    out_y, _ = attention.scaled_dot_product_attention(y, y, y, mask)
    torch.testing.assert_close(out_x[:, :4], out_y[:, :4])
    assert not torch.allclose(out_x[:, 4:], out_y[:, 4:])
    assert torch.all(w[0].triu(1) == 0)


def test_masked_softmax_sums_to_one_and_zeroes_padding():
    scores = torch.randn(3, 5, generator=torch.Generator().manual_seed(1)) * 10
    mask = seq2seq.padding_mask(torch.tensor([5, 2, 0]))
    w = attention.masked_softmax(scores, mask)
    torch.testing.assert_close(w.sum(-1), torch.tensor([1.0, 1.0, 0.0]))
    assert torch.all(w[~mask] == 0)
    with pytest.raises(ValueError, match="bool"):
        attention.masked_softmax(scores, mask.float())


def test_additive_attention_matches_a_hand_computed_example():
    att = attention.AdditiveAttention(query_size=1, key_size=2, num_hiddens=2)
    with torch.no_grad():
        att.W_q.weight.copy_(torch.tensor([[1.0], [0.0]]))
        att.W_k.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        att.v.weight.copy_(torch.tensor([[1.0, 2.0]]))
    query = torch.tensor([[0.5]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]]])
    # scores: tanh(0.5 + k1) + 2 tanh(k2), by hand
    e = [math.tanh(1.5), math.tanh(0.5) + 2 * math.tanh(1.0), math.tanh(3.5) + 2 * math.tanh(3.0)]
    z = sum(math.exp(s) for s in e[:2])
    expected = torch.tensor([[math.exp(e[0]) / z, math.exp(e[1]) / z, 0.0]])
    context, weights = att(query, keys, mask=torch.tensor([[True, True, False]]))
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, expected @ keys[0])


def test_additive_attention_weights_sum_to_one_and_ignore_padding():
    torch.manual_seed(0)
    att = attention.AdditiveAttention(query_size=4, key_size=6, num_hiddens=5)
    keys = torch.randn(3, 7, 6)
    mask = seq2seq.padding_mask(torch.tensor([7, 3, 1]))
    context, weights = att(torch.randn(3, 4), keys, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~mask] == 0)
    keys2 = keys.clone()
    keys2[~mask] = 100.0  # whatever sits in the padding must not change the result
    context2, _ = att(torch.randn(3, 4).copy_(torch.zeros(3, 4)), keys2, mask)
    context1, _ = att(torch.zeros(3, 4), keys, mask)
    torch.testing.assert_close(context1, context2)
    assert context.shape == (3, 6)


def test_additive_attention_rejects_bad_shapes():
    att = attention.AdditiveAttention(2, 2, 2)
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        att(torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="mask must have shape"):
        att(torch.zeros(1, 2), torch.zeros(1, 3, 2), torch.ones(1, 2, dtype=torch.bool))


@pytest.mark.parametrize("use_mask", ["none", "causal", "padding"])
def test_scaled_dot_product_matches_pytorch(use_mask):
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))  # (B, heads, T, d)
    mask = {"none": None, "causal": attention.causal_mask(5),
            "padding": seq2seq.padding_mask(torch.tensor([5, 2]))[:, None, None, :]}[use_mask]
    out, weights = attention.scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))


def test_scaled_dot_product_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="same last size"):
        attention.scaled_dot_product_attention(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="same length"):
        attention.scaled_dot_product_attention(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 4, 3))


def test_attention_cost_memory_is_exactly_quadratic():
    cost = attention.attention_cost([8, 16, 32], num_hiddens=4, repeats=1)
    assert cost["attention_bytes"] == [8 * 8 * 4, 16 * 16 * 4, 32 * 32 * 4]
    assert all(s > 0 for s in cost["seconds"] + cost["lstm_seconds"])
    assert attention.fit_exponent(cost["length"], cost["attention_bytes"]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="non-empty"):
        attention.attention_cost([])
    with pytest.raises(ValueError, match="at least two"):
        attention.fit_exponent([1], [1])


def _tiny_model(decoder=attention.AttentionDecoder, seed=0):
    from dltoolbox import seq2seq, translation
    return seq2seq.build_model(translation.source_vocab(), translation.target_vocab(), num_embed=8,
                               num_hiddens=16, seed=seed, decoder=decoder)


def test_attention_decoder_drops_into_seq2seq_and_ignores_padding(one_thread):
    from dltoolbox import seq2seq
    model = _tiny_model().eval()
    pairs = [("the dog sleeps".split(), "vok ka dorma ta".split()),
             ("a big cat sees the bird today".split(), "mil mar ne hodi pira ka o vidu ta".split())]
    src, src_lengths, y_in, y_out = seq2seq.make_batch(pairs, model.src_vocab, model.tgt_vocab)
    logits, loss = model(src, src_lengths, y_in, y_out)
    assert logits.shape == (2, y_in.shape[1], len(model.tgt_vocab)) and loss.item() > 0
    weights = model.decoder.weights  # (B, T, S)
    assert weights.shape == (2, y_in.shape[1], src.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, y_in.shape[1]))
    assert torch.all(weights[0, :, 3:] == 0), "padded source positions get zero weight"
    alone, _ = model(src[:1, :3], src_lengths[:1], y_in[:1, :5])
    torch.testing.assert_close(alone, logits[:1, :5], atol=1e-5, rtol=1e-5)


def test_attention_decoder_overfits_a_few_pairs_and_aligns(one_thread):
    from dltoolbox import seq2seq, translation
    pairs = translation.sample_pairs(8, min_len=4, max_len=8, seed=3)
    model = _tiny_model()
    history = seq2seq.train(model, pairs, num_steps=120, batch_size=8, lr=1e-2, seed=0)
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert decoding.greedy_decode(model, [s for s, _ in pairs]) == [t for _, t in pairs]
    src, tgt = pairs[0]
    weights = attention.alignment(model, src, tgt)
    assert weights.shape == (len(tgt) + 1, len(src))
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(tgt) + 1))


def test_alignment_needs_an_attention_model():
    from dltoolbox import seq2seq
    with pytest.raises(ValueError, match="needs a model with an AttentionDecoder"):
        attention.alignment(_tiny_model(decoder=seq2seq.LSTMDecoder), ["the", "dog", "sleeps"], ["vok"])


def test_alignment_hits_counts_dictionary_words_only():
    weights = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    sources_of = {"vok": {"dog", "dogs"}, "dorma": {"sleep", "sleeps"}}
    assert attention.alignment_hits(weights, ["dog", "sleeps"], ["vok", "dorma", "ta"], sources_of) == (2, 2)
    assert attention.alignment_hits(weights, ["sleeps", "dog"], ["vok", "dorma", "ta"], sources_of) == (0, 2)
    with pytest.raises(ValueError, match="do not cover"):
        attention.alignment_hits(weights, ["dog"], ["vok"], sources_of)


def test_diagonal_alignment_is_one_hot_and_monotone():
    w = attention.diagonal_alignment(5, 3)
    assert w.shape == (5, 3) and torch.equal(w.sum(1), torch.ones(5))
    assert w.argmax(1).tolist() == [0, 0, 1, 2, 2]
    assert attention.diagonal_alignment(1, 4).argmax(1).tolist() == [0]
    with pytest.raises(ValueError, match="at least one"):
        attention.diagonal_alignment(0, 3)


def test_arms_and_jobs_reject_bad_names():
    with pytest.raises(ValueError, match="unknown arm"):
        experiment.build("attentive")
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        experiment.run({"arm": "attention", "seed": 0, "reverse_source": False, "lr": 1e-2,
                      "schedule": "constant", "on": "train"})


def test_both_arms_share_the_encoder_at_the_same_seed():
    plain, attentive = experiment.build("no attention", seed=3), experiment.build("attention", seed=3, reverse_source=True)
    for (name, p), (_, q) in zip(plain.encoder.named_parameters(), attentive.encoder.named_parameters()):
        assert torch.equal(p, q), name
    assert attentive.reverse_source and not plain.reverse_source


def test_committed_attention_sweep_tunes_both_arms_on_validation_with_the_notebooks_data_and_steps():
    # that both arms tried the same grid and seeds, that the table chooses from its rows and that the
    # notebook trains its choice: tests/test_sweep_registry.py
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "chapters" / "04_attention"
    table = json.loads((root / "sweep.json").read_text())
    assert set(table["chosen"]) == set(experiment.ARMS) and table["metric"] == "valid_exact_match"
    tried = {(row["reverse_source"], row["lr"], row["schedule"], row["seed"])
             for row in table["rows"] if row["arm"] == "attention"}
    assert len(tried) >= 8  # a grid, not a guess
    assert table["config"]["data"] == experiment.DATA and table["config"]["steps"] == experiment.STEPS


def test_quadratic_region_keeps_the_lengths_whose_cost_per_pair_is_flat():
    lengths = [64, 128, 256, 512, 1024, 2048]
    # a fixed cost per call dominates the short ones, the cache cliff the long ones
    seconds = [1e-5 + 1e-9 * T ** 2 * (4 if T >= 2048 else 1) for T in lengths]
    region = attention.quadratic_region(lengths, seconds)
    assert [lengths[i] for i in region] == [256, 512, 1024]
    assert attention.fit_exponent([lengths[i] for i in region], [seconds[i] for i in region]) > 1.5
    assert attention.quadratic_region([10, 20], [1.0, 4.0]) == [0, 1]  # exactly quadratic: all of them
    # a slow outlier inside ends the run: the region is the consecutive lengths around the cheapest
    noisy = list(seconds)
    noisy[1] = 1.2e-9 * 128 ** 2  # 128 within the tolerance, but 256 ...
    noisy[2] = 5e-9 * 256 ** 2  # ... a blip
    assert attention.quadratic_region(lengths, noisy) == [3, 4]
    with pytest.raises(ValueError, match="increasing"):
        attention.quadratic_region([2, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="as many"):
        attention.quadratic_region([1, 2], [1.0])
    with pytest.raises(ValueError, match="tolerance"):
        attention.quadratic_region([1], [1.0], tolerance=0.5)


def test_a_job_may_name_its_steps_and_its_history_counts_tokens():
    out = experiment.run({"arm": "no attention", "seed": 0, "reverse_source": True, "lr": 1e-2,
                        "schedule": "constant", "on": "valid", "steps": 3})
    assert len(out["history"]["loss"]) == len(out["history"]["tokens"]) == 3
    assert all(t > 0 for t in out["history"]["tokens"])
    assert experiment.EQUAL_TIME_STEPS > experiment.STEPS


def test_correct_of_reads_an_equal_time_row_and_refuses_a_malformed_one():
    assert experiment.correct_of({"correct": "1001"}).tolist() == [1.0, 0.0, 0.0, 1.0]
    for bad in ({"correct": "10x1"}, {}):
        with pytest.raises(ValueError, match="malformed"):
            experiment.correct_of(bad)


def test_the_committed_equal_time_table_is_the_baseline_at_the_attention_models_time():
    import json
    from pathlib import Path

    from dltoolbox.experiments import sweeps

    root = Path(__file__).resolve().parents[1] / "chapters" / "04_attention"
    table = json.loads((root / "equal_time.json").read_text())
    chosen = sweeps.chosen(root / "sweep.json")["no attention"]
    splits, longer = experiment.translation_data()
    assert sorted(r["seed"] for r in table["rows"]) == [0, 1, 2, 3]
    for row in table["rows"]:
        assert row["steps"] == experiment.EQUAL_TIME_STEPS and {k: row[k] for k in chosen} == chosen
        assert len(experiment.correct_of(row)) == len(splits["test"]) + len(longer)
