"""A small transformer encoder-decoder written out from torch.nn pieces (Vaswani et al. 2017, pre-norm)."""
import math

import torch
from torch import nn

from .attention import causal_mask, scaled_dot_product_attention


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

    def forward(self, queries, keys, values, mask=None):
        """queries (B, Tq, C), keys/values (B, Tk, C), mask broadcastable to (B, nh, Tq, Tk) -> (B, Tq, C)."""
        q, k, v = self._split(self.W_q(queries)), self._split(self.W_k(keys)), self._split(self.W_v(values))
        out, self.weights = scaled_dot_product_attention(q, k, v, mask)  # (B, nh, Tq, hs)
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


def _ffn(num_hiddens, ffn_hiddens):
    return nn.Sequential(nn.Linear(num_hiddens, ffn_hiddens), nn.ReLU(), nn.Linear(ffn_hiddens, num_hiddens))


class EncoderLayer(nn.Module):
    """Self-attention then a feed-forward net, each in a residual branch after a LayerNorm."""

    def __init__(self, num_hiddens, num_heads, ffn_hiddens):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(num_hiddens), nn.LayerNorm(num_hiddens)
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads)
        self.ffn = _ffn(num_hiddens, ffn_hiddens)

    def forward(self, x, mask):
        h = self.norm1(x)
        x = x + self.self_attention(h, h, h, mask)
        return x + self.ffn(self.norm2(x))  # (B, S, C)


class DecoderLayer(nn.Module):
    """Causal self-attention, attention over the encoder's outputs, then a feed-forward net."""

    def __init__(self, num_hiddens, num_heads, ffn_hiddens):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(num_hiddens) for _ in range(3))
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads)
        self.cross_attention = MultiHeadAttention(num_hiddens, num_heads)
        self.ffn = _ffn(num_hiddens, ffn_hiddens)

    def forward(self, y, memory, self_mask, memory_mask):
        h = self.norms[0](y)
        y = y + self.self_attention(h, h, h, self_mask)
        y = y + self.cross_attention(self.norms[1](y), memory, memory, memory_mask)
        return y + self.ffn(self.norms[2](y))  # (B, T, C)


class Transformer(nn.Module):
    """Encoder-decoder transformer: forward(src, src_lengths, tgt_in) -> logits (B, T, V)."""

    def __init__(self, src_vocab_size, tgt_vocab_size, num_hiddens=64, num_heads=4, num_layers=2,
                 ffn_hiddens=128, max_len=512):
        super().__init__()
        self.num_hiddens = num_hiddens
        self.src_embedding = nn.Embedding(src_vocab_size, num_hiddens)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, num_hiddens)
        self.register_buffer("pe", positional_encoding(max_len, num_hiddens), persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(num_hiddens, num_heads, ffn_hiddens) for _ in range(num_layers))
        self.decoder = nn.ModuleList(DecoderLayer(num_hiddens, num_heads, ffn_hiddens) for _ in range(num_layers))
        self.norm_enc, self.norm_dec = nn.LayerNorm(num_hiddens), nn.LayerNorm(num_hiddens)
        self.head = nn.Linear(num_hiddens, tgt_vocab_size)

    def _embed(self, embedding, tokens):
        if tokens.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of length {tokens.shape[1]} is longer than max_len={self.pe.shape[0]}")
        return embedding(tokens) * math.sqrt(self.num_hiddens) + self.pe[: tokens.shape[1]]  # (B, T, C)

    def encode(self, src, src_mask):
        """src (B, S) token ids, src_mask (B, S) bool -> memory (B, S, C)."""
        x = self._embed(self.src_embedding, src)
        key_mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.encoder:
            x = layer(x, key_mask)
        return self.norm_enc(x)

    def decode(self, tgt_in, memory, src_mask):
        """tgt_in (B, T) token ids (starting with BOS), memory (B, S, C) -> logits (B, T, V)."""
        y = self._embed(self.tgt_embedding, tgt_in)
        self_mask = causal_mask(tgt_in.shape[1], device=tgt_in.device)  # (T, T)
        memory_mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.decoder:
            y = layer(y, memory, self_mask, memory_mask)
        return self.head(self.norm_dec(y))

    def forward(self, src, src_lengths, tgt_in):
        """Teacher-forced logits (B, T, V) for the target prefix tgt_in."""
        src_mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask)

    @torch.no_grad()
    def greedy(self, src, src_lengths, bos_id, eos_id, max_len):
        """Greedy decoding: (B, T) predicted token ids, without BOS, padded with eos_id after EOS."""
        src_mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        memory = self.encode(src, src_mask)
        ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            next_token = self.decode(ys, memory, src_mask)[:, -1].argmax(-1)  # (B,)
            next_token = next_token.masked_fill(done, eos_id)
            ys = torch.cat([ys, next_token[:, None]], dim=1)
            done |= next_token == eos_id
            if bool(done.all()):
                break
        return ys[:, 1:]
