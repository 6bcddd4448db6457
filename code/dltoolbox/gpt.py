"""The course's GPT: a small causal transformer language model (pre-norm blocks, learned positions), built
on the course's own multi-head attention (:class:`dltoolbox.transformer.MultiHeadAttention`).

One model for every chapter that needs a GPT: Frozen's language model (which also reads a prefix of input
embeddings), chapter 7's scaling family and its data-parallel run. Like every language model in the
course (:mod:`dltoolbox.lm`), ``forward(idx, targets=None) -> (logits, loss)``, and ``generate`` samples
a continuation; it trains on random windows of a token stream (``lm.windows``) in ``lm.fit``.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import lm
from .attention import causal_mask
from .transformer import MultiHeadAttention


@dataclass
class GPTConfig:
    vocab_size: int        # number of token ids
    block_size: int = 32   # longest context, prefix included
    n_embd: int = 64       # width of the residual stream
    n_head: int = 4        # attention heads per block
    n_layer: int = 2       # blocks


def _attention(width, n_head):
    """The course's multi-head attention, initialised as torch.nn.MultiheadAttention initialises itself (and
    drawing the same random numbers in the same order): the output projection as an nn.Linear, then the
    query, key and value projections as one Xavier-uniform (3C, C) matrix, every bias but the output's zero."""
    with torch.random.fork_rng():  # building the layers draws nothing from the generator the model uses
        attention = MultiHeadAttention(width, n_head)
    with torch.no_grad():
        attention.W_o.reset_parameters()
        packed = nn.init.xavier_uniform_(torch.empty(3 * width, width))
        for layer, weight in zip((attention.W_q, attention.W_k, attention.W_v), packed.chunk(3)):
            layer.weight.copy_(weight)
            layer.bias.zero_()
        attention.W_o.bias.zero_()
    return attention


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention then an MLP, each with a residual."""

    def __init__(self, cfg):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = _attention(cfg.n_embd, cfg.n_head)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, causal_mask(x.shape[1], x.device))  # each position reads itself and before
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """A small causal transformer LM that can also read a prefix of input embeddings before its tokens."""

    def __init__(self, cfg):
        super().__init__()
        if cfg.vocab_size < 1 or cfg.block_size < 1 or cfg.n_layer < 1 or cfg.n_embd % cfg.n_head:
            raise ValueError(f"need sizes >= 1 and n_embd divisible by n_head, got {cfg}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)

    def forward(self, idx, targets=None, prefix=None):
        """idx (B, T) tokens, prefix (B, P, C) embeddings or None → logits (B, P+T, V), loss on `targets` (B, P+T)."""
        x = self.tok_emb(idx)                                              # (B, T, C)
        if prefix is not None:
            x = torch.cat([prefix, x], dim=1)                              # (B, P+T, C)
        return self.forward_embeddings(x, targets)

    def forward_embeddings(self, x, targets=None):
        """The LM on input embeddings x (B, T, C) → logits (B, T, V), loss on `targets` (B, T) or None.

        Targets of lm.IGNORE (-100) are left out of the loss."""
        if x.shape[1] > self.cfg.block_size:
            raise ValueError(f"sequence of {x.shape[1]} positions is longer than block_size {self.cfg.block_size}")
        x = x + self.pos_emb(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        return logits, None if targets is None else lm.next_token_loss(logits, targets)

    @property
    def window(self):
        """How many previous ids a prediction reads: the block size."""
        return self.cfg.block_size

    def generate(self, idx, max_new_tokens, temperature=1.0, generator=None):
        """Append `max_new_tokens` ids to idx (B, T), each given the last block_size ids (:func:`dltoolbox.lm.generate`)."""
        return lm.generate(self, idx, max_new_tokens, temperature, generator)
