"""Chapter 3's experiments (chapters/03_seq2seq/seq2seq.ipynb): the runs of the encoder–decoder on the
chapter's language pair, each source order's learning rate and schedule chosen on validation (the
`seq2seq` sweep), its number of steps (`seq2seq_steps`), the capacity x training grid (`seq2seq_capacity`),
and the notebook's runs at the chosen settings (`python -m dltoolbox.experiments.stored seq2seq`)."""
import time

import torch

from ..decoding import evaluate
from ..locations import ROOT
from ..compare import count_parameters
from ..seq2seq import SCHEDULES, build_model, train

MODEL = dict(num_embed=48, num_hiddens=96)  # one LSTM layer each side
STEPS, BATCH_SIZE = 400, 64  # the first stage of the sweep: the same short budget for every setting
SWEEP_GRID = {"lr": (3e-3, 1e-2, 3e-2), "schedule": SCHEDULES}
SWEEP_SEEDS = (100,)  # apart from the notebook's seeds 0, 1, 2


def run(job):
    """Train one model on chapter 3's data (translation.make_splits(seed=0)) and evaluate it.

    job: {"reverse_source", "seed", "lr", "schedule", "on": "valid" | "test"}, and optionally
    "num_hiddens" and "steps". Returns {"job", "history", "metrics" (evaluate, with hypotheses), "state"}.
    """
    from .. import translation

    torch.set_num_threads(1)
    if job.get("on") not in ("valid", "test"):
        raise ValueError(f"job['on'] must be 'valid' or 'test', got {job.get('on')!r}")
    splits = translation.make_splits(seed=0)
    model = build_model(translation.source_vocab(), translation.target_vocab(), reverse_source=job["reverse_source"],
                        seed=job["seed"], **{**MODEL, "num_hiddens": job.get("num_hiddens", MODEL["num_hiddens"])})
    history = train(model, splits["train"], num_steps=job.get("steps", STEPS), batch_size=BATCH_SIZE, lr=job["lr"],
                    seed=job["seed"], schedule=job["schedule"])
    return {"job": job, "history": history, "metrics": evaluate(model, splits[job["on"]]),
            "state": {name: t.clone() for name, t in model.state_dict().items()}}


def sweep(processes=2):
    """The peak learning rate and schedule of each source order, chosen on the 500 validation pairs by exact
    match (python -m dltoolbox.experiments.sweeps seq2seq): the same grid, budget and seed for both orders."""
    from itertools import product

    from ..compare import run_parallel

    settings = [dict(zip(SWEEP_GRID, values)) for values in product(*SWEEP_GRID.values())]
    jobs = [{"reverse_source": r, "seed": seed, "on": "valid", **s}
            for r in (False, True) for s in settings for seed in SWEEP_SEEDS]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="seq2seq settings")):
        m = result["metrics"]
        rows.append({"source": "reversed" if job["reverse_source"] else "plain", **{k: job[k] for k in SWEEP_GRID},
                     "seed": job["seed"], "valid_exact_match": round(m["exact_match"], 4),
                     "valid_bleu": round(m["bleu"], 2)})
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "valid_exact_match", "goal": "max",
            "arm": "source", "config": {**MODEL, "steps": STEPS, "batch_size": BATCH_SIZE, "seeds": list(SWEEP_SEEDS)}}


STEPS_GRID = (400, 800, 1600, 3200, 6400, 12800, 25600, 51200)  # the second stage: how long each source order trains


def _checkpointed(job):
    """run() of job["steps"] = the largest of job["checkpoints"], scored on job["on"] at every checkpoint.

    With a constant learning rate the run's first n steps are exactly a run of n steps (the same batches,
    the same updates), so one run gives every checkpoint."""
    from .. import translation

    if job["schedule"] != "constant":
        raise ValueError("checkpoints of one run equal separate runs only with a constant learning rate")
    torch.set_num_threads(1)
    splits = translation.make_splits(seed=0)
    model = build_model(translation.source_vocab(), translation.target_vocab(), reverse_source=job["reverse_source"],
                        seed=job["seed"], **MODEL)
    scores, wanted, scoring = {}, set(job["checkpoints"]), [0.0]  # scoring: seconds spent evaluating so far

    def score(steps, model):
        if steps in wanted:
            start = time.perf_counter()
            m = evaluate(model, splits[job["on"]])
            scores[steps] = {"exact_match": m["exact_match"], "bleu": m["bleu"], "scoring": scoring[0]}
            scoring[0] += time.perf_counter() - start

    history = train(model, splits["train"], num_steps=max(wanted), batch_size=BATCH_SIZE, lr=job["lr"],
                    seed=job["seed"], schedule=job["schedule"], callback=score)
    # training seconds to each checkpoint, without the evaluations before it
    return {"job": job, "scores": scores,
            "seconds": {n: history["seconds"][n - 1] - scores[n]["scoring"] for n in wanted}}


def sweep_steps(processes=2, table="chapters/03_seq2seq/sweep.json"):
    """The second stage of the sweep: each source order's number of steps (STEPS_GRID), with the learning
    rate and schedule the first stage chose for it, scored on the validation pairs by exact match
    (python -m dltoolbox.experiments.sweeps seq2seq_steps). Both orders get the same grid and seed."""
    from . import sweeps
    from ..compare import run_parallel

    chosen = sweeps.chosen(ROOT / table)
    jobs = [{"reverse_source": arm == "reversed", "seed": seed, "on": "valid", **chosen[arm],
             "checkpoints": list(STEPS_GRID)} for arm in ("plain", "reversed") for seed in SWEEP_SEEDS]
    rows = []
    for job, result in zip(jobs, run_parallel(_checkpointed, jobs, processes, desc="seq2seq steps")):
        for steps in STEPS_GRID:
            rows.append({"source": "reversed" if job["reverse_source"] else "plain", "steps": steps,
                         "lr": job["lr"], "schedule": job["schedule"], "seed": job["seed"],
                         "valid_exact_match": round(result["scores"][steps]["exact_match"], 4),
                         "valid_bleu": round(result["scores"][steps]["bleu"], 2),
                         "seconds": round(result["seconds"][steps], 1)})
    return {"rows": rows, "settings": ["steps"], "metric": "valid_exact_match", "goal": "max", "arm": "source",
            "config": {**MODEL, "batch_size": BATCH_SIZE, "seeds": list(SWEEP_SEEDS), "first_stage": table}}


STORED_SEEDS = (0, 1, 2, 3)  # the notebook's seeds
LOSS_BLOCK = 100  # a stored run keeps its training loss as the mean of each block of this many steps


def compact(result):
    """A run() result with its per-step history shortened to what the notebook shows: the mean loss of each
    block of LOSS_BLOCK steps, the steps, the tokens processed and the seconds of training (wall)."""
    history = result["history"]
    loss = history["loss"]
    blocks = [loss[i:i + LOSS_BLOCK] for i in range(0, len(loss), LOSS_BLOCK)]
    return {**result, "history": {"loss_per_block": [sum(b) / len(b) for b in blocks], "steps": len(loss),
                                  "tokens": sum(history["tokens"]), "seconds": history["seconds"][-1]}}


def stored_run(job):
    """run(job), compacted: what `python -m dltoolbox.experiments.stored seq2seq` keeps of each run."""
    return compact(run(job))


def stored_jobs(seeds=STORED_SEEDS, table="chapters/03_seq2seq/sweep.json",
                steps_table="chapters/03_seq2seq/steps_sweep.json"):
    """The notebook's runs: each source order with the learning rate and schedule of the first stage of its
    sweep and the number of steps of the second, on STORED_SEEDS, scored on the test pairs;
    `python -m dltoolbox.experiments.stored seq2seq` stores them."""
    from . import sweeps

    chosen, steps = sweeps.chosen(ROOT / table), sweeps.chosen(ROOT / steps_table)
    return [{"reverse_source": arm == "reversed", "seed": seed, "on": "test", **chosen[arm], **steps[arm]}
            for arm in ("plain", "reversed") for seed in seeds]


CAPACITY_GRID = {"num_hiddens": (96, 256), "steps": (400, 1600)}


def capacity(processes=2, table="chapters/03_seq2seq/sweep.json"):
    """Does the long-sentence collapse move with capacity and training? The reversed model at each hidden
    size and number of steps of CAPACITY_GRID, with the learning rate and schedule the `seq2seq` sweep chose
    for it, scored on the validation pairs (python -m dltoolbox.experiments.sweeps seq2seq_capacity); the metric is
    exact match on the 18–30-token ones."""
    from itertools import product

    from . import sweeps
    from ..compare import run_parallel

    setting = sweeps.chosen(table)["reversed"]
    jobs = [{"reverse_source": True, "seed": 100, "on": "valid", **setting, "num_hiddens": h, "steps": n}
            for h, n in product(*CAPACITY_GRID.values())]
    rows = []
    for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="capacity x training")):
        buckets = result["metrics"]["buckets"]
        long = [b for b in ("18-22", "23-30") if b in buckets]
        rows.append({"num_hiddens": job["num_hiddens"], "steps": job["steps"], "seed": job["seed"],
                     "valid_exact_match": round(result["metrics"]["exact_match"], 4),
                     **{f"valid_exact_match_{b}": round(buckets[b]["exact_match"], 4) for b in buckets},
                     "valid_exact_match_18_30": round(sum(buckets[b]["exact_match"] * buckets[b]["n"] for b in long)
                                                      / sum(buckets[b]["n"] for b in long), 4),
                     "valid_bleu_18_30_bucket_mean": round(sum(buckets[b]["bleu"] * buckets[b]["n"] for b in long)
                                               / sum(buckets[b]["n"] for b in long), 2),
                     "parameters": count_parameters(build_model(*_vocabs(), num_hiddens=job["num_hiddens"],
                                                                num_embed=MODEL["num_embed"])),
                     "seconds": round(result["history"]["seconds"][-1], 1)})
    return {"rows": rows, "settings": list(CAPACITY_GRID), "metric": "valid_exact_match_18_30", "goal": "max",
            "arm": None, "config": {**setting, "reverse_source": True, "num_embed": MODEL["num_embed"],
                                    "batch_size": BATCH_SIZE}}


def _vocabs():
    from .. import translation

    return translation.source_vocab(), translation.target_vocab()
