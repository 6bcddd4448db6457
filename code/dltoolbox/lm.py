"""What every next-token language model of the course shares: one loss, one batcher, one training loop,
one held-out score and one `generate`.

A language model here is any module with ``forward(idx (B, T), targets=None) -> (logits (B, T, V), loss)``:
the MLP of chapter 2 (:mod:`dltoolbox.neural_lm`), the LSTM language model of chapter 6
(:mod:`dltoolbox.transfer`) and the GPT of chapters 6–7 (:mod:`dltoolbox.gpt`). One padding convention
runs through them: a target of ``IGNORE`` (-100, PyTorch's own default) is left out of the loss; a model
that pads its batches with a pad id maps those targets to ``IGNORE`` (:func:`next_token_loss` with `pad`).
A model reads at most ``model.window`` previous ids (``None``: all of them), which is what
:func:`generate` keeps of a growing sequence.
"""
import math

import torch
import torch.nn.functional as F

from .progress import progress

IGNORE = -100  # a target that takes no part in the loss


def next_token_loss(logits, targets, pad=None, label_smoothing=0.0):
    """Mean cross-entropy (nats) of logits (..., V) against targets (...), leaving out every target equal
    to IGNORE (and to `pad`, if given)."""
    if pad is not None:
        targets = targets.masked_fill(targets == pad, IGNORE)
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=IGNORE,
                           label_smoothing=label_smoothing)


def char_ids(chars):
    """A character text (a string, or a list of characters) as ids: (vocab, the sorted characters; ids, a
    LongTensor of their positions in it)."""
    vocab = sorted(set(chars))
    index = {c: i for i, c in enumerate(vocab)}
    return vocab, torch.tensor([index[c] for c in chars], dtype=torch.long)


def windows(stream, width, batch_size, generator):
    """A random batch of windows of a token stream, (B, width), and the ids that follow each position (B, width)."""
    if len(stream) < width + 1:
        raise ValueError(f"the stream has {len(stream)} ids, fewer than a window of {width} and its next id")
    starts = torch.randint(0, len(stream) - width, (batch_size,), generator=generator)
    X = torch.stack([stream[s:s + width] for s in starts.tolist()])
    Y = torch.stack([stream[s + 1:s + width + 1] for s in starts.tolist()])
    return X, Y


def fit(model, batches, optimizer, num_steps, schedule=None, clip=None, evaluate=None, every=1, desc=None):
    """The course's training loop: `num_steps` steps of `optimizer` on next-token loss; the losses.

    `batches()` returns the next (inputs, targets); `schedule` (a learning-rate scheduler) steps after each
    optimiser step; `clip` caps the gradients' global norm; `evaluate(step, losses)` runs after every
    `every`-th step and after the last one (steps count from 1; `losses` are the training losses so far).
    `desc` names a progress bar (None: no bar).
    """
    if num_steps < 1 or every < 1:
        raise ValueError(f"num_steps and every must be >= 1, got {num_steps}, {every}")
    losses = []
    steps = range(1, num_steps + 1)
    for step in (steps if desc is None else progress(steps, desc=desc)):
        model.train()
        inputs, targets = batches()
        _, loss = model(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        losses.append(loss.item())
        if evaluate is not None and (step % every == 0 or step == num_steps):
            evaluate(step, losses)
    return losses


@torch.no_grad()
def held_out_loss(model, stream, window=None, chunk=256):
    """Mean next-token loss (nats) of a held-out id stream, each id predicted from those before it.

    window=None reads the stream as one sequence (a model with no context limit, like the MLP, which sees
    its last k ids anyway); otherwise it is cut into consecutive windows of `window` ids, scored `chunk`
    windows at a time. The model's training mode is restored afterwards.
    """
    if len(stream) < 2:
        raise ValueError("need at least two ids to score")
    was_training = model.training
    model.eval()
    if window is None:
        _, loss = model(stream[None, :-1], stream[None, 1:])
        result = loss.item()
    else:
        n = (len(stream) - 1) // window
        if n < 1:
            raise ValueError(f"the stream has {len(stream)} ids, fewer than one window of {window} and its next id")
        X = stream[:n * window].view(n, window)
        Y = stream[1:n * window + 1].view(n, window)
        result = sum(model(x, y)[1].item() * len(x) for x, y in zip(X.split(chunk), Y.split(chunk))) / n
    model.train(was_training)
    return result


def bits(nats):
    """A loss in nats per token as bits per token."""
    return nats / math.log(2)


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, generator=None):
    """Append `max_new_tokens` ids to idx (B, T), each drawn from softmax(logits / temperature) given the last
    `model.window` ids (all of them when it is None); temperature=0 takes the most likely id."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    window = getattr(model, "window", None)
    for _ in range(max_new_tokens):
        logits, _ = model(idx if window is None else idx[:, -window:])
        last = logits[:, -1, :]                                            # (B, V)
        if temperature == 0:
            nxt = last.argmax(-1, keepdim=True)
        else:
            probs = F.softmax(last / temperature, dim=-1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
