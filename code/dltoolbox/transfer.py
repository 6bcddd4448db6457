"""Reusing weights: copy exactly the intended tensors from one network into another, and freeze parts of one."""
import torch
import torch.nn as nn


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


def unfreeze(module):
    """Let gradients flow to every parameter of `module` again; returns how many tensors."""
    params = list(module.parameters())
    for p in params:
        p.requires_grad_(True)
    return len(params)


def count_parameters(module, trainable_only=False):
    """Number of scalar parameters (only the trainable ones if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def trainable(module):
    """The parameters that still require gradients, for building an optimizer over what is not frozen."""
    return [p for p in module.parameters() if p.requires_grad]


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
        """idx (B, T) → logits (B, T, V); loss = mean cross-entropy over non-pad targets (B, T)."""
        out, _ = self.lstm(self.embedding(idx))                              # (B, T, H)
        logits = self.output(out)
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.pad)
        return logits, loss


def decoder_mapping(model, lm, parts=("embedding", "lstm", "output")):
    """{decoder tensor: LM tensor} for the named parts, to copy an LSTMLanguageModel into model.decoder."""
    mapping = {}
    for part in parts:
        mapping |= {f"decoder.{k}": v for k, v in prefix_mapping(lm, part, part).items()}
    return mapping


def train_target_lm(lm, sentences, vocab, num_steps=500, batch_size=64, lr=3e-3, seed=0, desc="target-side LM"):
    """Train on target sentences in the decoder's format (<bos> y → y <eos>); returns {'loss': [...]}."""
    from .progress import progress
    from .seq2seq import pad_batch

    if not sentences:
        raise ValueError("train_target_lm needs some sentences")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(lm.parameters(), lr=lr)
    history = {"loss": []}
    for _ in progress(range(num_steps), desc=desc):
        batch = [vocab.encode(sentences[i]) for i in torch.randint(len(sentences), (batch_size,), generator=g).tolist()]
        y_in, _ = pad_batch([[vocab.bos] + t for t in batch], vocab.pad)
        y_out, _ = pad_batch([t + [vocab.eos] for t in batch], vocab.pad)
        _, loss = lm(y_in, y_out)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        history["loss"].append(loss.item())
    return history


# ---- The low-data experiment: a decoder started from a target-side LM, then fine-tuned on few pairs ----
# The recipe measured here: train an LM on target-side text, copy it into the translator's decoder, then
# fine-tune the whole translator on the parallel pairs with the translation loss only. It is a part of
# Ramachandran et al. (2017), who also pretrain the encoder on source-side text and keep both LM losses
# during fine-tuning.

SIZES = {"2%": 400, "5%": 1000}                                     # parallel pairs, of the 20,000
INITS = ("random", "LM")
SWEEP_LRS = (1e-3, 3e-3, 1e-2)
SWEEP_STEPS = (200, 300, 400)                                       # checkpoints of one 400-step run
SWEEP_SEEDS = (100, 101)                                            # not the notebook's seeds


def lm_init_data(seed=0):
    """The experiment's data: low-data training pairs, validation, test, and target-side text.

    The target-side sentences come from sources outside the validation and test sets.
    """
    from . import translation

    splits = translation.make_splits(seed=seed, n_train=20000, n_valid=500, n_test=1000)
    held_out = translation.sources(splits["valid"]) | translation.sources(splits["test"])
    return {"low_data": {k: splits["train"][:n] for k, n in SIZES.items()}, "valid": splits["valid"],
            "test": splits["test"][:500],
            "monolingual": [" ".join(t) for t in translation.target_sentences(20000, seed=2, exclude=held_out)]}


def target_lm(sentences, vocab, num_steps=400, seed=0, **kwargs):
    """An LSTMLanguageModel (the decoder's shape) built from `seed` and trained on `sentences`; (lm, history)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = LSTMLanguageModel(len(vocab))
    history = train_target_lm(lm, sentences, vocab, num_steps=num_steps, seed=seed + 1, **kwargs)
    lm.eval()
    return lm, history


def score(model, pairs):
    """Greedy-decoding metrics of `model` on `pairs`, with each item's exact match (for paired tests)."""
    from . import seq2seq

    metrics = seq2seq.evaluate(model, pairs)
    correct = [h == list(t) for h, (_, t) in zip(metrics["hypotheses"], pairs)]
    return {"bleu": metrics["bleu"], "exact": metrics["exact_match"], "tokens": metrics["token_accuracy"],
            "correct": correct}


def fine_tune(job):
    """One run: build the translator from job["seed"], copy the LM into its decoder if job["init"] == "LM",
    train it on job["train"] with Adam at job["lr"], and score it on job["eval_pairs"] at each checkpoint.

    Returns {"loss": [...], "scores": {step: score(...)}, "state": the trained weights if job["keep"]}.
    Runs alone in a process (see compare.run_parallel): one thread, no progress bar.
    """
    import os

    from . import seq2seq, translation
    from .progress import DISABLE_ENV_VAR

    if job["init"] not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {job['init']!r}")
    torch.set_num_threads(1)
    torch.manual_seed(job["seed"])
    src_vocab, tgt_vocab = translation.source_vocab(), translation.target_vocab()
    model = seq2seq.build_model(src_vocab, tgt_vocab, seed=job["seed"])
    if job["init"] == "LM":
        lm = LSTMLanguageModel(len(tgt_vocab))
        lm.load_state_dict(job["lm_state"])
        copy_weights(lm, model, decoder_mapping(model, lm))
    checkpoints = sorted(job.get("checkpoints") or [job["steps"]])
    scores = {}

    def at_checkpoint(step, m):
        if step in checkpoints:
            scores[step] = score(m, job["eval_pairs"])

    quiet, os.environ[DISABLE_ENV_VAR] = os.environ.get(DISABLE_ENV_VAR), "1"
    try:
        history = seq2seq.train(model, job["train"], num_steps=checkpoints[-1], batch_size=64, lr=job["lr"],
                                seed=job["seed"], callback=at_checkpoint)
    finally:
        if quiet is None:
            del os.environ[DISABLE_ENV_VAR]
        else:
            os.environ[DISABLE_ENV_VAR] = quiet
    return {"loss": history["loss"], "scores": scores, "state": model.state_dict() if job.get("keep") else None}


def translator_from_state(state):
    """The default seq2seq translator holding the weights `state` (e.g. a kept fine_tune result's)."""
    from . import seq2seq, translation

    model = seq2seq.build_model(translation.source_vocab(), translation.target_vocab())
    model.load_state_dict(state)
    return model.eval()


def lm_init_runs(lm, low_data, eval_pairs, settings, seeds=(0, 1, 2), processes=2, keep=()):
    """Every (size, init, seed) run at its chosen {"lr", "steps"} (`settings` keyed "size init"), in parallel.

    Both inits of a seed share the encoder's initial weights and the batches. Returns
    {(size, init, seed): fine_tune result}; the weights are kept for the sizes in `keep`.
    """
    from .compare import run_parallel

    lm_state = {k: v.detach().clone() for k, v in lm.state_dict().items()}
    keys = [(size, init, seed) for size in low_data for seed in seeds for init in INITS]
    jobs = [{"init": init, "seed": seed, "train": low_data[size], "eval_pairs": eval_pairs, "lm_state": lm_state,
             "keep": size in keep, **settings[f"{size} {init}"]} for size, init, seed in keys]
    return dict(zip(keys, run_parallel(fine_tune, jobs, processes=processes, desc="fine-tuning runs")))


def sweep(processes=2):
    """Learning rate and steps for each (size, init), chosen by validation BLEU over the same grid and seeds."""
    from .translation import target_vocab

    torch.set_num_threads(1)                                        # as in the notebook: the same LM
    data = lm_init_data()
    lm, _ = target_lm(data["monolingual"], target_vocab())
    lm_state = {k: v.detach().clone() for k, v in lm.state_dict().items()}
    keys = [(size, init, lr, seed) for size in SIZES for init in INITS for lr in SWEEP_LRS for seed in SWEEP_SEEDS]
    jobs = [{"init": init, "seed": seed, "lr": lr, "checkpoints": SWEEP_STEPS, "train": data["low_data"][size],
             "eval_pairs": data["valid"], "lm_state": lm_state} for size, init, lr, seed in keys]
    from .compare import run_parallel

    results = run_parallel(fine_tune, jobs, processes=processes, desc="sweep runs")
    rows = [{"arm": f"{size} {init}", "lr": lr, "steps": step, "seed": seed,
             "valid_bleu": round(r["scores"][step]["bleu"], 4), "valid_exact": round(r["scores"][step]["exact"], 4)}
            for (size, init, lr, seed), r in zip(keys, results) for step in SWEEP_STEPS]
    return {"rows": rows, "settings": ["lr", "steps"], "metric": "valid_bleu", "goal": "max", "arm": "arm",
            "config": {"optimizer": "Adam, batch 64, constant rate, clip 1.0", "validation_pairs": len(data["valid"]),
                       "lm": "LSTMLanguageModel, 400 steps on 20,000 target sentences", "seeds": list(SWEEP_SEEDS)}}
