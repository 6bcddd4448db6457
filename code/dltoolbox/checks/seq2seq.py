"""Checks for the exercises of chapter 3 (sequence to sequence learning)."""
import torch

from . import ExerciseError, call, expect, passed
from .. import seq2seq as s2s
from .. import translation as tr


def exercise_1(reverse_sources, hidden=False):
    """Exercise 3.1: reverse each padded source row within its length, padding left at the end."""
    cases = [(torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]))]
    if hidden:
        g = torch.Generator().manual_seed(0)
        lengths = torch.tensor([1, 6, 3, 6, 2])
        x = torch.randint(4, 50, (5, 6), generator=g) * s2s.lengths_to_mask(lengths, 6)
        cases += [(x, lengths), (torch.tensor([[4]]), torch.tensor([1]))]
    for x, lengths in cases:
        got = call(reverse_sources, x.clone(), lengths.clone(), exercise="3.1")
        expect(isinstance(got, torch.Tensor) and got.shape == x.shape,
               f"expected a tensor of shape {tuple(x.shape)}, got {getattr(got, 'shape', type(got).__name__)}",
               "return a new (B, T) tensor, same shape as the input")
        want = s2s.reverse_padded(x, lengths)
        if not torch.equal(got, want):
            hint = ("the padding moved to the front: reverse only the first lengths[b] entries of each row"
                    if torch.equal(got, x.flip(1)) else
                    "for row b, position t < lengths[b] takes x[b, lengths[b] - 1 - t]; positions after stay")
            expect(False, f"reverse_sources({x.tolist()}, {lengths.tolist()}) = {got.tolist()}, "
                   f"expected {want.tolist()}", hint)
    return passed("3.1", "hidden cases too" if hidden else "each source reversed, padding kept at the end")


def exercise_2(exact_match_by_beam, model, pairs, hidden=False):
    """Exercise 3.2: exact match of greedy and beam-search translations, keyed by beam size."""
    beam_sizes = (1, 3) if not hidden else (2, 1)
    pairs = pairs[:12] if not hidden else pairs[-8:]
    got = call(exact_match_by_beam, model, pairs, beam_sizes, exercise="3.2")
    expect(isinstance(got, dict) and sorted(got) == sorted(beam_sizes),
           f"expected a dict with keys {sorted(beam_sizes)}, got {got!r:.80}",
           "return {beam_size: exact match} for each beam size asked for")
    for k in beam_sizes:
        want = s2s.evaluate(model, pairs, beam_size=k)["exact_match"]
        value = float(got[k])
        hint = ("exact match is a fraction between 0 and 1, not a count or a percentage"
                if not 0 <= value <= 1 else
                "compare the whole translated token list with the reference; use s2s.beam_search(model, src, k) "
                "and take the best candidate's tokens")
        expect(abs(value - want) < 1e-9, f"beam size {k}: exact match {value:.4f}, expected {want:.4f}", hint)
    return passed("3.2", "hidden cases too" if hidden else "greedy and beam exact match measured")


def _model(decoder, num_hiddens, seed):
    vocab_s, vocab_t = tr.source_vocab(), tr.target_vocab()
    try:
        return s2s.build_model(vocab_s, vocab_t, num_embed=8, num_hiddens=num_hiddens, seed=seed, decoder=decoder)
    except Exception as error:
        raise ExerciseError(f"✗ Exercise 3.3: building a model with your decoder raised "
                            f"{type(error).__name__}: {error}") from error


def exercise_3(decoder_class, hidden=False):
    """Exercise 3.3: a decoder that reads the masked mean of the encoder outputs at every step."""
    sizes = [(12, 0)] if not hidden else [(16, 1), (10, 2)]
    for num_hiddens, seed in sizes:
        model = _model(decoder_class, num_hiddens, seed)
        pairs = tr.sample_pairs(3, 3, 8, seed=seed)
        src, src_lengths, y_in, _ = s2s.make_batch(pairs, model.src_vocab, model.tgt_vocab)
        with torch.no_grad():
            enc_outputs, enc_state, mask = model.encode(src, src_lengths)
            state = model.decoder.init_state(enc_outputs, enc_state, mask)
            logits, _ = call(model.decoder, y_in, state, enc_outputs, mask, exercise="3.3")
            B, T = y_in.shape
            expect(tuple(logits.shape) == (B, T, len(model.tgt_vocab)),
                   f"logits should be (B, T, V) = {(B, T, len(model.tgt_vocab))}, got {tuple(logits.shape)}",
                   "return self.output(...) of the LSTM outputs, and the new state")
            noisy = enc_outputs + 5.0 * (~mask)[:, :, None]  # changes only the padded positions
            logits_pad, _ = model.decoder(y_in, state, noisy, mask)
            expect(torch.allclose(logits_pad, logits, atol=1e-5),
                   "the output changed when only the encoder outputs at padded positions changed",
                   "average over real positions only: multiply by the mask and divide by the number of real tokens")
            moved = enc_outputs + 0.5 * mask[:, :, None]
            logits_real, _ = model.decoder(y_in, state, moved, mask)
            expect(not torch.allclose(logits_real, logits, atol=1e-5),
                   "the output does not depend on the encoder outputs",
                   "concatenate the context (mean of enc_outputs) to the embedding at every step")
            steps, s = [], state
            for t in range(T):
                out, s = model.decoder(y_in[:, t:t + 1], s, enc_outputs, mask)
                steps.append(out)
            expect(torch.allclose(torch.cat(steps, 1), logits, atol=1e-5),
                   "decoding one step at a time gives other logits than all steps at once",
                   "return the LSTM's new state so that the next call continues from it")
        translations = s2s.greedy_decode(model, [p[0] for p in pairs], max_len=6)
        expect(len(translations) == len(pairs), "greedy decoding with your decoder failed")
    return passed("3.3", "hidden cases too" if hidden else "the decoder reads a masked summary at every step")
