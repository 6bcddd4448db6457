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
    """The earlier model packed the query, key and value projections into one in_proj matrix (torch's
    MultiheadAttention); the course's attention keeps them apart, drawn as the same packed matrix."""
    state = small().state_dict()
    sums = {k: float(v.abs().sum()) for k, v in state.items() if v.dim() == 2}
    for block in ("blocks.0.attn.", "blocks.1.attn."):
        sums[block + "in_proj_weight"] = sum(sums.pop(block + f"W_{p}.weight") for p in "qkv")
        sums[block + "out_proj.weight"] = sums.pop(block + "W_o.weight")
    assert {k: pytest.approx(v, abs=1e-3) for k, v in sums.items()} == EARLIER_WEIGHTS
    assert all(float(state[f"blocks.{i}.attn.W_{p}.bias"].abs().sum()) == 0 for i in (0, 1) for p in "qkvo")


def test_the_attention_is_the_courses_and_computes_what_torchs_does():
    from dltoolbox.attention import causal_mask
    from dltoolbox.transformer import MultiHeadAttention

    block = small().blocks[0]
    assert isinstance(block.attn, MultiHeadAttention)
    reference = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([getattr(block.attn, f"W_{p}").weight for p in "qkv"]))
        reference.in_proj_bias.copy_(torch.cat([getattr(block.attn, f"W_{p}").bias for p in "qkv"]))
        reference.out_proj.load_state_dict(block.attn.W_o.state_dict())
    x = torch.randn(2, 8, 16, generator=torch.Generator().manual_seed(3))
    ours = block.attn(x, x, x, causal_mask(8))
    theirs = reference(x, x, x, attn_mask=~causal_mask(8), need_weights=False)[0]
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_windows_are_random_windows_and_their_next_tokens():
    from dltoolbox.lm import windows

    stream = torch.arange(100)
    X, Y = windows(stream, 8, 5, torch.Generator().manual_seed(0))
    assert X.shape == Y.shape == (5, 8) and torch.equal(Y, X + 1)
    assert torch.equal(X[:, 1:] - X[:, :-1], torch.ones(5, 7, dtype=torch.long))
