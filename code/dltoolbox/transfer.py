"""Reusing weights: copy exactly the intended tensors from one network into another, and freeze parts of one."""
import torch
import torch.nn as nn

from . import lm


def copy_weights(source, target, mapping):
    """Copy tensors from `source` into `target` by name, {target_name: source_name}; returns the names copied.

    Every name must exist on both sides with the same shape; nothing else in `target` changes.
    """
    src = dict(source.named_parameters()) | dict(source.named_buffers())
    dst = dict(target.named_parameters()) | dict(target.named_buffers())
    if not mapping:
        raise ValueError("mapping is empty: nothing to copy")
    for t_name, s_name in mapping.items():
        if s_name not in src:
            raise ValueError(f"source has no tensor {s_name!r}; it has {sorted(src)[:8]}...")
        if t_name not in dst:
            raise ValueError(f"target has no tensor {t_name!r}; it has {sorted(dst)[:8]}...")
        if src[s_name].shape != dst[t_name].shape:
            raise ValueError(f"shape mismatch: source {s_name!r} {tuple(src[s_name].shape)} vs "
                             f"target {t_name!r} {tuple(dst[t_name].shape)}")
    with torch.no_grad():
        for t_name, s_name in mapping.items():
            dst[t_name].copy_(src[s_name])
    return sorted(mapping)


def prefix_mapping(target, target_prefix, source_prefix):
    """{target_prefix.x: source_prefix.x} for every parameter of `target` under `target_prefix`."""
    names = [n for n, _ in target.named_parameters() if n.startswith(target_prefix + ".")]
    if not names:
        raise ValueError(f"target has no parameters under {target_prefix!r}")
    return {n: source_prefix + n[len(target_prefix):] for n in names}


def freeze(module):
    """Stop gradients to every parameter of `module`; returns how many tensors were frozen."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"freeze needs an nn.Module, got {type(module).__name__}")
    params = list(module.parameters())
    for p in params:
        p.requires_grad_(False)
        p.grad = None
    return len(params)


class LSTMLanguageModel(nn.Module):
    """An LSTM language model whose layers are named like the seq2seq decoder's (embedding, lstm, output),
    so that its weights can be copied into a decoder; forward(idx, targets=None) -> (logits, loss)."""

    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0):
        super().__init__()
        self.pad = pad
        self.embedding = nn.Embedding(vocab_size, num_embed, padding_idx=pad)
        self.lstm = nn.LSTM(num_embed, num_hiddens, num_layers, batch_first=True)
        self.output = nn.Linear(num_hiddens, vocab_size)

    def forward(self, idx, targets=None):
        """idx (B, T) → logits (B, T, V); loss = mean cross-entropy over the targets (B, T) that are not
        padding (the pad id, like lm.IGNORE, is left out)."""
        out, _ = self.lstm(self.embedding(idx))                              # (B, T, H)
        logits = self.output(out)
        return logits, None if targets is None else lm.next_token_loss(logits, targets, pad=self.pad)

    def generate(self, idx, max_new_tokens, temperature=1.0, generator=None):
        """Append `max_new_tokens` sampled ids to idx (B, T), each given all the ids before it
        (:func:`dltoolbox.lm.generate`)."""
        return lm.generate(self, idx, max_new_tokens, temperature, generator)


def decoder_mapping(model, lm, parts=("embedding", "lstm", "output")):
    """{decoder tensor: LM tensor} for the named parts, to copy an LSTMLanguageModel into model.decoder."""
    mapping = {}
    for part in parts:
        mapping |= {f"decoder.{k}": v for k, v in prefix_mapping(lm, part, part).items()}
    return mapping


def train_target_lm(lm_model, sentences, vocab, num_steps=500, batch_size=64, lr=3e-3, seed=0, desc="target-side LM"):
    """Train on target sentences in the decoder's format (<bos> y → y <eos>) with Adam and clipped gradients,
    in the course's loop (:func:`dltoolbox.lm.fit`); returns {'loss': [...]}."""
    from .seq2seq import pad_batch

    if not sentences:
        raise ValueError("train_target_lm needs some sentences")
    g = torch.Generator().manual_seed(seed)

    def next_batch():
        batch = [vocab.encode(sentences[i]) for i in torch.randint(len(sentences), (batch_size,), generator=g).tolist()]
        y_in, _ = pad_batch([[vocab.bos] + t for t in batch], vocab.pad)
        y_out, _ = pad_batch([t + [vocab.eos] for t in batch], vocab.pad)
        return y_in, y_out

    opt = torch.optim.Adam(lm_model.parameters(), lr=lr)
    return {"loss": lm.fit(lm_model, next_batch, opt, num_steps, clip=1.0, desc=desc)}
