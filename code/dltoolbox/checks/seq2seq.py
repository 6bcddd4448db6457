"""Checks for the exercises of chapter 3 (sequence to sequence learning)."""
import torch
import torch.nn.functional as F

from . import ExerciseError, call, expect, hidden_cases, not_the_package, passed, probe, reference
from .. import decoding
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
    """A small model of the checker's own, whose translations end after a few tokens or none (candidates of
    several lengths), and pairs whose targets are its beam's best, its longest candidate or a real target."""
    model = s2s.build_model(tr.source_vocab(), tr.target_vocab(), num_embed=8, num_hiddens=16, seed=seed)
    with torch.no_grad():
        model.decoder.output.bias[model.tgt_vocab.eos] += 0.4
    pairs = tr.sample_pairs(n, 3, 6, seed=seed)
    out = []
    for i, (src, tgt) in enumerate(pairs):
        candidates = decoding.beam_search(model, src, 3)
        out.append((src, [list(candidates[0][0]), list(max(candidates, key=lambda c: len(c[0]))[0]), list(tgt)][i % 3]))
    return model, out


ALPHA = 1.0  # the visible check's strength of the length normalisation


def exercise_2(exact_match_by_beam, model, pairs, hidden=False):
    """Exercise 3.2: exact match when beam search's candidates are ranked by log P / (tokens + 1) ** alpha.

    alpha = 0 is the beam's own ranking (what decoding.evaluate(..., beam_size=k) measures); alpha > 0 favours
    longer candidates, which the package does not do.
    """
    beam_sizes, first, last = (1, 2), 12, None
    alphas = [ALPHA]
    if hidden:
        beam_sizes, first, last = hidden_cases(__name__, "exercise_2")
        alphas = hidden_cases(__name__, "exercise_2_alphas")
    if not isinstance(model, torch.nn.Module):  # the grader: the checker's own model, not the notebook's
        model, pairs = _own_model_and_pairs()
    pairs = pairs[:first] if last is None else pairs[-last:]
    score = reference(__name__, "normalised_exact_match")
    raw = {k: decoding.evaluate(model, pairs, beam_size=k)["exact_match"] for k in beam_sizes}
    for alpha in [0.0] + list(alphas):
        got = call(exact_match_by_beam, model, pairs, beam_sizes, alpha, exercise="3.2")
        expect(isinstance(got, dict) and sorted(got) == sorted(beam_sizes),
               f"expected a dict with keys {sorted(beam_sizes)}, got {got!r:.80}",
               "return {beam_size: exact match} for each beam size asked for")
        values = {k: float(got[k]) for k in beam_sizes}
        expect(all(0 <= v <= 1 for v in values.values()), "exact match should be between 0 and 1",
               "exact match is a fraction between 0 and 1, not a count or a percentage")
        if score is not None:
            want = {k: score(model, pairs, k, alpha) for k in beam_sizes}
        elif alpha == 0:  # a student's copy: the beam's own order is what evaluate measures (beam 1: greedy)
            want = {k: raw[k] for k in beam_sizes if k > 1}
        else:  # a student's copy: no reference for the normalised ranking
            continue
        if alpha > 0:
            not_the_package(all(abs(values[k] - raw[k]) < 1e-9 for k in beam_sizes)
                            and any(abs(want[k] - raw[k]) > 1e-9 for k in beam_sizes), "3.2",
                            "decoding.evaluate(model, pairs, beam_size=k)", "the exact match of the length-normalised "
                            "ranking")
        for k in want:
            expect(abs(values[k] - want[k]) < 1e-9,
                   f"beam size {k}, alpha {alpha}: exact match {values[k]:.4f}, expected {want[k]:.4f}",
                   "rank the candidates of decoding.beam_search(model, src, k) by score / (len(tokens) + 1) ** alpha "
                   "(alpha = 0: the beam's own order) and compare the best one's tokens with the reference")
    return passed("3.2", "hidden cases too" if hidden else "exact match with length-normalised beam search")


def _model(decoder, num_hiddens, seed):
    vocab_s, vocab_t = tr.source_vocab(), tr.target_vocab()
    try:
        return s2s.build_model(vocab_s, vocab_t, num_embed=8, num_hiddens=num_hiddens, seed=seed, decoder=decoder)
    except Exception as error:
        raise ExerciseError(f"✗ Exercise 3.3: building a model with your decoder raised "
                            f"{type(error).__name__}: {error}", kind="raised", raised=type(error).__name__) from error


class _Shaped(s2s.LSTMDecoder):
    """The exercise's parameters: LSTMDecoder's, the LSTM's input num_embed + num_hiddens wide."""

    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0):
        super().__init__(vocab_size, num_embed, num_hiddens, num_layers, pad)
        self.lstm = torch.nn.LSTM(num_embed + num_hiddens, num_hiddens, num_layers, batch_first=True)


def _weights(num_hiddens, seed):
    """Weights for a model of the exercise's shape, drawn by the checker (the same for every decoder compared)."""
    model = _model(_Shaped, num_hiddens, seed + 1000)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _decoder_outputs(decoder_class, num_hiddens, seed, pairs, weights=None):
    """Logits of a model built with `decoder_class` and `weights`: as is, with padding changed, step by step,
    and its greedy translations (run where the decoder lives: under the grader, the student's kernel)."""
    model = _model(decoder_class, num_hiddens, seed)
    if weights is not None:
        try:
            model.load_state_dict(weights)
        except (RuntimeError, KeyError, ValueError):
            return {"loaded": False}
    src, src_lengths, y_in, _ = s2s.make_batch(pairs, model.src_vocab, model.tgt_vocab)
    with torch.no_grad():
        enc_outputs, enc_state, mask = model.encode(src, src_lengths)
        state = model.decoder.init_state(enc_outputs, enc_state, mask)
        logits, _ = model.decoder(y_in, state, enc_outputs, mask)
        out = {"loaded": True, "logits": logits, "mask": mask}
        if tuple(logits.shape) == (*y_in.shape, len(model.tgt_vocab)):
            noisy = enc_outputs + 5.0 * (~mask)[:, :, None]  # changes only the padded positions
            out["padded"] = model.decoder(y_in, state, noisy, mask)[0]
            out["moved"] = model.decoder(y_in, state, enc_outputs + 0.5 * mask[:, :, None], mask)[0]
            steps, s = [], state
            for t in range(y_in.shape[1]):
                step, s = model.decoder(y_in[:, t:t + 1], s, enc_outputs, mask)
                steps.append(step)
            out["steps"] = torch.cat(steps, 1)
    out["translations"] = [list(t) for t in decoding.greedy_decode(model, [p[0] for p in pairs], max_len=6)]
    return out


def _same(got, want):
    keys = ("logits", "padded", "moved", "steps")
    return (all(isinstance(got.get(k), torch.Tensor) and got[k].shape == want[k].shape
                and torch.allclose(got[k], want[k], atol=1e-5) for k in keys)
            and got.get("translations") == want["translations"])


def exercise_3(decoder_class, hidden=False):
    """Exercise 3.3: a decoder that reads the masked mean of the encoder outputs at every step.

    The decoder is run with weights the checker draws, and its logits (as they are, with the padded encoder
    outputs changed, with the real ones moved, one step at a time) and greedy translations are compared with
    those of the instructor's reference decoder with the same weights. Without the reference (a student's
    copy of the package) the check tests what it can: the padding, the dependence, the state.
    """
    sizes = hidden_cases(__name__, "exercise_3") if hidden else [(12, 0)]
    V = len(tr.target_vocab())
    references = [reference(__name__, "ContextDecoder"), reference(__name__, "ContextFirstDecoder")]
    references = [r for r in references if r is not None]
    for num_hiddens, seed in sizes:
        pairs = tr.sample_pairs(3, 3, 8, seed=seed)
        weights = _weights(num_hiddens, seed)
        got = probe(_decoder_outputs, decoder_class, num_hiddens, seed, pairs, weights, exercise="3.3")
        expect(isinstance(got, dict) and got.get("loaded") is True,
               "a model with your decoder does not take the weights of the exercise's decoder",
               "keep LSTMDecoder's embedding and output, and replace its LSTM by "
               "nn.LSTM(num_embed + num_hiddens, num_hiddens, num_layers, batch_first=True) named self.lstm")
        logits = got["logits"]
        B, T = len(pairs), 1 + max(len(t) for _, t in pairs)
        expect(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (B, T, V),
               f"logits should be (B, T, V) = {(B, T, V)}, got {tuple(getattr(logits, 'shape', ()))}",
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
        expect(len(got["translations"]) == len(pairs), "greedy decoding with your decoder failed")
        if references:
            wants = [_decoder_outputs(r, num_hiddens, seed, pairs, weights) for r in references]
            expect(any(_same(got, want) for want in wants),
                   "with the same weights, your decoder's logits or translations differ from a decoder that reads "
                   "[embedding; masked mean of the encoder outputs] at every step",
                   "the LSTM's input at step t is the embedding of y_in[:, t] concatenated with the mean of "
                   "enc_outputs over the real source positions (the same context at every step)")
    return passed("3.3", "hidden cases too" if hidden else "the decoder reads a masked summary at every step")
