"""Checks for the exercises of the chapter on learning from human replays."""
import numpy as np
import torch

from . import call, expect, hidden_cases, is_remote, not_the_package, passed, probe, reference, stored
from .expected import EXPECTED
from ..games import Games, legal_mask, sample_moves
from ..imitation import BoardNet, wilson_interval


VISIBLE_1 = [(340, 400), (200, 400), (0, 400), (3, 5)]  # wins, games


def exercise_1(agresti_coull, hidden=False):
    """Exercise 5.1: the Agresti-Coull interval (the package holds Wilson's, imitation.wilson_interval)."""
    cases, interval = VISIBLE_1, reference(__name__, "agresti_coull")
    if hidden:
        cases = cases + hidden_cases(__name__, "exercise_1")
    wanted = [interval(k, n) for k, n in cases] if interval is not None else stored("replays.exercise_1")
    for (k, n), want in zip(cases, wanted):
        got = call(agresti_coull, k, n, exercise="5.1")
        expect(isinstance(got, tuple) and len(got) == 2, f"agresti_coull({k}, {n}) should return a (low, high) tuple")
        low, high = (float(x) for x in got)
        expect(low <= k / n <= high,
               f"agresti_coull({k}, {n}) = ({low:.4f}, {high:.4f}) does not contain p = {k / n:.4f}",
               "the interval is centred near p, pulled towards 1/2")
        wilson = wilson_interval(k, n)
        same = abs(low - wilson[0]) < 1e-9 and abs(high - wilson[1]) < 1e-9
        not_the_package(same and abs(wilson[1] - want[1]) > 1e-6,
                        "5.1", "Wilson interval (imitation.wilson_interval)", "the Agresti-Coull interval")
        expect(abs(low - want[0]) < 1e-6 and abs(high - want[1]) < 1e-6,
               f"agresti_coull({k}, {n}) = ({low:.4f}, {high:.4f}), expected ({want[0]:.4f}, {want[1]:.4f})",
               "add z²/2 wins and z²/2 losses: n~ = n + z², p~ = (k + z²/2) / n~; "
               "then p~ ± z·sqrt(p~(1 − p~)/n~), "
               "clipped to [0, 1]")
    return passed("5.1", "your interval matches Agresti and Coull's on every case")


def _prior_and_values(seed):
    """A prior with some illegal (zero) moves, and action values, for 6 positions."""
    rng = np.random.default_rng(seed)
    prior = rng.random((6, 7)) * (rng.random((6, 7)) < 0.8)
    prior[:, 3] += 0.1
    prior /= prior.sum(1, keepdims=True)
    return prior, rng.random((6, 7))


def exercise_2(improve, hidden=False):
    """Exercise 5.2: one-step policy improvement prior * exp(beta * Q), normalised."""
    seed, more_betas = hidden_cases(__name__, "exercise_2") if hidden else (3, [])
    prior, q = _prior_and_values(seed)
    betas = [0.0, 4.0, 50.0] + more_betas
    wanted = ([hidden_cases(__name__, "improve")(prior, q, beta) for beta in betas] if hidden else
              [np.array(w) for w in EXPECTED["replays.exercise_2"]])
    for beta, want in zip(betas, wanted):
        got = np.asarray(call(improve, prior.copy(), q.copy(), beta, exercise="5.2"), dtype=float)
        expect(got.shape == prior.shape, f"expected probabilities of shape {prior.shape}, got {got.shape}")
        expect(np.all(np.isfinite(got)), f"beta={beta}: your probabilities contain NaN or inf",
               "subtract the row maximum before exponentiating")
        expect(np.allclose(got.sum(1), 1), f"beta={beta}: each row must sum to 1")
        expect(np.all(got[prior == 0] == 0), f"beta={beta}: a move the prior gives 0 (an illegal move) got probability",
               "multiply by the prior (or add its log), never add to it")
        expect(np.allclose(got, want, atol=1e-6),
               f"beta={beta}: your probabilities differ from prior * exp(beta * Q) normalised",
               "beta = 0 must give back the prior")
    return passed("5.2", "beta = 0 is the prior, large beta picks the best-valued legal move")


def _random_positions(seed, num):
    """Own-view positions after random legal play of 0 to 20 plies."""
    rng = np.random.default_rng(seed)
    games, stop, out = Games(num), rng.integers(0, 21, num), np.zeros((num, 6, 7), dtype=np.int8)
    for ply in range(21):
        out[stop == ply] = games.own_view()[stop == ply]
        games.play(np.where(games.done, 0, sample_moves(games.legal_mask() | games.done[:, None], rng)))
    return out[legal_mask(out).any(1)]


def _boards():
    """Hand-made own-view positions for exercise 5.3."""
    threat = np.zeros((6, 7), dtype=np.int8)
    threat[0, [1, 2, 3]] = -1  # the opponent threatens 0 and 4
    threat[0, [5, 6]] = 1
    trap = np.zeros((6, 7), dtype=np.int8)
    trap[0] = [0, 1, -1, 1, 0, 0, 1]
    trap[1] = [0, -1, -1, -1, 0, 0, 0]  # the opponent would win on row 1 ...
    trap[2, 2] = 1                      # ... so playing column 0 or 4 hands it over
    empty = np.zeros((6, 7), dtype=np.int8)
    return np.stack([threat, trap, empty])


def exercise_3(safe_probs, hidden=False):
    """Exercise 5.3: remove the moves that hand the opponent an immediate win."""
    boards = _boards()
    if hidden:
        boards = np.concatenate([boards, _random_positions(*hidden_cases(__name__, "exercise_3"))])
    probs = legal_mask(boards) * np.linspace(1, 2, 7)[None]
    probs = probs / probs.sum(1, keepdims=True)
    got = np.asarray(call(safe_probs, probs.copy(), boards.copy(), exercise="5.3"), dtype=float)
    want = hidden_cases(__name__, "safe")(probs, boards) if hidden else np.array(EXPECTED["replays.exercise_3"])
    expect(got.shape == probs.shape, f"expected shape {probs.shape}, got {got.shape}")
    expect(np.allclose(got.sum(1), 1), "each row must sum to 1 after removing moves", "renormalise")
    expect(got[1, 0] == 0 and got[1, 4] == 0,
           "in the trap position, columns 0 and 4 let the opponent win on the cell above but keep probability",
           "use games.tactics(boards): its third output marks those moves")
    expect(np.allclose(got, want), "your probabilities differ from the prior restricted to safe moves",
           "if every legal move is unsafe keep them all; never keep an illegal move")
    return passed("5.3", "unsafe moves removed, the rest renormalised")


def exercise_4(kl_divergence, hidden=False):
    """Exercise 5.4: KL(reference || policy) over legal moves, averaged over positions."""
    gen = torch.Generator().manual_seed(hidden_cases(__name__, "exercise_4") if hidden else 1)
    p, q = torch.randn(8, 7, generator=gen), torch.randn(8, 7, generator=gen)
    masks = torch.rand(8, 7, generator=gen) < 0.7
    masks[:, 2] = True
    got = call(kl_divergence, p.clone(), q.clone(), masks.clone(), exercise="5.4")
    expect(torch.is_tensor(got) and got.dim() == 0, "return a scalar tensor (the mean over positions)")
    expect(torch.isfinite(got), "your KL is NaN or inf", "illegal moves (0 · log 0) must contribute 0, not NaN")
    same = call(kl_divergence, p.clone(), p.clone(), masks.clone(), exercise="5.4")
    expect(abs(float(same)) < 1e-6, "KL of a distribution to itself must be 0")
    want, reversed_kl = (hidden_cases(__name__, "kl")(p, q, masks), hidden_cases(__name__, "kl")(q, p, masks)) \
        if hidden else (torch.tensor(v) for v in EXPECTED["replays.exercise_4"])
    expect(not torch.allclose(got, reversed_kl, atol=1e-5),
           "you computed KL(policy || reference); the distillation term is KL(reference || policy)",
           "weight the log-ratio by the reference's probabilities")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5,
                               msg="your KL differs from the reference (mask illegal moves before the softmax)")
    return passed("5.4", "KL(reference || policy) on the check's positions")


def _loss_and_gradient(policy_gradient_loss, logits, moves, rewards):
    """The student's loss on log_softmax(logits) and its gradient with respect to the logits."""
    logits = logits.clone().requires_grad_(True)
    got = call(policy_gradient_loss, torch.log_softmax(logits, 1), moves, rewards, exercise="5.5")
    out = {"scalar": torch.is_tensor(got) and got.dim() == 0, "requires_grad": bool(getattr(got, "requires_grad", 0))}
    if out["scalar"] and out["requires_grad"]:
        out.update(loss=got.detach(), grad=torch.autograd.grad(got, logits)[0])
    return out


def exercise_5(policy_gradient_loss, hidden=False):
    """Exercise 5.5: the REINFORCE loss -mean(reward * log pi(move))."""
    gen = torch.Generator().manual_seed(hidden_cases(__name__, "exercise_5") if hidden else 2)
    logits = torch.randn(10, 7, generator=gen)
    moves = torch.randint(7, (10,), generator=gen)
    rewards = torch.tensor([1.0, -1.0, 0.0, 1.0, 1.0, -1.0, -1.0, 1.0, 0.0, 1.0])
    got = probe(_loss_and_gradient, policy_gradient_loss, logits, moves, rewards, exercise="5.5")
    log_probs = torch.log_softmax(logits, 1)
    want = -(rewards * log_probs.gather(1, moves[:, None])[:, 0]).mean()
    expect(got["scalar"], "return a scalar tensor")
    expect(got["requires_grad"], "the loss must keep the graph (do not call .item() or .detach())")
    loss = got["loss"]
    expect(not torch.allclose(loss, -want), "the sign is flipped: minimising your loss would make winning moves rarer",
           "the loss is minus the reward-weighted log-probability")
    expect(isinstance(loss, torch.Tensor) and loss.shape == want.shape and torch.allclose(loss, want, atol=1e-6),
           "your loss differs from -mean(reward * log pi(move))", "average over the positions, minus sign in front")
    grad = got["grad"]
    expect(isinstance(grad, torch.Tensor) and grad.shape == logits.shape and float(grad[2].abs().sum()) == 0,
           "a drawn game (reward 0) must give no gradient", "the reward multiplies the log-probability")
    reference_logits = logits.clone().requires_grad_(True)
    want_grad = torch.autograd.grad(
        -(rewards * torch.log_softmax(reference_logits, 1).gather(1, moves[:, None])[:, 0]).mean(), reference_logits)[0]
    expect(torch.allclose(grad, want_grad, atol=1e-6), "the gradient of your loss is not the REINFORCE gradient",
           "build the loss from log_probs with tensor operations only, so that autograd sees all of it")
    return passed("5.5", "winning moves become likelier, losing ones rarer")


def _own_net():
    """A small network of the checker's own (seeded), so that the policy can be compared with its weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        net = BoardNet(num_hiddens=32)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(3.0)  # sharper than at initialisation: far from uniform, far from symmetric
    return net.eval()


def exercise_6(symmetric_probs, net, hidden=False):
    """Exercise 5.6: a policy made exactly left-right symmetric by averaging over the mirror image.

    The answer is compared with what the network's weights give: on the checker's own network (whose
    results are stored, or computed by the instructor's reference) and, with the instructor's reference,
    on the network given. Under the grader the network given lives in the student's kernel: only the
    checker's own network is used.
    """
    boards = _random_positions(hidden_cases(__name__, "exercise_6") if hidden else 0, 12)
    masks = legal_mask(boards)
    symmetric = reference(__name__, "symmetric")
    own = _own_net()
    cases = [(own, boards, masks, symmetric(own, boards, masks) if symmetric is not None else
              np.array(stored("replays.exercise_6")))]
    if not is_remote(net):
        cases.append((net, boards, masks, symmetric(net, boards, masks) if symmetric is not None else None))
    for model, b, m, want in cases:
        got = np.asarray(call(symmetric_probs, model, b.copy(), m.copy(), exercise="5.6"), dtype=float)
        expect(got.shape == m.shape, f"expected shape {m.shape}, got {got.shape}")
        expect(np.allclose(got.sum(1), 1) and np.all(got[~m] == 0), "rows must sum to 1 with 0 on illegal moves")
        mirrored = np.asarray(call(symmetric_probs, model, b[:, :, ::-1].copy(), m[:, ::-1].copy(),
                                   exercise="5.6"), dtype=float)
        expect(mirrored.shape == got.shape and np.allclose(mirrored[:, ::-1], got, atol=1e-6),
               "mirroring the board should mirror your probabilities exactly",
               "average the net's probabilities on the board and, flipped back, on its mirror image")
        if want is not None:
            expect(np.allclose(got, want, atol=1e-5),
                   "your probabilities are not the network's, averaged over the board and its mirror image",
                   "use the network you are given: imitation.policy_probs(net, boards, masks), and the same on "
                   "the mirrored boards, flipped back")
    return passed("5.6", "the policy is now exactly symmetric")
