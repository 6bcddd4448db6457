"""Hidden cases of the sequence-to-sequence checks (dltoolbox.checks.seq2seq)."""
import torch

exercise_1 = (1, [(torch.tensor([[3, 2, 0, 0, 0], [5, 6, 7, 8, 2], [2, 0, 0, 0, 0]]), 9, 0),
                  (torch.tensor([[1, 1, 4], [4, 4, 4]]), 5, 4)])

exercise_2 = ((2, 1), None, 8)  # beam sizes, then the last 8 pairs

exercise_3 = [(16, 1), (10, 2)]
