"""A small transformer encoder-decoder written out from torch.nn pieces (Vaswani et al. 2017, pre-norm).

Word order enters either as sinusoidal absolute position codes added to the embeddings (Vaswani et al.),
or as ALiBi (Press et al. 2022): no position code at all, and a penalty on each self-attention score that
grows with the distance between query and key, so that nothing depends on absolute positions.
"""
import math
import time

import torch
from torch import nn

from .attention import causal_mask, padding_mask, scaled_dot_product_attention


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


# --- Vaswani et al. in miniature, fairly: each model's recipe chosen on validation, the same training time ---

ARMS = ("LSTM + attention", "transformer", "transformer (ALiBi)")
MODEL = dict(num_hiddens=64, num_heads=4, num_layers=2, ffn_hiddens=128)
# The same training time for every arm on a 2-core CPU, two runs at a time (the sweep table's train_seconds:
# 21-25 s for 400 LSTM-with-attention steps of batch 64, 21-29 s for 500 transformer steps).
STEPS = {"LSTM + attention": 400, "transformer": 500, "transformer (ALiBi)": 500}
BATCH_SIZE = 64
SWEEP_GRID = {"lr": (1e-3, 3e-3, 1e-2, 3e-2), "schedule": ("constant", "warmup_linear")}
SWEEP_SEEDS = (100,)  # apart from the notebook's seeds
# The second stage of the recipe search (python -m dltoolbox.experiments.sweeps transformer_recipe): from each arm's
# first-stage choice, one setting at a time moved to each value below; the same settings for every arm.
RECIPE_DEFAULTS = {"beta2": 0.999, "warmup_fraction": 0.05, "label_smoothing": 0.0}
# warm-up 0.4 and label smoothing 0.3 were added when the first grid's 0.2 was a choice at its edge
RECIPE_GRID = {"beta2": (0.98, 0.9999), "warmup_fraction": (0.0, 0.2, 0.4), "label_smoothing": (0.1, 0.2, 0.3)}
RECIPE_LIMITS = {"warmup_fraction": [0.0, None], "label_smoothing": [0.0, None]}  # nothing lies below 0
CHECKPOINT_EVERY = {"sweep": 100, "long": 250}  # steps between validation checkpoints (learning curves)
LONG_STEPS = 3000  # every arm's chosen recipe trained six times longer (python -m dltoolbox.experiments.sweeps transformer_long)
LONG_SEEDS = (0, 1, 2, 3)  # the notebook's seeds


def build_arm(arm, seed=0, device="cpu"):
    """A fresh model of one arm of the comparison (ARMS) of the chapter's size."""
    from . import attention, translation

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {ARMS}")
    if arm == "LSTM + attention":
        return attention.build("attention", seed=seed, device=device)
    return build_transformer(translation.source_vocab(), translation.target_vocab(), seed=seed, device=device,
                             position="alibi" if arm.endswith("(ALiBi)") else "sinusoidal", **MODEL)


def run(job):
    """Train one arm with one setting and seed on chapter 4's data; evaluate it on validation or test.

    job: {"arm", "seed", "lr", "schedule", "on": "valid" | "test"}, optionally "steps" (default STEPS[arm]),
    the RECIPE_DEFAULTS keys (Adam's beta2, the warm-up's share of the steps, label smoothing) and "checkpoint_every" (validation exact match every so many steps: the learning curve). "test" scores
    the test pairs followed by the longer ones. Returns {"job", "history" (loss, lr), "train_seconds" (without
    the checkpoints), "curve", "metrics" (seq2seq.evaluate, with hypotheses), "token_counts" (per pair:
    teacher-forced hits, tokens), "state"}.
    """
    import os

    from . import attention, seq2seq

    os.environ.setdefault("DLTOOLBOX_NO_PROGRESS", "1")
    torch.set_num_threads(1)
    if job.get("on") not in ("valid", "test"):
        raise ValueError(f"job['on'] must be 'valid' or 'test', got {job.get('on')!r}")
    splits, longer = attention.translation_data()
    model = build_arm(job["arm"], job["seed"])
    every = job.get("checkpoint_every")
    curve = {"step": [], "seconds": [], "valid_exact_match": [], "valid_exact_match_23_30": []}
    clock = {"start": time.perf_counter(), "checkpoints": 0.0}

    def checkpoint(step, m):
        if every and step % every == 0:
            now = time.perf_counter()
            ev = seq2seq.evaluate(m, splits["valid"], buckets=attention.BUCKETS)
            curve["step"].append(step)
            curve["seconds"].append(round(now - clock["start"] - clock["checkpoints"], 2))
            curve["valid_exact_match"].append(round(ev["exact_match"], 4))
            curve["valid_exact_match_23_30"].append(round(ev["buckets"]["23-30"]["exact_match"], 4))
            clock["checkpoints"] += time.perf_counter() - now

    history = seq2seq.train(model, splits["train"], num_steps=job.get("steps", STEPS[job["arm"]]),
                            batch_size=BATCH_SIZE, lr=job["lr"], seed=job["seed"], schedule=job["schedule"],
                            callback=checkpoint, **{k: job.get(k, v) for k, v in RECIPE_DEFAULTS.items()})
    train_seconds = time.perf_counter() - clock["start"] - clock["checkpoints"]
    pairs = splits["valid"] if job["on"] == "valid" else splits["test"] + longer
    return {"job": job, "history": {k: history[k] for k in ("loss", "lr", "tokens")}, "train_seconds": train_seconds,
            "curve": curve, "metrics": seq2seq.evaluate(model, pairs, buckets=attention.BUCKETS),
            "token_counts": seq2seq.token_correct(model, pairs),
            "state": {name: t.clone() for name, t in model.state_dict().items()}}


def _row(job, result):
    m = result["metrics"]
    return {"arm": job["arm"], "lr": job["lr"], "schedule": job["schedule"],
            **{k: job.get(k, v) for k, v in RECIPE_DEFAULTS.items()}, "seed": job["seed"],
            "steps": job.get("steps", STEPS[job["arm"]]), "valid_exact_match": round(m["exact_match"], 4),
            "valid_exact_match_23_30": round(m["buckets"]["23-30"]["exact_match"], 4),
            "valid_bleu": round(m["bleu"], 2), "train_seconds": round(result["train_seconds"], 1),
            "curve": result["curve"]}


def sweep(processes=2):
    """Each arm's peak learning rate and schedule, chosen on the 200 validation pairs by exact match
    (python -m dltoolbox.experiments.sweeps transformer): the same grid, seeds and training time for every arm, with
    a validation learning curve per run."""
    from itertools import product

    from .compare import run_parallel

    settings = [dict(zip(SWEEP_GRID, values)) for values in product(*SWEEP_GRID.values())]
    jobs = [{"arm": arm, "seed": seed, "on": "valid", "checkpoint_every": CHECKPOINT_EVERY["sweep"], **s}
            for arm in ARMS for s in settings for seed in SWEEP_SEEDS]
    rows = [_row(job, result) for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="settings"))]
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "valid_exact_match", "goal": "max", "arm": "arm",
            "config": {**MODEL, "steps": STEPS, "batch_size": BATCH_SIZE, "seeds": list(SWEEP_SEEDS),
                       "source": "as written"}}


def sweep_recipe(processes=2, table="chapters/04_attention/transformer_sweep.json"):
    """The recipe search's second stage (python -m dltoolbox.experiments.sweeps transformer_recipe): from each arm's
    choice in the first-stage table, Adam's beta2, the warm-up's length and label smoothing, one at a time,
    on validation (the same settings, seeds and training time for every arm); the table keeps the first
    stage's rows (their recipe settings at RECIPE_DEFAULTS) and chooses from all of them. Run again after
    RECIPE_GRID grows, it trains only the settings the table does not hold yet."""
    import json
    from pathlib import Path

    from .experiments import sweeps
    from .compare import run_parallel

    first = json.loads(Path(table).read_text())
    stage_one = [{**RECIPE_DEFAULTS, **row} for row in first["rows"]
                 if all(row.get(k, v) == v for k, v in RECIPE_DEFAULTS.items())]
    chosen = sweeps.best_settings(stage_one, list(SWEEP_GRID), first["metric"], first["goal"], first["arm"])
    jobs = [{"arm": arm, "seed": seed, "on": "valid", "checkpoint_every": CHECKPOINT_EVERY["sweep"],
             **chosen[arm], **RECIPE_DEFAULTS, key: value}
            for arm in ARMS for key, values in RECIPE_GRID.items() for value in values for seed in SWEEP_SEEDS]
    keys = ("arm", "seed", *SWEEP_GRID, *RECIPE_DEFAULTS)
    done = [row for row in first["rows"] if row not in stage_one and {**RECIPE_DEFAULTS, **row} not in stage_one]
    have = {tuple(row[k] for k in keys) for row in done}
    jobs = [job for job in jobs if tuple(job[k] for k in keys) not in have]
    rows = [_row(job, result) for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="recipes"))]
    return {"rows": stage_one + done + rows, "settings": list(SWEEP_GRID) + list(RECIPE_DEFAULTS),
            "metric": first["metric"], "goal": first["goal"], "arm": "arm", "limits": RECIPE_LIMITS,
            "config": {**first["config"], "recipe_defaults": RECIPE_DEFAULTS, "recipe_grid": RECIPE_GRID}}


def sweep_long(processes=2, table="chapters/04_attention/transformer_sweep.json"):
    """Every arm's chosen recipe given LONG_STEPS steps instead of STEPS, on the notebook's seeds, with
    validation checkpoints; then scored on the test pairs and the longer ones (python -m dltoolbox.experiments.sweeps
    transformer_long): how much training each needs, the arms compared at equal (long) steps, and how each
    extrapolates once it has learned the task.

    Each row keeps, for the sentences longer than any in training, which were translated exactly
    ("longer_correct", a string of 0s and 1s) and the teacher-forced hits and tokens of each (space-separated),
    so that the notebook can compare the two position schemes sentence by sentence.
    """
    from . import attention
    from .experiments import sweeps
    from .compare import run_parallel

    chosen = sweeps.chosen(table)
    jobs = [{"arm": arm, "seed": seed, "on": "test", "steps": LONG_STEPS,
             "checkpoint_every": CHECKPOINT_EVERY["long"], **chosen[arm]} for arm in ARMS for seed in LONG_SEEDS]
    splits, longer = attention.translation_data()
    first_longer = len(splits["test"])  # the test pairs come first, then the longer ones
    refs = [list(t) for _, t in longer]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="long runs")):
        m, counts = result["metrics"], result["token_counts"][first_longer:]
        rows.append({"arm": job["arm"], "lr": job["lr"], "schedule": job["schedule"],
                     **{k: job.get(k, v) for k, v in RECIPE_DEFAULTS.items()}, "seed": job["seed"],
                     "steps": job["steps"], "valid_exact_match": result["curve"]["valid_exact_match"][-1],
                     "valid_exact_match_23_30": result["curve"]["valid_exact_match_23_30"][-1],
                     "train_seconds": round(result["train_seconds"], 1), "curve": result["curve"],
                     "test_exact_match": {b: round(v["exact_match"], 4) for b, v in m["buckets"].items()},
                     "test_bleu": {b: round(v["bleu"], 2) for b, v in m["buckets"].items()},
                     "longer_correct": "".join(str(int(h == r)) for h, r in zip(m["hypotheses"][first_longer:], refs)),
                     "longer_token_hits": " ".join(str(hits) for hits, _ in counts),
                     "longer_tokens": " ".join(str(n) for _, n in counts)})
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "valid_exact_match", "goal": "max", "arm": "arm",
            "config": {**MODEL, "steps": LONG_STEPS, "batch_size": BATCH_SIZE, "seeds": list(LONG_SEEDS),
                       "from": table}}


def longer_per_sentence(row):
    """A `transformer_long` row's sentences longer than any in training, one entry each: exact (0/1) and the
    teacher-forced token accuracy, two float arrays of the same length."""
    import numpy as np

    if not set(row["longer_correct"]) <= {"0", "1"}:
        raise ValueError("a malformed long-run row: longer_correct holds more than 0s and 1s")
    exact = np.array([int(c) for c in row["longer_correct"]], dtype=float)
    hits, tokens = (np.array(row[key].split(), dtype=float) for key in ("longer_token_hits", "longer_tokens"))
    if not len(exact) == len(hits) == len(tokens) or (hits > tokens).any() or (tokens < 1).any():
        raise ValueError("a malformed long-run row: its per-sentence strings disagree")
    return exact, hits / tokens
