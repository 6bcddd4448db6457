"""An LSTM encoder–decoder (Sutskever et al. 2014): padding and masking, teacher forcing, greedy and
beam-search decoding, and evaluation with BLEU (sacrebleu), exact match and token accuracy.

API (stable; other chapters build on it):

- ``LSTMEncoder(vocab_size, num_embed, num_hiddens, num_layers)``: ``forward(src (B, S), src_lengths (B,))
  -> (enc_outputs (B, S, H), (h, c) each (L, B, H))``; padding never changes the result.
- Decoders subclass :class:`Decoder`: ``init_state(enc_outputs, enc_state, src_mask) -> state`` and
  ``forward(y_in (B, T), state, enc_outputs (B, S, H), src_mask (B, S) bool) -> (logits (B, T, V), state)``;
  ``select_state(state, index)`` picks batch rows (for beam search). :class:`LSTMDecoder` ignores
  ``enc_outputs``/``src_mask``; an attention decoder with the same signature drops in. Its layers are the
  attributes ``embedding``, ``lstm``, ``output`` (copy a language model's weights into them).
- ``Seq2Seq(encoder, decoder, src_vocab, tgt_vocab, reverse_source=False)``: ``encode(src, src_lengths)``
  and ``forward(src, src_lengths, y_in, targets=None) -> (logits, loss)``; ``reverse_source`` reverses each
  source inside the model, so data and decoding never change. ``build_model(..., decoder=factory, seed=)``.
- ``make_batch(pairs, src_vocab, tgt_vocab, device)``, ``train(model, pairs, num_steps, ..., seed,
  schedule="constant" | "warmup_linear") -> history``; ``lr_factor(step, num_steps, schedule)``.
- ``greedy_decode``, ``beam_search(model, sentence, beam_size) -> [(tokens, log_prob), ...]``,
  ``translate(model, sentence, beam_size=1)``; ``evaluate(model, pairs, buckets) -> metrics``.
"""
import time
from pathlib import Path

import sacrebleu
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .progress import progress

DEFAULT_BUCKETS = ((3, 7), (8, 12), (13, 17), (18, 22), (23, 30))


def pad_batch(seqs, pad=0):
    """Stack id lists into a (B, T) LongTensor padded with `pad`, and their lengths (B,)."""
    if not seqs or any(len(s) == 0 for s in seqs):
        raise ValueError("pad_batch needs a non-empty list of non-empty sequences")
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(lengths.max())), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def lengths_to_mask(lengths, max_len):
    """(B, max_len) bool mask, True at real tokens."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def reverse_padded(x, lengths):
    """Reverse each row's first lengths[b] entries of (B, T) `x`, leaving the padding at the end."""
    T = x.shape[1]
    pos = torch.arange(T, device=x.device)[None, :]  # (1, T)
    lengths = lengths.to(x.device)[:, None]  # (B, 1)
    index = torch.where(pos < lengths, lengths - 1 - pos, pos)  # (B, T)
    return x.gather(1, index)


class LSTMEncoder(nn.Module):
    """Embedding + LSTM over the (packed) source."""

    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, num_embed, padding_idx=pad)
        self.lstm = nn.LSTM(num_embed, num_hiddens, num_layers, batch_first=True)

    def forward(self, src, src_lengths):
        """(enc_outputs (B, S, H) zero at padding, (h, c) each (L, B, H))."""
        emb = self.embedding(src)  # (B, S, E)
        packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        return out, state


class Decoder(nn.Module):
    """Interface of a decoder: one or more target steps given the encoder's outputs and mask."""

    def init_state(self, enc_outputs, enc_state, src_mask):
        """The decoder's first state; by default the encoder's final (h, c)."""
        return enc_state

    def select_state(self, state, index):
        """Keep batch rows `index` of a state made of (L, B, H) tensors (nested tuples allowed)."""
        if isinstance(state, torch.Tensor):
            return state.index_select(1, index)
        return type(state)(self.select_state(s, index) for s in state)

    def forward(self, y_in, state, enc_outputs, src_mask):
        """(logits (B, T, V), new state)."""
        raise NotImplementedError


class LSTMDecoder(Decoder):
    """Embedding + LSTM + linear output; starts from the encoder's final state, ignores enc_outputs."""

    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, num_embed, padding_idx=pad)
        self.lstm = nn.LSTM(num_embed, num_hiddens, num_layers, batch_first=True)
        self.output = nn.Linear(num_hiddens, vocab_size)

    def forward(self, y_in, state, enc_outputs, src_mask):
        out, state = self.lstm(self.embedding(y_in), state)  # (B, T, H)
        return self.output(out), state  # (B, T, V)


class Seq2Seq(nn.Module):
    """Encoder + decoder; `reverse_source` feeds each source sentence backwards."""

    def __init__(self, encoder, decoder, src_vocab, tgt_vocab, reverse_source=False, max_src_len=60):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.reverse_source, self.max_src_len = reverse_source, max_src_len

    def encode(self, src, src_lengths):
        """(enc_outputs (B, S, H), enc_state, src_mask (B, S))."""
        if self.reverse_source:
            src = reverse_padded(src, src_lengths)
        enc_outputs, enc_state = self.encoder(src, src_lengths)
        return enc_outputs, enc_state, lengths_to_mask(src_lengths.to(src.device), src.shape[1])

    def forward(self, src, src_lengths, y_in, targets=None):
        """Teacher-forced logits (B, T, V) and, given targets (B, T), the mean loss over real tokens."""
        enc_outputs, enc_state, src_mask = self.encode(src, src_lengths)
        state = self.decoder.init_state(enc_outputs, enc_state, src_mask)
        logits, _ = self.decoder(y_in, state, enc_outputs, src_mask)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.tgt_vocab.pad)
        return logits, loss


def build_model(src_vocab, tgt_vocab, num_embed=48, num_hiddens=96, num_layers=1, reverse_source=False,
                seed=0, decoder=None, device="cpu"):
    """A Seq2Seq with an LSTM encoder and `decoder(vocab_size, num_embed, num_hiddens, num_layers)`."""
    decoder = decoder or LSTMDecoder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = LSTMEncoder(len(src_vocab), num_embed, num_hiddens, num_layers, pad=src_vocab.pad)
        dec = decoder(len(tgt_vocab), num_embed, num_hiddens, num_layers)
    return Seq2Seq(encoder, dec, src_vocab, tgt_vocab, reverse_source).to(device)


def count_parameters(model):
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_batch(pairs, src_vocab, tgt_vocab, device="cpu"):
    """(src (B, S), src_lengths (B,), y_in (B, T), y_out (B, T)): y_in = <bos> y, y_out = y <eos>."""
    src, src_lengths = pad_batch([src_vocab.encode(s) for s, _ in pairs], src_vocab.pad)
    tgt = [tgt_vocab.encode(t) for _, t in pairs]
    y_in, _ = pad_batch([[tgt_vocab.bos] + t for t in tgt], tgt_vocab.pad)
    y_out, _ = pad_batch([t + [tgt_vocab.eos] for t in tgt], tgt_vocab.pad)
    return src.to(device), src_lengths.to(device), y_in.to(device), y_out.to(device)


def batches(pairs, batch_size, seed=0, pool=8):
    """Endless random batches (lists of pairs); each pool of `pool` batches is sorted by length."""
    g = torch.Generator().manual_seed(seed)
    while True:
        index = torch.randint(len(pairs), (batch_size * pool,), generator=g).tolist()
        index.sort(key=lambda i: len(pairs[i][0]))
        chunks = [index[k:k + batch_size] for k in range(0, len(index), batch_size)]
        for k in torch.randperm(len(chunks), generator=g).tolist():
            yield [pairs[i] for i in chunks[k]]


SCHEDULES = ("constant", "warmup_linear")
WARMUP_FRACTION = 0.05


def lr_factor(step, num_steps, schedule="constant", warmup_fraction=WARMUP_FRACTION):
    """The multiple of the peak learning rate at `step` (0-based) of `num_steps`.

    ``"constant"``: 1 throughout. ``"warmup_linear"``: a linear rise over the first `warmup_fraction` of the
    steps (5% by default, at least one step; 0: no warm-up), then a linear fall towards zero at the end, so
    the last steps take small, careful ones.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if schedule == "constant":
        return 1.0
    warmup = max(1, int(num_steps * warmup_fraction)) if warmup_fraction > 0 else 0
    if step < warmup:
        return (step + 1) / warmup
    return max(num_steps - step, 0) / max(num_steps - warmup, 1)  # 0 once all steps are taken


def train(model, pairs, num_steps=1500, batch_size=64, lr=3e-3, seed=0, clip=1.0, desc="train",
          schedule="constant", callback=None, beta2=0.999, warmup_fraction=WARMUP_FRACTION, label_smoothing=0.0):
    """Adam with teacher forcing on length-sorted random batches, a fixed number of steps; the history.

    `lr` is the peak learning rate; `schedule` and `warmup_fraction` (see :func:`lr_factor`) shape it over
    the steps; `beta2` is Adam's second-moment decay; `label_smoothing` spreads that share of each target's
    probability over the vocabulary (the history's loss then includes it).
    `callback(steps_taken, model)`, if given, runs after every step (e.g. to evaluate at checkpoints).
    """
    if num_steps < 1 or batch_size < 1 or not pairs:
        raise ValueError("train needs num_steps >= 1, batch_size >= 1 and some pairs")
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, beta2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, num_steps, schedule, warmup_fraction))
    history = {"loss": [], "tokens": [], "seconds": [], "lr": []}
    model.train()
    start = time.perf_counter()
    for _, batch in zip(progress(range(num_steps), desc=desc), batches(pairs, batch_size, seed)):
        src, src_lengths, y_in, y_out = make_batch(batch, model.src_vocab, model.tgt_vocab, device)
        logits, loss = model(src, src_lengths, y_in, y_out)
        if label_smoothing:
            loss = F.cross_entropy(logits.flatten(0, 1), y_out.flatten(), ignore_index=model.tgt_vocab.pad,
                                   label_smoothing=label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        history["lr"].append(optimizer.param_groups[0]["lr"])  # the rate this step used
        optimizer.step()
        scheduler.step()
        history["loss"].append(loss.item())
        history["tokens"].append(int(src_lengths.sum()) + int((y_out != model.tgt_vocab.pad).sum()))
        history["seconds"].append(time.perf_counter() - start)
        if callback is not None:
            callback(len(history["loss"]), model)
            model.train()
    model.eval()
    return history


def _encode_sources(model, sentences):
    ids = []
    for s in sentences:
        tokens = s.split() if isinstance(s, str) else list(s)
        if not tokens:
            raise ValueError("cannot translate an empty sentence")
        if len(tokens) > model.max_src_len:
            raise ValueError(f"sentence has {len(tokens)} tokens; the model takes at most {model.max_src_len}")
        ids.append(model.src_vocab.encode(tokens))
    return pad_batch(ids, model.src_vocab.pad)


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


@torch.no_grad()
def sentence_vectors(model, sentences):
    """The encoder's summary of each source sentence: its top layer's final hidden state, (B, H)."""
    model.eval()
    device = next(model.parameters()).device
    src, src_lengths = (t.to(device) for t in _encode_sources(model, sentences))
    _, (h, _), _ = model.encode(src, src_lengths)
    return h[-1].cpu()


# --- chapter 3's runs: each source order's learning rate and schedule chosen on validation -------------

MODEL = dict(num_embed=48, num_hiddens=96)  # one LSTM layer each side
STEPS, BATCH_SIZE = 400, 64  # the same budget for every run
SWEEP_GRID = {"lr": (3e-3, 1e-2, 3e-2), "schedule": SCHEDULES}
SWEEP_SEEDS = (100,)  # apart from the notebook's seeds 0, 1, 2


def run(job):
    """Train one model on chapter 3's data (translation.make_splits(seed=0)) and evaluate it.

    job: {"reverse_source", "seed", "lr", "schedule", "on": "valid" | "test"}, and optionally
    "num_hiddens" and "steps". Returns {"job", "history", "metrics" (evaluate, with hypotheses), "state"}.
    """
    import os

    from . import translation

    os.environ.setdefault("DLTOOLBOX_NO_PROGRESS", "1")
    torch.set_num_threads(1)
    if job.get("on") not in ("valid", "test"):
        raise ValueError(f"job['on'] must be 'valid' or 'test', got {job.get('on')!r}")
    splits = translation.make_splits(seed=0)
    model = build_model(translation.source_vocab(), translation.target_vocab(), reverse_source=job["reverse_source"],
                        seed=job["seed"], **{**MODEL, "num_hiddens": job.get("num_hiddens", MODEL["num_hiddens"])})
    history = train(model, splits["train"], num_steps=job.get("steps", STEPS), batch_size=BATCH_SIZE, lr=job["lr"],
                    seed=job["seed"], schedule=job["schedule"])
    return {"job": job, "history": history, "metrics": evaluate(model, splits[job["on"]]),
            "state": {name: t.clone() for name, t in model.state_dict().items()}}


def sweep(processes=2):
    """The peak learning rate and schedule of each source order, chosen on the 500 validation pairs by exact
    match (python -m dltoolbox.experiments.sweeps seq2seq): the same grid, budget and seed for both orders."""
    from itertools import product

    from .compare import run_parallel

    settings = [dict(zip(SWEEP_GRID, values)) for values in product(*SWEEP_GRID.values())]
    jobs = [{"reverse_source": r, "seed": seed, "on": "valid", **s}
            for r in (False, True) for s in settings for seed in SWEEP_SEEDS]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="seq2seq settings")):
        m = result["metrics"]
        rows.append({"source": "reversed" if job["reverse_source"] else "plain", **{k: job[k] for k in SWEEP_GRID},
                     "seed": job["seed"], "valid_exact_match": round(m["exact_match"], 4),
                     "valid_bleu": round(m["bleu"], 2)})
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "valid_exact_match", "goal": "max",
            "arm": "source", "config": {**MODEL, "steps": STEPS, "batch_size": BATCH_SIZE, "seeds": list(SWEEP_SEEDS)}}


STEPS_GRID = (400, 800, 1600, 3200, 6400)  # the second stage: how long each source order trains


def _checkpointed(job):
    """run() of job["steps"] = the largest of job["checkpoints"], scored on job["on"] at every checkpoint.

    With a constant learning rate the run's first n steps are exactly a run of n steps (the same batches,
    the same updates), so one run gives every checkpoint."""
    import os

    from . import translation

    if job["schedule"] != "constant":
        raise ValueError("checkpoints of one run equal separate runs only with a constant learning rate")
    os.environ.setdefault("DLTOOLBOX_NO_PROGRESS", "1")
    torch.set_num_threads(1)
    splits = translation.make_splits(seed=0)
    model = build_model(translation.source_vocab(), translation.target_vocab(), reverse_source=job["reverse_source"],
                        seed=job["seed"], **MODEL)
    scores, wanted, scoring = {}, set(job["checkpoints"]), [0.0]  # scoring: seconds spent evaluating so far

    def score(steps, model):
        if steps in wanted:
            start = time.perf_counter()
            m = evaluate(model, splits[job["on"]])
            scores[steps] = {"exact_match": m["exact_match"], "bleu": m["bleu"], "scoring": scoring[0]}
            scoring[0] += time.perf_counter() - start

    history = train(model, splits["train"], num_steps=max(wanted), batch_size=BATCH_SIZE, lr=job["lr"],
                    seed=job["seed"], schedule=job["schedule"], callback=score)
    # training seconds to each checkpoint, without the evaluations before it
    return {"job": job, "scores": scores,
            "seconds": {n: history["seconds"][n - 1] - scores[n]["scoring"] for n in wanted}}


def sweep_steps(processes=2, table="chapters/03_seq2seq/sweep.json"):
    """The second stage of the sweep: each source order's number of steps (STEPS_GRID), with the learning
    rate and schedule the first stage chose for it, scored on the validation pairs by exact match
    (python -m dltoolbox.experiments.sweeps seq2seq_steps). Both orders get the same grid and seed."""
    from .experiments import sweeps
    from .compare import run_parallel

    chosen = sweeps.chosen(Path(__file__).resolve().parents[2] / table)
    jobs = [{"reverse_source": arm == "reversed", "seed": seed, "on": "valid", **chosen[arm],
             "checkpoints": list(STEPS_GRID)} for arm in ("plain", "reversed") for seed in SWEEP_SEEDS]
    rows = []
    for job, result in zip(jobs, run_parallel(_checkpointed, jobs, processes, desc="seq2seq steps")):
        for steps in STEPS_GRID:
            rows.append({"source": "reversed" if job["reverse_source"] else "plain", "steps": steps,
                         "lr": job["lr"], "schedule": job["schedule"], "seed": job["seed"],
                         "valid_exact_match": round(result["scores"][steps]["exact_match"], 4),
                         "valid_bleu": round(result["scores"][steps]["bleu"], 2),
                         "seconds": round(result["seconds"][steps], 1)})
    return {"rows": rows, "settings": ["steps"], "metric": "valid_exact_match", "goal": "max", "arm": "source",
            "config": {**MODEL, "batch_size": BATCH_SIZE, "seeds": list(SWEEP_SEEDS), "first_stage": table}}


CAPACITY_GRID = {"num_hiddens": (96, 256), "steps": (400, 1600)}


def capacity(processes=2, table="chapters/03_seq2seq/sweep.json"):
    """Does the long-sentence collapse move with capacity and training? The reversed model at each hidden
    size and number of steps of CAPACITY_GRID, with the learning rate and schedule the `seq2seq` sweep chose
    for it, scored on the validation pairs (python -m dltoolbox.experiments.sweeps seq2seq_capacity); the metric is
    exact match on the 18–30-token ones."""
    from itertools import product

    from .experiments import sweeps
    from .compare import run_parallel

    setting = sweeps.chosen(table)["reversed"]
    jobs = [{"reverse_source": True, "seed": 100, "on": "valid", **setting, "num_hiddens": h, "steps": n}
            for h, n in product(*CAPACITY_GRID.values())]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="capacity x training")):
        buckets = result["metrics"]["buckets"]
        long = [b for b in ("18-22", "23-30") if b in buckets]
        rows.append({"num_hiddens": job["num_hiddens"], "steps": job["steps"], "seed": job["seed"],
                     "valid_exact_match": round(result["metrics"]["exact_match"], 4),
                     **{f"valid_exact_match_{b}": round(buckets[b]["exact_match"], 4) for b in buckets},
                     "valid_exact_match_18_30": round(sum(buckets[b]["exact_match"] * buckets[b]["n"] for b in long)
                                                      / sum(buckets[b]["n"] for b in long), 4),
                     "valid_bleu_18_30_bucket_mean": round(sum(buckets[b]["bleu"] * buckets[b]["n"] for b in long)
                                               / sum(buckets[b]["n"] for b in long), 2),
                     "parameters": count_parameters(build_model(*_vocabs(), num_hiddens=job["num_hiddens"],
                                                                num_embed=MODEL["num_embed"])),
                     "seconds": round(result["history"]["seconds"][-1], 1)})
    return {"rows": rows, "settings": list(CAPACITY_GRID), "metric": "valid_exact_match_18_30", "goal": "max",
            "arm": None, "config": {**setting, "reverse_source": True, "num_embed": MODEL["num_embed"],
                                    "batch_size": BATCH_SIZE}}


def _vocabs():
    from . import translation

    return translation.source_vocab(), translation.target_vocab()
