"""The course's one GPT: causal, the same weights and numbers as before it had a module of its own, a
generate that respects the context length."""
import pytest
import torch

from dltoolbox.gpt import GPT, GPTConfig


def small(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(**{"vocab_size": 11, "block_size": 8, "n_embd": 16, "n_head": 2, "n_layer": 2, **kw}))


def test_a_token_changes_no_prediction_before_it():
    model = small().eval()
    idx = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(1))
    logits, _ = model(idx)
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    after, _ = model(changed)
    assert torch.allclose(logits[:, :5], after[:, :5], atol=1e-6)
    assert not torch.allclose(logits[:, 5:], after[:, 5:], atol=1e-4)


def test_loss_is_the_cross_entropy_and_ignores_minus_100():
    model = small().eval()
    idx = torch.randint(11, (2, 6), generator=torch.Generator().manual_seed(2))
    targets = idx.roll(-1, 1)
    targets[:, -1] = -100
    logits, loss = model(idx, targets)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, :-1].flatten())
    assert torch.allclose(loss, expected)


def test_generate_appends_tokens_and_reads_at_most_block_size():
    model = small().eval()
    out = model.generate(torch.zeros(3, 2, dtype=torch.long), 12, temperature=0)
    assert out.shape == (3, 14) and out.dtype == torch.long and int(out.max()) < 11
    sampled = model.generate(torch.zeros(1, 1, dtype=torch.long), 5, generator=torch.Generator().manual_seed(0))
    again = model.generate(torch.zeros(1, 1, dtype=torch.long), 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, again)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(out, 1, temperature=-1)


def test_a_sequence_longer_than_the_block_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        small()(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        small(n_head=3)


# The summed absolute weights of each matrix of small(), built from seed 0 by the course's earlier GPT (Frozen's
# TinyGPT, commit cd2e126), on the native and the scalar CPU kernels: the module order decides the initial
# weights, so a reordering (and with it every stored training number) would show here.
EARLIER_WEIGHTS = {
    "tok_emb.weight": 131.3701, "pos_emb.weight": 92.9123, "blocks.0.attn.in_proj_weight": 120.8561,
    "blocks.0.attn.out_proj.weight": 33.6972, "blocks.0.mlp.0.weight": 124.0689, "blocks.0.mlp.2.weight": 61.9811,
    "blocks.1.attn.in_proj_weight": 116.5726, "blocks.1.attn.out_proj.weight": 31.9772,
    "blocks.1.mlp.0.weight": 127.2295, "blocks.1.mlp.2.weight": 65.1082, "head.weight": 21.0962,
}


def test_the_same_initial_weights_as_the_model_it_replaces():
    state = small().state_dict()
    assert {k: pytest.approx(float(v.abs().sum()), abs=1e-3) for k, v in state.items() if v.dim() == 2} == EARLIER_WEIGHTS


def test_lm_batches_are_random_windows_and_their_next_tokens():
    from dltoolbox.gpt import lm_batches

    stream = torch.arange(100)
    X, Y = lm_batches(stream, 8, 5, torch.Generator().manual_seed(0))
    assert X.shape == Y.shape == (5, 8) and torch.equal(Y, X + 1)
    assert torch.equal(X[:, 1:] - X[:, :-1], torch.ones(5, 7, dtype=torch.long))
