"""Chapter 6 (reusing weights): the experiments of its three notebooks.

* fewshot.ipynb: the glyph classes' split, each arm's training and evaluation on the same episodes
  (`fewshot_run_arm`, one arm and seed per process) and the validation sweep (`fewshot_sweep`);
* frozen.ipynb: one captioner on a copy of the pretrained language model, per arm and seed (`frozen_run_arm`);
* lm_init.ipynb: the low-data translation data, the target-side language model, the fine-tuning runs
  (`lm_init_runs`) and their sweep (`lm_init_sweep`).

Both sweeps run as ``python -m dltoolbox.experiments.sweeps fewshot`` and ``... lm_init``.
"""
import numpy as np
import torch

from ..fewshot import (ConvEncoder, evaluate_finetune, evaluate_linear_probe, evaluate_metric, matching_logits,
                       pretrain_classifier, prototype_logits, sample_episodes, train_episodic)
from ..frozen import (CAPTION, DIGITS, VisionPrefix, WordPrefix, caption_tokens, encode, fewshot_naming,
                      generate_captions, lm_config, make_corpus, nearest_words, perplexity, train_captioner)
from ..gpt import GPT
from ..seeding import generator as make_generator
from ..transfer import LSTMLanguageModel, copy_weights, decoder_mapping, train_target_lm


# ---- few-shot learning (fewshot.ipynb): seeds in parallel processes, and the validation sweep -----------

STEPS = 500                                   # default training steps of an arm that learns from the base classes
BASE, NOVEL, VALIDATION = range(0, 300), range(300, 400), range(400, 450)   # glyph classes: train, test, tune
METRIC_RULES = {"protonet": prototype_logits, "matching": matching_logits, "classifier": prototype_logits}
TRAIN_LRS = (3e-3, 1e-2)                      # the same lr grid, steps grid and seeds for every training arm
TRAIN_STEPS = (500, 2000)                     # 2,000 steps: the classifier's training accuracy has levelled off
ADAPT_GRIDS = {                               # the same number of settings (2 lrs × 2 step counts) per arm
    "scratch": [(lr, n) for lr in (3e-3, 1e-2) for n in (10, 30)],
    "fine-tune": [(lr, n) for lr in (3e-3, 1e-2) for n in (10, 30)],
    "linear": [(lr, n) for lr in (0.1, 0.3) for n in (30, 100)],
}
ARM_METHODS = {"protonet": ("protonet",), "matching": ("matching",), "classifier": ("centroid", "linear", "fine-tune"),
               "scratch": ("scratch",)}


def train_encoder(arm, X, y, classes, seed, num_steps=STEPS, lr=1e-3, desc=None):
    """A fresh ConvEncoder(16) trained on `classes`: episodically (protonet, matching) or as a classifier."""
    classes = torch.as_tensor(list(classes), dtype=torch.int64)
    torch.manual_seed(seed)
    encoder = ConvEncoder(channels=16)
    if arm == "classifier":
        keep = torch.isin(y, classes)
        labels = torch.searchsorted(torch.sort(classes).values, y[keep])
        history = pretrain_classifier(encoder, X[keep], labels, len(classes), num_steps=num_steps, lr=lr,
                                      generator=make_generator(seed), desc=desc or "classifier")
    elif arm in ("protonet", "matching"):
        history = train_episodic(encoder, X, y, classes, n_way=min(20, len(classes)), k_shot=1, n_query=5,
                                 num_steps=num_steps, lr=lr, logits_fn=METRIC_RULES[arm],
                                 generator=make_generator(seed), desc=desc or arm)
    else:
        raise ValueError(f"unknown training arm {arm!r}")
    return encoder, history


def evaluate_method(method, encoder, episodes, n_way, settings=None, seed=0):
    """Per-episode accuracy (E,) of one method; `settings` = {"lr", "steps"} for the adapting ones."""
    if method == "pixels":
        return evaluate_metric(None, episodes, n_way)
    if method in ("protonet", "centroid"):
        return evaluate_metric(encoder, episodes, n_way)
    if method == "matching":
        return evaluate_metric(encoder, episodes, n_way, logits_fn=matching_logits)
    if method == "linear":
        return evaluate_linear_probe(encoder, episodes, n_way, num_steps=settings["steps"], lr=settings["lr"])
    if method in ("fine-tune", "scratch"):
        return evaluate_finetune(encoder, episodes, n_way, pretrained=(method == "fine-tune"), num_steps=settings["steps"],
                                 lr=settings["lr"], generator=make_generator(1000 + seed))
    raise ValueError(f"unknown method {method!r}")


def protocol_episodes(X, y, classes, ks, num_episodes, seed=100):
    """{K: the same 5-way K-shot episodes (10 queries per class) for every method and seed}."""
    return {k: sample_episodes(X, y, list(classes), 5, k, 10, num_episodes, make_generator(seed + k)) for k in ks}


def fewshot_run_arm(job):
    """One (arm, seed) run for `compare.run_parallel`: train on job["train"] classes, test on job["test"] classes.

    job: {"X", "y" (numpy), "arm", "seed", "train", "test", "ks", "episodes", "lr", "settings" {method: {lr, steps}}}.
    Returns {"arm", "seed", "history", "state" (encoder weights or None), "accuracy": {method: {K: (E,) array}}}.
    """
    torch.set_num_threads(1)
    X, y = torch.from_numpy(job["X"]), torch.from_numpy(job["y"])
    arm, seed = job["arm"], job["seed"]
    encoder, history = (ConvEncoder(channels=16), None) if arm == "scratch" else \
        train_encoder(arm, X, y, job["train"], seed, job.get("steps", STEPS), job["lr"], desc=f"{arm}, seed {seed}")
    episodes = protocol_episodes(X, y, job["test"], job["ks"], job["episodes"])
    accuracy = {m: {k: evaluate_method(m, encoder, episodes[k], 5, job.get("settings", {}).get(m), seed).numpy()
                    for k in job["ks"]} for m in ARM_METHODS[arm]}
    state = None if arm == "scratch" else {k: v.clone() for k, v in encoder.state_dict().items()}
    return {"arm": arm, "seed": seed, "history": history, "state": state, "accuracy": accuracy}


def _sweep_train(job):
    """Sweep stage 1: one training arm, lr and seed → validation accuracy of its own rule (and the weights)."""
    torch.set_num_threads(1)
    X, y = torch.from_numpy(job["X"]), torch.from_numpy(job["y"])
    encoder, _ = train_encoder(job["arm"], X, y, BASE, job["seed"], job["steps"], job["lr"],
                               desc=f"{job['arm']} lr {job['lr']} steps {job['steps']}")
    episodes = protocol_episodes(X, y, VALIDATION, (1, 5), job["episodes"], seed=500)
    method = {"protonet": "protonet", "matching": "matching", "classifier": "centroid"}[job["arm"]]
    score = float(np.mean([evaluate_method(method, encoder, episodes[k], 5).mean().item() for k in (1, 5)]))
    row = {"arm": job["arm"], "lr": job["lr"], "steps": job["steps"], "seed": job["seed"], "validation_accuracy": round(score, 4)}
    return row, (encoder.state_dict() if job["arm"] == "classifier" else None)


def _sweep_adapt(job):
    """Sweep stage 2: one adapting arm and seed, every setting of its grid → validation rows."""
    torch.set_num_threads(1)
    X, y = torch.from_numpy(job["X"]), torch.from_numpy(job["y"])
    encoder = ConvEncoder(channels=16)
    if job["state"] is not None:
        encoder.load_state_dict(job["state"])
    episodes = protocol_episodes(X, y, VALIDATION, (1, 5), job["episodes"], seed=500)
    rows = []
    for lr, steps in ADAPT_GRIDS[job["arm"]]:
        score = np.mean([evaluate_method(job["arm"], encoder, episodes[k], 5, {"lr": lr, "steps": steps},
                                         job["seed"]).mean().item() for k in (1, 5)])
        rows.append({"arm": job["arm"], "lr": lr, "steps": steps, "seed": job["seed"],
                     "validation_accuracy": round(float(score), 4)})
    return rows


def fewshot_sweep(processes=2, seeds=(0, 1, 2), episodes=100):
    """Tune every arm on the 50 validation glyph classes (400–449), never the 100 test classes (300–399).

    Stage 1: each training arm (protonet, matching, classifier) at every lr of TRAIN_LRS and every step count of
    TRAIN_STEPS, each seed.
    Stage 2: each adapting arm (scratch, fine-tune, linear head) over its 8-setting grid, each seed, fine-tune
    and linear head on the classifier trained with the lr and steps stage 1 chose. Score: mean 5-way accuracy at K = 1, 5.
    """
    from . import sweeps
    from ..compare import run_parallel
    from ..glyphs import make_glyphs

    X, y = make_glyphs(num_classes=450, per_class=20, size=16, seed=0)
    data = {"X": X.numpy(), "y": y.numpy(), "episodes": episodes}
    jobs = [dict(data, arm=arm, lr=lr, steps=n, seed=s) for arm in ("classifier", "protonet", "matching")
            for lr in TRAIN_LRS for n in TRAIN_STEPS for s in seeds]
    results = run_parallel(_sweep_train, jobs, processes=processes, desc="sweep: training arms")
    rows = [row for row, _ in results]
    best = sweeps.best_settings([r for r in rows if r["arm"] == "classifier"], ["lr", "steps"], "validation_accuracy",
                                "max")[None]
    states = {row["seed"]: state for row, state in results
              if row["arm"] == "classifier" and (row["lr"], row["steps"]) == (best["lr"], best["steps"])}
    jobs = [dict(data, arm=arm, seed=s, state=None if arm == "scratch" else states[s])
            for arm in ("fine-tune", "scratch", "linear") for s in seeds]
    for part in run_parallel(_sweep_adapt, jobs, processes=processes, desc="sweep: adapting arms"):
        rows.extend(part)
    return {"rows": rows, "settings": ["lr", "steps"], "metric": "validation_accuracy", "goal": "max", "arm": "arm",
            "config": {"validation_classes": [VALIDATION.start, VALIDATION.stop - 1], "episodes_per_k": episodes,
                       "ks": [1, 5], "n_way": 5, "seeds": list(seeds), "encoder": "ConvEncoder(16)",
                       "train_steps": list(TRAIN_STEPS)}}


# ---- Frozen in miniature (frozen.ipynb): the three captioner arms ------------------------------------

FROZEN_ARMS = ("frozen", "finetuned", "word")


def frozen_run_arm(job):
    """One captioner on a copy of a pretrained LM, for `compare.run_parallel`: job = {"lm_state", "arm", "seed",
    "steps"} and optionally "config" (GPTConfig fields), "caption" (a caption template), "describe_first" (of
    the held-out text), "held_out_seed", "held_out_tokens", "episodes". arm: 'frozen' (free prefix, LM frozen), 'finetuned' (free
    prefix, LM trained at lr 1e-3) or 'word' (WordPrefix over the digit words, LM frozen). Trained on the first
    1,400 digits, scored on the other 397: per-image caption correctness, 2/3/4-way naming (same episodes for
    every arm and seed: generator(7)), held-out perplexity, word naming, nearest words; and the state dicts."""
    from ..glyphs import load_digits_images
    from ..seeding import generator, seed_everything

    seed, arm = job["seed"], job["arm"]
    if arm not in FROZEN_ARMS:
        raise ValueError(f"arm must be one of {FROZEN_ARMS}, got {arm!r}")
    seed_everything(seed, threads=1)
    X, y = load_digits_images(size=8)
    train_X, train_y, test_X, test_y = X[:1400], y[:1400], X[1400:], y[1400:]
    held_out = make_corpus(job.get("held_out_tokens", 8000), seed=job.get("held_out_seed", 1),
                           describe_first=job.get("describe_first", False))
    template = job.get("caption", CAPTION)
    lm = GPT(lm_config(**job.get("config", {})))
    lm.load_state_dict(job["lm_state"])
    torch.manual_seed(2 + seed)
    if arm == "word":
        vision = WordPrefix(lm.tok_emb, encode(" ".join(DIGITS)))
    else:
        vision = VisionPrefix(n_embd=lm.cfg.n_embd, num_tokens=1)
    history = train_captioner(lm, vision, train_X, train_y, num_steps=job["steps"],
                              lm_lr=1e-3 if arm == "finetuned" else None, generator=generator(3 + seed),
                              desc=f"captioning, {arm}, seed {seed}", template=template)
    caption_correct = (generate_captions(lm, vision, test_X, template=template) == caption_tokens(test_y, template)).all(1)
    naming = {n: fewshot_naming(lm, vision, test_X, test_y, n_way=n, num_episodes=job.get("episodes", 600),
                                generator=generator(7)) for n in (2, 3, 4)}
    text = fewshot_naming(lm, None, test_X, test_y, 2, 600, generator(5), use_words=True)
    return {"arm": arm, "seed": seed, "loss": history["loss"], "caption_correct": caption_correct.numpy(),
            "ppl": perplexity(lm, held_out), "text_naming": text["forced_choice"],
            "forced_correct": {n: r["forced_correct"].numpy() for n, r in naming.items()},
            "open_correct": {n: r["open_correct"].numpy() for n, r in naming.items()},
            "nearest": nearest_words(lm, vision, test_X).numpy(), "test_labels": test_y.numpy(),
            "lm_state": lm.state_dict() if arm == "finetuned" else None, "vision_state": vision.state_dict()}


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
    from .. import translation

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
    from .. import decoding

    metrics = decoding.evaluate(model, pairs)
    correct = [h == list(t) for h, (_, t) in zip(metrics["hypotheses"], pairs)]
    return {"bleu": metrics["bleu"], "exact": metrics["exact_match"], "tokens": metrics["token_accuracy"],
            "correct": correct}


def fine_tune(job):
    """One run: build the translator from job["seed"], copy the LM into its decoder if job["init"] == "LM",
    train it on job["train"] with Adam at job["lr"], and score it on job["eval_pairs"] at each checkpoint.

    Returns {"loss": [...], "scores": {step: score(...)}, "state": the trained weights if job["keep"]}.
    Runs alone in a process (see compare.run_parallel): one thread, no progress bar.
    """
    from .. import seq2seq, translation

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

    history = seq2seq.train(model, job["train"], num_steps=checkpoints[-1], batch_size=64, lr=job["lr"],
                            seed=job["seed"], callback=at_checkpoint)
    return {"loss": history["loss"], "scores": scores, "state": model.state_dict() if job.get("keep") else None}


def translator_from_state(state):
    """The default seq2seq translator holding the weights `state` (e.g. a kept fine_tune result's)."""
    from .. import seq2seq, translation

    model = seq2seq.build_model(translation.source_vocab(), translation.target_vocab())
    model.load_state_dict(state)
    return model.eval()


def lm_init_runs(lm, low_data, eval_pairs, settings, seeds=(0, 1, 2), processes=2, keep=()):
    """Every (size, init, seed) run at its chosen {"lr", "steps"} (`settings` keyed "size init"), in parallel.

    Both inits of a seed share the encoder's initial weights and the batches. Returns
    {(size, init, seed): fine_tune result}; the weights are kept for the sizes in `keep`.
    """
    from ..compare import run_parallel

    lm_state = {k: v.detach().clone() for k, v in lm.state_dict().items()}
    keys = [(size, init, seed) for size in low_data for seed in seeds for init in INITS]
    jobs = [{"init": init, "seed": seed, "train": low_data[size], "eval_pairs": eval_pairs, "lm_state": lm_state,
             "keep": size in keep, **settings[f"{size} {init}"]} for size, init, seed in keys]
    return dict(zip(keys, run_parallel(fine_tune, jobs, processes=processes, desc="fine-tuning runs")))


def lm_init_sweep(processes=2):
    """Learning rate and steps for each (size, init), chosen by validation BLEU over the same grid and seeds."""
    from ..translation import target_vocab

    torch.set_num_threads(1)                                        # as in the notebook: the same LM
    data = lm_init_data()
    lm, _ = target_lm(data["monolingual"], target_vocab())
    lm_state = {k: v.detach().clone() for k, v in lm.state_dict().items()}
    keys = [(size, init, lr, seed) for size in SIZES for init in INITS for lr in SWEEP_LRS for seed in SWEEP_SEEDS]
    jobs = [{"init": init, "seed": seed, "lr": lr, "checkpoints": SWEEP_STEPS, "train": data["low_data"][size],
             "eval_pairs": data["valid"], "lm_state": lm_state} for size, init, lr, seed in keys]
    from ..compare import run_parallel

    results = run_parallel(fine_tune, jobs, processes=processes, desc="sweep runs")
    rows = [{"arm": f"{size} {init}", "lr": lr, "steps": step, "seed": seed,
             "valid_bleu": round(r["scores"][step]["bleu"], 4), "valid_exact": round(r["scores"][step]["exact"], 4)}
            for (size, init, lr, seed), r in zip(keys, results) for step in SWEEP_STEPS]
    return {"rows": rows, "settings": ["lr", "steps"], "metric": "valid_bleu", "goal": "max", "arm": "arm",
            "config": {"optimizer": "Adam, batch 64, constant rate, clip 1.0", "validation_pairs": len(data["valid"]),
                       "lm": "LSTMLanguageModel, 400 steps on 20,000 target sentences", "seeds": list(SWEEP_SEEDS)}}
