"""Chapter 8's experiments (a memory that compresses): full attention, Perceiver AR and MEGABYTE
(:mod:`dltoolbox.memory`) at equal parameter count on long byte windows: a long-range recall task, one training
run per job, what a training step costs as the window grows, and what shrinking Perceiver AR's latents costs.

The recall task: every window of T bytes (T + 1 with its last target) reads

    key=dacb <filler: English text from the Devil's Dictionary> key?dacb

A key of `key_len` letters drawn from the first `letters` lowercase ones is stated at bytes 4.. and must be
repeated as the window's last bytes, so the recall positions are the last `key_len` predictions, which every
model makes (Perceiver AR predicts only its last N). Training, validation and test filler come from disjoint
parts of the text (the first 80%, the next 10%, the last 10%), and the test windows are drawn from a fixed
seed, so every model and every seed is scored on the same windows.

Two scores, one forward pass: recall, the fraction of key bytes predicted right (argmax) at the recall
positions; and bits per filler byte among each window's last `score_last` predictions (marker and key bytes
left out), the rule of :func:`dltoolbox.memory.bits_per_byte` (the same bytes for every model, each read
from at least T − score_last + 1 bytes) applied to the recall windows rather than to a plain text stream:
a model trained on the recall layout always expects " key?" at the end of a window, so plain text scored
at those positions would measure the layout, not the language.
"""
import math
import re
import time
from dataclasses import fields
from functools import lru_cache

import torch

from .. import lm, memory, ngram
from ..attention import fit_exponent
from ..compare import count_parameters

# --- the recall task --------------------------------------------------------------------------------------

KEY_MARK, RECALL_MARK = b"key=", b" key?"           # the key is stated after one, repeated after the other
SPLITS = {"train": (0.0, 0.8), "valid": (0.8, 0.9), "test": (0.9, 1.0)}  # the filler text's disjoint parts
EVAL_SEEDS = {"valid": 10_001, "test": 10_002}       # the scored windows: the same for every model and seed
TASK = dict(key_len=4, letters=4)  # a key of 4 letters from a..d: with all 26 no model recalled in 2,000-5,000 steps


@lru_cache(maxsize=None)
def filler_text(split):
    """One part of the Devil's Dictionary, whitespace runs made single spaces, as a LongTensor of bytes."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    text = re.sub(r"\s+", " ", ngram.load_corpus("devil")).encode("ascii")
    low, high = (round(f * len(text)) for f in SPLITS[split])
    return torch.tensor(list(text[low:high]), dtype=torch.long)


def layout(window, key_len=TASK["key_len"]):
    """Where each part sits in an example of window + 1 bytes (targets[:, t] is byte t + 1): ranges of byte
    positions {"key", "filler", "recall"}; the recall is the last key_len bytes."""
    start = len(KEY_MARK)
    filler = range(start + key_len + 1, window + 1 - len(RECALL_MARK) - key_len)
    if key_len < 1 or len(filler) < 1:
        raise ValueError(f"a window of {window} bytes has no room for a key of {key_len} and filler")
    return {"key": range(start, start + key_len), "filler": filler, "recall": range(window + 1 - key_len, window + 1)}


def recall_stream(batch_size, window, split="train", seed=0, key_len=TASK["key_len"], letters=TASK["letters"]):
    """A batcher for :func:`dltoolbox.lm.fit`: each call draws `batch_size` fresh recall windows, (X, Y) each
    (B, window) with Y the bytes after X, from a generator seeded with `seed`."""
    if not 1 <= letters <= 26:
        raise ValueError(f"letters must be in 1..26, got {letters}")
    parts, text = layout(window, key_len), filler_text(split)
    n_filler = len(parts["filler"])
    if len(text) < n_filler:
        raise ValueError(f"the {split} text has {len(text)} bytes, fewer than the {n_filler} of filler a window needs")
    g = torch.Generator().manual_seed(seed)
    head = torch.tensor(list(KEY_MARK), dtype=torch.long)
    space, tail = torch.tensor([ord(" ")]), torch.tensor(list(RECALL_MARK), dtype=torch.long)

    def batches():
        B = batch_size
        keys = ord("a") + torch.randint(letters, (B, key_len), generator=g)                # (B, k)
        starts = torch.randint(len(text) - n_filler + 1, (B, 1), generator=g)
        filler = text[starts + torch.arange(n_filler)]                                      # (B, F)
        seq = torch.cat([head.expand(B, -1), keys, space.expand(B, 1), filler, tail.expand(B, -1), keys], dim=1)
        return seq[:, :-1], seq[:, 1:]                                                      # (B, T), (B, T)
    return batches


def recall_examples(n, window, split="test", seed=None, key_len=TASK["key_len"], letters=TASK["letters"]):
    """`n` recall windows (X, Y), the same on every call; seed None: the split's own (EVAL_SEEDS)."""
    seed = EVAL_SEEDS.get(split, 0) if seed is None else seed
    return recall_stream(n, window, split, seed, key_len, letters)()


@torch.no_grad()
def score(model, X, Y, key_len=TASK["key_len"], score_last=64, chunk=64):
    """Recall and filler bits of a model on recall windows X, Y (B, T): {"recall" (fraction of key bytes right),
    "recall_items" (per window), "recall_bits" (bits per key byte), "bits" (bits per filler byte among each
    window's last `score_last` predictions)}. The model's training mode is restored afterwards."""
    T = X.shape[1]
    if not 1 <= key_len <= score_last <= T:
        raise ValueError(f"need 1 <= key_len <= score_last <= the window {T}, got {key_len}, {score_last}")
    parts = layout(T, key_len)
    scored = torch.tensor([t + 1 in parts["filler"] for t in range(T - score_last, T)])  # targets T-last..T-1
    if not scored.any():
        raise ValueError(f"the last {score_last} predictions hold no filler byte (the recall marker and key take "
                         f"{len(RECALL_MARK) + key_len}): score_last must be larger")
    was_training, hits, key_nats, nats = model.training, [], 0.0, 0.0
    model.eval()
    try:
        for x, y in zip(X.split(chunk), Y.split(chunk)):
            logits, _ = model(x)                                                            # (b, P, V): last P
            if logits.shape[1] < score_last:
                raise ValueError(f"the model predicts only its last {logits.shape[1]} positions, "
                                 f"fewer than score_last={score_last}")
            logits, y = logits[:, -score_last:], y[:, -score_last:]                         # (b, last, V), (b, last)
            hits.append((logits[:, -key_len:].argmax(-1) == y[:, -key_len:]).float().mean(1))
            key_nats += lm.next_token_loss(logits[:, -key_len:], y[:, -key_len:]).item() * len(x)
            nats += lm.next_token_loss(logits[:, scored], y[:, scored]).item() * len(x)
    finally:
        model.train(was_training)
    items = torch.cat(hits)
    return {"recall": items.mean().item(), "recall_items": items.tolist(),
            "recall_bits": lm.bits(key_nats / len(X)), "bits": lm.bits(nats / len(X))}


# --- one training run ----------------------------------------------------------------------------------------

# A job's defaults. Measured in exploratory runs before the comparison, none of them stored (one seed, T = 256, batch 8, one thread, 2-core CPU shared with other training):
# a step takes about 0.12 s (full), 0.025-0.03 s (Perceiver AR), 0.03-0.04 s (MEGABYTE); recall of the
# default key reached 1.0 by step 750 (Perceiver AR, lr 1e-3 or 3e-3) and 1,750 (full, lr 3e-3; none by 2,000 at
# 1e-3); MEGABYTE with P = 8 stayed at chance through 8,000 steps (lr 3e-4, 1e-3), with P = 4 (the default) it
# reached 1.0 by 1,000.
RUN = dict(window=256, batch_size=8, warmup=50, weight_decay=0.01, clip=1.0, on="test", n_eval=256,
           score_last=64, checkpoint_every=0, n_checkpoint=128, **TASK)
REQUIRED = ("kind", "seed", "lr", "steps")


def _sizes(kind, job):
    cfg_fields = {f.name for f in fields(memory.config_for(kind, 256))} - {"block_size"}
    return {k: v for k, v in job.items() if k in cfg_fields}


def predicted_per_window(cfg, window):
    """How many positions of a window the model predicts (and trains on): Perceiver AR's N, else all of them."""
    return cfg.n_latent if isinstance(cfg, memory.PerceiverARConfig) else window


def train_flops(cfg, window, batch_size, steps):
    """Training FLOPs of a run: 3 × forward FLOPs (the backward pass costs about twice the forward)."""
    per_window = memory.flops_per_byte(cfg, window)["total"] * predicted_per_window(cfg, window)
    return 3 * per_window * batch_size * steps


def steps_for(kind, flops, window=RUN["window"], batch_size=RUN["batch_size"], **sizes):
    """The steps that spend `flops` training FLOPs on a model of `kind`: the equal-compute budget."""
    cfg = memory.config_for(kind, window, **sizes)
    return max(1, round(flops / train_flops(cfg, window, batch_size, 1)))


def run(job):
    """Train one model on the recall task (one thread) and score it on the job's split ("on": test or valid).

    job: {"kind", "seed", "lr", "steps"} and optionally RUN's keys and size overrides of the kind's config
    (e.g. "n_latent"). Returns {"job", "bits", "recall", "recall_items", "recall_bits", "train_seconds",
    "parameters", "flops_per_byte" (forward, per predicted byte), "train_flops", "loss" (the last 50 steps'
    mean), "curve" (every `checkpoint_every` steps: recall on validation windows), "history" (what a stored
    run keeps: the training loss averaged over each 50 steps, the curve and the training seconds), "state"
    (the trained weights)}. FloatingPointError if the loss diverged.
    """
    torch.set_num_threads(1)
    missing = [k for k in REQUIRED if k not in job]
    if missing:
        raise ValueError(f"the job lacks {missing}")
    kind, o = job["kind"], {**RUN, **job}
    sizes = _sizes(kind, job)
    unknown = set(job) - set(REQUIRED) - set(RUN) - set(sizes)
    if unknown:
        raise ValueError(f"unknown job keys {sorted(unknown)}")
    T, task = o["window"], {k: o[k] for k in TASK}
    cfg = memory.config_for(kind, T, **sizes)
    model = memory.build(cfg, seed=job["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=job["lr"], weight_decay=o["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(o["warmup"], 1)))
    batches = recall_stream(o["batch_size"], T, "train", seed=1000 + job["seed"], **task)
    probe = recall_examples(o["n_checkpoint"], T, "valid", **task)
    curve, clock = {"step": [], "recall": [], "recall_bits": []}, {"eval": 0.0}

    def checkpoint(step, _):
        if o["checkpoint_every"] and step % o["checkpoint_every"] == 0:
            now = time.perf_counter()
            s = score(model, *probe, o["key_len"], o["score_last"])
            curve["step"].append(step)
            curve["recall"].append(round(s["recall"], 4))
            curve["recall_bits"].append(round(s["recall_bits"], 4))
            clock["eval"] += time.perf_counter() - now

    start = time.perf_counter()
    losses = lm.fit(model, batches, opt, job["steps"], sched, clip=o["clip"], evaluate=checkpoint,
                    desc=f"{kind}, seed {job['seed']}")
    seconds = time.perf_counter() - start - clock["eval"]
    if not math.isfinite(losses[-1]):
        raise FloatingPointError(f"{kind}, seed {job['seed']}: the loss diverged")
    scores = score(model, *recall_examples(o["n_eval"], T, o["on"], **task), o["key_len"], o["score_last"])
    history = {"loss_per_50": [sum(losses[i:i + 50]) / len(losses[i:i + 50]) for i in range(0, len(losses), 50)],
               "curve": curve, "train_seconds": seconds}
    return {"job": job, **scores, "train_seconds": seconds,
            "parameters": count_parameters(model),
            "flops_per_byte": memory.flops_per_byte(cfg, T)["total"],
            "train_flops": train_flops(cfg, T, o["batch_size"], job["steps"]),
            "loss": sum(losses[-50:]) / len(losses[-50:]), "curve": curve, "history": history,
            "state": {name: t.clone() for name, t in model.state_dict().items()}}


def model_of(result):
    """The trained model of a run (or a stored run: its "job" and "state"), in evaluation mode."""
    job = result["job"]
    cfg = memory.config_for(job["kind"], job.get("window", RUN["window"]), **_sizes(job["kind"], job))
    model = memory.build(cfg, seed=job["seed"])
    model.load_state_dict(result["state"])
    return model.eval()


def rescore(result, on="test", n_eval=None, score_last=None):
    """A run's scores (:func:`score`) computed again from its weights, on the `on` split's recall windows (its
    job's n_eval and score_last unless given): what the notebook reports from a stored run."""
    o = {**RUN, **result["job"]}
    task = {k: o[k] for k in TASK}
    X, Y = recall_examples(n_eval or o["n_eval"], o["window"], on, **task)
    return score(model_of(result), X, Y, o["key_len"], score_last or o["score_last"])


def equal_compute_jobs(lrs, full_steps, seeds=(0, 1, 2, 3), **job):
    """The headline comparison's jobs: every kind at its chosen learning rate (`lrs`: kind -> lr), each given the
    training FLOPs of `full_steps` steps of full attention (:func:`steps_for`), on the same seeds."""
    o = {**RUN, **job}
    flops = train_flops(memory.config_for("full", o["window"]), o["window"], o["batch_size"], full_steps)
    return [{**job, "kind": kind, "seed": s, "lr": lrs[kind],
             "steps": steps_for(kind, flops, o["window"], o["batch_size"])} for kind in memory.KINDS for s in seeds]


LR_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
FULL_STEPS = 2000          # the equal-compute budget: the training FLOPs of 2,000 steps of full attention
STORED_SEEDS = (0, 1, 2, 3)
CURVE_EVERY = 250          # the stored runs' recall on validation windows, every this many steps
# Perceiver AR's latent arrays, the default first: every one must exceed the recall marker and key (9 bytes for a
# 4-byte key), or it would predict, and so train on, nothing but the marker and the key, no language at all
LATENTS = (64, 32, 16)


def _sweep_run(job):
    """A sweep's run: as :func:`run`, but a diverged run is a row with infinite bits (and no weights), not an
    error that stops the sweep."""
    try:
        result = run(job)
    except FloatingPointError:
        return {"job": job, "recall": 0.0, "recall_bits": math.inf, "bits": math.inf, "train_seconds": math.nan,
                "diverged": True}
    return {**{k: v for k, v in result.items() if k not in ("state", "history")}, "diverged": False}


def sweep(lrs=LR_GRID, full_steps=FULL_STEPS, seeds=(100,), processes=2, **job):
    """Each kind's learning rate, chosen on validation windows by recall bits: the same grid, seeds and
    training FLOPs for every kind (:func:`equal_compute_jobs`), in the form of
    :mod:`dltoolbox.experiments.sweeps` (register it there to write the table)."""
    from ..compare import run_parallel

    jobs = [j for lr in lrs for j in equal_compute_jobs(dict.fromkeys(memory.KINDS, lr), full_steps, seeds,
                                                          **job, on="valid")]
    rows = [{"kind": j["kind"], "lr": j["lr"], "seed": j["seed"], "steps": j["steps"],
             "valid_recall": round(r["recall"], 4), "valid_recall_bits": round(r["recall_bits"], 4),
             "valid_bits": round(r["bits"], 4), "train_seconds": round(r["train_seconds"], 1),
             "diverged": r["diverged"]}
            for j, r in zip(jobs, run_parallel(_sweep_run, jobs, processes, desc="learning rates"))]
    config = {k: v for k, v in {**RUN, **job}.items() if k != "on"}
    return {"rows": rows, "settings": ["lr"], "metric": "valid_recall_bits", "goal": "min", "arm": "kind",
            "config": {**config, "full_steps": full_steps, "seeds": list(seeds)}}


SWEEP_TABLE = "chapters/08_bytes/memory_sweep.json"


def stored_jobs(seeds=STORED_SEEDS, table=SWEEP_TABLE):
    """The notebook's runs: every kind at the learning rate the sweep chose for it (`table`), each given the
    training FLOPs of FULL_STEPS steps of full attention, on STORED_SEEDS, scored on the test windows; then
    Perceiver AR again with each smaller latent array of LATENTS, the same learning rate and steps (compression's
    price, :func:`latent_scores`). `python -m dltoolbox.experiments.stored memory` stores them."""
    from ..locations import ROOT
    from . import sweeps

    picks = sweeps.chosen(ROOT / table)
    jobs = equal_compute_jobs({kind: picks[kind]["lr"] for kind in memory.KINDS}, FULL_STEPS, seeds,
                              checkpoint_every=CURVE_EVERY)
    smaller = [{**job, "n_latent": n, "score_last": n} for n in LATENTS[1:] for job in jobs
               if job["kind"] == "perceiver_ar"]  # each scored on all it predicts; latent_scores evens them out
    return jobs + smaller


def latent_scores(results, on="test"):
    """Compression's price, from the stored runs: Perceiver AR's recall and filler bits for each size of its
    latent array (LATENTS), every run trained the same steps and scored again on the same bytes (score_last =
    the smallest N, so every array predicts them). Returns {"n_latent", "recall" and "bits": one list over seeds
    per N, "score_last"}."""
    last = min(LATENTS)
    by_n = {}
    for r in results:
        if r["job"]["kind"] == "perceiver_ar":
            by_n.setdefault(r["job"].get("n_latent", memory.PerceiverARConfig.n_latent), []).append(r)
    if sorted(by_n, reverse=True) != list(LATENTS):
        raise ValueError(f"the runs hold Perceiver AR with latent arrays {sorted(by_n, reverse=True)}, not {list(LATENTS)}")
    scores = {n: [rescore(r, on, score_last=last) for r in by_n[n]] for n in LATENTS}
    return {"n_latent": list(LATENTS), "recall": [[s["recall"] for s in scores[n]] for n in LATENTS],
            "bits": [[s["bits"] for s in scores[n]] for n in LATENTS], "score_last": last}


# --- what a training step costs as the window grows ----------------------------------------------------------

# up to 2,048 bytes: at 4,096 full attention's step keeps about a gigabyte of activations and the process
# peaks near 2.4 GB, more than a laptop's notebook should ask for
COST_WINDOWS = (64, 128, 256, 512, 1024, 2048)
LONG_CALL = 1.0  # seconds: a first call this long is the measurement; shorter ones are warm-ups


def saved_bytes(model, X, Y, step=None):
    """The bytes of activations a training step keeps for its backward pass (each storage once, the weights
    not counted), counted as autograd saves them: what grows with the window in a step's peak memory.
    `step(model, X, Y)` runs the step (default: the forward pass alone).

    Shapes alone decide it, so it is exact on every machine, unlike a profiler's or the allocator's peak; the
    bytes of the score matrices alone (chapter 4's attention_cost) would miss the per-position activations
    that dominate the compressed models. Measured beside it, one full-attention step at T = 4096 raised the
    process's peak RSS by 1.8 times these bytes (backward's own temporaries): a lower bound on the peak."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        (step or (lambda m, x, y: m(x, y)))(model, X, Y)
    return sum(seen.values())


def _step(model, X, Y):
    model.zero_grad(set_to_none=True)
    model(X, Y)[1].backward()


def step_cost(model, X, Y, repeats=3):
    """(seconds, saved bytes) of one training step, forward and backward: the first call counts the saved
    bytes; it is the timing too where it took LONG_CALL seconds or more, else the best of `repeats` more."""
    start = time.perf_counter()
    nbytes = saved_bytes(model, X, Y, _step)
    best = time.perf_counter() - start
    if best < LONG_CALL:
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            _step(model, X, Y)
            best = min(best, time.perf_counter() - start)
    return best, nbytes


def cost(kinds=memory.KINDS, windows=COST_WINDOWS, batch_size=1, repeats=3, seed=0, sizes=None):
    """Each kind's training step at each window, one thread (:func:`step_cost`: seconds, activation bytes) and
    its FLOPs (3 × forward, counted), at the default sizes (`sizes`: kind -> overrides). Returns {"window":
    [...], kind: {"seconds", "saved_bytes", "flops": [...]}, "summary": :func:`summarise`}."""
    windows = list(windows)
    if not windows or windows != sorted(set(windows)) or min(windows) < 1:
        raise ValueError(f"windows must be increasing positive ints, got {windows}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(seed)
    table = {"window": windows}
    try:
        for kind in kinds:
            row = {"seconds": [], "saved_bytes": [], "flops": []}
            for T in windows:
                cfg = memory.config_for(kind, T, **(sizes or {}).get(kind, {}))
                X, Y = torch.randint(256, (2, batch_size, T), generator=g)
                seconds, nbytes = step_cost(memory.build(cfg, seed), X, Y, repeats=repeats)
                row["seconds"].append(seconds)
                row["saved_bytes"].append(nbytes)
                row["flops"].append(train_flops(cfg, T, batch_size, 1))
            table[kind] = row
    finally:
        torch.set_num_threads(threads)
    table["summary"] = summarise(table)
    return table


def growth_region(lengths, values, factor=2.0):
    """The indices, from the cheapest length on, whose cost is at least `factor` times the cheapest: where the
    work that grows with the length outweighs a fixed cost per call (at most the cheapest cost) factor − 1 to
    one, so that a fitted exponent measures that work (chapter 4's :func:`dltoolbox.attention.quadratic_region`
    asks the same of the time per pair). [] where no cost reaches it."""
    if len(lengths) != len(values) or list(lengths) != sorted(set(lengths)) or min(values) <= 0:
        raise ValueError("need increasing lengths and as many positive values")
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    cheapest = min(range(len(values)), key=values.__getitem__)
    return [i for i in range(cheapest, len(values)) if values[i] >= factor * values[cheapest]]


def crossover(lengths, costs, baseline):
    """The length from which on `costs` stays below `baseline`, interpolated linearly in log-log between the
    last length where it is not below and the next; None where it is not below at the longest length;
    lengths[0] where it is below at every length (the crossing lies at or before it)."""
    if not len(lengths) == len(costs) == len(baseline) or min(*costs, *baseline) <= 0:
        raise ValueError("need as many positive costs and baseline costs as lengths")
    r = [math.log(c / b) for c, b in zip(costs, baseline)]
    if r[-1] >= 0:
        return None
    above = [i for i, v in enumerate(r) if v >= 0]
    if not above:
        return float(lengths[0])
    i = above[-1]
    x0, x1 = math.log(lengths[i]), math.log(lengths[i + 1])
    return math.exp(x0 + r[i] / (r[i] - r[i + 1]) * (x1 - x0))


def summarise(table, factor=2.0, baseline="full"):
    """For each kind and measure: the exponent fitted over its :func:`growth_region` ("region", "exponent",
    None where the region has fewer than two windows), the slope between the two longest windows
    ("end_slope"), and against `baseline` the window from which it is cheaper ("crossover", None for the
    baseline) and whether it is cheaper already at the shortest ("cheaper_at_shortest")."""
    windows, out = table["window"], {}
    for kind in (k for k in table if k not in ("window", "summary")):
        out[kind] = {}
        for measure, values in table[kind].items():
            region = growth_region(windows, values, factor)
            other = table[baseline][measure] if baseline in table and kind != baseline else None
            out[kind][measure] = {
                "region": [windows[i] for i in region],
                "exponent": (fit_exponent([windows[i] for i in region], [values[i] for i in region])
                             if len(region) > 1 else None),
                "end_slope": fit_exponent(windows[-2:], values[-2:]) if len(windows) > 1 else None,
                "crossover": None if other is None else crossover(windows, values, other),
                "cheaper_at_shortest": None if other is None else values[0] < other[0]}
    return out
