"""Checks for the exercises of chapter 3 (sequence to sequence learning)."""
import torch
import torch.nn.functional as F

from . import ExerciseError, call, expect, hidden_cases, passed, probe
from .. import seq2seq as s2s
from .. import translation as tr


def exercise_1(masked_cross_entropy, hidden=False):
    """Exercise 3.1: the mean cross-entropy over real (non-padding) target tokens."""
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([[4, 5, 2], [6, 2, 0]]), 7, 0)]
    if hidden:
        seed, more = hidden_cases(__name__, "exercise_1")
        g, cases = torch.Generator().manual_seed(seed), cases + more
    for targets, V, pad in cases:
        logits = torch.randn(*targets.shape, V, generator=g)
        got = call(masked_cross_entropy, logits.clone(), targets.clone(), pad, exercise="3.1")
        expect(isinstance(got, torch.Tensor) and got.dim() == 0,
               f"expected a scalar tensor, got {getattr(got, 'shape', type(got).__name__)}",
               "average over the real tokens to a single number")
        want = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad)
        if not torch.allclose(got, want, atol=1e-5):
            everything = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            masked_sum = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad,
                                         reduction="sum") / targets.numel()
            hint = ("padding positions were counted: drop them with the mask targets != pad"
                    if torch.allclose(got, everything, atol=1e-5) else
                    "divide by the number of real tokens, not by B * T"
                    if torch.allclose(got, masked_sum, atol=1e-5) else
                    "per token: -log_softmax(logits)[target]; keep the real tokens; take their mean")
            expect(False, f"targets {targets.tolist()} (pad={pad}): loss {float(got):.4f}, expected {float(want):.4f}",
                   hint)
    return passed("3.1", "hidden cases too" if hidden else "padding never counts in the loss")


def _own_model_and_pairs(seed=5, n=16):
    """A small model of the checker's own and pairs of which about half have its greedy output as target."""
    model = s2s.build_model(tr.source_vocab(), tr.target_vocab(), num_embed=8, num_hiddens=16, seed=seed)
    pairs = tr.sample_pairs(n, 3, 6, seed=seed)
    greedy = s2s.greedy_decode(model, [src for src, _ in pairs])
    return model, [(src, list(out) if i % 2 else tgt) for i, ((src, tgt), out) in enumerate(zip(pairs, greedy))]


def exercise_2(exact_match_by_beam, model, pairs, hidden=False):
    """Exercise 3.2: exact match of greedy and beam-search translations, keyed by beam size."""
    beam_sizes, first, last = (1, 3), 12, None
    if hidden:
        beam_sizes, first, last = hidden_cases(__name__, "exercise_2")
    if not isinstance(model, torch.nn.Module):  # the grader: the checker's own model, not the notebook's
        model, pairs = _own_model_and_pairs()
    pairs = pairs[:first] if last is None else pairs[-last:]
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


def _decoder_outputs(decoder_class, num_hiddens, seed, pairs):
    """Logits of a model built with the student's decoder: as is, with padding changed, step by step."""
    model = _model(decoder_class, num_hiddens, seed)
    src, src_lengths, y_in, _ = s2s.make_batch(pairs, model.src_vocab, model.tgt_vocab)
    with torch.no_grad():
        enc_outputs, enc_state, mask = model.encode(src, src_lengths)
        state = model.decoder.init_state(enc_outputs, enc_state, mask)
        logits, _ = call(model.decoder, y_in, state, enc_outputs, mask, exercise="3.3")
        out = {"logits": logits, "mask": mask}
        if tuple(logits.shape) == (*y_in.shape, len(model.tgt_vocab)):
            noisy = enc_outputs + 5.0 * (~mask)[:, :, None]  # changes only the padded positions
            out["padded"] = model.decoder(y_in, state, noisy, mask)[0]
            out["moved"] = model.decoder(y_in, state, enc_outputs + 0.5 * mask[:, :, None], mask)[0]
            steps, s = [], state
            for t in range(y_in.shape[1]):
                step, s = model.decoder(y_in[:, t:t + 1], s, enc_outputs, mask)
                steps.append(step)
            out["steps"] = torch.cat(steps, 1)
    out["translations"] = len(s2s.greedy_decode(model, [p[0] for p in pairs], max_len=6))
    return out


def exercise_3(decoder_class, hidden=False):
    """Exercise 3.3: a decoder that reads the masked mean of the encoder outputs at every step."""
    sizes = hidden_cases(__name__, "exercise_3") if hidden else [(12, 0)]
    V = len(tr.target_vocab())
    for num_hiddens, seed in sizes:
        pairs = tr.sample_pairs(3, 3, 8, seed=seed)
        got = probe(_decoder_outputs, decoder_class, num_hiddens, seed, pairs, exercise="3.3")
        logits = got["logits"]
        B, T = len(pairs), 1 + max(len(t) for _, t in pairs)
        expect(tuple(logits.shape) == (B, T, V), f"logits should be (B, T, V) = {(B, T, V)}, got {tuple(logits.shape)}",
               "return self.output(...) of the LSTM outputs, and the new state")
        expect(torch.allclose(got["padded"], logits, atol=1e-5),
               "the output changed when only the encoder outputs at padded positions changed",
               "average over real positions only: multiply by the mask and divide by the number of real tokens")
        expect(not torch.allclose(got["moved"], logits, atol=1e-5),
               "the output does not depend on the encoder outputs",
               "concatenate the context (mean of enc_outputs) to the embedding at every step")
        expect(torch.allclose(got["steps"], logits, atol=1e-5),
               "decoding one step at a time gives other logits than all steps at once",
               "return the LSTM's new state so that the next call continues from it")
        expect(got["translations"] == len(pairs), "greedy decoding with your decoder failed")
    return passed("3.3", "hidden cases too" if hidden else "the decoder reads a masked summary at every step")
