"""Chapter 4's experiments: Bahdanau's Figure 2, fairly (chapters/04_attention/attention.ipynb: the
`attention` sweep and the `attention_equal_time` baseline), and Vaswani et al. in miniature
(chapters/04_attention/self_attention.ipynb: the `transformer`, `transformer_recipe` and `transformer_long`
runs), each arm's recipe chosen on validation, seeds in parallel processes."""
import time

import torch

from .. import decoding, seq2seq, transformer
from ..attention import AttentionDecoder

# --- Bahdanau's Figure 2, fairly: each arm's recipe chosen on validation, seeds in parallel processes ---

DATA = dict(seed=0, n_train=20000, n_valid=200, n_test=500, min_len=3, max_len=30)
LONGER = dict(n=200, seed=1)  # test sentences longer than any in training
MODEL = dict(num_embed=48, num_hiddens=96, num_layers=1)
STEPS, BATCH_SIZE = 400, 64  # the same budget for every arm and setting
# The baseline given the attention model's training time: attention trains 400 steps in about 23 s on one
# thread, the model without attention about 8 s (the stored run's budget table), so about 1,150 steps.
EQUAL_TIME_STEPS = 1200
BUCKETS = ((3, 7), (8, 12), (13, 17), (18, 22), (23, 30), (31, 35), (36, 41))
ARMS = ("no attention", "attention")
SWEEP_GRID = {"reverse_source": (False, True), "lr": (3e-3, 1e-2, 3e-2), "schedule": ("constant", "warmup_linear")}
SWEEP_SEEDS = (100,)  # apart from the notebook's seeds 0, 1, 2


def translation_data():
    """(splits, longer): the chapter's train/valid/test pairs and the longer-than-training test pairs."""
    from .. import translation

    splits = translation.make_splits(**DATA)
    return splits, translation.longer_test_set(splits, **LONGER)


def build(arm, seed=0, reverse_source=False, device="cpu"):
    """A fresh model of one arm ("no attention" or "attention") of the chapter's size."""
    from .. import translation

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {ARMS}")
    decoder = AttentionDecoder if arm == "attention" else seq2seq.LSTMDecoder
    return seq2seq.build_model(translation.source_vocab(), translation.target_vocab(), seed=seed, decoder=decoder,
                               reverse_source=reverse_source, device=device, **MODEL)


def run(job):
    """Train one arm with one setting and seed; evaluate it on validation or on the test sentences.

    job: {"arm", "seed", "reverse_source", "lr", "schedule", "on": "valid" | "test"} and optionally "steps"
    (default STEPS); "test" scores the test pairs followed by the longer ones. Returns {"job", "history"
    (loss, lr, seconds, tokens per step), "metrics"
    (decoding.evaluate, with the hypotheses), "state"}.
    """
    torch.set_num_threads(1)
    if job.get("on") not in ("valid", "test"):
        raise ValueError(f"job['on'] must be 'valid' or 'test', got {job.get('on')!r}")
    splits, longer = translation_data()
    model = build(job["arm"], job["seed"], job["reverse_source"])
    history = seq2seq.train(model, splits["train"], num_steps=job.get("steps", STEPS), batch_size=BATCH_SIZE, lr=job["lr"],
                            seed=job["seed"], schedule=job["schedule"], desc=f"{job['arm']}, seed {job['seed']}")
    pairs = splits["valid"] if job["on"] == "valid" else splits["test"] + longer
    return {"job": job, "history": {k: history[k] for k in ("loss", "lr", "seconds", "tokens")},
            "metrics": decoding.evaluate(model, pairs, buckets=BUCKETS),
            "state": {name: t.clone() for name, t in model.state_dict().items()}}


def sweep(processes=2):
    """Each arm's source order, peak learning rate and schedule, chosen on the 200 validation pairs by exact
    match (python -m dltoolbox.experiments.sweeps attention): the same grid, budget and seeds for both arms."""
    from itertools import product

    from ..compare import run_parallel

    settings = [dict(zip(SWEEP_GRID, values)) for values in product(*SWEEP_GRID.values())]
    jobs = [{"arm": arm, "seed": seed, "on": "valid", **s} for arm in ARMS for s in settings for seed in SWEEP_SEEDS]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="attention settings")):
        m = result["metrics"]
        rows.append({"arm": job["arm"], **{k: job[k] for k in SWEEP_GRID}, "seed": job["seed"],
                     "valid_exact_match": round(m["exact_match"], 4), "valid_bleu": round(m["bleu"], 2)})
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "valid_exact_match", "goal": "max", "arm": "arm",
            "config": {**MODEL, "steps": STEPS, "batch_size": BATCH_SIZE, "data": DATA, "seeds": list(SWEEP_SEEDS)}}


def equal_time(processes=2, table="chapters/04_attention/sweep.json", seeds=(0, 1, 2, 3)):
    """The model without attention given the attention model's training time (EQUAL_TIME_STEPS steps), its
    chosen recipe, on the notebook's seeds, scored on the test pairs and the longer ones (python -m
    dltoolbox.experiments.sweeps attention_equal_time): too long to train in the notebook, so a committed table whose
    rows keep which sentences each seed translated exactly ("correct", a string of 0s and 1s in the order
    of the test pairs and then the longer ones), for a paired comparison with the notebook's runs."""
    from . import sweeps
    from ..compare import run_parallel

    chosen = sweeps.chosen(table)["no attention"]
    jobs = [{"arm": "no attention", "seed": seed, "on": "test", "steps": EQUAL_TIME_STEPS, **chosen} for seed in seeds]
    splits, longer = translation_data()
    refs = [list(t) for _, t in splits["test"] + longer]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="equal-time baseline")):
        m = result["metrics"]
        rows.append({"arm": job["arm"], **{k: job[k] for k in SWEEP_GRID}, "seed": job["seed"], "steps": job["steps"],
                     "train_seconds": round(result["history"]["seconds"][-1], 1),
                     "tokens": sum(result["history"]["tokens"]),
                     "test_exact_match": {b: round(v["exact_match"], 4) for b, v in m["buckets"].items()},
                     "correct": "".join(str(int(h == r)) for h, r in zip(m["hypotheses"], refs))})
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "train_seconds", "goal": "min", "arm": "arm",
            "config": {**MODEL, "steps": EQUAL_TIME_STEPS, "batch_size": BATCH_SIZE, "data": DATA, "seeds": list(seeds),
                       "from": table}}


def correct_of(row):
    """An `attention_equal_time` row's per-sentence exact match, a float array (test pairs, then longer ones)."""
    import numpy as np

    if not isinstance(row.get("correct"), str) or set(row["correct"]) - {"0", "1"}:
        raise ValueError("a malformed row: 'correct' must be a string of 0s and 1s")
    return np.array([c == "1" for c in row["correct"]], dtype=float)


# --- Vaswani et al. in miniature, fairly (self_attention.ipynb): each model's recipe chosen on validation,
# the same training time ---

TRANSFORMER_ARMS = ("LSTM + attention", "transformer", "transformer (ALiBi)")
TRANSFORMER_MODEL = dict(num_hiddens=64, num_heads=4, num_layers=2, ffn_hiddens=128)
# The same training time for every arm on a 2-core CPU, two runs at a time (the sweep table's train_seconds:
# 21-25 s for 400 LSTM-with-attention steps of batch 64, 21-29 s for 500 transformer steps).
TRANSFORMER_STEPS = {"LSTM + attention": 400, "transformer": 500, "transformer (ALiBi)": 500}
TRANSFORMER_BATCH_SIZE = 64
TRANSFORMER_SWEEP_GRID = {"lr": (1e-3, 3e-3, 1e-2, 3e-2), "schedule": ("constant", "warmup_linear")}
TRANSFORMER_SWEEP_SEEDS = (100,)  # apart from the notebook's seeds
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
    """A fresh model of one arm of the comparison (TRANSFORMER_ARMS) of the chapter's size."""
    from .. import translation

    if arm not in TRANSFORMER_ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {TRANSFORMER_ARMS}")
    if arm == "LSTM + attention":
        return build("attention", seed=seed, device=device)
    return transformer.build_transformer(translation.source_vocab(), translation.target_vocab(), seed=seed,
                                         device=device, position="alibi" if arm.endswith("(ALiBi)") else "sinusoidal",
                                         **TRANSFORMER_MODEL)


def transformer_run(job):
    """Train one arm with one setting and seed on chapter 4's data; evaluate it on validation or test.

    job: {"arm", "seed", "lr", "schedule", "on": "valid" | "test"}, optionally "steps" (default
    TRANSFORMER_STEPS[arm]), the RECIPE_DEFAULTS keys (Adam's beta2, the warm-up's share of the steps, label smoothing) and "checkpoint_every" (validation exact match every so many steps: the learning curve). "test" scores
    the test pairs followed by the longer ones. Returns {"job", "history" (loss, lr), "train_seconds" (without
    the checkpoints), "curve", "metrics" (decoding.evaluate, with hypotheses), "token_counts" (per pair:
    teacher-forced hits, tokens), "state"}.
    """
    torch.set_num_threads(1)
    if job.get("on") not in ("valid", "test"):
        raise ValueError(f"job['on'] must be 'valid' or 'test', got {job.get('on')!r}")
    splits, longer = translation_data()
    model = build_arm(job["arm"], job["seed"])
    every = job.get("checkpoint_every")
    curve = {"step": [], "seconds": [], "valid_exact_match": [], "valid_exact_match_23_30": []}
    clock = {"start": time.perf_counter(), "checkpoints": 0.0}

    def checkpoint(step, m):
        if every and step % every == 0:
            now = time.perf_counter()
            ev = decoding.evaluate(m, splits["valid"], buckets=BUCKETS)
            curve["step"].append(step)
            curve["seconds"].append(round(now - clock["start"] - clock["checkpoints"], 2))
            curve["valid_exact_match"].append(round(ev["exact_match"], 4))
            curve["valid_exact_match_23_30"].append(round(ev["buckets"]["23-30"]["exact_match"], 4))
            clock["checkpoints"] += time.perf_counter() - now

    history = seq2seq.train(model, splits["train"], num_steps=job.get("steps", TRANSFORMER_STEPS[job["arm"]]),
                            batch_size=TRANSFORMER_BATCH_SIZE, lr=job["lr"], seed=job["seed"],
                            schedule=job["schedule"], callback=checkpoint,
                            **{k: job.get(k, v) for k, v in RECIPE_DEFAULTS.items()})
    train_seconds = time.perf_counter() - clock["start"] - clock["checkpoints"]
    pairs = splits["valid"] if job["on"] == "valid" else splits["test"] + longer
    return {"job": job, "history": {k: history[k] for k in ("loss", "lr", "tokens")}, "train_seconds": train_seconds,
            "curve": curve, "metrics": decoding.evaluate(model, pairs, buckets=BUCKETS),
            "token_counts": decoding.token_correct(model, pairs),
            "state": {name: t.clone() for name, t in model.state_dict().items()}}


def _transformer_row(job, result):
    m = result["metrics"]
    return {"arm": job["arm"], "lr": job["lr"], "schedule": job["schedule"],
            **{k: job.get(k, v) for k, v in RECIPE_DEFAULTS.items()}, "seed": job["seed"],
            "steps": job.get("steps", TRANSFORMER_STEPS[job["arm"]]),
            "valid_exact_match": round(m["exact_match"], 4),
            "valid_exact_match_23_30": round(m["buckets"]["23-30"]["exact_match"], 4),
            "valid_bleu": round(m["bleu"], 2), "train_seconds": round(result["train_seconds"], 1),
            "curve": result["curve"]}


def transformer_sweep(processes=2):
    """Each arm's peak learning rate and schedule, chosen on the 200 validation pairs by exact match
    (python -m dltoolbox.experiments.sweeps transformer): the same grid, seeds and training time for every arm, with
    a validation learning curve per run."""
    from itertools import product

    from ..compare import run_parallel

    settings = [dict(zip(TRANSFORMER_SWEEP_GRID, values)) for values in product(*TRANSFORMER_SWEEP_GRID.values())]
    jobs = [{"arm": arm, "seed": seed, "on": "valid", "checkpoint_every": CHECKPOINT_EVERY["sweep"], **s}
            for arm in TRANSFORMER_ARMS for s in settings for seed in TRANSFORMER_SWEEP_SEEDS]
    rows = [_transformer_row(job, result)
            for job, result in zip(jobs, run_parallel(transformer_run, jobs, processes, desc="settings"))]
    return {"rows": rows, "settings": list(TRANSFORMER_SWEEP_GRID), "metric": "valid_exact_match", "goal": "max",
            "arm": "arm", "config": {**TRANSFORMER_MODEL, "steps": TRANSFORMER_STEPS, "batch_size": TRANSFORMER_BATCH_SIZE,
                                     "seeds": list(TRANSFORMER_SWEEP_SEEDS), "source": "as written"}}


def transformer_recipe(processes=2, table="chapters/04_attention/transformer_sweep.json"):
    """The recipe search's second stage (python -m dltoolbox.experiments.sweeps transformer_recipe): from each arm's
    choice in the first-stage table, Adam's beta2, the warm-up's length and label smoothing, one at a time,
    on validation (the same settings, seeds and training time for every arm); the table keeps the first
    stage's rows (their recipe settings at RECIPE_DEFAULTS) and chooses from all of them. Run again after
    RECIPE_GRID grows, it trains only the settings the table does not hold yet."""
    import json
    from pathlib import Path

    from . import sweeps
    from ..compare import run_parallel

    first = json.loads(Path(table).read_text())
    stage_one = [{**RECIPE_DEFAULTS, **row} for row in first["rows"]
                 if all(row.get(k, v) == v for k, v in RECIPE_DEFAULTS.items())]
    chosen = sweeps.best_settings(stage_one, list(TRANSFORMER_SWEEP_GRID), first["metric"], first["goal"],
                                  first["arm"])
    jobs = [{"arm": arm, "seed": seed, "on": "valid", "checkpoint_every": CHECKPOINT_EVERY["sweep"],
             **chosen[arm], **RECIPE_DEFAULTS, key: value}
            for arm in TRANSFORMER_ARMS for key, values in RECIPE_GRID.items() for value in values
            for seed in TRANSFORMER_SWEEP_SEEDS]
    keys = ("arm", "seed", *TRANSFORMER_SWEEP_GRID, *RECIPE_DEFAULTS)
    done = [row for row in first["rows"] if row not in stage_one and {**RECIPE_DEFAULTS, **row} not in stage_one]
    have = {tuple(row[k] for k in keys) for row in done}
    jobs = [job for job in jobs if tuple(job[k] for k in keys) not in have]
    rows = [_transformer_row(job, result)
            for job, result in zip(jobs, run_parallel(transformer_run, jobs, processes, desc="recipes"))]
    return {"rows": stage_one + done + rows, "settings": list(TRANSFORMER_SWEEP_GRID) + list(RECIPE_DEFAULTS),
            "metric": first["metric"], "goal": first["goal"], "arm": "arm", "limits": RECIPE_LIMITS,
            "config": {**first["config"], "recipe_defaults": RECIPE_DEFAULTS, "recipe_grid": RECIPE_GRID}}


def transformer_long(processes=2, table="chapters/04_attention/transformer_sweep.json"):
    """Every arm's chosen recipe given LONG_STEPS steps instead of TRANSFORMER_STEPS, on the notebook's seeds,
    with validation checkpoints; then scored on the test pairs and the longer ones (python -m dltoolbox.experiments.sweeps
    transformer_long): how much training each needs, the arms compared at equal (long) steps, and how each
    extrapolates once it has learned the task.

    Each row keeps, for the sentences longer than any in training, which were translated exactly
    ("longer_correct", a string of 0s and 1s) and the teacher-forced hits and tokens of each (space-separated),
    so that the notebook can compare the two position schemes sentence by sentence.
    """
    from . import sweeps
    from ..compare import run_parallel

    chosen = sweeps.chosen(table)
    jobs = [{"arm": arm, "seed": seed, "on": "test", "steps": LONG_STEPS,
             "checkpoint_every": CHECKPOINT_EVERY["long"], **chosen[arm]}
            for arm in TRANSFORMER_ARMS for seed in LONG_SEEDS]
    splits, longer = translation_data()
    first_longer = len(splits["test"])  # the test pairs come first, then the longer ones
    refs = [list(t) for _, t in longer]
    rows = []
    for job, result in zip(jobs, run_parallel(transformer_run, jobs, processes, desc="long runs")):
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
    return {"rows": rows, "settings": list(TRANSFORMER_SWEEP_GRID), "metric": "valid_exact_match", "goal": "max",
            "arm": "arm", "config": {**TRANSFORMER_MODEL, "steps": LONG_STEPS, "batch_size": TRANSFORMER_BATCH_SIZE,
                                     "seeds": list(LONG_SEEDS), "from": table}}


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
