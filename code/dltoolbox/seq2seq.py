"""An LSTM encoder–decoder (Sutskever et al. 2014): padding and masking, and teacher forcing. Greedy and
beam-search decoding, and evaluation with BLEU (sacrebleu), exact match and token accuracy, are in
:mod:`dltoolbox.decoding`.

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
- ``sentence_vectors(model, sentences)``: the encoder's final hidden state of each sentence.
"""
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import lm
from .progress import progress


def pad_batch(seqs, pad=0):
    """Stack id lists into a (B, T) LongTensor padded with `pad`, and their lengths (B,)."""
    if not seqs or any(len(s) == 0 for s in seqs):
        raise ValueError("pad_batch needs a non-empty list of non-empty sequences")
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(lengths.max())), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def padding_mask(lengths, max_len=None):
    """A (B, T) bool mask, True at the real tokens of each sequence and False at padding."""
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be a 1-d tensor of sequence lengths, got shape {tuple(lengths.shape)}")
    if len(lengths) and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be non-negative, got {lengths.tolist()}")
    longest = int(lengths.max()) if len(lengths) else 0
    max_len = longest if max_len is None else max_len
    if max_len < longest:
        raise ValueError(f"max_len={max_len} is shorter than the longest sequence ({longest})")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)


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
        return enc_outputs, enc_state, padding_mask(src_lengths.to(src.device), src.shape[1])

    def forward(self, src, src_lengths, y_in, targets=None):
        """Teacher-forced logits (B, T, V) and, given targets (B, T), the mean loss over real tokens."""
        enc_outputs, enc_state, src_mask = self.encode(src, src_lengths)
        state = self.decoder.init_state(enc_outputs, enc_state, src_mask)
        logits, _ = self.decoder(y_in, state, enc_outputs, src_mask)
        loss = None
        if targets is not None:
            loss = lm.next_token_loss(logits, targets, pad=self.tgt_vocab.pad)
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
            loss = lm.next_token_loss(logits, y_out, pad=model.tgt_vocab.pad, label_smoothing=label_smoothing)
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
def sentence_vectors(model, sentences):
    """The encoder's summary of each source sentence: its top layer's final hidden state, (B, H)."""
    model.eval()
    device = next(model.parameters()).device
    src, src_lengths = (t.to(device) for t in _encode_sources(model, sentences))
    _, (h, _), _ = model.encode(src, src_lengths)
    return h[-1].cpu()
