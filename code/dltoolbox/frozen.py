"""Frozen in miniature: a tiny language model pretrained on generated text, then kept frozen while a vision
encoder learns to write a prefix of input embeddings that makes it caption 8×8 digits.

The text has three kinds of sentence: arithmetic ("two plus three is five ."), descriptions
("it shows a seven ."; with describe_first=True they name the digit first: "seven . it shows a seven ."),
and naming lists ("cat dax . seven wug . cat dax .") where made-up names are
bound to words and then repeated: the in-context skill that the few-shot test borrows for images.
The language model is the course's GPT (`gpt.GPT`), of the size `lm_config()` gives.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import lm
from .gpt import GPTConfig
from .progress import progress

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NOUNS = ["cat", "dog", "sun", "tree", "car", "box", "cup", "hat", "pen", "key"]
NAMES = ["dax", "wug", "blicket", "fep", "toma", "zup", "kiki", "bouba"]
VOCAB = ["<pad>", ".", "plus", "is", "it", "shows", "a"] + DIGITS + NOUNS + NAMES
STOI = {w: i for i, w in enumerate(VOCAB)}


def encode(text):
    """Words → token ids (a LongTensor); unknown words are an error."""
    words = text.split()
    unknown = [w for w in words if w not in STOI]
    if unknown:
        raise ValueError(f"words not in the vocabulary: {unknown}")
    return torch.tensor([STOI[w] for w in words], dtype=torch.int64)


def decode(ids):
    """Token ids → words joined by spaces."""
    return " ".join(VOCAB[int(i)] for i in ids)


def _sentence(rng, describe_first=False):
    """One random sentence or naming list, as a list of words."""
    kind = rng.rand()
    if kind < 0.3:
        a, b = rng.randint(0, 10, size=2)
        while a + b > 9:
            a, b = rng.randint(0, 10, size=2)
        return [DIGITS[a], "plus", DIGITS[b], "is", DIGITS[a + b], "."]
    if kind < 0.45:
        digit = DIGITS[rng.randint(10)]
        return ([digit, "."] if describe_first else []) + ["it", "shows", "a", digit, "."]
    n = rng.randint(2, 4)
    keys = rng.choice(DIGITS + NOUNS, size=n, replace=False)
    names = rng.choice(NAMES, size=n, replace=False)
    words = [w for k, v in zip(keys, names) for w in (k, v, ".")]
    for i in rng.randint(0, n, size=rng.randint(1, 4)):
        words += [keys[i], names[i], "."]
    return words


def make_corpus(num_tokens, seed=0, describe_first=False):
    """A stream of `num_tokens` token ids of generated text (a LongTensor); describe_first=True names each
    described digit before its description."""
    rng = np.random.RandomState(seed)
    words = []
    while len(words) < num_tokens:
        words += _sentence(rng, describe_first)
    return encode(" ".join(words[:num_tokens]))


def lm_config(**overrides):
    """The language model's GPTConfig: the whole vocabulary, 32 positions (prefix included), width 64,
    4 heads, 2 blocks; any field can be overridden."""
    return GPTConfig(**{"vocab_size": len(VOCAB), **overrides})


def train_lm(model, stream, num_steps=1000, batch_size=32, lr=3e-3, generator=None, desc="LM pretraining"):
    """Next-token training on random windows of `stream` (warm-up, then a linear decay) in the course's loop
    (:func:`dltoolbox.lm.fit`); returns {'loss': [...]}."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * (1 - s / num_steps) + 0.05)
    stream = stream[:-1]  # no window ends at the last id: the draws the chapter's stored numbers were made with
    losses = lm.fit(model, lambda: lm.windows(stream, model.cfg.block_size, batch_size, generator), opt,
                    num_steps, sched, desc=desc)
    return {"loss": losses}


def perplexity(model, stream, block_size=None):
    """exp(mean next-token loss) over consecutive windows of a held-out token stream."""
    return math.exp(lm.held_out_loss(model, stream, block_size or model.cfg.block_size))


class WordPrefix(nn.Module):
    """A vision encoder whose prefix is a *word*: a softmax over `word_ids` mixing their (frozen) embeddings.

    The embeddings are copied from `token_embedding` (the frozen LM's); the prefix (B, 1, C) lies in their
    convex hull, so the LM reads an image as (a blend of) words it knows.
    """

    def __init__(self, token_embedding, word_ids, hidden=128, in_dim=64):
        super().__init__()
        self.num_tokens = 1
        self.register_buffer("word_ids", torch.as_tensor(word_ids, dtype=torch.int64).clone())
        self.register_buffer("words", token_embedding.weight[self.word_ids].detach().clone())   # (W, C)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, len(self.word_ids)))

    def word_weights(self, images):
        """(B, W) the softmax weights over the candidate words."""
        return self.net(images).softmax(-1)

    def forward(self, images):
        return (self.word_weights(images) @ self.words).unsqueeze(1)      # (B, 1, C)


class VisionPrefix(nn.Module):
    """An MLP from a (B, 1, 8, 8) image to `num_tokens` input embeddings (B, P, C) for the language model."""

    def __init__(self, n_embd=64, num_tokens=1, hidden=128, in_dim=64):
        super().__init__()
        self.num_tokens, self.n_embd = num_tokens, n_embd
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_tokens * n_embd))

    def forward(self, images):
        return self.net(images).view(-1, self.num_tokens, self.n_embd)    # (B, P, C)


CAPTION = "shows a {} ."                 # what follows the image; {} is the digit word
NAMED_CAPTION = ". it shows a {} ."      # the image in the place of the digit word of a describe_first corpus


def caption_tokens(labels, template=CAPTION):
    """Captions (what follows the image, e.g. 'shows a <digit> .') as (B, T) tokens for digit labels (B,)."""
    return torch.stack([encode(template.format(DIGITS[int(c)])) for c in labels])


def caption_loss(lm, vision, images, labels, template=CAPTION):
    """Cross-entropy of the caption given the visual prefix (only the caption's tokens are scored)."""
    caps = caption_tokens(labels, template)                                # (B, T)
    prefix = vision(images)                                                # (B, P, C)
    P = prefix.shape[1]
    targets = torch.full((len(caps), P + caps.shape[1]), -100, dtype=torch.int64)
    targets[:, P - 1:-1] = caps
    _, loss = lm(caps, targets, prefix=prefix)
    return loss


def train_captioner(lm, vision, images, labels, num_steps=400, batch_size=64, lr=3e-3, lm_lr=None,
                    generator=None, desc="captioning", template=CAPTION):
    """Train `vision` (and the LM too when lm_lr is given; else the LM is frozen) to caption; returns history."""
    groups = [{"params": vision.parameters(), "lr": lr}]
    if lm_lr is not None:
        groups.append({"params": lm.parameters(), "lr": lm_lr})
    else:
        for p in lm.parameters():
            p.requires_grad_(False)
    opt = torch.optim.Adam(groups)
    history = {"loss": []}
    for _ in progress(range(num_steps), desc=desc):
        idx = torch.randint(len(images), (batch_size,), generator=generator)
        loss = caption_loss(lm, vision, images[idx], labels[idx], template)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["loss"].append(loss.item())
    return history


@torch.no_grad()
def generate_captions(lm, vision, images, max_new_tokens=None, template=CAPTION):
    """Greedy captions (B, max_new_tokens, by default the template's length) from the visual prefix alone."""
    max_new_tokens = max_new_tokens or len(template.split())
    prefix = vision(images)
    out = torch.empty(len(images), 0, dtype=torch.int64)
    for _ in range(max_new_tokens):
        logits, _ = lm(out, prefix=prefix)
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return out


def _fewshot_prompts(lm, vision, images, labels, n_way, num_episodes, generator, use_words):
    """Embedded prompts '[key] name . ... [query key]' (E, L, C), the right name ids (E,), the names (E, N)."""
    by_class = [torch.nonzero(labels == c).flatten() for c in range(10)]
    prompts, answers, names = [], [], []
    dot = lm.tok_emb(encode("."))                                           # (1, C)
    for _ in range(num_episodes):
        classes = torch.randperm(10, generator=generator)[:n_way]
        name_ids = encode(" ".join(NAMES))[torch.randperm(len(NAMES), generator=generator)[:n_way]]
        parts = []
        picks = [by_class[c][torch.randperm(len(by_class[c]), generator=generator)[:2]] for c in classes]
        target = int(torch.randint(n_way, (1,), generator=generator))
        keys = [p[0] for p in picks] + [picks[target][1]]
        if use_words:
            key_emb = lm.tok_emb(encode(" ".join(DIGITS[int(labels[k])] for k in keys))).unsqueeze(1)
        else:
            key_emb = vision(images[torch.stack(keys)])                     # (N+1, P, C)
        for i in range(n_way):
            parts += [key_emb[i], lm.tok_emb(name_ids[i:i + 1]), dot]
        parts.append(key_emb[n_way])
        prompts.append(torch.cat(parts))
        answers.append(name_ids[target])
        names.append(name_ids)
    return torch.stack(prompts), torch.stack(answers), torch.stack(names)


@torch.no_grad()
def fewshot_naming(lm, vision, images, labels, n_way=2, num_episodes=500, generator=None, use_words=False):
    """Name a query by in-context binding ('[img] dax . [img] wug . [img] →'): open-ended and forced-choice
    accuracy over episodes; use_words=True puts the digit words in place of the images (a text control)."""
    if not 2 <= n_way <= min(len(NAMES), 10):
        raise ValueError(f"n_way must be between 2 and {min(len(NAMES), 10)}, got {n_way}")
    prompts, answers, names = _fewshot_prompts(lm, vision, images, labels, n_way, num_episodes, generator, use_words)
    logits, _ = lm.forward_embeddings(prompts)
    last = logits[:, -1]                                                   # (E, V)
    top = last.argmax(-1)
    forced = names.gather(1, last.gather(1, names).argmax(-1, keepdim=True)).squeeze(1)
    forced_correct, open_correct = forced == answers, top == answers
    p = forced_correct.float().mean().item()
    return {"open_ended": open_correct.float().mean().item(), "forced_choice": p,
            "forced_correct": forced_correct, "open_correct": open_correct,
            "forced_choice_ci": 1.96 * (p * (1 - p) / num_episodes) ** 0.5, "chance": 1.0 / n_way,
            "most_common_word": VOCAB[int(torch.mode(top).values)]}


@torch.no_grad()
def nearest_words(lm, vision, images):
    """For each image, the vocabulary word whose LM input embedding is closest (cosine) to its first prefix
    embedding: (B,) word ids."""
    prefix = F.normalize(vision(images)[:, 0], dim=-1)                     # (B, C)
    return (prefix @ F.normalize(lm.tok_emb.weight, dim=-1).T).argmax(-1)
