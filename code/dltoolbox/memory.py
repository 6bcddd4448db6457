"""Memory that compresses: three causal byte-level language models that read a long window of bytes, and
what each pays for reading it.

1. Full causal self-attention, the course's GPT (:class:`dltoolbox.gpt.GPT`): in every layer each byte
   attends to every earlier byte of the window, T² scores per layer.
2. Perceiver AR (Hawthorne et al. 2022): the last N positions of the window are the latents. One causally
   masked cross-attention lets latent i (at position T − N + i) read every position ≤ T − N + i, then causal
   self-attention blocks run over the N latents alone: cost O(T·N + L·N²), predictions at the N latents only.
3. MEGABYTE (Yu et al. 2023): the window cut into T/P patches of P bytes. A global transformer runs over
   the patches (a patch enters as its P byte embeddings side by side), shifted by one patch so that patch k
   reads only the patches before it; a local transformer inside each patch predicts its bytes one by one
   from the global output and the earlier bytes of the patch: cost O((T/P)² + T·P).

One convention for all three, the course's (:mod:`dltoolbox.lm`): ``forward(idx (B, T), targets=None) ->
(logits, loss)``. The batches of ``lm.windows`` come shifted, targets[:, t] = idx[:, t + 1], and logits[:, t]
predicts targets[:, t] from idx[:, :t + 1] at most; the loss is ``lm.next_token_loss``; ``model.window`` is
the longest window. So all three train in ``lm.fit`` on ``lm.windows``. Perceiver AR returns logits for its
last N positions only, (B, N, V), and scores them against targets[:, -N:].

Fair scores: a prediction is easier the more bytes precede it, and the models predict different positions.
:func:`bits_per_byte` scores every model on the same bytes from the same windows: windows of T bytes every
`last` bytes, each scored on its last `last` predictions only (which every model makes), so that each
held-out byte is scored once, from at least T − last + 1 bytes of context (MEGABYTE: one fewer, below).

Default sizes (:func:`config_for`), for windows of 256 bytes of 256 values, :func:`flops_per_byte` forward:

| model        | sizes                                              | parameters | FLOPs per predicted byte |
|--------------|----------------------------------------------------|------------|--------------------------|
| full         | width 64, 2 blocks                                 | 149,504    | 360,448                  |
| perceiver_ar | width 64, N = 64, cross-attention + 1 block        | 149,632    | 360,448                  |
| megabyte     | P = 4, global width 64 × 2 blocks, local 32 × 2    | 151,168    | 124,928                  |

MEGABYTE's patch is 4 bytes, fixed before chapter 8's comparison: in exploratory single-seed runs (not stored)
P = 8 stayed at chance on its recall task through 8,000 steps at two learning rates, P = 4 recalled by step 1,000.
"""
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from . import gpt, lm
from .attention import causal_mask

KINDS = ("full", "perceiver_ar", "megabyte")


def _check_length(T, block_size):
    if T > block_size:
        raise ValueError(f"sequence of {T} positions is longer than block_size {block_size}")


# ---- Perceiver AR ---------------------------------------------------------------------------------------

@dataclass
class PerceiverARConfig:
    vocab_size: int = 256  # byte values
    block_size: int = 256  # T: the longest window
    n_latent: int = 64     # N: the last N positions, the queries of the cross-attention, the only ones predicted
    n_embd: int = 64       # width
    n_head: int = 4        # attention heads
    n_layer: int = 1       # self-attention blocks over the latents, after the cross-attention


class PerceiverAR(nn.Module):
    """Perceiver AR: a causal cross-attention from the last N positions to the whole window, then causal
    self-attention blocks over those N latents alone; predictions at the N latent positions."""

    def __init__(self, cfg):
        super().__init__()
        if min(cfg.vocab_size, cfg.n_latent, cfg.n_layer) < 1 or cfg.n_embd % cfg.n_head:
            raise ValueError(f"need sizes >= 1 and n_embd divisible by n_head, got {cfg}")
        if cfg.n_latent > cfg.block_size:
            raise ValueError(f"n_latent={cfg.n_latent} latents do not fit in a window of block_size={cfg.block_size}")
        self.cfg = cfg
        sizes = gpt.GPTConfig(vocab_size=cfg.vocab_size, block_size=cfg.block_size, n_embd=cfg.n_embd,
                              n_head=cfg.n_head, n_layer=cfg.n_layer)
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.cross = gpt.Block(sizes)          # its attention reads keys and values at every position (_cross)
        self.ln_kv = nn.LayerNorm(cfg.n_embd)  # normalises those keys and values
        self.blocks = nn.ModuleList(gpt.Block(sizes) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)

    def _cross(self, x):
        """x (B, T, C) → the N latents (B, N, C) after cross-attention; latent i reads positions ≤ T − N + i."""
        T, N = x.shape[1], self.cfg.n_latent
        latents, kv = x[:, -N:], self.ln_kv(x)                                  # (B, N, C), (B, T, C)
        mask = causal_mask(T, x.device)[T - N:]                                 # (N, T): the causal mask's last N rows
        latents = latents + self.cross.attn(self.cross.ln1(latents), kv, kv, mask)
        return latents + self.cross.mlp(self.cross.ln2(latents))

    def forward(self, idx, targets=None):
        """idx (B, T) → logits (B, N, V) at the last N positions; loss against targets[:, -N:] (targets (B, T))."""
        B, T = idx.shape
        _check_length(T, self.cfg.block_size)
        N = self.cfg.n_latent
        if T < N:
            raise ValueError(f"a window of {T} positions is shorter than the n_latent={N} latents")
        if targets is not None and targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))  # (B, T, C)
        x = self._cross(x)                                                         # (B, N, C)
        for block in self.blocks:
            x = block(x)                                                           # causal over the latents
        logits = self.head(self.ln_f(x))                                           # (B, N, V)
        return logits, None if targets is None else lm.next_token_loss(logits, targets[:, -N:])

    @property
    def window(self):
        """How many previous ids a prediction reads at most: the block size."""
        return self.cfg.block_size


# ---- MEGABYTE -------------------------------------------------------------------------------------------

@dataclass
class MegabyteConfig:
    vocab_size: int = 256  # byte values
    block_size: int = 256  # T: the longest window, a whole number of patches
    patch_size: int = 4    # P: bytes per patch
    global_embd: int = 64  # width of the global model: P byte embeddings of global_embd / P side by side
    global_layer: int = 2  # blocks of the global model
    local_embd: int = 32   # width of the local model
    local_layer: int = 2   # blocks of the local model
    n_head: int = 4        # attention heads, in both models


class Megabyte(nn.Module):
    """MEGABYTE: a global transformer over patches of P bytes, a local transformer within each patch.

    As in the paper, patches are cut from the bytes being predicted: patch k holds the predictions at
    positions kP .. kP + P − 1, of targets[kP .. kP + P − 1] = idx[kP + 1 .. kP + P]. The global model's
    input for patch k is patch k − 1 (a learned start patch for k = 0), so its output for patch k has read
    only the patches before it. The local model's input at byte j of patch k is that output's j-th slice,
    projected, plus the embedding of byte j − 1 of the patch (a learned start byte for j = 0). So position t
    reads idx[1 .. t]: the window's first byte, the byte before its first prediction, is read by none (the
    paper's model starts every sequence from padding), one byte of context fewer than the other models.
    """

    def __init__(self, cfg):
        super().__init__()
        V, T, P, Cg, Cl = cfg.vocab_size, cfg.block_size, cfg.patch_size, cfg.global_embd, cfg.local_embd
        if min(V, T, P, cfg.global_layer, cfg.local_layer) < 1 or Cg % cfg.n_head or Cl % cfg.n_head:
            raise ValueError(f"need sizes >= 1 and widths divisible by n_head, got {cfg}")
        if T % P or Cg % P:
            raise ValueError(f"block_size ({T}) and global_embd ({Cg}) must be multiples of patch_size ({P})")
        self.cfg = cfg
        self.byte_emb = nn.Embedding(V, Cg // P)          # the global model's byte embeddings
        self.start_patch = nn.Parameter(torch.randn(Cg))  # what patch 0 reads: no patch comes before it
        self.pos_emb = nn.Embedding(T // P, Cg)
        sizes = gpt.GPTConfig(vocab_size=V, block_size=T // P, n_embd=Cg, n_head=cfg.n_head, n_layer=cfg.global_layer)
        self.blocks = nn.ModuleList(gpt.Block(sizes) for _ in range(cfg.global_layer))
        self.ln_g = nn.LayerNorm(Cg)
        self.to_local = nn.Linear(Cg // P, Cl)            # each byte's slice of the global output, to local width
        self.start_byte = nn.Parameter(torch.randn(Cl))   # what byte 0 of a patch reads: no byte of it comes before
        self.local = gpt.GPT(gpt.GPTConfig(vocab_size=V, block_size=P, n_embd=Cl, n_head=cfg.n_head,
                                           n_layer=cfg.local_layer))  # its byte table, positions, blocks, head

    def forward(self, idx, targets=None):
        """idx (B, T), T a multiple of P → logits (B, T, V), loss against targets (B, T)."""
        B, T = idx.shape
        P = self.cfg.patch_size
        _check_length(T, self.cfg.block_size)
        if T == 0 or T % P:
            raise ValueError(f"a window of {T} bytes is not a whole number of patches of patch_size={P}")
        K = T // P
        earlier = idx[:, 1:(K - 1) * P + 1].reshape(B, K - 1, P)               # (B, K-1, P): predicted patches 0..K-2
        g = self.byte_emb(earlier).flatten(2)                                  # (B, K-1, Cg): P embeddings side by side
        g = torch.cat([self.start_patch.expand(B, 1, -1), g], dim=1)           # (B, K, Cg): shifted by one patch
        g = g + self.pos_emb(torch.arange(K, device=idx.device))
        for block in self.blocks:
            g = block(g)                                                       # causal over the patches
        g = self.to_local(self.ln_g(g).view(B, K, P, -1))                     # (B, K, P, Cl): one slice per byte
        before = self.local.tok_emb(idx.reshape(B, K, P)[:, :, 1:])            # (B, K, P-1, Cl): its bytes 0..P-2
        before = torch.cat([self.start_byte.expand(B, K, 1, -1), before], dim=2)  # (B, K, P, Cl): byte j reads j-1
        logits, _ = self.local.forward_embeddings((g + before).view(B * K, P, -1))  # (B*K, P, V), causal in a patch
        logits = logits.view(B, T, -1)                                         # (B, T, V)
        return logits, None if targets is None else lm.next_token_loss(logits, targets)

    @property
    def window(self):
        """How many previous ids a prediction reads at most: the block size."""
        return self.cfg.block_size


# ---- building the three, their cost, a fair score -------------------------------------------------------

def config_for(kind, window=256, **sizes):
    """The default sizes of one kind of model (the table above) for windows of `window` bytes; `sizes`
    overrides any field of its config."""
    if kind == "full":
        cfg = gpt.GPTConfig(vocab_size=256, block_size=window, n_embd=64, n_head=4, n_layer=2)
    elif kind == "perceiver_ar":
        cfg = PerceiverARConfig(block_size=window)
    elif kind == "megabyte":
        cfg = MegabyteConfig(block_size=window)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    return replace(cfg, **sizes)


def build(cfg, seed=0):
    """The model a config describes, its weights drawn from `seed` (the global generator is left as it was)."""
    models = {gpt.GPTConfig: gpt.GPT, PerceiverARConfig: PerceiverAR, MegabyteConfig: Megabyte}
    if type(cfg) not in models:
        raise ValueError(f"not a config of this module's models: {cfg!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models[type(cfg)](cfg)


def flops_per_byte(cfg, window=None):
    """Forward FLOPs per predicted byte on windows of `window` bytes (default: the config's block_size), counted
    as :func:`dltoolbox.scaling.measured_flops` counts them: 2 per multiply-add of a matrix product.

    Returns {"weights", "attention", "total"}. "weights": the products with a weight matrix (a block has 12·C²
    multiply-adds per position: query, key, value, output 4·C², MLP 8·C²; embedding lookups cost none).
    "attention": each head's query-key scores and its weighted sum of values, 2·(keys)·C multiply-adds per
    query and layer, computed densely as the code computes them (the masked scores too: twice the causal
    count of :func:`dltoolbox.scaling.attention_flops`). With C the width, L the blocks and V the byte values:

        full:         weights 2(12·L·C² + C·V),                            attention 4·L·T·C
        perceiver_ar: weights 2(10·C² + 2·C²·T/N + 12·L·C² + C·V),         attention 4·C·(T + L·N)
        megabyte:     weights 2(12·Lg·Cg²/P + Cg·Cl/P + 12·Ll·Cl² + Cl·V), attention 4·Lg·T·Cg/P² + 4·Ll·P·Cl

    Perceiver AR's cross-attention projects keys and values at all T positions (2·C² each) but queries,
    outputs and the MLP (10·C²) at the N latents only; MEGABYTE's global blocks run once per patch of P bytes.
    """
    T = cfg.block_size if window is None else window
    if T < 1 or T > cfg.block_size:
        raise ValueError(f"window must be in 1..block_size={cfg.block_size}, got {T}")
    if isinstance(cfg, gpt.GPTConfig):
        C, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
        weights, attention, predicted = T * (12 * L * C * C + C * V), T * 2 * L * T * C, T
    elif isinstance(cfg, PerceiverARConfig):
        C, L, N, V = cfg.n_embd, cfg.n_layer, cfg.n_latent, cfg.vocab_size
        if T < N:
            raise ValueError(f"a window of {T} positions is shorter than the n_latent={N} latents")
        weights = N * 10 * C * C + T * 2 * C * C + N * 12 * L * C * C + N * C * V
        attention, predicted = N * 2 * T * C + L * N * 2 * N * C, N
    elif isinstance(cfg, MegabyteConfig):
        P, Cg, Cl, V = cfg.patch_size, cfg.global_embd, cfg.local_embd, cfg.vocab_size
        if T % P:
            raise ValueError(f"a window of {T} bytes is not a whole number of patches of patch_size={P}")
        K = T // P
        weights = (K * 12 * cfg.global_layer * Cg * Cg + T * (Cg // P) * Cl
                   + T * (12 * cfg.local_layer * Cl * Cl + Cl * V))
        attention, predicted = cfg.global_layer * K * 2 * K * Cg + cfg.local_layer * T * 2 * P * Cl, T
    else:
        raise ValueError(f"not a config of this module's models: {cfg!r}")
    per_byte = {"weights": 2 * weights / predicted, "attention": 2 * attention / predicted}
    return {**per_byte, "total": per_byte["weights"] + per_byte["attention"]}


@torch.no_grad()
def bits_per_byte(model, stream, last, chunk=32):
    """Bits per byte of a held-out byte stream, scored alike for models that predict different positions.

    Windows of ``model.window`` bytes start every `last` bytes; each is scored on its last `last` predictions
    only (Perceiver AR predicts only its last N positions, so last ≤ N). Every byte from position
    window − last + 1 of the stream on, up to the last whole window, is scored exactly once, each from at least
    window − last + 1 bytes of context. With last = window this is ``lm.bits(lm.held_out_loss(model, stream,
    window))``. The model's training mode is restored afterwards.
    """
    window = model.window
    if not 1 <= last <= window:
        raise ValueError(f"last must be in 1..window={window}, got {last}")
    if len(stream) < window + 1:
        raise ValueError(f"the stream has {len(stream)} bytes, fewer than a window of {window} and its next byte")
    windows = stream.unfold(0, window + 1, last)                              # (n, window + 1), every `last` bytes
    was_training, total = model.training, 0.0
    model.eval()
    try:
        for batch in windows.split(chunk):
            logits, _ = model(batch[:, :-1])                                  # (b, predicted, V), the last positions
            if logits.shape[1] < last:
                raise ValueError(f"the model predicts only its last {logits.shape[1]} positions, "
                                 f"fewer than last={last}")
            total += lm.next_token_loss(logits[:, -last:], batch[:, -last:]).item() * len(batch)
    finally:
        model.train(was_training)
    return lm.bits(total / len(windows))
