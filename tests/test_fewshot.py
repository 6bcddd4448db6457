import pytest
import torch

from dltoolbox import fewshot as fs
from dltoolbox.experiments import reuse as experiment
from dltoolbox.seeding import generator


def _data(num_classes=12, per_class=8):
    X = torch.arange(num_classes * per_class, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 16, 16).clone()
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return X, y


def test_sampler_counts_classes_and_no_query_in_support():
    X, y = _data()
    novel = list(range(6, 12))
    ep = fs.sample_episodes(X, y, novel, n_way=5, k_shot=2, n_query=3, num_episodes=50, generator=generator(0))
    assert ep.support_x.shape == (50, 10, 1, 16, 16) and ep.query_x.shape == (50, 15, 1, 16, 16)
    ids_s, ids_q = ep.support_x[:, :, 0, 0, 0].long(), ep.query_x[:, :, 0, 0, 0].long()  # pixel value = example id
    for e in range(50):
        assert set(ep.classes[e].tolist()) <= set(novel) and len(set(ep.classes[e].tolist())) == 5
        assert set(ids_s[e].tolist()).isdisjoint(ids_q[e].tolist())           # no query is in the support
        assert (torch.bincount(ep.support_y[e], minlength=5) == 2).all()
        assert (torch.bincount(ep.query_y[e], minlength=5) == 3).all()
        # labels map to the episode's classes: example id // 8 is its class
        assert torch.equal(y[ids_s[e]], ep.classes[e][ep.support_y[e]])
        assert torch.equal(y[ids_q[e]], ep.classes[e][ep.query_y[e]])


def test_sampler_base_and_novel_disjoint_and_deterministic():
    X, y = _data()
    a = fs.sample_episodes(X, y, [0, 1, 2, 3, 4], 5, 1, 1, 20, generator(3))
    b = fs.sample_episodes(X, y, [0, 1, 2, 3, 4], 5, 1, 1, 20, generator(3))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.classes, b.classes)
    assert set(a.classes.flatten().tolist()) <= {0, 1, 2, 3, 4}


@pytest.mark.parametrize("kwargs, message", [
    (dict(classes=[0, 1], n_way=5), "at least 5 classes"),
    (dict(classes=list(range(12)), n_way=5, k_shot=6, n_query=5), "K \\+ Q = 11"),
    (dict(classes=list(range(12)), n_way=0), ">= 1"),
])
def test_sampler_rejects_bad_input(kwargs, message):
    X, y = _data()
    args = dict(n_way=5, k_shot=1, n_query=1, num_episodes=2, generator=generator(0)) | kwargs
    with pytest.raises(ValueError, match=message):
        fs.sample_episodes(X, y, **args)


def test_prototype_distances_by_hand():
    support = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]]])           # class 0: (0,0),(2,0); class 1: (0,4)
    labels = torch.tensor([[0, 0, 1]])
    query = torch.tensor([[[1.0, 1.0]]])
    logits = fs.prototype_logits(support, labels, query, 2)
    # prototype 0 = (1, 0): distance² 1; prototype 1 = (0, 4): 1 + 9 = 10
    torch.testing.assert_close(logits, torch.tensor([[[-1.0, -10.0]]]))


def test_matching_logits_are_log_probabilities():
    g = torch.Generator().manual_seed(0)
    s, q = torch.randn(2, 6, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    labels = torch.tensor([[0, 0, 1, 1, 2, 2]] * 2)
    p = fs.matching_logits(s, labels, q, 3).exp().sum(-1)
    torch.testing.assert_close(p, torch.ones(2, 3), atol=1e-5, rtol=0)


def test_accuracy_ci_by_hand_and_errors():
    mean, half = fs.accuracy_ci([1.0, 0.0, 1.0, 0.0])
    assert mean == 0.5 and abs(half - 1.96 * (1 / 3) ** 0.5 / 2) < 1e-9
    with pytest.raises(ValueError, match="two episodes"):
        fs.accuracy_ci([1.0])


def test_episodic_training_learns_and_evaluators_agree_in_shape():
    torch.manual_seed(0)
    X = torch.zeros(40, 1, 16, 16)
    y = torch.arange(4).repeat_interleave(10)
    for c in range(4):                                                          # each class lights one quadrant
        X[y == c, 0, (c // 2) * 8:(c // 2) * 8 + 8, (c % 2) * 8:(c % 2) * 8 + 8] = 1.0
    X += 0.3 * torch.rand(X.shape, generator=generator(1))
    enc = fs.ConvEncoder(channels=4)
    history = fs.train_episodic(enc, X, y, [0, 1, 2, 3], n_way=4, k_shot=1, n_query=2, num_steps=40,
                                lr=1e-2, generator=generator(2))
    assert history["loss"][-1] < history["loss"][0]
    ep = fs.sample_episodes(X, y, [0, 1, 2, 3], 4, 1, 2, 8, generator(3))
    for acc in (fs.evaluate_metric(enc, ep, 4), fs.evaluate_linear_probe(enc, ep, 4, num_steps=20),
                fs.evaluate_finetune(enc, ep, 4, num_steps=3), fs.evaluate_metric(None, ep, 4)):
        assert acc.shape == (8,) and 0 <= float(acc.min()) and float(acc.max()) <= 1
    assert fs.evaluate_metric(enc, ep, 4).mean() > 0.9
    preds = fs.evaluate_finetune(enc, ep, 4, pretrained=False, num_steps=2, generator=generator(0), return_predictions=True)
    assert preds.shape == (8, 8)


def test_finetune_starts_from_a_copy_and_leaves_the_encoder_alone():
    enc = fs.ConvEncoder(channels=4)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    X, y = _data()
    ep = fs.sample_episodes(X / 100, y, list(range(12)), 3, 1, 1, 4, generator(0))
    fs.evaluate_finetune(enc, ep, 3, num_steps=3, lr=0.1)
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


def test_committed_fewshot_sweep_is_on_validation_classes_and_lets_the_classifier_train_to_convergence():
    # that the arms of each kind tried the same grid and seeds, that the table chooses from its rows and that
    # the notebook trains its choice: tests/test_sweep_registry.py
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "chapters" / "06_reuse"
    table = json.loads((root / "fewshot_sweep.json").read_text())
    assert set(table["chosen"]) == {"protonet", "matching", "classifier", "scratch", "fine-tune", "linear"}
    assert table["config"]["validation_classes"] == [400, 449]
    validation = set(experiment.VALIDATION)
    assert validation.isdisjoint(experiment.NOVEL) and validation.isdisjoint(experiment.BASE)
    steps = {r["steps"] for r in table["rows"] if r["arm"] == "classifier"}
    assert steps == set(experiment.TRAIN_STEPS) and max(experiment.TRAIN_STEPS) >= 2000, \
        "the classifier may train to convergence"


def test_run_arm_returns_per_episode_accuracies_for_its_methods():
    import numpy as np

    X, y = _data(num_classes=12, per_class=12)
    X = X / 200
    job = dict(X=X.numpy(), y=y.numpy(), train=list(range(6)), test=list(range(6, 12)), ks=(1,), episodes=4,
               arm="classifier", seed=0, lr=1e-2, steps=3,
               settings={"linear": {"lr": 0.1, "steps": 3}, "fine-tune": {"lr": 1e-2, "steps": 2}})
    out = experiment.fewshot_run_arm(job)
    assert set(out["accuracy"]) == {"centroid", "linear", "fine-tune"}
    assert all(a[1].shape == (4,) and np.all((a[1] >= 0) & (a[1] <= 1)) for a in out["accuracy"].values())
    assert out["state"] is not None and len(out["history"]["loss"]) == 3
