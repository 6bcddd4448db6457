import pytest
import torch
import torch.nn as nn

from dltoolbox import compare, transfer
from dltoolbox.experiments import reuse as experiment


def _nets():
    torch.manual_seed(0)
    src = nn.ModuleDict({"emb": nn.Embedding(5, 3), "rnn": nn.LSTM(3, 4, batch_first=True), "out": nn.Linear(4, 5)})
    dst = nn.ModuleDict({"emb": nn.Embedding(5, 3), "rnn": nn.LSTM(3, 4, batch_first=True), "out": nn.Linear(4, 5),
                         "extra": nn.Linear(2, 2)})
    return src, dst


def test_copy_weights_copies_exactly_the_intended_tensors():
    src, dst = _nets()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    mapping = transfer.prefix_mapping(dst, "rnn", "rnn") | {"emb.weight": "emb.weight"}
    copied = transfer.copy_weights(src, dst, mapping)
    assert copied == sorted(mapping) and len(copied) == 5          # 4 LSTM tensors + the embedding
    for name, value in dst.state_dict().items():
        if name in mapping:
            assert torch.equal(value, src.state_dict()[mapping[name]])
            assert value.data_ptr() != src.state_dict()[mapping[name]].data_ptr()   # a copy, not shared
        else:
            assert torch.equal(value, before[name]), name
    with torch.no_grad():                                           # later changes to the source do not leak
        src["emb"].weight.add_(1.0)
    assert not torch.equal(dst["emb"].weight, src["emb"].weight)


@pytest.mark.parametrize("mapping, message", [
    ({}, "empty"),
    ({"emb.weight": "nope"}, "source has no tensor 'nope'"),
    ({"nope": "emb.weight"}, "target has no tensor 'nope'"),
    ({"extra.weight": "emb.weight"}, "shape mismatch"),
])
def test_copy_weights_rejects_bad_mappings_and_changes_nothing(mapping, message):
    src, dst = _nets()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        transfer.copy_weights(src, dst, mapping)
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())


def test_freeze_really_freezes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert transfer.freeze(net[0]) == 2
    frozen_before = [p.clone() for p in net[0].parameters()]
    free_before = [p.clone() for p in net[2].parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=0.1)               # even an optimizer over everything
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 3)).pow(2).sum().backward()
        opt.step()
    assert all(p.grad is None and not p.requires_grad for p in net[0].parameters())
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, net[0].parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(free_before, net[2].parameters()))
    assert compare.count_parameters(net, trainable_only=True) == 10
    assert compare.count_parameters(net) == 26


def test_freeze_and_prefix_mapping_errors():
    with pytest.raises(ValueError, match="nn.Module"):
        transfer.freeze("not a module")
    with pytest.raises(ValueError, match="no parameters under 'decoder'"):
        transfer.prefix_mapping(nn.Linear(2, 2), "decoder", "lm")


def test_target_lm_has_the_decoder_shape_and_copies_into_it():
    from dltoolbox import seq2seq, translation

    src_vocab, tgt_vocab = translation.source_vocab(), translation.target_vocab()
    model = seq2seq.build_model(src_vocab, tgt_vocab, num_embed=8, num_hiddens=12, seed=0)
    torch.manual_seed(1)
    lm = transfer.LSTMLanguageModel(len(tgt_vocab), num_embed=8, num_hiddens=12)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    mapping = transfer.decoder_mapping(model, lm)
    assert sorted(mapping) == sorted("decoder." + n for n, _ in lm.named_parameters())
    transfer.copy_weights(lm, model, mapping)
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    assert torch.equal(model.decoder.lstm.weight_hh_l0, lm.lstm.weight_hh_l0)
    sentences = [" ".join(t) for _, t in translation.sample_pairs(20, max_len=6, seed=0)]
    history = transfer.train_target_lm(lm, sentences, tgt_vocab, num_steps=30, batch_size=8, lr=1e-2, seed=0)
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="some sentences"):
        transfer.train_target_lm(lm, [], tgt_vocab)


def test_committed_lm_init_table_tries_the_experiments_grid_for_every_arm_on_validation():
    # that the table chooses from its rows and that the notebook trains its choice: tests/test_sweep_registry.py
    import json
    from pathlib import Path

    chapter = Path(__file__).resolve().parents[1] / "chapters" / "06_reuse"
    table = json.loads((chapter / "lm_init_sweep.json").read_text())
    chosen = table["chosen"]
    assert set(chosen) == {f"{size} {init}" for size in experiment.SIZES for init in experiment.INITS}
    for arm in chosen:  # the grid and seeds the chapter's code names
        tried = sorted((r["lr"], r["steps"], r["seed"]) for r in table["rows"] if r["arm"] == arm)
        assert tried == sorted((lr, st, s) for lr in experiment.SWEEP_LRS for st in experiment.SWEEP_STEPS
                               for s in experiment.SWEEP_SEEDS)
    assert set(experiment.SWEEP_SEEDS).isdisjoint({0, 1, 2}) and table["metric"] == "valid_bleu"
