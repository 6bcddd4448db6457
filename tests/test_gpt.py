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


def test_the_same_weights_as_the_model_it_replaces():
    """Module order decides the initial weights: these sums pin it, so a reordering is seen."""
    state = small().state_dict()
    assert list(state)[:4] == ["tok_emb.weight", "pos_emb.weight", "blocks.0.ln1.weight", "blocks.0.ln1.bias"]
    assert round(float(state["tok_emb.weight"].sum()), 4) == round(float(_reference_sum()), 4)


def _reference_sum():
    torch.manual_seed(0)
    return torch.nn.Embedding(11, 16).weight.sum()
