"""A small transformer encoder-decoder written out from torch.nn pieces (Vaswani et al. 2017, pre-norm).

Word order enters either as sinusoidal absolute position codes added to the embeddings (Vaswani et al.),
or as ALiBi (Press et al. 2022): no position code at all, and a penalty on each self-attention score that
grows with the distance between query and key, so that nothing depends on absolute positions.
"""
import math

import torch
from torch import nn

from .attention import causal_mask, scaled_dot_product_attention
from .seq2seq import padding_mask


class MultiHeadAttention(nn.Module):
    """Project to heads, scaled dot-product attention per head, concatenate, project back."""

    def __init__(self, num_hiddens, num_heads):
        super().__init__()
        if num_hiddens % num_heads:
            raise ValueError(f"num_hiddens ({num_hiddens}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.W_q = nn.Linear(num_hiddens, num_hiddens)
        self.W_k = nn.Linear(num_hiddens, num_hiddens)
        self.W_v = nn.Linear(num_hiddens, num_hiddens)
        self.W_o = nn.Linear(num_hiddens, num_hiddens)
        self.weights = None  # the last attention weights (B, heads, Tq, Tk), for plots

    def _split(self, x):
        B, T, C = x.shape
        return x.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, queries, keys, values, mask=None, bias=None):
        """queries (B, Tq, C), keys/values (B, Tk, C), mask and bias broadcastable to (B, nh, Tq, Tk) -> (B, Tq, C)."""
        q, k, v = self._split(self.W_q(queries)), self._split(self.W_k(keys)), self._split(self.W_v(values))
        out, self.weights = scaled_dot_product_attention(q, k, v, mask, bias)  # (B, nh, Tq, hs)
        B, _, Tq, _ = out.shape
        return self.W_o(out.transpose(1, 2).reshape(B, Tq, -1))  # (B, Tq, C)


def positional_encoding(length, num_hiddens):
    """The sinusoidal position code of Vaswani et al.: (T, C)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, num_hiddens, 2, dtype=torch.float32) * (-math.log(10000.0) / num_hiddens))
    pe = torch.zeros(length, num_hiddens)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate[: num_hiddens // 2])
    return pe


POSITIONS = ("sinusoidal", "alibi")


def alibi_slopes(num_heads):
    """ALiBi's head-specific slopes, the geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8) for n heads."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / num_heads) for h in range(num_heads)])


def alibi_bias(num_heads, length, device=None):
    """(nh, T, T): -slope_h * |i - j|, the penalty ALiBi adds to the score of query i for key j."""
    position = torch.arange(length, device=device)
    distance = (position[:, None] - position[None, :]).abs().float()  # (T, T)
    return -alibi_slopes(num_heads).to(device)[:, None, None] * distance  # (nh, T, T)


def _check_position(position):
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; choose one of {POSITIONS}")


def _ffn(num_hiddens, ffn_hiddens):
    return nn.Sequential(nn.Linear(num_hiddens, ffn_hiddens), nn.ReLU(), nn.Linear(ffn_hiddens, num_hiddens))


class EncoderLayer(nn.Module):
    """Self-attention then a feed-forward net, each in a residual branch after a LayerNorm."""

    def __init__(self, num_hiddens, num_heads, ffn_hiddens):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(num_hiddens), nn.LayerNorm(num_hiddens)
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads)
        self.ffn = _ffn(num_hiddens, ffn_hiddens)

    def forward(self, x, mask, bias=None):
        h = self.norm1(x)
        x = x + self.self_attention(h, h, h, mask, bias)
        return x + self.ffn(self.norm2(x))  # (B, S, C)


class DecoderLayer(nn.Module):
    """Causal self-attention, attention over the encoder's outputs, then a feed-forward net."""

    def __init__(self, num_hiddens, num_heads, ffn_hiddens):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(num_hiddens) for _ in range(3))
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads)
        self.cross_attention = MultiHeadAttention(num_hiddens, num_heads)
        self.ffn = _ffn(num_hiddens, ffn_hiddens)

    def forward(self, y, past, memory, self_mask, memory_mask, bias=None):
        """y (B, T, C): the new positions; past (B, t, C): this layer's normalised inputs at the earlier ones.

        Returns the new positions' outputs (B, T, C) and the normalised inputs of all t + T positions, the
        keys and values of self-attention, kept so that the next step need not compute them again.
        """
        h = torch.cat([past, self.norms[0](y)], dim=1)  # (B, t + T, C)
        y = y + self.self_attention(h[:, past.shape[1]:], h, h, self_mask, bias)
        y = y + self.cross_attention(self.norms[1](y), memory, memory, memory_mask)
        return y + self.ffn(self.norms[2](y)), h  # (B, T, C), (B, t + T, C)


class TransformerEncoder(nn.Module):
    """Token embedding + positions (sinusoidal or ALiBi) + self-attention layers: the seq2seq encoder interface."""

    def __init__(self, vocab_size, num_hiddens=64, num_heads=4, num_layers=2, ffn_hiddens=128, max_len=128,
                 position="sinusoidal"):
        super().__init__()
        _check_position(position)
        self.num_hiddens, self.num_heads, self.position = num_hiddens, num_heads, position
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.register_buffer("pe", positional_encoding(max_len, num_hiddens), persistent=False)
        self.layers = nn.ModuleList(EncoderLayer(num_hiddens, num_heads, ffn_hiddens) for _ in range(num_layers))
        self.norm = nn.LayerNorm(num_hiddens)

    def forward(self, src, src_lengths):
        """src (B, S), src_lengths (B,) -> (memory (B, S, C), None): there is no recurrent state."""
        alibi = self.position == "alibi"
        x = self.embedding(src) if alibi else embed(self.embedding, self.pe, src)  # (B, S, C)
        bias = alibi_bias(self.num_heads, src.shape[1], src.device) if alibi else None  # (nh, S, S)
        key_mask = padding_mask(src_lengths.to(src.device), src.shape[1])[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.layers:
            x = layer(x, key_mask, bias)
        return self.norm(x), None


class TransformerDecoder(nn.Module):
    """Causal self-attention over the target prefix and attention over the source: the decoder interface.

    The state is (the target tokens read so far (B, t), and per layer its normalised inputs at those
    positions (B, t, C)): one-step decoding computes only the new position and attends to the kept ones
    (a key-value cache), giving the same logits as re-reading the whole prefix.
    """

    def __init__(self, vocab_size, num_hiddens=64, num_heads=4, num_layers=2, ffn_hiddens=128, max_len=128,
                 position="sinusoidal"):
        super().__init__()
        _check_position(position)
        self.num_hiddens, self.num_heads, self.position = num_hiddens, num_heads, position
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.register_buffer("pe", positional_encoding(max_len, num_hiddens), persistent=False)
        self.layers = nn.ModuleList(DecoderLayer(num_hiddens, num_heads, ffn_hiddens) for _ in range(num_layers))
        self.norm = nn.LayerNorm(num_hiddens)
        self.output = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, enc_state, src_mask):
        """An empty target prefix (B, 0) and an empty cache (B, 0, C) per layer."""
        B, device = enc_outputs.shape[0], enc_outputs.device
        empty = torch.zeros(B, 0, self.num_hiddens, device=device, dtype=enc_outputs.dtype)
        return torch.zeros(B, 0, dtype=torch.long, device=device), [empty] * len(self.layers)

    def select_state(self, state, index):
        """Keep batch rows `index` of the prefix and of every layer's cache."""
        tokens, cache = state
        return tokens.index_select(0, index), [c.index_select(0, index) for c in cache]

    def forward(self, y_in, state, enc_outputs, src_mask):
        """Logits (B, T, V) for the T new tokens y_in after the prefix in `state`, and the longer state."""
        prefix, cache = state
        t, T = prefix.shape[1], y_in.shape[1]
        alibi = self.position == "alibi"
        y = self.embedding(y_in) if alibi else embed(self.embedding, self.pe, y_in, start=t)  # (B, T, C)
        bias = alibi_bias(self.num_heads, t + T, y_in.device)[:, t:] if alibi else None  # (nh, T, t + T)
        self_mask = causal_mask(t + T, device=y_in.device)[t:]  # (T, t + T): new position i sees 0 .. t + i
        memory_mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        new_cache = []
        for layer, past in zip(self.layers, cache):
            y, h = layer(y, past, enc_outputs, self_mask, memory_mask, bias)
            new_cache.append(h)
        return self.output(self.norm(y)), (torch.cat([prefix, y_in], dim=1), new_cache)  # (B, T, V)


def embed(embedding, pe, tokens, start=0):
    """Token embeddings plus the position codes of positions start, start + 1, ...: (B, T) ids -> (B, T, C)."""
    end = start + tokens.shape[1]
    if end > pe.shape[0]:
        raise ValueError(f"sequence of length {end} is longer than max_len={pe.shape[0]}")
    return embedding(tokens) + pe[start:end]  # (B, T, C)


def build_transformer(src_vocab, tgt_vocab, num_hiddens=64, num_heads=4, num_layers=2, ffn_hiddens=128,
                      max_len=128, seed=0, device="cpu", position="sinusoidal"):
    """A seq2seq.Seq2Seq whose encoder and decoder are transformers (train/evaluate it like the LSTMs).

    position: "sinusoidal" (absolute codes added to the embeddings) or "alibi" (distance penalties).
    """
    from .seq2seq import Seq2Seq

    _check_position(position)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = TransformerEncoder(len(src_vocab), num_hiddens, num_heads, num_layers, ffn_hiddens, max_len, position)
        decoder = TransformerDecoder(len(tgt_vocab), num_hiddens, num_heads, num_layers, ffn_hiddens, max_len, position)
    return Seq2Seq(encoder, decoder, src_vocab, tgt_vocab).to(device)
