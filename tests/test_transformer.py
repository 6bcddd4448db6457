import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dltoolbox import transformer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest (and the same everywhere) on one CPU thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(**kwargs):
    torch.manual_seed(0)
    return transformer.Transformer(src_vocab_size=11, tgt_vocab_size=13, num_hiddens=16, num_heads=2,
                                   num_layers=2, ffn_hiddens=32, max_len=64, **kwargs)


def test_multi_head_attention_matches_torch_reference():
    torch.manual_seed(0)
    mine = transformer.MultiHeadAttention(num_hiddens=8, num_heads=2)
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mine.W_q.weight, mine.W_k.weight, mine.W_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mine.W_q.bias, mine.W_k.bias, mine.W_v.bias]))
        ref.out_proj.weight.copy_(mine.W_o.weight)
        ref.out_proj.bias.copy_(mine.W_o.bias)
    q, kv = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
    keep = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] + [False] * 5])  # (B, S)
    out = mine(q, kv, kv, keep[:, None, None, :])
    expected, weights = ref(q, kv, kv, key_padding_mask=~keep)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(mine.weights.mean(1), weights)
    with pytest.raises(ValueError, match="divisible"):
        transformer.MultiHeadAttention(10, 3)


def test_positional_encoding_values():
    pe = transformer.positional_encoding(5, 4)
    assert pe.shape == (5, 4)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(pe[3, 3], torch.cos(torch.tensor(3.0 / 100)))


def test_decoder_is_causal_and_padding_is_ignored():
    model = _model().eval()
    src = torch.randint(1, 11, (2, 7))
    lengths = torch.tensor([7, 4])
    tgt = torch.randint(1, 13, (2, 5))
    logits = model(src, lengths, tgt)
    assert logits.shape == (2, 5, 13)
    tgt2 = tgt.clone()
    tgt2[:, 3:] = (tgt2[:, 3:] + 1) % 13
    torch.testing.assert_close(model(src, lengths, tgt2)[:, :3], logits[:, :3])
    src2 = src.clone()
    src2[1, 4:] = (src2[1, 4:] + 3) % 11  # only padding of sentence 1 changes
    torch.testing.assert_close(model(src2, lengths, tgt), logits)


def test_overfits_one_batch_and_greedy_decodes_it():
    model = _model()
    g = torch.Generator().manual_seed(1)
    src = torch.stack([torch.randperm(8, generator=g)[:6] + 3 for _ in range(4)])  # no repeated tokens
    tgt = torch.cat([torch.ones(4, 1, dtype=torch.long), src.flip(1), torch.full((4, 1), 2)], dim=1)  # BOS=1 EOS=2
    lengths = torch.full((4,), 6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = F.cross_entropy(model(src, lengths, tgt[:, :-1]).flatten(0, 1), tgt[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 < losses[0]
    out = model.greedy(src, lengths, bos_id=1, eos_id=2, max_len=10)
    assert out[:, :7].tolist() == tgt[:, 1:].tolist()


def test_rejects_sequences_longer_than_max_len():
    model = _model()
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.ones(1, 65, dtype=torch.long), torch.tensor([65]), torch.ones(1, 2, dtype=torch.long))
