"""Chapter 8's experiments (all the data is just a sequence of bytes, Gato in miniature): one byte-level GPT
trained on a mixture of six tasks, against one specialist per task, at an equal compute budget.

    python -m dltoolbox.experiments.sweeps bytes   # each arm's learning rate, on validation bits per byte

The data (:func:`modalities`): Bierce's text, chapter 3's toy translation, Connect-Four records, scikit-learn's
8x8 digits as images, as captions (an image in, its name out) and as drawings (a name in, an image out), each
framed by :mod:`dltoolbox.bytestream`. Captions come from only CAPTION_IMAGES training images, the least data
of any task: Gato's transfer question is whether the mixture helps or hurts them.

The budget (:func:`arm_steps`): the generalist's steps are the sum of the specialists'. Every step is one
batch of BATCH_SIZE windows of BLOCK_SIZE ids; the generalist's batches hold BATCH_SIZE / 6 windows of each
task (a uniform mixture), a specialist's all of its own. So each task gets the same windows and FLOPs on
both sides, and the two sides the same steps, tokens and FLOPs in all. But not the same updates: a task's
windows reach the generalist over six times as many optimiser steps. A specialist given BATCH_SIZE / 6 windows
per step and the generalist's steps (run's job "batch_size") costs the same again and has as many updates, so
it tells more updates apart from transfer between tasks.
"""
import math
import time

import torch
import torch.nn.functional as F

from .. import bytestream as bs
from .. import lm, memory
from ..compare import count_parameters
from ..games import COLS
from ..gpt import GPTConfig

TASKS = bs.TASKS
ARMS = ("generalist",) + tuple(f"specialist:{task}" for task in TASKS)
MODEL = dict(block_size=96, n_embd=64, n_head=4, n_layer=2)  # block_size: just above the longest example
BLOCK_SIZE = MODEL["block_size"]
BATCH_SIZE = 24         # windows per step: 4 of each task in the generalist's batches
STEPS = 192             # the generalist's steps: the notebook's 4 seeds of both sides in about 90 s on 2 cores
STORED_STEPS = 4800     # where the tasks' own scores part from chance (seed 0): a stored run's budget
WARMUP = 0.1            # share of each run's steps spent warming the learning rate up, then cosine to 0
LR_GRID = (3e-3, 1e-2, 3e-2, 0.1)
SWEEP_SEEDS = (100,)    # apart from the notebook's seeds 0-3
TEXT_BYTES = 64         # a text example: 64 bytes of Bierce, whitespace collapsed
TRANSLATION = dict(n_train=4000, n_valid=200, n_test=200, min_len=3, max_len=7)
GAMES = dict(train=3000, valid=200, test=400)
DIGITS = dict(train=1200, valid=240)  # sklearn's 1,797 digits by index: the first 1,200, the next 240, the rest
CAPTION_IMAGES = 300    # captions are made from only the first 300 training images
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DRAWINGS_PER_DIGIT = 5  # drawings sampled from each name, judged by the digit classifier
DRAW_TEMPERATURE = 1.0
SPLITS = ("train", "valid", "test")
_cache = {}


# ---- the data -------------------------------------------------------------------------------------------

def _text_chunks(text):
    """Consecutive TEXT_BYTES-byte pieces of an ASCII text (a shorter last piece dropped)."""
    return [text[i:i + TEXT_BYTES] for i in range(0, len(text) - TEXT_BYTES + 1, TEXT_BYTES)]


def digits():
    """The 8x8 digits (N, 8, 8) in [0, 1] quantised as the byte stream stores them (levels k/255), labels (N,)."""
    from ..glyphs import load_digits_images

    X, y = load_digits_images(size=8)
    return torch.round(X[:, 0] * 255) / 255, y


def _digit_splits():
    X, y = digits()
    cut = (DIGITS["train"], DIGITS["train"] + DIGITS["valid"])
    return {"train": (X[:cut[0]], y[:cut[0]]), "valid": (X[cut[0]:cut[1]], y[cut[0]:cut[1]]),
            "test": (X[cut[1]:], y[cut[1]:])}


def _game_splits(records):
    """The first GAMES["train"] records to train on, then validation and test records, each unlike any
    record before it (a short game can recur)."""
    seen, fresh = {tuple(r) for r in records[:GAMES["train"]]}, []
    for record in records[GAMES["train"]:]:
        if tuple(record) not in seen:
            seen.add(tuple(record))
            fresh.append(record)
    if len(fresh) < GAMES["valid"] + GAMES["test"]:
        raise ValueError(f"only {len(fresh)} new records for {GAMES['valid']} + {GAMES['test']}: generate more")
    return {"train": records[:GAMES["train"]], "valid": fresh[:GAMES["valid"]],
            "test": fresh[GAMES["valid"]:GAMES["valid"] + GAMES["test"]]}


def check_window(data, window):
    """ValueError naming the first split and task with an example longer than `window` ids."""
    for split, tasks in data.items():
        for task, examples in tasks.items():
            longest = max(len(ids) for ids, _ in examples)
            if longest > window:
                raise ValueError(f"a {split} {task} example has {longest} ids, more than the window of {window}")


def modalities(seed=0):
    """{split: {task: [(ids, mask), ...]}} for the six tasks, deterministic (cached per process).

    Text is split by position (the first 90% of Bierce's text to train, then 5% each), translation pairs and
    game records come from their own generators (`seed`), digits are split by index. ValueError if an
    example is longer than BLOCK_SIZE ids."""
    if seed in _cache:
        return _cache[seed]
    from .. import games, ngram, translation

    text = " ".join(ngram.load_corpus("devil").split())
    cut = (int(len(text) * 0.9), int(len(text) * 0.95))
    text = {"train": text[:cut[0]], "valid": text[cut[0]:cut[1]], "test": text[cut[1]:]}
    pairs = translation.make_splits(seed=seed, **TRANSLATION)
    records = _game_splits(bs.game_records(games.generate_replays(sum(GAMES.values()) + 100, seed=seed)))
    data = {}
    for split, (X, y) in _digit_splits().items():
        named = X[:CAPTION_IMAGES] if split == "train" else X
        data[split] = {
            "text": [bs.encode_text(chunk) for chunk in _text_chunks(text[split])],
            "translation": [bs.encode_pair(source, target) for source, target in pairs[split]],
            "game": [bs.encode_game(moves) for moves in records[split]],
            "image": [bs.encode_image(x) for x in X],
            "caption": [bs.encode_caption(x, NAMES[label]) for x, label in zip(named, y.tolist())],
            "draw": [bs.encode_drawing(NAMES[label], x) for x, label in zip(X, y.tolist())]}
    check_window(data, BLOCK_SIZE)
    _cache[seed] = data
    return data


def describe(data):
    """Rows per split and task: examples, ids and predicted ids (what the loss sees)."""
    return [{"split": split, "task": task, "examples": len(examples), "ids": sum(len(i) for i, _ in examples),
             "predicted": sum(int(m.sum()) for _, m in examples)}
            for split in SPLITS for task, examples in data[split].items()]


# ---- the digit classifier that judges the drawings -----------------------------------------------------

def train_digit_classifier(images, labels, steps=300, lr=0.1, weight_decay=1e-3):
    """A softmax regression of the 64 pixels, (weights (64, 10), bias (10,)), trained full-batch with Adam from
    zeros: deterministic, and it draws no random numbers."""
    W, b = torch.zeros(64, 10, requires_grad=True), torch.zeros(10, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr, weight_decay=weight_decay)
    X = torch.as_tensor(images).flatten(1)                                 # (N, 64)
    for _ in range(steps):
        loss = F.cross_entropy(X @ W + b, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach(), b.detach()


def classify(images):
    """The digit (N,) that the classifier trained on the training digits sees in images (N, 8, 8) in [0, 1]."""
    if "classifier" not in _cache:
        _cache["classifier"] = train_digit_classifier(*_digit_splits()["train"])
    W, b = _cache["classifier"]
    return (torch.as_tensor(images).flatten(1) @ W + b).argmax(1)


# ---- the arms and their budget --------------------------------------------------------------------------

def arm_steps(total=STEPS):
    """{arm: optimiser steps}: the generalist `total`, each specialist its task's share, total / 6."""
    if total < len(TASKS) or total % len(TASKS):
        raise ValueError(f"the generalist's steps must be a positive multiple of {len(TASKS)}, got {total}")
    return {arm: total if arm == "generalist" else total // len(TASKS) for arm in ARMS}


def arm_tasks(arm):
    """The tasks an arm trains on."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; the arms are {ARMS}")
    return TASKS if arm == "generalist" else (arm.split(":", 1)[1],)


def batches(examples_by_task, batch_size, generator):
    """A batcher of `batch_size` windows, an equal share from each task's packed training stream."""
    if batch_size % len(examples_by_task):
        raise ValueError(f"batch_size {batch_size} must split evenly over {len(examples_by_task)} tasks")
    streams = [bs.pack(examples) for examples in examples_by_task.values()]
    share = batch_size // len(streams)

    def draw():
        parts = [bs.windows(ids, labels, BLOCK_SIZE, share, generator) for ids, labels in streams]
        return torch.cat([X for X, _ in parts]), torch.cat([Y for _, Y in parts])
    return draw


def build_model(seed):
    """The course's GPT over the byte vocabulary, its weights drawn from `seed` (the global generator is left as
    it was), as chapter 8's other models are built (:func:`dltoolbox.memory.build`)."""
    return memory.build(GPTConfig(vocab_size=bs.VOCAB_SIZE, **MODEL), seed)


def lr_factor(step, steps):
    """The learning rate's share at optimiser step `step` (from 0) of `steps`: a linear warm-up over the first
    WARMUP of them, then a cosine decay towards 0."""
    warm = max(1, int(WARMUP * steps))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def step_flops(batch_size=BATCH_SIZE):
    """FLOPs of one training step of the model on a (batch_size, BLOCK_SIZE) batch, as PyTorch counts them."""
    from ..scaling import measured_flops

    if ("flops", batch_size) not in _cache:
        X = torch.zeros(batch_size, BLOCK_SIZE, dtype=torch.long)
        _cache["flops", batch_size] = measured_flops(build_model(0), X, X)["total"]
    return _cache["flops", batch_size]


# ---- scores ---------------------------------------------------------------------------------------------

@torch.no_grad()
def score(model, examples, chunk=128):
    """Each example scored alone (a row of bytestream.batch), teacher-forced: lists of its "bits" (of its
    predicted ids), "predicted" ids, "exact" (every predicted id the argmax: what greedy decoding would write,
    END included), and "moves" and "right_moves" (predicted ids 0..6, and those the argmax over 0..6 gets)."""
    model.eval()
    out = {key: [] for key in ("bits", "predicted", "exact", "moves", "right_moves")}
    for start in range(0, len(examples), chunk):
        X, Y = bs.batch(examples[start:start + chunk])                     # (B, T) each
        logits, _ = model(X)                                               # (B, T, V)
        kept = Y != lm.IGNORE
        nats = F.cross_entropy(logits.transpose(1, 2), Y, ignore_index=lm.IGNORE, reduction="none")  # (B, T)
        moves = kept & (Y < COLS)
        out["bits"] += (nats.sum(1) / math.log(2)).tolist()
        out["predicted"] += kept.sum(1).tolist()
        out["exact"] += ((logits.argmax(-1) == Y) | ~kept).all(1).tolist()
        out["moves"] += moves.sum(1).tolist()
        out["right_moves"] += ((logits[..., :COLS].argmax(-1) == Y) & moves).sum(1).tolist()
    return out


@torch.no_grad()
def draw(model, generator, per_digit=None, temperature=DRAW_TEMPERATURE):
    """`per_digit` (default DRAWINGS_PER_DIGIT) drawings from each digit's name: (the name's digit, the drawing's
    image or None where the ids are no 8x8 image) for each."""
    per_digit = per_digit or DRAWINGS_PER_DIGIT
    model.eval()
    prompts = {}  # prompt length -> [(label, prompt)]: names of one length are drawn in one batch
    for label, name in enumerate(NAMES):
        ids, mask = bs.encode_drawing(name, torch.zeros(8, 8))
        prompts.setdefault(int((~mask).sum()), []).append((label, ids[~mask]))  # tag, name, SEP
    drawings = []
    for group in prompts.values():
        labels = [label for label, _ in group for _ in range(per_digit)]
        prompt = torch.stack([p for _, p in group]).repeat_interleave(per_digit, 0)  # (names * per_digit, P)
        for label, row in zip(labels, lm.generate(model, prompt, 2 + 64 + 1, temperature, generator)):
            try:
                image = bs.decode(row)[2]
            except ValueError:  # an id that does not belong, no END, or END too soon
                image = None
            drawings.append((label, image if image is not None and image.shape == (8, 8) else None))
    return sorted(drawings, key=lambda d: d[0])


def evaluate(model, data, generator=None):
    """Scores on the examples `data` ({task: examples}): "<task>_bits" per predicted byte for every task, and
    each task's own score where it has one (drawings only with a `generator` to sample them)."""
    out = {}
    for task, examples in data.items():
        scores = score(model, examples)
        out[f"{task}_bits"] = sum(scores["bits"]) / sum(scores["predicted"])
        if task == "translation":
            out["translation_exact_match"] = sum(scores["exact"]) / len(examples)
        elif task == "caption":
            out["caption_accuracy"] = sum(scores["exact"]) / len(examples)
        elif task == "game":
            out["game_move_accuracy"] = sum(scores["right_moves"]) / sum(scores["moves"])
        elif task == "draw" and generator is not None:
            drawings = draw(model, generator)
            valid = [(label, image) for label, image in drawings if image is not None]
            judged = classify(torch.stack([image for _, image in valid])).tolist() if valid else []
            out["draw_valid"] = len(valid) / len(drawings)
            out["draw_accuracy"] = sum(j == label for j, (label, _) in zip(judged, valid)) / len(drawings)
    return out


# ---- one run, and the sweep -----------------------------------------------------------------------------

def run(job):
    """Train one arm and score it on each of its tasks; a dict of plain numbers.

    job: {"arm": "generalist" | "specialist:<task>", "seed", "lr", "steps" (this arm's optimiser steps; see
    arm_steps), optional "on": "test" (default) or "valid", "drawings": False to skip sampling drawings (the
    sweep's runs), "batch_size", "threads" (default 1)}. Returns the job's settings, training and
    evaluation seconds, parameters, tokens, FLOPs, the last training loss, "<task>_bits" (bits per predicted
    byte, each example scored alone) for every task trained on, and the tasks' own scores.
    """
    torch.set_num_threads(job.get("threads", 1))
    on, batch_size, tasks = job.get("on", "test"), job.get("batch_size", BATCH_SIZE), arm_tasks(job["arm"])
    if on not in ("valid", "test"):
        raise ValueError(f"job['on'] must be 'valid' or 'test', got {on!r}")
    data = modalities()
    model = build_model(job["seed"])
    generator = torch.Generator().manual_seed(1000 + job["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=job["lr"], weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, job["steps"]))
    start, cpu = time.perf_counter(), time.process_time()
    losses = lm.fit(model, batches({t: data["train"][t] for t in tasks}, batch_size, generator), opt, job["steps"],
                    schedule, clip=1.0)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    out = {"arm": job["arm"], "seed": job["seed"], "lr": job["lr"], "steps": job["steps"], "on": on,
           "batch_size": batch_size, "tokens": job["steps"] * batch_size * BLOCK_SIZE,
           "parameters": count_parameters(model), "flops": job["steps"] * step_flops(batch_size),
           "seconds": seconds, "cpu_seconds": cpu_seconds, "train_loss": losses[-1]}
    drawer = torch.Generator().manual_seed(2000 + job["seed"]) if job.get("drawings", True) else None
    out.update(evaluate(model, {t: data[on][t] for t in tasks}, drawer))
    out["mean_bits"] = sum(out[f"{t}_bits"] for t in tasks) / len(tasks)
    out["eval_seconds"] = time.perf_counter() - start
    if not all(math.isfinite(v) for v in out.values() if isinstance(v, float)):
        raise FloatingPointError(f"{job['arm']}, seed {job['seed']}, lr {job['lr']}: a score is not finite: {out}")
    return out


def jobs(seeds, lrs, total=STEPS, **extra):
    """The jobs of every arm and seed at the equal budget (arm_steps(total)); `lrs`: {arm: lr}."""
    steps = arm_steps(total)
    return [{"arm": arm, "seed": seed, "lr": lrs[arm], "steps": steps[arm], **extra} for seed in seeds for arm in ARMS]


def sweep(processes=2, total=STEPS, grid=LR_GRID, seeds=SWEEP_SEEDS):
    """Each arm's learning rate on the same grid and seeds, chosen by validation bits per predicted byte (the
    generalist: the mean over its six tasks) at the equal budget (python -m dltoolbox.experiments.sweeps bytes)."""
    from ..compare import run_parallel

    todo = [job for lr in grid
            for job in jobs(seeds, {arm: lr for arm in ARMS}, total, on="valid", drawings=False)]
    rows = [{"arm": r["arm"], "lr": r["lr"], "seed": r["seed"], "steps": r["steps"],
             "valid_bits": round(r["mean_bits"], 4), "seconds": round(r["seconds"], 1)}
            for r in run_parallel(run, todo, processes, desc="bytes learning rates")]
    return {"rows": rows, "settings": ["lr"], "metric": "valid_bits", "goal": "min", "arm": "arm",
            "config": {**MODEL, "batch_size": BATCH_SIZE, "generalist_steps": total, "warmup": WARMUP,
                       "seeds": list(seeds),
                       "metric": "validation bits per predicted byte (the generalist: the mean over its tasks)"}}


def stored_sweep(processes=2):
    """:func:`sweep` at the stored runs' budget, STORED_STEPS (python -m dltoolbox.experiments.sweeps bytes)."""
    return sweep(processes, total=STORED_STEPS)


# ---- the notebook's tables ------------------------------------------------------------------------------

def _by_seed(results, arm):
    """{seed: run} of one arm; ValueError if a seed has two runs (a same-steps specialist shares the arm's name)."""
    runs = [r for r in results if r["arm"] == arm]
    by_seed = {r["seed"]: r for r in runs}
    if len(by_seed) != len(runs):
        raise ValueError(f"{arm} has more than one run of a seed: keep one side's runs per call")
    return by_seed


def paired(results, key):
    """(the generalist's, the specialist's) values of `key` ("<task>_..."), one per seed in the same order: the
    two arms :func:`dltoolbox.compare.seed_difference` pairs."""
    task = key.split("_", 1)[0]
    if task not in TASKS:
        raise ValueError(f"{key!r} names no task; the tasks are {TASKS}")
    sides = [{seed: r[key] for seed, r in _by_seed(results, arm).items()}
             for arm in ("generalist", f"specialist:{task}")]
    if not sides[0] or sorted(sides[0]) != sorted(sides[1]):
        raise ValueError(f"{key}: the generalist's seeds {sorted(sides[0])} and the specialist's "
                         f"{sorted(sides[1])} must be the same")
    return tuple([side[seed] for seed in sorted(sides[0])] for side in sides)


def budget_arms(results):
    """The two sides for :func:`dltoolbox.compare.budget`: the generalist, and the six specialists with their
    steps, tokens and seconds summed per seed (N is one model's parameters on both sides, so 6·N·D compares)."""
    seeds = sorted({r["seed"] for r in results if r["arm"] == "generalist"})
    runs = {arm: _by_seed(results, arm) for arm in ARMS}
    if any(sorted(runs[arm]) != seeds for arm in ARMS) or not seeds:
        raise ValueError("need a run of every arm for every seed")

    def side(arms):
        first = [runs[arm][seeds[0]] for arm in arms]
        return {"steps": sum(r["steps"] for r in first), "tokens": sum(r["tokens"] for r in first),
                "parameters": first[0]["parameters"],
                "seconds": [sum(runs[arm][seed]["seconds"] for arm in arms) for seed in seeds]}
    return {"generalist": side(["generalist"]), "6 specialists, summed": side(ARMS[1:])}
