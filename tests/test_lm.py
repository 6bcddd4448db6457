"""The language models' shared toolkit: one loss and padding convention, one batcher, one training loop,
one held-out score, one generate — the same for the MLP, the LSTM language model and the GPT."""
import math

import pytest
import torch

from dltoolbox import lm
from dltoolbox.gpt import GPT, GPTConfig
from dltoolbox.neural_lm import MLPConfig, MLPLanguageModel
from dltoolbox.transfer import LSTMLanguageModel


def models():
    torch.manual_seed(0)
    return {"mlp": MLPLanguageModel(MLPConfig(vocab_size=7, context=3, num_embed=4, num_hiddens=8)),
            "lstm": LSTMLanguageModel(7, num_embed=4, num_hiddens=8, pad=0),
            "gpt": GPT(GPTConfig(vocab_size=7, block_size=6, n_embd=8, n_head=2, n_layer=1))}


def test_ignore_and_pad_are_left_out_of_the_loss():
    logits = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[1, 2, 0, 0], [3, lm.IGNORE, 4, 0]])
    keep = (targets != 0) & (targets != lm.IGNORE)
    want = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(lm.next_token_loss(logits, targets, pad=0), want)
    assert not torch.allclose(lm.next_token_loss(logits, targets.clamp(min=0)), want)  # pads counted
    with_pad_as_ignore = targets.masked_fill(targets == 0, lm.IGNORE)
    assert torch.equal(lm.next_token_loss(logits, with_pad_as_ignore), lm.next_token_loss(logits, targets, pad=0))


def test_windows_reach_the_last_window_and_nothing_past_the_stream():
    stream = torch.arange(10)
    X, Y = lm.windows(stream, 4, 500, torch.Generator().manual_seed(0))
    assert torch.equal(Y, X + 1) and int(X[:, 0].min()) == 0 and int(X[:, 0].max()) == 5  # 6 starts: 0..5
    with pytest.raises(ValueError, match="fewer than a window"):
        lm.windows(stream, 10, 2, torch.Generator())


@pytest.mark.parametrize("name", ["mlp", "lstm", "gpt"])
def test_every_language_model_has_the_same_interface(name):
    model = models()[name].eval()
    idx = torch.randint(1, 7, (2, 5), generator=torch.Generator().manual_seed(1))
    logits, loss = model(idx)
    assert logits.shape == (2, 5, 7) and loss is None
    _, loss = model(idx[:, :-1], idx[:, 1:])
    assert loss.ndim == 0 and math.isfinite(loss.item())
    out = model.generate(idx, 4, temperature=0)
    assert out.shape == (2, 9) and torch.equal(out[:, :5], idx)
    assert torch.equal(out, lm.generate(model, idx, 4, temperature=0))


def test_generate_reads_only_the_models_window():
    model = models()["mlp"].eval()  # window 3
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[6, 6, 3, 4, 5]])
    assert torch.equal(lm.generate(model, a, 3, temperature=0)[:, 5:], lm.generate(model, b, 3, temperature=0)[:, 5:])
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(model, a, 1, temperature=-1)


def test_fit_steps_evaluates_on_schedule_and_clips():
    model = models()["gpt"]
    stream = torch.randint(7, (200,), generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(0)
    seen = []
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = lm.fit(model, lambda: lm.windows(stream, 6, 4, gen), opt, 7, clip=1e-3,
                    evaluate=lambda step, so_far: seen.append((step, len(so_far))), every=3)
    assert len(losses) == 7 and seen == [(3, 3), (6, 6), (7, 7)]
    norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters() if p.grad is not None))
    assert norm <= 1e-3 + 1e-6  # the last step's gradients were clipped
    with pytest.raises(ValueError, match="num_steps"):
        lm.fit(model, None, opt, 0)


def test_fit_learns_a_repeating_stream():
    model = models()["gpt"]
    stream = torch.tensor([1, 2, 3, 4, 5, 6] * 30)
    gen = torch.Generator().manual_seed(0)
    before = lm.held_out_loss(model, stream, 6)
    lm.fit(model, lambda: lm.windows(stream, 6, 8, gen), torch.optim.AdamW(model.parameters(), lr=1e-2), 150)
    assert lm.held_out_loss(model, stream, 6) < before / 4


def test_held_out_loss_windows_and_the_whole_stream_and_restores_the_mode():
    model = models()["mlp"].train()
    stream = torch.randint(7, (41,), generator=torch.Generator().manual_seed(4))
    whole = lm.held_out_loss(model, stream)
    assert model.training
    _, want = model.eval()(stream[None, :-1], stream[None, 1:])
    assert whole == pytest.approx(want.item())
    X, Y = stream[:40].view(5, 8), stream[1:41].view(5, 8)
    assert lm.held_out_loss(model, stream, 8, chunk=2) == pytest.approx(model(X, Y)[1].item(), rel=1e-6)
    assert lm.bits(math.log(2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fewer than one window"):
        lm.held_out_loss(model, stream, 50)


def test_char_ids_index_the_sorted_characters():
    vocab, ids = lm.char_ids("abca ")
    assert vocab == [" ", "a", "b", "c"] and ids.tolist() == [1, 2, 3, 1, 0] and ids.dtype == torch.long
