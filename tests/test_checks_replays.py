import numpy as np
import pytest
import torch

from dltoolbox import games, imitation
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import replays as check


def agresti_coull(k, n, z=1.96):
    n_ = n + z * z
    p = (k + z * z / 2) / n_
    half = z * np.sqrt(p * (1 - p) / n_)
    return max(0.0, p - half), min(1.0, p + half)


def improve(prior, q, beta):
    logits = np.where(prior > 0, np.log(np.maximum(prior, 1e-300)) + beta * q, -np.inf)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def safe_probs(probs, boards):
    _, _, unsafe = games.tactics(boards)
    legal = games.legal_mask(boards)
    keep = legal & ~unsafe
    keep = np.where(keep.any(axis=1, keepdims=True), keep, legal)
    out = probs * keep
    return out / out.sum(axis=1, keepdims=True)


def kl_divergence(policy_logits, reference_logits, masks):
    logp = torch.log_softmax(policy_logits.masked_fill(~masks, float("-inf")), 1)
    logq = torch.log_softmax(reference_logits.masked_fill(~masks, float("-inf")), 1)
    return torch.where(masks, logq.exp() * (logq - logp), torch.zeros_like(logp)).sum(1).mean()


def policy_gradient_loss(log_probs, moves, rewards):
    return -(rewards * log_probs.gather(1, moves[:, None])[:, 0]).mean()


def symmetric_probs(net, boards, masks):
    p = imitation.policy_probs(net, boards, masks)
    q = imitation.policy_probs(net, boards[:, :, ::-1].copy(), masks[:, ::-1].copy())[:, ::-1]
    return (p + q) / 2


def todo(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("hidden", [False, True])
def test_reference_solutions_pass(hidden, capsys):
    torch.manual_seed(0)
    net = imitation.BoardNet()
    assert check.exercise_1(agresti_coull, hidden=hidden)
    assert check.exercise_2(improve, hidden=hidden)
    assert check.exercise_3(safe_probs, hidden=hidden)
    assert check.exercise_4(kl_divergence, hidden=hidden)
    assert check.exercise_5(policy_gradient_loss, hidden=hidden)
    assert check.exercise_6(symmetric_probs, net, hidden=hidden)
    out = capsys.readouterr().out
    assert all(f"✓ Exercise 5.{k} passed" in out for k in range(1, 7))


def test_unimplemented_solutions_fail_clearly():
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_1(todo)
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_6(todo, imitation.BoardNet())


def test_wrong_interval_fails_with_the_formula_as_hint():
    def normal(k, n, z=1.96):
        p = k / n
        half = z * np.sqrt(p * (1 - p) / n)
        return p - half, p + half
    with pytest.raises(ExerciseError, match="Hint: add z²/2 wins"):
        check.exercise_1(normal)


def test_the_package_wilson_interval_is_not_the_answer():
    with pytest.raises(ExerciseError, match="course's own Wilson interval") as raised:
        check.exercise_1(imitation.wilson_interval)
    assert raised.value.kind == "package"


def test_the_visible_checks_work_without_the_hidden_references(monkeypatch):
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    torch.manual_seed(0)
    assert check.exercise_1(agresti_coull) and check.exercise_6(symmetric_probs, imitation.BoardNet())
    with pytest.raises(ExerciseError):
        check.exercise_1(imitation.wilson_interval)


def test_the_stored_results_are_the_references():
    """checks/expected.py is what ``python -m dltoolbox.classroom.hidden.replays`` writes today."""
    from dltoolbox.checks.expected import EXPECTED
    from dltoolbox.classroom.hidden import attention, memory, ngram, replays, reuse, scale
    fresh = {}
    for module in (ngram, reuse, scale, attention, replays, memory):
        fresh.update(module.visible_results())
    assert sorted(fresh) == sorted(EXPECTED)
    for key in fresh:
        assert _close(fresh[key], EXPECTED[key]), key


def _close(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and sorted(a) == sorted(b) and all(_close(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    if isinstance(a, (list, tuple)) and a and any(x is None or isinstance(x, (list, tuple)) for x in a):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=1e-6)


def test_wrong_improvements_fail():
    with pytest.raises(ExerciseError, match="beta = 0 must give back the prior"):
        check.exercise_2(lambda prior, q, beta: improve(prior, q, beta + 1))
    with pytest.raises(ExerciseError, match="illegal move"):
        check.exercise_2(lambda prior, q, beta: (lambda p: p / p.sum(1, keepdims=True))(prior + np.exp(beta * q)))


def test_unsafe_moves_left_in_fail():
    with pytest.raises(ExerciseError, match="games.tactics"):
        check.exercise_3(lambda probs, boards: probs)


def test_reversed_kl_and_flipped_sign_fail_with_hints():
    with pytest.raises(ExerciseError, match="KL\\(policy \\|\\| reference\\)"):
        check.exercise_4(lambda p, q, m: kl_divergence(q, p, m))
    with pytest.raises(ExerciseError, match="sign is flipped"):
        check.exercise_5(lambda lp, m, r: -policy_gradient_loss(lp, m, r))
    with pytest.raises(ExerciseError, match="keep the graph"):
        check.exercise_5(lambda lp, m, r: policy_gradient_loss(lp, m, r).detach())


def test_a_policy_that_is_not_symmetric_fails():
    torch.manual_seed(0)
    net = imitation.BoardNet()
    with pytest.raises(ExerciseError, match="mirror"):
        check.exercise_6(lambda n, b, m: imitation.policy_probs(n, b, m), net)


def uniform(net, boards, masks):
    """Symmetric, summing to one, zero on illegal moves, and blind to the network."""
    return masks / masks.sum(1, keepdims=True)


@pytest.mark.parametrize("hidden", [False, True])
def test_a_policy_that_ignores_the_network_fails(hidden):
    torch.manual_seed(0)
    with pytest.raises(ExerciseError, match="network"):
        check.exercise_6(uniform, imitation.BoardNet(), hidden=hidden)


def test_a_policy_that_uses_another_network_fails():
    torch.manual_seed(0)
    other = imitation.BoardNet()
    with pytest.raises(ExerciseError, match="network"):
        check.exercise_6(lambda net, b, m: symmetric_probs(other, b, m), imitation.BoardNet(), hidden=True)


def test_a_loss_whose_gradient_is_not_reinforce_fails():
    def same_value_other_gradient(log_probs, moves, rewards):
        picked = log_probs.gather(1, moves[:, None])[:, 0]
        first = log_probs[:, 0]
        return -(rewards * picked).mean() + ((rewards != 0).float() * (first - first.detach())).sum()  # same value
    with pytest.raises(ExerciseError, match="REINFORCE gradient"):
        check.exercise_5(same_value_other_gradient)
