"""Few-shot learning in N-way K-shot episodes: a sampler, a small conv encoder, prototypical and matching
networks, and the baselines they are compared with (pixels, scratch, fine-tuning, a frozen encoder with a
linear head), all evaluated over many episodes at once with 95% confidence intervals.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, vmap

from .progress import progress


@dataclass
class Episodes:
    """A batch of E episodes: support (E, N*K, 1, H, W) and query (E, N*Q, 1, H, W) with labels 0..N-1."""
    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: torch.Tensor  # (E, N) the original class ids, in label order

    def __len__(self):
        return self.support_x.shape[0]

    def slice(self, start, stop):
        """Episodes start..stop-1."""
        return Episodes(*(t[start:stop] for t in (self.support_x, self.support_y, self.query_x,
                                                  self.query_y, self.classes)))


def sample_episodes(X, y, classes, n_way, k_shot, n_query, num_episodes, generator):
    """Draw `num_episodes` N-way K-shot episodes from the listed `classes` of (X, y), class-major order."""
    classes = torch.as_tensor(classes, dtype=torch.int64)
    if n_way < 1 or k_shot < 1 or n_query < 1 or num_episodes < 1:
        raise ValueError(f"n_way, k_shot, n_query, num_episodes must be >= 1, got {n_way}, {k_shot}, {n_query}, {num_episodes}")
    if len(classes) < n_way:
        raise ValueError(f"{n_way}-way episodes need at least {n_way} classes, got {len(classes)}")
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=int(classes.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    members = {c: order[starts[c]:starts[c] + counts[c]] for c in classes.tolist()}
    smallest = min(len(m) for m in members.values())
    if smallest < k_shot + n_query:
        raise ValueError(f"a class has only {smallest} examples; K + Q = {k_shot + n_query} needed")
    support, query, chosen = [], [], []
    for _ in range(num_episodes):
        picked = classes[torch.randperm(len(classes), generator=generator)[:n_way]]
        s, q = [], []
        for c in picked.tolist():
            idx = members[c][torch.randperm(len(members[c]), generator=generator)[:k_shot + n_query]]
            s.append(idx[:k_shot])
            q.append(idx[k_shot:])
        support.append(torch.cat(s))
        query.append(torch.cat(q))
        chosen.append(picked)
    support, query = torch.stack(support), torch.stack(query)          # (E, N*K), (E, N*Q)
    labels = torch.arange(n_way)
    return Episodes(X[support], labels.repeat_interleave(k_shot).expand(num_episodes, -1).clone(),
                    X[query], labels.repeat_interleave(n_query).expand(num_episodes, -1).clone(),
                    torch.stack(chosen))


class ConvEncoder(nn.Module):
    """Three 3×3 stride-2 conv → ReLU blocks; a 16×16 image becomes a (C*2*2)-dim feature vector."""

    def __init__(self, channels=32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.out_dim = channels * 4

    def forward(self, x):
        """(B, 1, 16, 16) images → (B, D) features."""
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.relu(conv(x))
        return x.flatten(1)


def class_means(features, labels, n_way):
    """Per-episode class means: features (E, M, D), labels (E, M) in 0..N-1 → (E, N, D)."""
    onehot = F.one_hot(labels, n_way).float()                           # (E, M, N)
    return onehot.transpose(1, 2) @ features / onehot.sum(1).unsqueeze(-1)


def prototype_logits(support, support_y, query, n_way):
    """Prototypical networks: minus squared Euclidean distance from each query to each class mean (E, Q, N)."""
    protos = class_means(support, support_y, n_way)
    return -torch.cdist(query, protos).pow(2)


def matching_logits(support, support_y, query, n_way):
    """Matching networks (no context embedding): log of the cosine-attention mass on each class (E, Q, N)."""
    sims = F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).transpose(1, 2)  # (E, Q, M)
    attention = torch.softmax(sims * 10.0, dim=-1)
    return torch.log(attention @ F.one_hot(support_y, n_way).float() + 1e-8)


def accuracy_ci(correct):
    """Mean and 95% confidence half-width (normal approximation) of per-episode accuracies."""
    correct = torch.as_tensor(correct, dtype=torch.float64).flatten()
    if len(correct) < 2:
        raise ValueError("need at least two episodes for a confidence interval")
    return correct.mean().item(), 1.96 * correct.std(unbiased=True).item() / math.sqrt(len(correct))


def _result(predictions, episodes, return_predictions):
    """Predicted labels (E, N*Q) if asked, else per-episode query accuracy (E,)."""
    if return_predictions:
        return predictions
    return (predictions == episodes.query_y).float().mean(-1)


def _embed(encoder, x):
    """Encode (E, M, 1, H, W) episode images with one encoder → (E, M, D)."""
    return encoder(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def evaluate_metric(encoder, episodes, n_way, logits_fn=prototype_logits, chunk=200, return_predictions=False):
    """Per-episode query accuracy (E,) (or predictions) of a nearest-class rule on encoder features (encoder=None: pixels)."""
    accs = []
    with torch.no_grad():
        for start in range(0, len(episodes), chunk):
            ep = episodes.slice(start, start + chunk)
            if encoder is None:
                s, q = ep.support_x.flatten(2), ep.query_x.flatten(2)
            else:
                s, q = _embed(encoder, ep.support_x), _embed(encoder, ep.query_x)
            pred = logits_fn(s, ep.support_y, q, n_way).argmax(-1)
            accs.append(pred)
    return _result(torch.cat(accs), episodes, return_predictions)


def train_episodic(encoder, X, y, classes, n_way=20, k_shot=1, n_query=5, num_steps=300, lr=1e-3,
                   logits_fn=prototype_logits, generator=None, desc="episodic training"):
    """Train `encoder` on episodes from `classes` with a metric rule (protonets by default); returns history."""
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    history = {"loss": [], "accuracy": []}
    n_way = min(n_way, len(torch.as_tensor(classes)))
    episodes = sample_episodes(X, y, classes, n_way, k_shot, n_query, num_steps, generator)
    for step in progress(range(num_steps), desc=desc):
        ep = episodes.slice(step, step + 1)
        logits = logits_fn(_embed(encoder, ep.support_x), ep.support_y, _embed(encoder, ep.query_x), n_way)
        loss = F.cross_entropy(logits.flatten(0, 1), ep.query_y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["loss"].append(loss.item())
        history["accuracy"].append((logits.argmax(-1) == ep.query_y).float().mean().item())
    return history


def pretrain_classifier(encoder, X, y, num_classes, num_steps=300, batch_size=128, lr=1e-3, generator=None,
                        desc="pretraining"):
    """Ordinary supervised pretraining of `encoder` + a linear head on labels 0..num_classes-1; returns history."""
    head = nn.Linear(encoder.out_dim, num_classes)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    history = {"loss": [], "accuracy": []}
    for _ in progress(range(num_steps), desc=desc):
        idx = torch.randint(len(X), (batch_size,), generator=generator)
        logits = head(encoder(X[idx]))
        loss = F.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["loss"].append(loss.item())
        history["accuracy"].append((logits.argmax(-1) == y[idx]).float().mean().item())
    return history


def linear_probe(support, support_y, query, n_way, num_steps=100, lr=0.1, weight_decay=1e-3):
    """A logistic-regression head per episode on fixed features (E, M, D), trained full-batch → query logits."""
    E, _, D = support.shape
    W = torch.zeros(E, D, n_way, requires_grad=True)
    b = torch.zeros(E, 1, n_way, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(num_steps):
            loss = F.cross_entropy((support @ W + b).flatten(0, 1), support_y.flatten(), reduction="sum") / E
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (query @ W + b).detach()


def evaluate_linear_probe(encoder, episodes, n_way, num_steps=100, lr=0.1, chunk=200, return_predictions=False):
    """Per-episode query accuracy (E,) (or predictions) of a linear head on frozen encoder features (encoder=None: pixels)."""
    accs = []
    for start in range(0, len(episodes), chunk):
        ep = episodes.slice(start, start + chunk)
        with torch.no_grad():
            s = ep.support_x.flatten(2) if encoder is None else _embed(encoder, ep.support_x)
            q = ep.query_x.flatten(2) if encoder is None else _embed(encoder, ep.query_x)
        s, q = F.normalize(s, dim=-1), F.normalize(q, dim=-1)
        pred = linear_probe(s, ep.support_y, q, n_way, num_steps, lr).argmax(-1)
        accs.append(pred)
    return _result(torch.cat(accs), episodes, return_predictions)


def _random_like(params, copies, generator):
    """Fresh PyTorch-default-style uniform(±1/sqrt(fan_in)) parameters, `copies` independent sets."""
    out = {}
    for name, p in params.items():
        fan_in = p[0].numel() if p.dim() > 1 else None
        if fan_in is None:  # a bias: its fan-in is that of the weight beside it
            fan_in = params[name.replace("bias", "weight")][0].numel()
        bound = 1 / math.sqrt(fan_in)
        out[name] = (torch.rand((copies,) + p.shape, generator=generator) * 2 - 1) * bound
    return out


class _Net(nn.Module):
    """Encoder + linear head, used functionally so that many episodes train as independent nets at once."""

    def __init__(self, encoder, n_way):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, n_way)

    def forward(self, x):
        return self.head(self.encoder(x))


def evaluate_finetune(encoder, episodes, n_way, pretrained=True, num_steps=10, lr=3e-3, chunk=600,
                      generator=None, return_predictions=False):
    """Per-episode accuracy (E,) (or predictions) of training encoder + head on each support set: fine-tuning a copy of the
    pretrained `encoder` (pretrained=True, head starts at zero) or the same architecture from scratch."""
    net = _Net(encoder, n_way)
    base = {k: v.detach() for k, v in net.named_parameters()}
    forward = vmap(lambda p, x: functional_call(net, p, (x,)))
    accs = []
    for start in range(0, len(episodes), chunk):
        ep = episodes.slice(start, start + chunk)
        E = len(ep)
        if pretrained:
            params = {k: v.expand((E,) + v.shape).clone() for k, v in base.items()}
            params["head.weight"].zero_()
            params["head.bias"].zero_()
        else:
            params = _random_like(base, E, generator)
        params = {k: v.requires_grad_() for k, v in params.items()}
        opt = torch.optim.Adam(params.values(), lr=lr)
        for _ in range(num_steps):
            logits = forward(params, ep.support_x)                          # (E, N*K, N)
            loss = F.cross_entropy(logits.flatten(0, 1), ep.support_y.flatten(), reduction="sum") / E
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = forward(params, ep.query_x).argmax(-1)
        accs.append(pred)
    return _result(torch.cat(accs), episodes, return_predictions)
