"""The chapter 3 exercise checks: the reference solutions pass, typical mistakes fail with a hint."""
import pytest
import torch
from torch import nn

from dltoolbox import decoding
from dltoolbox import seq2seq as s2s
from dltoolbox import translation as tr
from dltoolbox.checks import ExerciseError
from dltoolbox.checks import seq2seq as check


def masked_cross_entropy(logits, targets, pad):
    log_probs = logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)  # (B, T)
    mask = targets != pad
    return -(log_probs * mask).sum() / mask.sum()


def test_exercise_1_reference_passes_and_mistakes_fail(capsys):
    assert check.exercise_1(masked_cross_entropy) and check.exercise_1(masked_cross_entropy, hidden=True)
    assert "✓ Exercise 3.1 passed" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="padding positions were counted"):
        check.exercise_1(lambda logits, targets, pad: torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), targets.flatten()))
    with pytest.raises(ExerciseError, match="not by B \\* T"):
        check.exercise_1(lambda logits, targets, pad: masked_cross_entropy(logits, targets, pad)
                         * (targets != pad).sum() / targets.numel())
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check.exercise_1(lambda *args: (_ for _ in ()).throw(NotImplementedError()))
    with pytest.raises(ExerciseError, match="scalar"):
        check.exercise_1(lambda logits, targets, pad: logits.sum(-1))


@pytest.fixture(scope="module")
def model_and_pairs():
    torch.set_num_threads(1)
    return check._own_model_and_pairs()


def exact_match_by_beam(model, pairs, beam_sizes, alpha):
    out = {}
    for k in beam_sizes:
        hits = 0
        for src, tgt in pairs:
            candidates = decoding.beam_search(model, src, k)
            best = max(candidates, key=lambda c: c[1] / (len(c[0]) + 1) ** alpha)[0]
            hits += best == list(tgt)
        out[k] = hits / len(pairs)
    return out


def test_exercise_2_reference_passes_and_mistakes_fail(model_and_pairs):
    model, pairs = model_and_pairs
    assert check.exercise_2(exact_match_by_beam, model, pairs)
    assert check.exercise_2(exact_match_by_beam, model, pairs, hidden=True)
    with pytest.raises(ExerciseError, match="keys"):
        check.exercise_2(lambda m, p, ks, a: [0.0 for _ in ks], model, pairs)

    def as_percent(m, p, ks, a):
        return {k: 100 * v + 50 for k, v in exact_match_by_beam(m, p, ks, a).items()}

    with pytest.raises(ExerciseError, match="fraction between 0 and 1"):
        check.exercise_2(as_percent, model, pairs)

    def divides_by_length_only(m, p, ks, a):
        return exact_match_by_beam(m, p, ks, 1.0 if a else 0.0)

    with pytest.raises(ExerciseError, match="rank the candidates"):
        check.exercise_2(divides_by_length_only, model, pairs, hidden=True)


def test_exercise_2_without_the_reference_checks_the_beam_s_own_order(model_and_pairs, monkeypatch):
    model, pairs = model_and_pairs
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_2(exact_match_by_beam, model, pairs)
    with pytest.raises(ExerciseError, match="rank the candidates"):
        check.exercise_2(lambda m, p, ks, a: exact_match_by_beam(m, p, ks, 1.0), model, pairs)


def test_exercise_2_one_call_of_evaluate_is_the_package_not_the_answer(model_and_pairs):
    model, pairs = model_and_pairs
    with pytest.raises(ExerciseError, match="course's own decoding.evaluate") as raised:
        check.exercise_2(lambda m, p, ks, a: {k: decoding.evaluate(m, p, beam_size=k)["exact_match"] for k in ks},
                         model, pairs)
    assert raised.value.kind == "package"


class ContextDecoder(s2s.LSTMDecoder):
    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0):
        super().__init__(vocab_size, num_embed, num_hiddens, num_layers, pad)
        self.lstm = nn.LSTM(num_embed + num_hiddens, num_hiddens, num_layers, batch_first=True)

    def forward(self, y_in, state, enc_outputs, src_mask):
        mask = src_mask[:, :, None].to(enc_outputs.dtype)
        context = (enc_outputs * mask).sum(1) / mask.sum(1)  # (B, H)
        x = torch.cat([self.embedding(y_in), context[:, None].expand(-1, y_in.shape[1], -1)], -1)
        out, state = self.lstm(x, state)
        return self.output(out), state


class UnmaskedMean(ContextDecoder):
    def forward(self, y_in, state, enc_outputs, src_mask):
        return super().forward(y_in, state, enc_outputs, torch.ones_like(src_mask))


class ForgetsState(ContextDecoder):
    def forward(self, y_in, state, enc_outputs, src_mask):
        logits, _ = super().forward(y_in, state, enc_outputs, src_mask)
        return logits, state


def test_exercise_3_reference_passes_and_mistakes_fail():
    assert check.exercise_3(ContextDecoder) and check.exercise_3(ContextDecoder, hidden=True)
    with pytest.raises(ExerciseError, match="padded positions"):
        check.exercise_3(UnmaskedMean)
    with pytest.raises(ExerciseError, match="does not take the weights"):
        check.exercise_3(s2s.LSTMDecoder)
    with pytest.raises(ExerciseError, match="differ from a decoder that reads"):
        check.exercise_3(SumNotMean)


class SumNotMean(ContextDecoder):
    def forward(self, y_in, state, enc_outputs, src_mask):
        return super().forward(y_in, state, enc_outputs * src_mask.sum(1)[:, None, None], src_mask)


class ContextFirst(ContextDecoder):
    def forward(self, y_in, state, enc_outputs, src_mask):
        mask = src_mask[:, :, None].to(enc_outputs.dtype)
        context = (enc_outputs * mask).sum(1) / mask.sum(1)
        x = torch.cat([context[:, None].expand(-1, y_in.shape[1], -1), self.embedding(y_in)], -1)
        out, state = self.lstm(x, state)
        return self.output(out), state


def test_exercise_3_takes_either_order_and_checks_properties_without_the_reference(monkeypatch):
    assert check.exercise_3(ContextFirst, hidden=True)
    monkeypatch.setattr(check, "reference", lambda module, name: None)
    assert check.exercise_3(ContextDecoder)
    with pytest.raises(ExerciseError, match="padded positions"):
        check.exercise_3(UnmaskedMean)
    with pytest.raises(ExerciseError, match="one step at a time"):
        check.exercise_3(ForgetsState)
