"""Decoding and scoring a trained encoder–decoder (any :class:`dltoolbox.seq2seq.Seq2Seq`, the LSTMs, the
attention decoder or the transformer): greedy and beam-search decoding, and evaluation with BLEU
(sacrebleu), exact match and token accuracy, overall and by source length.

API (stable; other chapters build on it):

- ``greedy_decode(model, sentences, max_len=None)``, ``beam_search(model, sentence, beam_size) ->
  [(tokens, log_prob), ...]``, ``translate(model, sentence, beam_size=1)``.
- ``evaluate(model, pairs, buckets) -> metrics``; ``token_correct(model, pairs)`` (teacher-forced hits).
- ``sequence_log_prob(model, pairs)`` and ``search_or_model_errors(model, pairs, hypotheses)``: is a wrong
  translation the search's fault or the model's?
"""
import sacrebleu
import torch

from .seq2seq import _encode_sources, make_batch

DEFAULT_BUCKETS = ((3, 7), (8, 12), (13, 17), (18, 22), (23, 30))


@torch.no_grad()
def greedy_decode(model, sentences, max_len=None):
    """The argmax translation (list of target tokens) of each source sentence."""
    model.eval()
    device = next(model.parameters()).device
    src, src_lengths = (t.to(device) for t in _encode_sources(model, sentences))
    max_len = max_len or 2 * src.shape[1] + 10
    enc_outputs, enc_state, src_mask = model.encode(src, src_lengths)
    state = model.decoder.init_state(enc_outputs, enc_state, src_mask)
    vocab = model.tgt_vocab
    y = torch.full((src.shape[0], 1), vocab.bos, dtype=torch.long, device=device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=device)
    steps = []
    for _ in range(max_len):
        logits, state = model.decoder(y, state, enc_outputs, src_mask)  # (B, 1, V)
        y = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        steps.append(y)
        done |= y[:, 0] == vocab.eos
        if done.all():
            break
    return [vocab.decode(row) for row in torch.cat(steps, 1).cpu()]


@torch.no_grad()
def beam_search(model, sentence, beam_size=4, max_len=None):
    """Candidates [(target tokens, log-probability), ...] for one sentence, best first."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    model.eval()
    device = next(model.parameters()).device
    src, src_lengths = (t.to(device) for t in _encode_sources(model, [sentence]))
    max_len = max_len or 2 * src.shape[1] + 10
    enc_outputs, enc_state, src_mask = model.encode(src, src_lengths)
    state = model.decoder.init_state(enc_outputs, enc_state, src_mask)
    vocab = model.tgt_vocab
    live, scores, finished = [[]], torch.zeros(1, device=device), []
    for _ in range(max_len):
        index = torch.zeros(len(live), dtype=torch.long, device=device)
        y = torch.tensor([[h[-1] if h else vocab.bos] for h in live], device=device)  # (k, 1)
        logits, state = model.decoder(y, state, enc_outputs[index], src_mask[index])  # (k, 1, V)
        total = scores[:, None] + logits[:, -1].log_softmax(-1)  # (k, V)
        top, flat = total.flatten().topk(min(2 * beam_size, total.numel()))
        keep, new_live, new_scores = [], [], []
        for rank, (score, f) in enumerate(zip(top.tolist(), flat.tolist())):
            row, token = divmod(f, total.shape[1])
            if token == vocab.eos:
                if rank < beam_size:  # an <eos> counts only if it is among the beam's best
                    finished.append((live[row], score))
            elif len(new_live) < beam_size:
                keep.append(row)
                new_live.append(live[row] + [token])
                new_scores.append(score)
        if len(finished) >= beam_size or not new_live:
            break
        live, scores = new_live, torch.tensor(new_scores, device=device)
        state = model.decoder.select_state(state, torch.tensor(keep, device=device))
    else:
        finished += list(zip(live, scores.tolist()))
    finished.sort(key=lambda c: -c[1])
    return [(vocab.decode(h), s) for h, s in finished[:beam_size]]


def translate(model, sentence, beam_size=1):
    """The model's translation (list of target tokens) of one source sentence."""
    if beam_size == 1:
        return greedy_decode(model, [sentence])[0]
    return beam_search(model, sentence, beam_size)[0][0]


@torch.no_grad()
def token_correct(model, pairs, batch_size=256):
    """Per pair: (teacher-forced next-token hits, target tokens incl. <eos>)."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(pairs), batch_size):
        src, src_lengths, y_in, y_out = make_batch(pairs[i:i + batch_size], model.src_vocab,
                                                   model.tgt_vocab, device)
        logits, _ = model(src, src_lengths, y_in)
        real = y_out != model.tgt_vocab.pad  # (B, T)
        hits = ((logits.argmax(-1) == y_out) & real).sum(1)
        out += list(zip(hits.tolist(), real.sum(1).tolist()))
    return out


def _scores(hyps, refs, counts):
    bleu = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]], tokenize="none")
    return {"exact_match": sum(h == r for h, r in zip(hyps, refs)) / len(refs), "bleu": bleu.score,
            "token_accuracy": sum(c for c, _ in counts) / sum(n for _, n in counts), "n": len(refs)}


def evaluate(model, pairs, buckets=DEFAULT_BUCKETS, batch_size=256, beam_size=1):
    """Exact match, BLEU (sacrebleu, 0-100), token accuracy: overall and by source-length bucket."""
    if not pairs:
        raise ValueError("evaluate needs at least one pair")
    model.eval()
    if beam_size == 1:
        hyps = [h for i in range(0, len(pairs), batch_size)
                for h in greedy_decode(model, [s for s, _ in pairs[i:i + batch_size]])]
    else:
        hyps = [beam_search(model, s, beam_size)[0][0] for s, _ in pairs]
    refs, counts = [list(t) for _, t in pairs], token_correct(model, pairs, batch_size)
    metrics = _scores(hyps, refs, counts)
    metrics["buckets"] = {}
    for lo, hi in buckets:
        rows = [i for i, (s, _) in enumerate(pairs) if lo <= len(s) <= hi]
        if rows:
            metrics["buckets"][f"{lo}-{hi}"] = _scores([hyps[i] for i in rows], [refs[i] for i in rows],
                                                       [counts[i] for i in rows])
    metrics["hypotheses"] = hyps
    return metrics


@torch.no_grad()
def sequence_log_prob(model, pairs, batch_size=256):
    """Per pair (source, target tokens): the model's log-probability of the target, <eos> included."""
    if not pairs:
        raise ValueError("sequence_log_prob needs at least one pair")
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(pairs), batch_size):
        src, src_lengths, y_in, y_out = make_batch(pairs[i:i + batch_size], model.src_vocab, model.tgt_vocab, device)
        logits, _ = model(src, src_lengths, y_in)
        log_probs = logits.log_softmax(-1).gather(-1, y_out[..., None]).squeeze(-1)  # (B, T)
        out += (log_probs * (y_out != model.tgt_vocab.pad)).sum(1).tolist()
    return out


def search_or_model_errors(model, pairs, hypotheses):
    """For each pair whose hypothesis is wrong: "search" if the model scores the reference higher than its
    own hypothesis (a better search could have found it), else "model" (the model prefers its mistake)."""
    if len(pairs) != len(hypotheses):
        raise ValueError(f"{len(pairs)} pairs but {len(hypotheses)} hypotheses")
    wrong = [(s, list(t), list(h)) for (s, t), h in zip(pairs, hypotheses) if list(h) != list(t)]
    if not wrong:
        return []
    ref = sequence_log_prob(model, [(s, t) for s, t, _ in wrong])
    hyp = sequence_log_prob(model, [(s, h) for s, _, h in wrong])
    return ["search" if r > h else "model" for r, h in zip(ref, hyp)]
