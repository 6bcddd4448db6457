"""The course's GPT: a small causal transformer language model (pre-norm blocks, learned positions).

One model for every chapter that needs a GPT: Frozen's language model (which also reads a prefix of input
embeddings), chapter 7's scaling family and its data-parallel run. Like every language model in the
course, ``forward(idx, targets=None) -> (logits, loss)``, and ``generate`` samples a continuation;
``lm_batches`` draws the random windows of a token stream they train on.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int        # number of token ids
    block_size: int = 32   # longest context, prefix included
    n_embd: int = 64       # width of the residual stream
    n_head: int = 4        # attention heads per block
    n_layer: int = 2       # blocks


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention then an MLP, each with a residual."""

    def __init__(self, cfg):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = nn.MultiheadAttention(cfg.n_embd, cfg.n_head, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd))

    def forward(self, x):
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1)  # True: may not attend
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
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

        Targets of -100 are ignored (PyTorch's convention, used throughout the course)."""
        if x.shape[1] > self.cfg.block_size:
            raise ValueError(f"sequence of {x.shape[1]} positions is longer than block_size {self.cfg.block_size}")
        x = x + self.pos_emb(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, generator=None):
        """Append `max_new_tokens` ids to idx (B, T), each drawn from softmax(logits / temperature) given the
        last block_size ids; temperature=0 takes the most likely id."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.cfg.block_size:])
            last = logits[:, -1, :]                                        # (B, V)
            if temperature == 0:
                nxt = last.argmax(-1, keepdim=True)
            else:
                probs = F.softmax(last / temperature, dim=-1)
                nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


def lm_batches(stream, block_size, batch_size, generator):
    """A random batch of windows (B, T) and their next tokens (B, T) from a token stream."""
    starts = torch.randint(len(stream) - block_size - 1, (batch_size,), generator=generator)
    X = torch.stack([stream[s:s + block_size] for s in starts])
    Y = torch.stack([stream[s + 1:s + block_size + 1] for s in starts])
    return X, Y
