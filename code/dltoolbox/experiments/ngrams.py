"""Chapter 2's experiments (chapters/02_ngrams/ngrams.ipynb): the MLP language model's runs, its validation
sweep against the Kneser-Ney counts' own tuning, and the notebook's four stored runs.

    python -m dltoolbox.experiments.sweeps ngrams      # the MLP's settings, on the validation slice
    python -m dltoolbox.experiments.stored ngrams_mlp  # the notebook's runs on all the training text
"""
import torch

from .. import lm, ngram
from ..neural_lm import MLPConfig, MLPLanguageModel, log2_probs, mixture_weight, train_lm


def char_splits(valid_fraction=0.1, heldout_fraction=0.1):
    """The Devil's Dictionary as character ids: (vocab, fit, valid, held), the validation slice being the
    last part of the training text and the held-out text the last 10% of the whole, as in dltoolbox.ngram."""
    vocab, ids = lm.char_ids(ngram.tokenize(ngram.normalise(ngram.load_corpus("devil"), "lower"), "char"))
    train, held = ngram.split(ids, heldout_fraction)
    fit, valid = ngram.split(train, valid_fraction)
    return vocab, fit, valid, held


def held_out_log2(result):
    """Per-character log2 P of the held-out text under a run's weights (result["state"], its job's config),
    each character predicted from the ones before it, across the boundary with the validation slice."""
    vocab, _, valid, held = char_splits()
    model = MLPLanguageModel(MLPConfig(vocab_size=len(vocab), **result["job"]["config"]))
    model.load_state_dict(result["state"])
    k = model.config.context
    return log2_probs(model, torch.cat([valid[-k:], held]))[k - 1:].numpy()


def run(job):
    """One seed of the MLP, trained on the fit slice with early stopping on validation, or on all the
    training text (fit + validation) for a number of steps chosen beforehand.

    job: {"seed", "config": MLPConfig fields, "train": train_lm keywords, "data": "fit" (the default) or
    "train"} (other keys are passed back). Returns {"job", "history", "held_log2", "state"}, plus
    "valid_log2" for data "fit": per-character log2 P of the validation and held-out text (each character
    predicted from the ones before it, across the slice boundary).
    """
    from ..seeding import generator, seed_everything

    data = job.get("data", "fit")
    if data not in ("fit", "train"):
        raise ValueError(f"job data must be 'fit' or 'train', got {data!r}")
    torch.set_num_threads(1)
    vocab, fit, valid, held = char_splits()
    seed_everything(job["seed"])
    model = MLPLanguageModel(MLPConfig(vocab_size=len(vocab), **job["config"]))
    k = model.config.context
    if data == "fit":
        history = train_lm(model, fit, valid, generator=generator(job["seed"]), keep_best=True, **job["train"])
    else:
        history = train_lm(model, torch.cat([fit, valid]), None, generator=generator(job["seed"]), **job["train"])
    out = {"job": job, "history": history, "state": {name: t.clone() for name, t in model.state_dict().items()}}
    out["held_log2"] = held_out_log2(out)
    if data == "fit":
        out["valid_log2"] = log2_probs(model, torch.cat([fit[-k:], valid]))[k - 1:].numpy()
    return out


# Every setting gets the same tuning effort as the n-gram model (its 8 orders x 3 discounts = 24 settings are
# counted, not trained): learning rate x dropout x steps, 27 settings, each run ending at its best validation
# evaluation. The number of steps sets the length of the cosine decay, so it is a setting, not a stopping point.
SWEEP_GRID = {"lr": (0.005, 0.01, 0.02), "dropout": (0.0, 0.1, 0.2), "steps": (3000, 8000, 20000)}
SWEEP_LIMITS = {"dropout": [0.0, None]}  # no dropout is a natural limit: nothing lies below it
SWEEP_FIXED = {"context": 8, "num_embed": 24, "num_hiddens": 256, "batch_size": 32, "block_size": 32,
               "eval_every": 500}
SWEEP_SEEDS = (100,)  # the sweep's seed, apart from the notebook's seeds 0-3
CONFIG_KEYS = ("context", "num_embed", "num_hiddens", "dropout")  # the rest are train_lm keywords
KN_ORDERS, KN_DISCOUNTS = tuple(range(1, 9)), (0.75, 0.9, 1.0)  # the n-gram model's grid (the notebook's)


def job_for(setting, seed, fixed=SWEEP_FIXED, data="fit"):
    """The run() job of one setting (keys of SWEEP_GRID) and seed, on the fit slice or all training text."""
    values = {**fixed, **setting}
    return {"seed": seed, "data": data, "config": {key: values[key] for key in CONFIG_KEYS if key in values},
            "train": {key: value for key, value in values.items() if key not in CONFIG_KEYS}}


STORED_SEEDS = (0, 1, 2, 3)  # the notebook's seeds


def stored_jobs(seeds=STORED_SEEDS):
    """The notebook's runs: the setting chosen by the sweep (sweep.json), one per seed, trained on all the
    training text like the Kneser-Ney counts; `python -m dltoolbox.experiments.stored ngrams_mlp` stores them."""
    from . import sweeps

    setting = sweeps.chosen(sweeps.ROOT / "chapters/02_ngrams/sweep.json")["None"]
    return [job_for(setting, seed, data="train") for seed in seeds]


def kneser_ney_valid_log2():
    """log2 P of each validation character under the Kneser-Ney model chosen on validation (counted on the
    fit slice, the order and discount of KN_ORDERS x KN_DISCOUNTS with the fewest bits): the mixture's
    partner when its weight is chosen."""
    chars = ngram.tokenize(ngram.normalise(ngram.load_corpus("devil"), "lower"), "char")
    train, _ = ngram.split(chars, 0.1)
    fit, valid = ngram.split(train, 0.1)
    _, _, log2 = ngram.choose_kneser_ney(fit, valid, sorted(set(chars)), KN_ORDERS, KN_DISCOUNTS)
    return log2


def sweep(processes=2):
    """The MLP's settings searched on the validation slice (python -m dltoolbox.experiments.sweeps ngrams); each row also
    holds the weight on the MLP of its mixture with Kneser-Ney, chosen on the same validation slice."""
    from itertools import product

    from ..compare import run_parallel

    settings = [dict(zip(SWEEP_GRID, values)) for values in product(*SWEEP_GRID.values())]
    jobs = sorted((job_for(s, seed) for s in settings for seed in SWEEP_SEEDS),
                  key=lambda job: -job["train"]["steps"])  # longest first: the two processes finish together
    kn_valid = kneser_ney_valid_log2()
    rows = [_row(job, result, kn_valid) for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="MLP settings"))]
    rows.sort(key=lambda row: [row[key] for key in (*SWEEP_GRID, "seed")])
    return {"rows": rows, "settings": list(SWEEP_GRID), "metric": "valid_bits", "goal": "min", "arm": None,
            "limits": SWEEP_LIMITS, "config": dict(SWEEP_FIXED)}


def _row(job, result, kn_valid):
    """A sweep table's row: the setting, the seed, the best validation bits/char and the mixture's weight."""
    setting = {key: {**job["config"], **job["train"]}[key] for key in SWEEP_GRID}
    history = result["history"]
    return {**setting, "seed": job["seed"], "valid_bits": round(min(history["valid_bits"]), 4),
            "best_step": history["best_step"], "mix_weight": mixture_weight(result["valid_log2"], kn_valid)}


# The values beyond SWEEP_GRID's largest, in order: where the sweep chose a grid's largest value, the next one
# is tried around its choice (python -m dltoolbox.experiments.sweeps ngrams_beyond).
SWEEP_BEYOND = {"lr": (0.04, 0.08), "steps": (50000, 125000)}


def beyond_jobs(table):
    """The runs the table still needs so that its choice is not the largest value tried of a setting of
    SWEEP_BEYOND: for each such setting, the choice with that setting at the next value beyond (one run per seed
    of the table), unless the table holds it already; [] when the choice is inside every grid."""
    from . import sweeps

    choice = sweeps.best_settings(table["rows"], table["settings"], table["metric"], table["goal"], None)[None]
    have = {tuple(row[key] for key in (*SWEEP_GRID, "seed")) for row in table["rows"]}
    jobs = []
    for key, beyond in SWEEP_BEYOND.items():
        tried = sorted({row[key] for row in table["rows"]})
        if choice[key] != tried[-1]:
            continue
        larger = [value for value in beyond if value > tried[-1]]
        if not larger:
            raise ValueError(f"{key} = {choice[key]:g} is the largest of SWEEP_BEYOND too: extend it")
        setting = {**choice, key: larger[0]}
        for seed in sorted({row["seed"] for row in table["rows"]}):
            if tuple(setting[k] for k in SWEEP_GRID) + (seed,) not in have:
                jobs.append(job_for(setting, seed))
    return jobs


def sweep_beyond(processes=2, table="chapters/02_ngrams/sweep.json"):
    """The sweep's table with the runs of :func:`beyond_jobs` added (all rows kept, the choice made from all
    of them). Run it again until the choice lies inside every grid: each run tries one step further."""
    import json

    from ..compare import run_parallel
    from ..locations import ROOT

    first = json.loads((ROOT / table).read_text())
    jobs = sorted(beyond_jobs(first), key=lambda job: -job["train"]["steps"])
    kn_valid = kneser_ney_valid_log2() if jobs else None
    rows = first["rows"] + [_row(job, result, kn_valid)
                            for job, result in zip(jobs, run_parallel(run, jobs, processes, desc="beyond the grid"))]
    rows.sort(key=lambda row: [row[key] for key in (*SWEEP_GRID, "seed")])
    return {"rows": rows, "settings": first["settings"], "metric": first["metric"], "goal": first["goal"],
            "arm": None, "limits": first.get("limits", SWEEP_LIMITS),
            "config": {**first["config"], "beyond": {k: list(v) for k, v in SWEEP_BEYOND.items()}}}
