"""Hidden cases of the sequence-to-sequence checks (dltoolbox.checks.seq2seq)."""
import torch

from ... import decoding
from ... import seq2seq as s2s

exercise_1 = (1, [(torch.tensor([[3, 2, 0, 0, 0], [5, 6, 7, 8, 2], [2, 0, 0, 0, 0]]), 9, 0),
                  (torch.tensor([[1, 1, 4], [4, 4, 4]]), 5, 4)])

exercise_2 = ((3, 2), None, 8)  # beam sizes, then the last 8 pairs

exercise_3 = [(16, 1), (10, 2)]

exercise_2_alphas = [0.5, 1.5]  # more strengths of the length normalisation


def normalised_exact_match(model, pairs, beam_size, alpha):
    """Exercise 3.2: exact match when the beam's candidates are ranked by log P / (tokens + 1) ** alpha."""
    hits = 0
    for src, tgt in pairs:
        candidates = decoding.beam_search(model, src, beam_size)
        best = max(candidates, key=lambda c: c[1] / (len(c[0]) + 1) ** alpha)[0]
        hits += list(best) == list(tgt)
    return hits / len(pairs)


class ContextDecoder(s2s.LSTMDecoder):
    """Exercise 3.3: an LSTM decoder whose input at every step is [embedding; masked mean of the encoder
    outputs], the LSTM's input num_embed + num_hiddens wide (the parameters of seq2seq.LSTMDecoder)."""

    context_first = False

    def __init__(self, vocab_size, num_embed=48, num_hiddens=96, num_layers=1, pad=0):
        super().__init__(vocab_size, num_embed, num_hiddens, num_layers, pad)
        self.lstm = torch.nn.LSTM(num_embed + num_hiddens, num_hiddens, num_layers, batch_first=True)

    def forward(self, y_in, state, enc_outputs, src_mask):
        mask = src_mask[:, :, None].to(enc_outputs.dtype)
        context = ((enc_outputs * mask).sum(1) / mask.sum(1))[:, None].expand(-1, y_in.shape[1], -1)
        embedded = self.embedding(y_in)
        x = torch.cat([context, embedded] if self.context_first else [embedded, context], -1)
        out, state = self.lstm(x, state)
        return self.output(out), state


class ContextFirstDecoder(ContextDecoder):
    """The same with [mean; embedding], the other order: as good an answer."""

    context_first = True
