"""Attention: the causal mask, masked softmax, additive (Bahdanau) and scaled dot-product attention, their cost."""
import math
import time

import torch
from torch import nn


def causal_mask(size, device=None):
    """A (T, T) bool mask, True where query i may look at key j, i.e. j <= i (no peeking at the future)."""
    if size < 1:
        raise ValueError(f"a causal mask needs size >= 1, got {size}")
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def masked_softmax(scores, mask=None):
    """Softmax over the last axis where masked-out (False) positions get exactly zero weight."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = attend), got {mask.dtype}")
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights.nan_to_num(0.0)  # a row with nothing to attend to gets all-zero weights


def scaled_dot_product_attention(queries, keys, values, mask=None, bias=None):
    """softmax(Q K^T / sqrt(d) + bias) V; returns (outputs (..., Tq, dv), weights (..., Tq, Tk)).

    `bias` (broadcastable to (..., Tq, Tk)) is added to the scores, e.g. ALiBi's distance penalty.
    """
    if queries.shape[-1] != keys.shape[-1]:
        raise ValueError(f"queries and keys need the same last size, got {queries.shape[-1]} and {keys.shape[-1]}")
    if keys.shape[-2] != values.shape[-2]:
        raise ValueError(f"keys and values need the same length, got {keys.shape[-2]} and {values.shape[-2]}")
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])  # (..., Tq, Tk)
    if bias is not None:
        scores = scores + bias
    weights = masked_softmax(scores, mask)
    return weights @ values, weights  # (..., Tq, dv), (..., Tq, Tk)


class AdditiveAttention(nn.Module):
    """Bahdanau's score v^T tanh(W_q q + W_k k_j), softmax over the source, a weighted sum of values."""

    def __init__(self, query_size, key_size, num_hiddens):
        super().__init__()
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.v = nn.Linear(num_hiddens, 1, bias=False)

    def project_keys(self, keys):
        """W_k k_j for every source position, computed once per sentence: (B, T, H)."""
        return self.W_k(keys)

    def forward(self, query, keys, mask=None, projected_keys=None):
        """query (B, Cq), keys (B, T, Ck), mask (B, T) -> context (B, Ck), weights (B, T)."""
        if query.dim() != 2 or keys.dim() != 3:
            raise ValueError(f"expected query (B, C) and keys (B, T, C), got {tuple(query.shape)} "
                             f"and {tuple(keys.shape)}")
        if mask is not None and mask.shape != keys.shape[:2]:
            raise ValueError(f"mask must have shape {tuple(keys.shape[:2])} (B, T), got {tuple(mask.shape)}")
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        features = torch.tanh(self.W_q(query)[:, None, :] + projected_keys)  # (B, T, H)
        scores = self.v(features).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        context = torch.bmm(weights[:, None, :], keys).squeeze(1)  # (B, Ck)
        return context, weights


class AttentionDecoder(nn.Module):
    """An LSTM decoder that reads a fresh context (additive attention over the source) at every step.

    Same signature as the recurrent decoders of :mod:`dltoolbox.seq2seq`, so it drops into their
    ``Seq2Seq``/``build_model``: ``forward(y_in (B, T), state, enc_outputs (B, S, H), src_mask (B, S))
    -> (logits (B, T, V), state)``. The weights of the last call are kept in ``self.weights`` (B, T, S).
    """

    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0, attention_hiddens=None):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, num_embed, padding_idx=pad)
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, attention_hiddens or num_hiddens)
        self.cells = nn.ModuleList(nn.LSTMCell(num_embed + num_hiddens if i == 0 else num_hiddens, num_hiddens)
                                   for i in range(num_layers))
        self.output = nn.Linear(2 * num_hiddens, vocab_size)
        self.weights = None

    def init_state(self, enc_outputs, enc_state, src_mask):
        """Start from the encoder's final (h, c), as the decoder without attention does."""
        return enc_state

    def select_state(self, state, index):
        """Keep batch rows `index` of an (h, c) state, each (L, B, H)."""
        return tuple(s.index_select(1, index) for s in state)

    def forward(self, y_in, state, enc_outputs, src_mask):
        """Teacher-forced (or one-step) logits (B, T, V) and the new state."""
        embedded = self.embedding(y_in)  # (B, T, E)
        projected_keys = self.attention.project_keys(enc_outputs)  # (B, S, H)
        h, c = list(state[0].unbind(0)), list(state[1].unbind(0))  # L tensors (B, H) each
        outputs, weights = [], []
        for t in range(y_in.shape[1]):
            context, w = self.attention(h[-1], enc_outputs, src_mask, projected_keys)  # (B, H), (B, S)
            x = torch.cat([embedded[:, t], context], dim=-1)  # (B, E + H)
            for i, cell in enumerate(self.cells):
                h[i], c[i] = cell(x, (h[i], c[i]))
                x = h[i]
            outputs.append(torch.cat([x, context], dim=-1))  # (B, 2H)
            weights.append(w)
        self.weights = torch.stack(weights, dim=1).detach()  # (B, T, S)
        return self.output(torch.stack(outputs, dim=1)), (torch.stack(h), torch.stack(c))  # (B, T, V)


def alignment(model, src_tokens, tgt_tokens):
    """The attention weights (T, S) of a seq2seq model with an AttentionDecoder, teacher-forced on tgt."""
    if not isinstance(model.decoder, AttentionDecoder):
        raise ValueError(f"alignment needs a model with an AttentionDecoder, got {type(model.decoder).__name__}")
    device = next(model.parameters()).device
    src = torch.tensor([model.src_vocab.encode(src_tokens)], device=device)  # (1, S)
    y_in = torch.tensor([[model.tgt_vocab.bos] + model.tgt_vocab.encode(tgt_tokens)], device=device)  # (1, T)
    model.eval()
    with torch.no_grad():
        model(src, torch.tensor([src.shape[1]], device=device), y_in)
    weights = model.decoder.weights[0].cpu()  # (T + 1, S): the last row is where <eos> was predicted
    return weights.flip(-1) if getattr(model, "reverse_source", False) else weights


def alignment_hits(weights, src_tokens, tgt_tokens, sources_of):
    """(hits, total): target words in `sources_of` whose most-attended source word is one of their sources."""
    if len(weights) < len(tgt_tokens) or weights.shape[-1] != len(src_tokens):
        raise ValueError(f"weights {tuple(weights.shape)} do not cover {len(tgt_tokens)} target and "
                         f"{len(src_tokens)} source words")
    hits = total = 0
    for i, word in enumerate(tgt_tokens):
        if word in sources_of:
            total += 1
            hits += src_tokens[int(weights[i].argmax())] in sources_of[word]
    return hits, total


def plot_alignment(weights, src_tokens, tgt_tokens, ax=None, title=None):
    """A heatmap of attention weights (T, S): target words down, source words across."""
    import matplotlib.pyplot as plt

    weights = torch.as_tensor(weights)
    if weights.shape != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(f"weights have shape {tuple(weights.shape)}, expected (len(tgt), len(src)) = "
                         f"({len(tgt_tokens)}, {len(src_tokens)})")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.32 * len(src_tokens) + 1.5, 0.28 * len(tgt_tokens) + 1.2))
    ax.imshow(weights.numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90)
    ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
    ax.grid(False)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_by_length(curves, metric="bleu", ax=None, trained_up_to=None):
    """Bahdanau's Figure 2 in miniature: `metric` by source-length bucket, mean and range over seeds.

    `curves` maps a model name to a list (one per seed) of ``decoding.evaluate`` results.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    for name, runs in curves.items():
        labels = list(runs[0]["buckets"])
        values = torch.tensor([[run["buckets"][b][metric] for b in labels] for run in runs])  # (seeds, buckets)
        x = [sum(map(int, b.split("-"))) / 2 for b in labels]
        ax.plot(x, values.mean(0).numpy(), marker="o", label=name)
        ax.fill_between(x, values.min(0).values.numpy(), values.max(0).values.numpy(), alpha=0.2)
    if trained_up_to is not None:
        ax.axvspan(trained_up_to + 0.5, ax.get_xlim()[1], color="orange", alpha=0.1, label="longer than training")
    ax.set_xlabel("source sentence length (bucket centre)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend()
    return ax


def _best_time(fn, repeats):
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def attention_cost(lengths, num_hiddens=64, batch_size=1, repeats=3, seed=0):
    """Time one self-attention pass and one LSTM pass over T tokens (best of `repeats`), and the exact
    bytes of the T x T attention weights; returns a dict of lists."""
    if not lengths or min(lengths) < 1:
        raise ValueError(f"lengths must be a non-empty list of positive ints, got {lengths!r}")
    g = torch.Generator().manual_seed(seed)
    lstm = nn.LSTM(num_hiddens, num_hiddens, batch_first=True)
    history = {"length": [], "seconds": [], "lstm_seconds": [], "attention_bytes": []}
    with torch.no_grad():
        for length in lengths:
            x = torch.randn(batch_size, length, num_hiddens, generator=g)  # (B, T, C)
            _, weights = scaled_dot_product_attention(x, x, x)  # (B, T, T)
            history["length"].append(length)
            history["seconds"].append(_best_time(lambda: scaled_dot_product_attention(x, x, x), repeats))
            history["lstm_seconds"].append(_best_time(lambda: lstm(x), repeats))
            history["attention_bytes"].append(weights.numel() * weights.element_size())
    return history


def fit_exponent(lengths, values):
    """The slope of log(values) against log(lengths): the k in values ~ lengths ** k."""
    if len(lengths) != len(values) or len(lengths) < 2:
        raise ValueError("need at least two (length, value) pairs of equal count to fit an exponent")
    x = torch.log(torch.as_tensor(lengths, dtype=torch.float64))
    y = torch.log(torch.as_tensor(values, dtype=torch.float64))
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


def quadratic_region(lengths, seconds, tolerance=1.5):
    """The indices of the run of consecutive lengths, around the cheapest one, whose time per (query, key)
    pair, seconds / T², stays within `tolerance` of that cheapest: where the cost is the T² pairs
    themselves, not a fixed cost per call (short sequences) nor a memory hierarchy the T x T matrix has
    outgrown (long ones). `lengths` must be increasing."""
    if len(lengths) != len(seconds) or not lengths:
        raise ValueError("need as many timings as lengths, and at least one")
    if list(lengths) != sorted(set(lengths)):
        raise ValueError(f"lengths must be increasing, got {list(lengths)}")
    if tolerance < 1:
        raise ValueError(f"tolerance must be >= 1, got {tolerance}")
    per_pair = [s / T ** 2 for T, s in zip(lengths, seconds)]
    best = min(range(len(per_pair)), key=per_pair.__getitem__)
    low = high = best
    while low > 0 and per_pair[low - 1] <= tolerance * per_pair[best]:
        low -= 1
    while high + 1 < len(per_pair) and per_pair[high + 1] <= tolerance * per_pair[best]:
        high += 1
    return list(range(low, high + 1))


def diagonal_alignment(num_target, num_source):
    """The monotone baseline alignment (T, S): target row i looks at source word round(i (S-1) / (T-1))."""
    if num_target < 1 or num_source < 1:
        raise ValueError(f"need at least one target and one source position, got {num_target}, {num_source}")
    weights = torch.zeros(num_target, num_source)
    for i in range(num_target):
        weights[i, round(i * (num_source - 1) / max(num_target - 1, 1))] = 1.0
    return weights
