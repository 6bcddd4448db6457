import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dltoolbox import decoding, seq2seq, transformer, translation
from dltoolbox.experiments import attention as experiment


def _model(**kwargs):
    return transformer.build_transformer(translation.source_vocab(), translation.target_vocab(), num_hiddens=16,
                                         num_heads=2, num_layers=2, ffn_hiddens=32, max_len=64, **kwargs)


def test_multi_head_attention_matches_torch_reference():
    torch.manual_seed(0)
    mine = transformer.MultiHeadAttention(num_hiddens=8, num_heads=2)
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mine.W_q.weight, mine.W_k.weight, mine.W_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mine.W_q.bias, mine.W_k.bias, mine.W_v.bias]))
        ref.out_proj.weight.copy_(mine.W_o.weight)
        ref.out_proj.bias.copy_(mine.W_o.bias)
    q, kv = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
    keep = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] + [False] * 5])  # (B, S)
    out = mine(q, kv, kv, keep[:, None, None, :])
    expected, weights = ref(q, kv, kv, key_padding_mask=~keep)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(mine.weights.mean(1), weights)
    with pytest.raises(ValueError, match="divisible"):
        transformer.MultiHeadAttention(10, 3)


def test_positional_encoding_values():
    pe = transformer.positional_encoding(5, 4)
    assert pe.shape == (5, 4)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(pe[3, 3], torch.cos(torch.tensor(3.0 / 100)))


def test_decoder_is_causal_and_padding_is_ignored():
    model = _model().eval()
    V = len(model.tgt_vocab)
    src = torch.randint(4, len(model.src_vocab), (2, 7))
    lengths = torch.tensor([7, 4])
    tgt = torch.randint(4, V, (2, 5))
    logits, _ = model(src, lengths, tgt)
    assert logits.shape == (2, 5, V)
    tgt2 = tgt.clone()
    tgt2[:, 3:] = 4 + (tgt2[:, 3:] - 3) % (V - 4)
    torch.testing.assert_close(model(src, lengths, tgt2)[0][:, :3], logits[:, :3])
    src2 = src.clone()
    src2[1, 4:] = 4 + (src2[1, 4:] - 3) % (len(model.src_vocab) - 4)  # only padding of sentence 1 changes
    torch.testing.assert_close(model(src2, lengths, tgt)[0], logits)


@pytest.mark.parametrize("position", transformer.POSITIONS)
def test_one_step_decoding_with_the_cache_equals_teacher_forcing(position):
    model = _model(position=position).eval()
    src, lengths = torch.randint(4, 20, (2, 5)), torch.tensor([5, 3])
    tgt = torch.randint(4, 20, (2, 4))
    full, _ = model(src, lengths, tgt)
    enc, enc_state, mask = model.encode(src, lengths)
    state = model.decoder.init_state(enc, enc_state, mask)
    steps = []
    for t in range(4):
        logits, state = model.decoder(tgt[:, t:t + 1], state, enc, mask)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full)
    # two tokens at once after a cached prefix of two: the same logits again
    state = model.decoder.init_state(enc, enc_state, mask)
    first, state = model.decoder(tgt[:, :2], state, enc, mask)
    rest, state = model.decoder(tgt[:, 2:], state, enc, mask)
    torch.testing.assert_close(torch.cat([first, rest], 1), full)
    tokens, cache = model.decoder.select_state(state, torch.tensor([1]))
    assert tokens.tolist() == tgt[1:].tolist()
    assert len(cache) == 2 and all(c.shape == (1, 4, 16) for c in cache)


def test_overfits_a_few_pairs_and_greedy_decodes_them():
    pairs = translation.sample_pairs(8, min_len=4, max_len=8, seed=3)
    model = _model()
    history = seq2seq.train(model, pairs, num_steps=150, batch_size=8, lr=1e-2, seed=0)
    assert sum(history["loss"][-10:]) / 10 < 0.05 < history["loss"][0]
    assert decoding.greedy_decode(model, [s for s, _ in pairs]) == [t for _, t in pairs]


def test_rejects_sequences_longer_than_max_len():
    model = _model()
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.ones(1, 65, dtype=torch.long), torch.tensor([65]), torch.ones(1, 2, dtype=torch.long))


def test_alibi_slopes_and_bias_by_hand():
    assert transformer.alibi_slopes(4).tolist() == [0.25, 0.0625, 0.015625, 0.00390625]
    bias = transformer.alibi_bias(2, 3)
    assert bias.shape == (2, 3, 3)
    assert bias[0].tolist() == [[0.0, -1 / 16, -2 / 16], [-1 / 16, 0.0, -1 / 16], [-2 / 16, -1 / 16, 0.0]]
    with pytest.raises(ValueError, match="num_heads"):
        transformer.alibi_slopes(0)


def test_scores_bias_shifts_the_attention_weights():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 4, 8, generator=g) for _ in range(3))
    bias = transformer.alibi_bias(2, 4)
    out, w = transformer.scaled_dot_product_attention(q, k, v, None, bias)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 8 ** 0.5 + bias, dim=-1)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


def test_an_alibi_transformer_has_no_absolute_positions():
    model = _model(position="alibi", seed=1)
    src = torch.tensor([[5, 6, 7, 8]])
    memory, _ = model.encoder(src, torch.tensor([4]))
    assert memory.shape == (1, 4, 16)
    sinusoidal = _model(seed=1)
    for (name, p), (_, q) in zip(model.named_parameters(), sinusoidal.named_parameters()):
        assert torch.equal(p, q), name  # the same weights; only how order enters differs
    long = torch.randint(4, 40, (1, 80))  # longer than max_len=64: fine without position codes
    assert model.encoder(long, torch.tensor([80]))[0].shape == (1, 80, 16)
    with pytest.raises(ValueError, match="longer than max_len"):
        sinusoidal.encoder(long, torch.tensor([80]))
    with pytest.raises(ValueError, match="unknown position"):
        _model(position="rotary")
    hyp = decoding.greedy_decode(model, [["the", "dog", "runs"]], max_len=5)
    assert len(hyp) == 1 and len(hyp[0]) <= 5


def test_build_arm_gives_each_arm_its_model_and_refuses_an_unknown_one():
    lstm, sinusoidal, alibi = (experiment.build_arm(arm, seed=0) for arm in experiment.TRANSFORMER_ARMS)
    assert not hasattr(lstm.encoder, "layers") and not lstm.reverse_source
    assert sinusoidal.encoder.position == "sinusoidal" and alibi.encoder.position == "alibi"
    assert experiment.TRANSFORMER_STEPS["transformer"] == experiment.TRANSFORMER_STEPS["transformer (ALiBi)"]
    with pytest.raises(ValueError, match="unknown arm"):
        experiment.build_arm("GPT-4")


def test_run_records_a_learning_curve_and_per_pair_token_counts():
    job = {"arm": "transformer (ALiBi)", "seed": 0, "lr": 3e-3, "schedule": "constant", "on": "valid",
           "steps": 4, "checkpoint_every": 2}
    result = experiment.transformer_run(job)
    assert result["curve"]["step"] == [2, 4] and len(result["curve"]["valid_exact_match_23_30"]) == 2
    assert 0 < result["curve"]["seconds"][0] <= result["curve"]["seconds"][1] <= result["train_seconds"] + 0.01  # rounded to 0.01 s
    assert len(result["token_counts"]) == result["metrics"]["n"] == 200
    assert all(0 <= hits <= n for hits, n in result["token_counts"])
    with pytest.raises(ValueError, match="on"):
        experiment.transformer_run({**job, "on": "train"})


def test_committed_transformer_sweeps_move_every_arms_recipe_alike_and_the_long_runs_train_their_choice():
    # that the tables choose from their rows and that the notebook trains their choice: tests/test_sweep_registry.py
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "chapters" / "04_attention"
    table = json.loads((root / "transformer_sweep.json").read_text())
    chosen = table["chosen"]
    assert set(chosen) == set(experiment.TRANSFORMER_ARMS) and table["metric"] == "valid_exact_match"
    tried = {}
    for row in table["rows"]:  # each arm: its own first-stage choice moved one recipe setting at a time
        first = all(row[k] == v for k, v in experiment.RECIPE_DEFAULTS.items())
        moved = tuple((k, row[k]) for k, v in experiment.RECIPE_DEFAULTS.items() if row[k] != v)
        tried.setdefault(row["arm"], set()).add((row["lr"], row["schedule"], row["seed"]) if first else moved)
        assert row["steps"] == experiment.TRANSFORMER_STEPS[row["arm"]]  # the same training time for every arm
    assert all(t == tried["transformer"] for t in tried.values())
    assert len(tried["transformer"]) == 8 + sum(len(v) for v in experiment.RECIPE_GRID.values())
    long = json.loads((root / "transformer_long.json").read_text())
    assert long["config"]["from"].endswith("transformer_sweep.json")
    assert sorted((row["arm"], row["seed"]) for row in long["rows"]) == \
        sorted((arm, seed) for arm in experiment.TRANSFORMER_ARMS for seed in experiment.LONG_SEEDS)
    for row in long["rows"]:  # the long runs train the recipes the sweep chose, and keep every longer sentence
        assert {k: row[k] for k in chosen[row["arm"]]} == chosen[row["arm"]]
        assert row["steps"] == experiment.LONG_STEPS == row["curve"]["step"][-1]
        exact, accuracy = experiment.longer_per_sentence(row)
        assert len(exact) == len(accuracy) == 200 and ((0 <= accuracy) & (accuracy <= 1)).all()
        by_bucket = [row["test_exact_match"][b] for b in ("31-35", "36-41")]  # 100 sentences each
        assert abs(sum(by_bucket) / 2 - exact.mean()) < 1e-3


def test_longer_per_sentence_reads_a_row_and_refuses_a_malformed_one():
    row = {"longer_correct": "101", "longer_token_hits": "4 2 5", "longer_tokens": "4 5 5"}
    exact, accuracy = experiment.longer_per_sentence(row)
    assert exact.tolist() == [1.0, 0.0, 1.0] and accuracy.tolist() == [1.0, 0.4, 1.0]
    for bad in ({"longer_correct": "10"}, {"longer_correct": "1x1"}, {"longer_token_hits": "4 6 5"}):
        with pytest.raises(ValueError, match="malformed"):
            experiment.longer_per_sentence({**row, **bad})
