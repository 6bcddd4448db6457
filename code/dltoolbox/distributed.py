"""Data parallelism on torch.distributed: one training function for one process, several local processes,
or several nodes, with no change to the code.

Each of the W processes (ranks) holds a full copy of the model. Every step, all ranks draw the same global
batch, each takes its 1/W share, computes gradients on it, and DistributedDataParallel averages the
gradients across ranks (an all-reduce) before the optimiser steps — so every copy takes the same step a
single process would take on the whole batch. Launch it with ``torchrun``::

    python -m dltoolbox.distributed --steps 20                                    # one process
    torchrun --standalone --nproc-per-node 2 -m dltoolbox.distributed --steps 20  # 2 processes, this machine
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        --rdzv-id course -m dltoolbox.distributed --steps 20                      # 2 nodes x 8 GPUs

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; the backend follows the device: NCCL when CUDA GPUs are
present (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPUs.
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from . import lm, scaling


OPTIMIZERS = {
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
}


def setup():
    """Join the process group torchrun describes (or run alone). Returns (rank, world_size, device)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world_size}")
    cuda = torch.cuda.is_available() and os.environ.get("DLTOOLBOX_DEVICE", "") != "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world_size, device


def train(num_steps=20, global_batch=64, width=32, seed=0, lr=3e-3, block_size=32, optimizer="adamw", corpus=None):
    """Train the chapter's character transformer data-parallel over however many processes are running.

    The global batch is the same whatever the number of processes, so 1 and W processes take the same
    steps. `optimizer`: "adamw" (as the chapter's family trains) or "sgd" (momentum 0.9, whose step is
    proportional to the gradient, so rounding differences in the all-reduce stay rounding-sized; Adam
    divides by the gradient's running size and turns a gradient that is pure rounding noise into a full
    step: see the chapter). Returns (model, stats): the trained model (unwrapped) and {"world_size",
    "backend", "device", "loss", "seconds", "tokens_per_second"}, timed from the second step on (the first
    includes set-up).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if global_batch < 1 or global_batch % world_size:
        raise ValueError(f"global batch {global_batch} does not split evenly over {world_size} processes")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    rank, world_size, device = setup()
    torch.set_num_threads(int(os.environ.get("DLTOOLBOX_THREADS", "1")))
    corpus = corpus or scaling.char_corpus()
    config = scaling.RunConfig(width=width, seed=seed, lr=lr, block_size=block_size, batch_size=global_batch)
    model = scaling.make_model(config, len(corpus.vocab)).to(device)   # same seed: the same start on every rank
    wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world_size > 1 else model
    optimizer = OPTIMIZERS[optimizer](model.parameters(), lr)
    generator = torch.Generator().manual_seed(1000 + seed)          # the same global batches on every rank
    timer = {}

    def my_share():
        X, Y = lm.windows(corpus.train[:-1], block_size, global_batch, generator)  # the family's draws (scaling.train_run)
        return X.chunk(world_size)[rank].to(device), Y.chunk(world_size)[rank].to(device)

    def start_timer(step, _):  # after the first step, which includes set-up
        if step == 1:
            if world_size > 1:
                dist.barrier()
            timer["start"] = time.perf_counter()

    # DDP all-reduces (averages) the gradients in the loop's backward pass
    losses = lm.fit(wrapped, my_share, optimizer, num_steps, evaluate=start_timer)
    if device.type == "cuda":
        torch.cuda.synchronize()
    if world_size > 1:
        dist.barrier()
    seconds = time.perf_counter() - timer["start"] if num_steps > 1 else float("nan")
    timed_tokens = (num_steps - 1) * global_batch * block_size
    stats = {"world_size": world_size, "backend": dist.get_backend() if dist.is_initialized() else "none",
             "device": str(device), "loss": losses[-1], "seconds": seconds,
             "tokens_per_second": timed_tokens / seconds if seconds == seconds and seconds > 0 else float("nan")}
    return model, stats


def max_abs_difference(state_a, state_b):
    """The largest absolute difference between two state dicts with the same keys and shapes."""
    if state_a.keys() != state_b.keys():
        raise ValueError(f"different parameters: {sorted(set(state_a) ^ set(state_b))}")
    return max((state_a[k].float().cpu() - state_b[k].float().cpu()).abs().max().item() for k in state_a)


def main(argv=None):
    """Train data-parallel with each optimiser named; rank 0 writes OUT/<optimizer>/stats.json and params.pt."""
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.distributed", description=main.__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--global-batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--optimizer", nargs="+", choices=sorted(OPTIMIZERS), default=["adamw"],
                        help="one run per optimiser named, in turn, from the same start")
    parser.add_argument("--out", type=Path, help="folder for the runs' stats and parameters")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is not timed)")
    corpus = scaling.char_corpus()
    for name in args.optimizer:
        model, stats = train(num_steps=args.steps, global_batch=args.global_batch, width=args.width,
                             seed=args.seed, lr=args.lr, optimizer=name, corpus=corpus)
        if (dist.get_rank() if dist.is_initialized() else 0) == 0:
            print(json.dumps({"optimizer": name, **stats}))
            if args.out:
                folder = args.out / name
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "stats.json").write_text(json.dumps(stats) + "\n")
                torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "params.pt")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
