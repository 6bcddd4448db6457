"""The LSTM encoder–decoder: masking, reversal, decoding, overfitting, evaluation, clear errors."""
import pytest
import torch

from dltoolbox import decoding
from dltoolbox import seq2seq as s2s
from dltoolbox import translation as tr
from dltoolbox.experiments import seq2seq as experiment

SV, TV = tr.source_vocab(), tr.target_vocab()
PAIRS = tr.sample_pairs(8, 3, 9, seed=11)


def small_model(reverse=False, seed=0, decoder=None):
    return s2s.build_model(SV, TV, num_embed=16, num_hiddens=32, reverse_source=reverse, seed=seed,
                           decoder=decoder)


@pytest.fixture(scope="module")
def overfit():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = s2s.build_model(SV, TV, num_embed=32, num_hiddens=64, seed=0)
    history = s2s.train(model, PAIRS, num_steps=150, batch_size=8, lr=1e-2, seed=0)
    torch.set_num_threads(threads)
    return model, history


def test_pad_mask_and_reverse_by_hand():
    x, lengths = s2s.pad_batch([[5, 6, 7], [8]])
    assert x.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    assert s2s.padding_mask(lengths, 4).tolist() == [[True, True, True, False], [True, False, False, False]]
    assert s2s.reverse_padded(x, lengths).tolist() == [[7, 6, 5], [8, 0, 0]]
    y = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert s2s.reverse_padded(y, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_padding_never_changes_the_encoder_or_the_loss():
    model = small_model()
    src, src_lengths, y_in, y_out = s2s.make_batch(PAIRS, SV, TV)
    out, (h, c) = model.encoder(src, src_lengths)
    pad = lambda t, k: torch.cat([t, torch.zeros(t.shape[0], k, dtype=t.dtype)], 1)
    out2, (h2, c2) = model.encoder(pad(src, 5), src_lengths)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)
    torch.testing.assert_close(out2[:, :src.shape[1]], out)
    assert out2[:, src.shape[1]:].abs().max() == 0
    logits, loss = model(src, src_lengths, y_in, y_out)
    logits2, loss2 = model(pad(src, 5), src_lengths, pad(y_in, 3), pad(y_out, 3))
    torch.testing.assert_close(loss2, loss)
    torch.testing.assert_close(logits2[:, :logits.shape[1]], logits)
    # a sentence's loss does not depend on the other (longer) sentences in its batch
    _, alone = model(*s2s.make_batch(PAIRS[:1], SV, TV))
    logits_all, _ = model(src, src_lengths, y_in)
    n = len(PAIRS[0][1]) + 1
    first = torch.nn.functional.cross_entropy(logits_all[0, :n], y_out[0, :n])
    torch.testing.assert_close(first, alone)


def test_reverse_source_equals_feeding_reversed_sentences():
    plain, reverse = small_model(seed=3), small_model(reverse=True, seed=3)
    src, src_lengths, y_in, y_out = s2s.make_batch(PAIRS, SV, TV)
    backwards = s2s.make_batch([(s[::-1], t) for s, t in PAIRS], SV, TV)
    torch.testing.assert_close(reverse(src, src_lengths, y_in)[0], plain(*backwards[:3])[0])


def test_overfit_one_batch_then_translate_it_exactly(overfit):
    model, history = overfit
    assert len(history["loss"]) == 150 and history["loss"][-1] < 0.05 < history["loss"][0]
    assert all(t > 0 for t in history["tokens"])
    metrics = decoding.evaluate(model, PAIRS, buckets=((3, 5), (6, 9)))
    assert metrics["exact_match"] == 1.0 and metrics["token_accuracy"] == 1.0
    assert metrics["bleu"] == pytest.approx(100.0)
    assert sum(b["n"] for b in metrics["buckets"].values()) == len(PAIRS)
    assert decoding.translate(model, PAIRS[0][0], beam_size=3) == PAIRS[0][1]


def test_training_is_deterministic():
    runs = [s2s.train(small_model(seed=1), PAIRS, num_steps=5, batch_size=4, seed=7)["loss"] for _ in range(2)]
    assert runs[0] == runs[1]


def test_beam_of_one_is_greedy_and_scores_are_log_probabilities(overfit):
    model, _ = overfit
    fresh = small_model(seed=5)
    for m in (model, fresh):
        sentences = [s for s, _ in tr.sample_pairs(6, 3, 12, seed=2)]
        greedy = decoding.greedy_decode(m, sentences, max_len=20)
        assert [decoding.beam_search(m, s, 1, max_len=20)[0][0] for s in sentences] == greedy
    candidates = decoding.beam_search(model, PAIRS[1][0], beam_size=4)
    scores = [s for _, s in candidates]
    assert len(candidates) == 4 and scores == sorted(scores, reverse=True)
    tokens, score = candidates[1]
    _, nll = model(*s2s.make_batch([(PAIRS[1][0], tokens)], SV, TV))
    assert score == pytest.approx(-nll.item() * (len(tokens) + 1), abs=1e-4)


def test_warmup_linear_schedule_by_hand():
    factors = [s2s.lr_factor(step, 40, "warmup_linear") for step in range(40)]  # 5% warmup = 2 steps
    assert factors[:3] == pytest.approx([0.5, 1.0, 38 / 38])
    assert factors[2:] == pytest.approx([(40 - step) / 38 for step in range(2, 40)])
    assert all(a >= b for a, b in zip(factors[1:], factors[2:])) and factors[-1] == pytest.approx(1 / 38)
    assert [s2s.lr_factor(step, 40, "constant") for step in (0, 20, 39)] == [1.0, 1.0, 1.0]
    assert s2s.lr_factor(0, 1, "warmup_linear") == 1.0  # one step: warm-up of one step, then done
    assert s2s.lr_factor(1, 1, "warmup_linear") == 0.0 and s2s.lr_factor(40, 40, "warmup_linear") == 0.0


def test_train_follows_the_schedule():
    history = s2s.train(small_model(seed=1), PAIRS, num_steps=20, batch_size=4, lr=1e-2, seed=7,
                        schedule="warmup_linear")
    assert history["lr"] == pytest.approx([1e-2 * s2s.lr_factor(i, 20, "warmup_linear") for i in range(20)])
    assert s2s.train(small_model(), PAIRS, num_steps=1, batch_size=4, schedule="warmup_linear")["lr"] == [3e-3]
    assert s2s.train(small_model(seed=1), PAIRS, num_steps=5, batch_size=4, seed=7)["lr"] == [3e-3] * 5


def test_warmup_length_beta2_and_label_smoothing_reach_training():
    assert [s2s.lr_factor(step, 10, "warmup_linear", warmup_fraction=0.2) for step in (0, 1, 2)] == \
        pytest.approx([0.5, 1.0, 8 / 8])
    assert s2s.lr_factor(0, 10, "warmup_linear", warmup_fraction=0.0) == 1.0  # no warm-up: straight to the decay
    assert s2s.lr_factor(5, 10, "warmup_linear", warmup_fraction=0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="warmup_fraction"):
        s2s.lr_factor(0, 10, "warmup_linear", warmup_fraction=1.0)
    history = s2s.train(small_model(seed=1), PAIRS, num_steps=10, batch_size=4, lr=1e-2, seed=7,
                        schedule="warmup_linear", warmup_fraction=0.2)
    assert history["lr"][:3] == pytest.approx([5e-3, 1e-2, 1e-2])
    plain = s2s.train(small_model(seed=1), PAIRS, num_steps=3, batch_size=4, seed=7)["loss"]
    smoothed = s2s.train(small_model(seed=1), PAIRS, num_steps=3, batch_size=4, seed=7, label_smoothing=0.2)["loss"]
    assert smoothed[0] != pytest.approx(plain[0], abs=1e-4)  # the same first batch and weights, another target
    other_beta2 = s2s.train(small_model(seed=1), PAIRS, num_steps=3, batch_size=4, seed=7, beta2=0.9)["loss"]
    assert other_beta2[0] == plain[0] and other_beta2[2] != plain[2]  # beta2 changes the updates, not the start


class MeanContextDecoder(s2s.LSTMDecoder):
    """A decoder that adds the masked mean of the encoder outputs to its input (uses the signature)."""

    def forward(self, y_in, state, enc_outputs, src_mask):
        mask = src_mask[:, :, None].float()
        context = (enc_outputs * mask).sum(1) / mask.sum(1)  # (B, H)
        out, state = self.lstm(self.embedding(y_in), state)
        return self.output(out + context[:, None]), state


def test_a_decoder_with_the_same_signature_drops_in():
    model = small_model(decoder=MeanContextDecoder)
    assert isinstance(model.decoder, MeanContextDecoder)
    sentences = [s for s, _ in PAIRS[:3]]
    assert len(decoding.greedy_decode(model, sentences, max_len=8)) == 3
    assert len(decoding.beam_search(model, sentences[0], beam_size=2, max_len=8)) == 2
    history = s2s.train(model, PAIRS, num_steps=3, batch_size=4)
    assert len(history["loss"]) == 3


def test_decoder_layers_are_named_for_weight_copying():
    decoder = small_model().decoder
    assert isinstance(decoder.embedding, torch.nn.Embedding)
    assert isinstance(decoder.lstm, torch.nn.LSTM) and isinstance(decoder.output, torch.nn.Linear)


@pytest.mark.parametrize("call, message", [
    (lambda m: decoding.translate(m, "the unicorn sleeps"), "unknown token"),
    (lambda m: decoding.translate(m, ""), "empty sentence"),
    (lambda m: decoding.translate(m, ["the", "dog", "sleeps"] * 30), "at most 60"),
    (lambda m: decoding.beam_search(m, "the dog sleeps", beam_size=0), "beam_size"),
    (lambda m: s2s.train(m, PAIRS, num_steps=0), "num_steps"),
    (lambda m: s2s.train(m, PAIRS, num_steps=2, schedule="cosine"), "schedule"),
    (lambda m: decoding.evaluate(m, []), "at least one pair"),
    (lambda m: s2s.pad_batch([[1], []]), "non-empty"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(small_model())


def test_sequence_log_prob_is_the_beam_score_and_padding_free(overfit):
    model, _ = overfit
    candidates = decoding.beam_search(model, PAIRS[2][0], beam_size=3)
    pairs = [(PAIRS[2][0], tokens) for tokens, _ in candidates] + [PAIRS[0]]  # different lengths in one batch
    scores = decoding.sequence_log_prob(model, pairs)
    assert scores[:3] == pytest.approx([s for _, s in candidates], abs=1e-4)
    assert scores[3] == pytest.approx(decoding.sequence_log_prob(model, [PAIRS[0]])[0], abs=1e-5)
    with pytest.raises(ValueError, match="at least one pair"):
        decoding.sequence_log_prob(model, [])


def test_a_wrong_hypothesis_is_a_search_error_only_when_the_model_prefers_the_reference(overfit):
    model, _ = overfit  # it translates PAIRS exactly, so it scores each reference above any other output
    src, ref = PAIRS[3]
    worse = decoding.beam_search(model, src, beam_size=4)[-1][0]
    assert worse != ref
    kinds = decoding.search_or_model_errors(model, [PAIRS[3], PAIRS[4]], [worse, list(PAIRS[4][1])])
    assert kinds == ["search"]  # the correct one is not an error; the wrong one lost to a better search
    fresh = small_model(seed=5)  # untrained: about log(1/50) per token, so a one-word output beats the reference
    assert decoding.search_or_model_errors(fresh, [PAIRS[3]], [ref[:1]]) == ["model"]
    assert decoding.sequence_log_prob(fresh, [(src, ref[:1])])[0] > decoding.sequence_log_prob(fresh, [PAIRS[3]])[0]
    with pytest.raises(ValueError, match="hypotheses"):
        decoding.search_or_model_errors(model, PAIRS[:2], [ref])


def test_sentence_vectors_are_the_encoders_final_state_and_ignore_batch_padding():
    model = small_model(seed=2)
    sentences = [s for s, _ in PAIRS[:4]]
    vectors = s2s.sentence_vectors(model, sentences)
    assert vectors.shape == (4, 32)
    torch.testing.assert_close(vectors[1], s2s.sentence_vectors(model, [sentences[1]])[0])
    src, lengths, _, _ = s2s.make_batch(PAIRS[:4], SV, TV)
    _, (h, _), _ = model.encode(src, lengths)
    torch.testing.assert_close(vectors, h[-1].detach())


def test_committed_seq2seq_sweep_is_on_validation_at_the_notebooks_steps_and_the_capacity_grid_uses_its_lr():
    # that both orders tried the same grid and seeds, that the tables choose from their rows and that the
    # notebook trains their choice: tests/test_sweep_registry.py
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "chapters" / "03_seq2seq"
    table = json.loads((root / "sweep.json").read_text())
    chosen = table["chosen"]
    assert set(chosen) == {"plain", "reversed"} and table["metric"] == "valid_exact_match"
    tried = {(r["lr"], r["schedule"], r["seed"]) for r in table["rows"] if r["source"] == "plain"}
    assert len(tried) >= 6  # a grid, not a guess
    assert table["config"]["steps"] == experiment.STEPS
    capacity = json.loads((root / "capacity.json").read_text())
    assert capacity["config"]["lr"] == chosen["reversed"]["lr"]  # the capacity grid trains with the chosen recipe
    assert {(r["num_hiddens"], r["steps"]) for r in capacity["rows"]} == {
        (h, n) for h in experiment.CAPACITY_GRID["num_hiddens"] for n in experiment.CAPACITY_GRID["steps"]}


def test_a_checkpoint_of_a_constant_rate_run_is_the_shorter_run():
    job = {"reverse_source": True, "seed": 3, "on": "valid", "lr": 0.01, "schedule": "constant", "checkpoints": [2, 4]}
    checkpoints = experiment._checkpointed(job)
    short = experiment.run({k: v for k, v in job.items() if k != "checkpoints"} | {"steps": 2})
    assert checkpoints["scores"][2]["bleu"] == short["metrics"]["bleu"]
    assert checkpoints["scores"][2]["exact_match"] == short["metrics"]["exact_match"]
    assert 0 < checkpoints["seconds"][2] < checkpoints["seconds"][4]
    with pytest.raises(ValueError, match="constant"):
        experiment._checkpointed({**job, "schedule": "warmup_linear"})


def test_a_stored_run_keeps_the_weights_and_a_compact_history():
    job = {"reverse_source": False, "seed": 1, "on": "valid", "lr": 0.01, "schedule": "constant", "steps": 250}
    full = experiment.run(job)
    stored = experiment.stored_run(job)
    for name, tensor in full["state"].items():
        assert torch.equal(stored["state"][name], tensor)  # the same run: the same weights
    history = stored["history"]
    assert history["steps"] == 250 and history["tokens"] == sum(full["history"]["tokens"])
    assert history["seconds"] > 0
    # the loss in blocks of LOSS_BLOCK steps, the last block shorter
    assert len(history["loss_per_block"]) == 3 and experiment.LOSS_BLOCK == 100
    assert history["loss_per_block"][0] == pytest.approx(sum(full["history"]["loss"][:100]) / 100)
    assert history["loss_per_block"][-1] == pytest.approx(sum(full["history"]["loss"][200:]) / 50)
    assert stored["metrics"]["exact_match"] == full["metrics"]["exact_match"]
