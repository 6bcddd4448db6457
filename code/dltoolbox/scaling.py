"""Scale on a laptop: training compute (≈ 6·N·D), FLOPs counted by PyTorch, a family of small character
transformers, the scaling law L(N) = a·N^(−α) + c fitted with SciPy, and the compute-optimal size.

Kaplan et al. (2020) count N without the embedding tables (a lookup costs no multiply-adds) and estimate
training compute as C ≈ 6·N·D FLOPs for D training tokens: 2·N per token for the forward pass (one
multiply and one add per weight) and 4·N for the backward pass (the gradients with respect to the
activations and to the weights). :func:`measured_flops` checks that estimate against the matrix
multiplications PyTorch actually runs.
"""
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
from scipy import optimize
from torch.utils.flop_counter import FlopCounterMode

from . import gpt, lm, ngram


def non_embedding_parameters(model):
    """Parameters outside nn.Embedding tables: the N of Kaplan et al.'s scaling laws."""
    embedded = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if id(p) not in embedded)


def training_flops(n_params, n_tokens):
    """The standard estimate of training compute, C ≈ 6·N·D FLOPs (forward 2ND, backward 4ND)."""
    if n_params < 0 or n_tokens < 0:
        raise ValueError(f"N and D must be non-negative, got N={n_params}, D={n_tokens}")
    return 6 * n_params * n_tokens


def measured_flops(model, inputs, targets):
    """FLOPs of one training step (forward + backward) as PyTorch's FlopCounterMode counts them.

    Returns {"forward", "backward", "total", "weights", "attention"}: the counter sees matrix multiplications,
    not element-wise operations. "weights" are the products with a weight matrix (matrix-matrix products,
    what 6·N·D counts); "attention" the batched products between activations (each head's query-key scores
    and its weighted sum of values), work that belongs to no weight and grows with the context length.
    """
    totals = {"forward": 0, "backward": 0, "weights": 0, "attention": 0}
    for part in ("forward", "backward"):
        counter = FlopCounterMode(display=False)
        with counter:
            if part == "forward":
                _, loss = model(inputs, targets)
            else:
                loss.backward()
        totals[part] = counter.get_total_flops()
        for op, flops in counter.get_flop_counts()["Global"].items():
            totals["attention" if "bmm" in str(op) else "weights"] += flops
    model.zero_grad(set_to_none=True)
    return {**totals, "total": totals["forward"] + totals["backward"]}


def attention_flops(n_layer, n_ctx, width, tokens):
    """Kaplan et al.'s context term of training compute: 2·n_layer·n_ctx·d FLOPs per token forward, ×3 with
    the backward pass. A causal model needs only the earlier half of each query's scores; a dense product
    computes all n_ctx, so it runs twice this."""
    return 3 * 2 * n_layer * n_ctx * width * tokens


# --- the data: Bierce's Devil's Dictionary as characters ---------------------------------------------

@dataclass
class CharCorpus:
    """A character corpus split into train / validation / test id streams (contiguous, in that order)."""
    vocab: list
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


def char_corpus(name="devil", valid_fraction=0.05, test_fraction=0.05):
    """The shipped corpus as character ids: the first 90% to train on, then validation, then test."""
    if not (0 < valid_fraction < 0.5 and 0 < test_fraction < 0.5):
        raise ValueError(f"fractions must be in (0, 0.5), got {valid_fraction}, {test_fraction}")
    vocab, ids = lm.char_ids(ngram.load_corpus(name))
    n_test, n_valid = int(len(ids) * test_fraction), int(len(ids) * valid_fraction)
    n_train = len(ids) - n_valid - n_test
    return CharCorpus(vocab, ids[:n_train], ids[n_train:n_train + n_valid], ids[n_train + n_valid:])


# --- the model family and one training run ------------------------------------------------------------

@dataclass
class RunConfig:
    """One member of the family and its training budget (the same budget for every width)."""
    width: int
    n_layer: int = 2
    n_head: int = 4
    block_size: int = 32
    batch_size: int = 32
    num_steps: int = 250
    lr: float = 3e-3
    warmup: int = 25
    seed: int = 0
    eval_every: int = 25
    tokens_per_step: int = field(init=False)

    def __post_init__(self):
        if self.width < 1 or self.width % self.n_head:
            raise ValueError(f"width must be a positive multiple of n_head={self.n_head}, got {self.width}")
        if self.num_steps < 1 or self.eval_every < 1:
            raise ValueError("num_steps and eval_every must be >= 1")
        self.tokens_per_step = self.batch_size * self.block_size


def make_model(config, vocab_size):
    """The course's GPT (its small causal transformer) of the given width and depth."""
    torch.manual_seed(config.seed)
    cfg = gpt.GPTConfig(vocab_size=vocab_size, block_size=config.block_size, n_embd=config.width,
                        n_head=config.n_head, n_layer=config.n_layer)
    return gpt.GPT(cfg)


def train_run(config, corpus, show_progress=False, eval_stream="valid"):
    """Train one model on random windows of the training text with linear warm-up then a constant rate, in
    the course's loop (:func:`dltoolbox.lm.fit`).

    Held-out loss is measured every `eval_every` steps, so the run traces loss against tokens seen (a
    constant rate keeps an early checkpoint close to what a shorter run would reach). Returns a plain dict:
    N (non-embedding parameters), the checkpoints' tokens and held-out losses (nats), seconds, config.
    """
    torch.set_num_threads(1)
    model = make_model(config, len(corpus.vocab))
    held_out = getattr(corpus, eval_stream)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / config.warmup))
    gen = torch.Generator().manual_seed(1000 + config.seed)
    tokens, losses = [], []
    train = corpus.train[:-1]  # no window ends at the last id: the draws the chapter's sweep table was made with

    def checkpoint(step, _):
        tokens.append(step * config.tokens_per_step)
        losses.append(lm.held_out_loss(model, held_out, config.block_size))

    start = time.perf_counter()
    lm.fit(model, lambda: lm.windows(train, config.block_size, config.batch_size, gen), opt,
           config.num_steps, sched, evaluate=checkpoint, every=config.eval_every,
           desc=f"width {config.width}" if show_progress else None)
    seconds = time.perf_counter() - start
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"width {config.width}, seed {config.seed}: the loss diverged ({losses[-1]})")
    return {"N": non_embedding_parameters(model), "parameters": sum(p.numel() for p in model.parameters()),
            "tokens": tokens, "loss": losses, "seconds": seconds, "config": asdict(config)}


# --- fitting the law ---------------------------------------------------------------------------------

def power_law(N, a, alpha, c):
    """L(N) = a·N^(−α) + c."""
    return a * np.power(N, -alpha) + c


def fit_power_law(N, L, constant=True):
    """Least-squares fit of L(N) = a·N^(−α) + c (scipy.optimize.curve_fit); returns a, alpha, c and alpha_se.

    `constant=False` fits Kaplan et al.'s form L(N) = a·N^(−α) (c = 0), a straight line in log-log axes,
    whose α is well determined by a few points; with c the fit needs curvature to tell c from α.
    """
    N, L = np.asarray(N, dtype=float), np.asarray(L, dtype=float)
    if N.shape != L.shape or N.ndim != 1 or len(N) < (4 if constant else 2):
        raise ValueError(f"need at least {4 if constant else 2} (N, L) points of the same length, "
                         f"got {N.shape} and {L.shape}")
    if (N <= 0).any() or not np.isfinite(L).all() or (not constant and (L <= 0).any()):
        raise ValueError("N must be positive and L finite (and positive without a constant)")
    scale = N.min()  # fit in units of the smallest model, so a starts near the loss gap
    if constant:
        guess = [max(L[0] - L[-1], 1e-3) * 2, 0.3, max(L.min() - 0.1, 0.0)]
        params, cov = optimize.curve_fit(lambda n, a, alpha, c: power_law(n, a, alpha, c), N / scale, L,
                                         p0=guess, bounds=([0, 0, 0], [np.inf, 5, np.inf]), maxfev=20000)
        a, alpha, c = params
    else:
        params, cov = optimize.curve_fit(lambda n, a, alpha: power_law(n, a, alpha, 0.0), N / scale, L,
                                         p0=[L[0], 0.05], bounds=([0, 0], [np.inf, 5]), maxfev=20000)
        (a, alpha), c = params, 0.0
    return {"a": float(a * scale ** alpha), "alpha": float(alpha), "c": float(c),
            "alpha_se": float(np.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) else float("nan")}


def loss_at_tokens(run, n_tokens):
    """A run's held-out loss after `n_tokens` training tokens, interpolated linearly in log(tokens).

    None outside the checkpoints the run recorded (no extrapolation).
    """
    tokens, losses = np.asarray(run["tokens"], dtype=float), np.asarray(run["loss"], dtype=float)
    if n_tokens < tokens[0] or n_tokens > tokens[-1]:
        return None
    return float(np.interp(math.log(n_tokens), np.log(tokens), losses))


def compute_optimal(runs, budget, min_tokens=0):
    """For a compute budget C (FLOPs), each size's loss when it spends C on D = C / (6N) tokens, and the best.

    `runs`: dicts from :func:`train_run` (one per size, or several seeds of a size, which are averaged).
    Returns {"budget", "losses": {N: loss or None}, "best_N"}; sizes whose checkpoints do not reach D (or
    start after it, or would need a checkpoint before `min_tokens`, e.g. inside the warm-up) get None and
    take no part.
    """
    by_size = {}
    for run in runs:
        by_size.setdefault(run["N"], []).append(run)
    losses = {}
    for N, group in sorted(by_size.items()):
        D = budget / (6 * N)
        values = [loss_at_tokens(r, D) if D >= min_tokens else None for r in group]
        losses[N] = None if any(v is None for v in values) else float(np.mean(values))
    candidates = {N: v for N, v in losses.items() if v is not None}
    if len(candidates) < 2:
        raise ValueError(f"budget {budget:.3g} FLOPs: fewer than 2 sizes have a checkpoint at D = C/(6N)")
    return {"budget": budget, "losses": losses, "best_N": min(candidates, key=candidates.get)}


def loss_surface(N, D, E, A, alpha, B, beta):
    """Hoffmann et al.'s form L(N, D) = E + A·N^(−α) + B·D^(−β): model-limited plus data-limited terms."""
    return E + A * np.power(N, -alpha) + B * np.power(D, -beta)


def fit_loss_surface(N, D, L):
    """Fit L(N, D) = E + A·N^(−α) + B·D^(−β) to (N, D, L) checkpoints; returns the five parameters."""
    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    if not (N.shape == D.shape == L.shape) or len(N) < 6:
        raise ValueError("need at least 6 (N, D, L) points of the same length")
    n0, d0 = N.min(), D.min()  # fit in units of the smallest N and D
    guess = [max(L.min() - 0.2, 0.0), 1.0, 0.3, 1.0, 0.3]
    (E, A, alpha, B, beta), _ = optimize.curve_fit(
        lambda x, E, A, alpha, B, beta: loss_surface(x[0], x[1], E, A, alpha, B, beta),
        np.stack([N / n0, D / d0]), L, p0=guess, bounds=([0, 0, 0, 0, 0], [np.inf, np.inf, 3, np.inf, 3]),
        maxfev=50000)
    return {"E": float(E), "A": float(A * n0 ** alpha), "alpha": float(alpha), "B": float(B * d0 ** beta),
            "beta": float(beta)}


def optimal_size(surface, budget):
    """The N that minimises the fitted L(N, D) at compute C = 6·N·D, and its D (closed form, Hoffmann et al.)."""
    a, b = surface["alpha"], surface["beta"]
    G = (a * surface["A"] / (b * surface["B"])) ** (1 / (a + b))
    N = G * (budget / 6) ** (b / (a + b))
    return {"N": float(N), "D": float(budget / (6 * N))}


# --- what landmark systems cost --------------------------------------------------------------------

# Every assumption of the accounting, stated once. Sustained rates are what a training run gets, not the
# chip's peak; board power is the accelerator's alone (no host, cooling or networking).
ASSUMPTIONS = {
    "sustained FLOP/s per GPU, 2014-2015": 1e12,
    "sustained FLOP/s per accelerator, 2017 and later": 3e13,
    "board power per accelerator (W), a V100's": 300,
    "power per laptop CPU core (W)": 10,
}


def account(row, assumptions=ASSUMPTIONS):
    """Fill in a run's FLOPs, device-days and energy (kWh), each with how it was obtained.

    FLOPs: reported, else 6·N·D, else device-days × the era's sustained rate. Device-days: reported, else
    FLOPs / sustained rate. Energy: device-days × 24 h × board power (CPU cores: per-core power).
    """
    out = dict(row)
    rate = assumptions["sustained FLOP/s per GPU, 2014-2015"] if row.get("era") == 2014 else \
        assumptions["sustained FLOP/s per accelerator, 2017 and later"]
    if row.get("flops") is not None:
        out["flops_from"] = row.get("flops_from", "reported")
    elif row.get("N") is not None and row.get("D") is not None:
        out["flops"], out["flops_from"] = training_flops(row["N"], row["D"]), "6ND"
    elif row.get("days") is not None:
        out["flops"], out["flops_from"] = row["devices"] * row["days"] * 86400 * rate, "device-days x rate"
    else:
        raise ValueError(f"{row.get('system')}: needs flops, N and D, or devices and days")
    if row.get("days") is not None:
        out["device_days"], out["days_from"] = row["devices"] * row["days"], row.get("days_from", "reported")
    else:
        out["device_days"], out["days_from"] = out["flops"] / rate / 86400, "FLOPs / rate"
    watts = assumptions["power per laptop CPU core (W)"] if row.get("device") == "CPU core" else \
        assumptions["board power per accelerator (W), a V100's"]
    out["energy_kWh"] = out["device_days"] * 24 * watts / 1000
    return out
