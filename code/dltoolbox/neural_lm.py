"""A neural language model in the style of Bengio et al. (2003): an MLP over the previous k tokens."""
import copy
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import lm


@dataclass
class MLPConfig:
    vocab_size: int = 64  # number of token ids; one more id is used to pad before the start
    context: int = 8  # k: how many previous tokens the model sees
    num_embed: int = 16  # size of each token's learned vector
    num_hiddens: int = 256  # width of the tanh hidden layer
    dropout: float = 0.0  # dropout on the concatenated embeddings and on the hidden layer, in training only


class MLPLanguageModel(nn.Module):
    """Embed the previous k tokens, concatenate, one tanh layer, logits for the next token."""

    def __init__(self, config):
        super().__init__()
        if config.vocab_size < 1 or config.context < 1 or config.num_embed < 1 or config.num_hiddens < 1:
            raise ValueError(f"every MLPConfig size must be >= 1, got {config}")
        if not 0 <= config.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
        self.config = config
        self.drop = nn.Dropout(config.dropout)
        self.embed = nn.Embedding(config.vocab_size + 1, config.num_embed)  # id vocab_size = padding
        self.hidden = nn.Linear(config.context * config.num_embed, config.num_hiddens)
        self.out = nn.Linear(config.num_hiddens, config.vocab_size)

    def contexts(self, idx):
        """For each position t, the ids of tokens t-k+1..t (padded before the start), shape (B, T, k)."""
        k = self.config.context
        pad = torch.full((idx.shape[0], k - 1), self.config.vocab_size, dtype=idx.dtype, device=idx.device)
        return torch.cat([pad, idx], dim=1).unfold(1, k, 1)  # (B, T, k)

    def forward(self, idx, targets=None):
        """Logits for the token after each position, shape (B, T, V); loss (nats) if targets are given
        (targets of lm.IGNORE are left out)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must be in 0..{self.config.vocab_size - 1}")
        B, T = idx.shape
        x = self.embed(self.contexts(idx)).view(B, T, -1)  # (B, T, k * E)
        logits = self.out(self.drop(torch.tanh(self.hidden(self.drop(x)))))  # (B, T, V)
        return logits, None if targets is None else lm.next_token_loss(logits, targets)

    @property
    def window(self):
        """How many previous ids a prediction reads: the context k."""
        return self.config.context

    def generate(self, idx, max_new_tokens, temperature=1.0, generator=None):
        """Append `max_new_tokens` sampled ids to idx (B, T) (:func:`dltoolbox.lm.generate`)."""
        return lm.generate(self, idx, max_new_tokens, temperature, generator)


def batches(ids, batch_size, block_size, context, generator):
    """Random windows of the id stream: inputs (B, k - 1 + T) for T = block_size predictions, and their
    targets, the first k - 1 of them lm.IGNORE (those positions lack a full context)."""
    if len(ids) < context + block_size + 1:
        raise ValueError(f"the stream has {len(ids)} ids, fewer than a window of {context + block_size + 1}")
    X, y = lm.windows(ids, context - 1 + block_size, batch_size, generator)  # (B, k - 1 + T)
    y[:, :context - 1] = lm.IGNORE
    return X, y


def bits_per_token(model, ids, device="cpu"):
    """Average bits per token of ids[1:], each predicted from the (up to) k tokens before it."""
    if len(ids) < 2:
        raise ValueError("need at least two ids to measure bits per token")
    return lm.bits(lm.held_out_loss(model, ids.to(device)))


@torch.no_grad()
def log2_probs(model, ids, device="cpu"):
    """log2 P of each of ids[1:] given the (up to) k ids before it, shape (len(ids) - 1,)."""
    if len(ids) < 2:
        raise ValueError("need at least two ids to score")
    model.eval()
    logits, _ = model(ids[None, :-1].to(device))
    return torch.log_softmax(logits[0].double(), -1).gather(1, ids[1:, None].to(device))[:, 0].cpu() / math.log(2)


def train_lm(model, train_ids, valid_ids, steps=2000, batch_size=32, block_size=64, lr=3e-3,
             eval_every=250, generator=None, device="cpu", keep_best=False):
    """Train with AdamW (cosine-decayed lr) in the course's loop (:func:`dltoolbox.lm.fit`), on windows of
    `block_size` predictions; return a history of train loss and validation bits per token.

    valid_ids=None: no validation (a final run on all the training text, its steps chosen beforehand).
    keep_best: early stopping on validation, i.e. end with the weights of the evaluation with the lowest
    validation bits (its step is history["best_step"]).
    """
    if steps < 1 or eval_every < 1:
        raise ValueError(f"steps and eval_every must be >= 1, got {steps}, {eval_every}")
    if keep_best and valid_ids is None:
        raise ValueError("keep_best needs validation ids to choose the best step")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    history = {"step": [], "train_bits": [], "valid_bits": []}
    best = None

    def next_batch():
        X, y = batches(train_ids, batch_size, block_size, model.config.context, generator)
        return X.to(device), y.to(device)

    def evaluate(step, losses):
        nonlocal best
        since = losses[history["step"][-1] if history["step"] else 0:]  # the steps since the last evaluation
        history["step"].append(step)
        history["train_bits"].append(sum(since) / len(since) / math.log(2))
        if valid_ids is not None:
            history["valid_bits"].append(bits_per_token(model, valid_ids, device))
            if keep_best and history["valid_bits"][-1] == min(history["valid_bits"]):
                best = (step, copy.deepcopy(model.state_dict()))

    lm.fit(model, next_batch, optimizer, steps, schedule, evaluate=evaluate, every=eval_every,
           desc="training the MLP")
    if keep_best:
        history["best_step"] = best[0]
        model.load_state_dict(best[1])
    return history


def interpolate(log2_a, log2_b, weight):
    """log2 of weight * P_a + (1 - weight) * P_b for each token, from per-token log2 P of two models."""
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    a, b = torch.as_tensor(log2_a, dtype=torch.float64), torch.as_tensor(log2_b, dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"both models must score the same tokens: shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return torch.logaddexp2(a + math.log2(weight) if weight > 0 else a - math.inf,
                            b + math.log2(1 - weight) if weight < 1 else b - math.inf).numpy()


def mixture_weight(log2_a, log2_b, num_weights=41):
    """The weight on model a, on a grid over [0, 1], with the lowest mean bits on these (validation) tokens."""
    grid = [i / (num_weights - 1) for i in range(num_weights)]
    bits = [-interpolate(log2_a, log2_b, w).mean() for w in grid]
    return grid[min(range(num_weights), key=bits.__getitem__)]
