"""Chapter 8's memory that compresses: full attention, Perceiver AR and MEGABYTE under the course's one LM
interface; causal by perturbation, their FLOPs counted by hand, their sizes matched, each one trains, and
scored on the same bytes."""
import pytest
import torch

from dltoolbox import compare, gpt, lm, memory, scaling

V, T = 256, 16
TINY = {"full": dict(n_embd=16, n_head=2, n_layer=2),
        "perceiver_ar": dict(n_latent=8, n_embd=16, n_head=2, n_layer=1),
        "megabyte": dict(patch_size=4, global_embd=16, global_layer=1, local_embd=8, local_layer=1, n_head=2)}


def tiny(kind, **sizes):
    """A small model of each kind for windows of T = 16 bytes, in eval mode."""
    return memory.build(memory.config_for(kind, window=T, **{**TINY[kind], **sizes}), seed=0).eval()


def random_bytes(shape, seed=1):
    return torch.randint(V, shape, generator=torch.Generator().manual_seed(seed))


def perturbed(model, t):
    """The logits of a batch and of the same batch with byte t changed, and the input position of each logit."""
    idx = random_bytes((2, T))
    changed = idx.clone()
    changed[:, t] = (changed[:, t] + 1) % V
    before, after = model(idx)[0], model(changed)[0]
    return before, after, torch.arange(T - before.shape[1], T)  # Perceiver AR's logits sit at the last N positions


def assert_causal(model, t):
    """Changing byte t changes no prediction made at a position before t, and some prediction at t or after."""
    before, after, position = perturbed(model, t)
    earlier = position < t
    torch.testing.assert_close(after[:, earlier], before[:, earlier], atol=1e-6, rtol=0)
    assert (after[:, ~earlier] - before[:, ~earlier]).abs().max() > 1e-4
    return before, after


def test_the_full_model_is_the_courses_gpt():
    model = tiny("full")
    assert type(model) is gpt.GPT and model.window == T


@pytest.mark.parametrize("t", [1, 7, 8, 15])
def test_full_attention_is_causal(t):
    assert_causal(tiny("full"), t)


@pytest.mark.parametrize("t", [0, 7, 8, 11, 15], ids=["before the latents", "the last input before them",
                                                      "the first latent", "a middle latent", "the last latent"])
def test_perceiver_ar_is_causal(t):
    assert_causal(tiny("perceiver_ar"), t)


def test_perceiver_ar_latent_i_reads_only_positions_up_to_its_own():
    model = tiny("perceiver_ar")
    model(random_bytes((2, T)))
    weights = model.cross.attn.weights                                     # (B, heads, N, T)
    assert weights.shape == (2, 2, 8, T)
    allowed = torch.arange(T)[None, :] <= torch.arange(T - 8, T)[:, None]  # latent i at position 8 + i
    assert (weights[..., ~allowed] == 0).all() and (weights[..., allowed] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 8))


# MEGABYTE with P = 4: patch 1 predicts at positions 4..7. Byte 4 is the last byte patch 0 predicts: only the
# global model reads it, for patches 1.. (across a patch boundary); bytes 5..7 are read inside patch 1 by the
# local model (at positions 5..7) and by the global model for patches 2.. .
@pytest.mark.parametrize("t", [4, 5, 6, 7], ids=["first byte of patch 1", "middle", "middle", "last byte of patch 1"])
def test_megabyte_is_causal_inside_a_patch_and_across_patches(t):
    before, after = assert_causal(tiny("megabyte"), t)
    assert (after[:, t] - before[:, t]).abs().max() > 1e-4                 # the prediction right after byte t
    assert (after[:, 8:12] - before[:, 8:12]).abs().max() > 1e-4           # patch 2, through the global model


def test_megabyte_is_causal_at_every_byte_and_never_reads_the_windows_first():
    model = tiny("megabyte")
    for t in range(1, T):
        assert_causal(model, t)
    before, after, _ = perturbed(model, 0)  # the byte before the first prediction: the paper's start padding
    torch.testing.assert_close(after, before, atol=0, rtol=0)


@pytest.mark.parametrize("kind", memory.KINDS)
def test_shapes_and_the_loss_against_shifted_targets(kind):
    model = tiny(kind)
    X, Y = lm.windows(random_bytes((200,)), T, 3, torch.Generator().manual_seed(0))
    logits, loss = model(X, Y)
    predicted = 8 if kind == "perceiver_ar" else T
    assert logits.shape == (3, predicted, V) and model.window == T
    want = torch.nn.functional.cross_entropy(logits.flatten(0, 1), Y[:, -predicted:].flatten())
    torch.testing.assert_close(loss, want)
    assert model(X)[1] is None


def test_clear_errors():
    with pytest.raises(ValueError, match="block_size"):
        tiny("full")(random_bytes((1, T + 1)))
    with pytest.raises(ValueError, match="block_size"):
        tiny("perceiver_ar")(random_bytes((1, T + 1)))
    with pytest.raises(ValueError, match="block_size"):
        tiny("megabyte")(random_bytes((1, T + 4)))
    with pytest.raises(ValueError, match="patch_size=4"):
        tiny("megabyte")(random_bytes((1, 14)))                                   # 14 bytes are not whole patches of 4
    with pytest.raises(ValueError, match="n_latent=8"):
        tiny("perceiver_ar")(random_bytes((1, 6)))                                # fewer positions than latents
    with pytest.raises(ValueError, match="targets"):
        tiny("perceiver_ar")(random_bytes((1, T)), random_bytes((1, 8)))
    with pytest.raises(ValueError, match="n_latent=32"):
        tiny("perceiver_ar", n_latent=32)                                   # N > T
    with pytest.raises(ValueError, match="multiples of patch_size"):
        memory.build(memory.config_for("megabyte", window=18, patch_size=4))
    with pytest.raises(ValueError, match="multiples of patch_size"):
        tiny("megabyte", global_embd=18, n_head=2)
    with pytest.raises(ValueError, match="unknown kind"):
        memory.config_for("lstm")
    with pytest.raises(ValueError, match="patch_size"):
        memory.flops_per_byte(memory.config_for("megabyte", window=T, **TINY["megabyte"]), window=10)


def test_flops_per_byte_match_a_count_by_hand_and_pytorchs_count():
    # full, T = 16, C = 16, L = 2, V = 256, per position: 2 blocks of 12·16² = 6144 multiply-adds and the head
    # 16·256 = 4096, so 2·(6144 + 4096) = 20480 FLOPs; attention 2 layers × (16 scores + 16 values) × 16 = 1024
    # multiply-adds, 2048 FLOPs.
    # Perceiver AR, T = 16, N = 8, C = 16, L = 1, per window: queries, outputs and MLP at 8 latents 8·10·16² =
    # 20480; keys and values at 16 positions 16·2·16² = 8192; one block at 8 latents 8·12·16² = 24576; head
    # 8·16·256 = 32768: 86016 multiply-adds for 8 predicted bytes, 10752 each, 21504 FLOPs. Attention: the
    # cross-attention 8 queries × 16 keys × 16 × 2, the block 8 × 8 × 16 × 2, 6144 for 8 bytes: 1536 FLOPs.
    # MEGABYTE, T = 16, P = 4 (4 patches), Cg = 16, Cl = 8, one block each, per window: global 4·12·16² = 12288;
    # slices to local width 16 bytes · 4 · 8 = 512; local 16·12·8² = 12288; head 16·8·256 = 32768: 57856 for
    # 16 bytes, 3616 each, 7232 FLOPs. Attention: global 4 × 4 × 16 × 2 = 512, local 4 patches × 4 × 4 × 8 × 2
    # = 1024: 1536 multiply-adds for 16 bytes, 192 FLOPs.
    by_hand = {"full": (20480, 2048), "perceiver_ar": (21504, 1536), "megabyte": (7232, 192)}
    for kind, (weights, attention) in by_hand.items():
        model = tiny(kind)
        assert memory.flops_per_byte(model.cfg) == {"weights": weights, "attention": attention,
                                                   "total": weights + attention}
        X = random_bytes((2, T))
        measured = scaling.measured_flops(model, X, X)
        predicted = 2 * model(X)[0].shape[1]                                # 2 windows' predicted bytes
        assert measured["forward"] == predicted * (weights + attention), kind
        assert measured["attention"] == 3 * predicted * attention, kind     # backward: two products per product


def test_flops_grow_as_each_design_says():
    full = [memory.flops_per_byte(memory.config_for("full", window=w))["attention"] for w in (256, 512)]
    mega = memory.config_for("megabyte", window=1024)
    assert full[1] == 2 * full[0]                                           # T per byte: T² per window
    assert memory.flops_per_byte(mega, 512)["attention"] < memory.flops_per_byte(mega, 1024)["attention"] < \
        2 * memory.flops_per_byte(mega, 512)["attention"]                   # T/P² + P per byte: less than T
    with pytest.raises(ValueError, match="window"):
        memory.flops_per_byte(memory.config_for("full"), window=257)


DEFAULT_PARAMETERS = {"full": 149_504, "perceiver_ar": 149_632, "megabyte": 151_168}  # memory's docstring table


def test_default_sizes_have_the_same_parameters_within_ten_percent():
    counts = {kind: compare.count_parameters(memory.build(memory.config_for(kind))) for kind in memory.KINDS}
    assert counts == DEFAULT_PARAMETERS
    assert max(counts.values()) <= 1.1 * min(counts.values())
    # the full model by hand: byte and position tables 2·256·64, 2 blocks of 12·64² + 13·64 (weights, biases,
    # gains), the final norm 2·64 and the head 64·256 + 256
    assert counts["full"] == 2 * 256 * 64 + 2 * (12 * 64 ** 2 + 13 * 64) + 2 * 64 + 64 * 256 + 256


def test_build_is_reproducible_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a, b = (memory.build(memory.config_for("megabyte", window=T, **TINY["megabyte"]), seed=3) for _ in range(2))
    assert torch.equal(torch.rand(1), expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kind", memory.KINDS)
def test_each_model_learns_a_repetitive_byte_stream(kind):
    stream = torch.tensor(list(b"the cat sat on the mat. " * 20))
    model = tiny(kind).train()
    gen = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = lm.fit(model, lambda: lm.windows(stream, T, 8, gen), optimizer, 40)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], (kind, losses[0], losses[-5:])


class Oracle(torch.nn.Module):
    """Predicts a stream of 0, 1, 2, ... perfectly, except at the first `blind` positions of a window (uniform)."""
    window = 8

    def __init__(self, blind):
        super().__init__()
        self.blind = blind

    def forward(self, idx, targets=None):
        logits = 100.0 * torch.nn.functional.one_hot((idx + 1) % 64, 64).float()  # (B, T, 64)
        logits[:, :self.blind] = 0.0
        return logits, None


def test_bits_per_byte_scores_only_the_last_positions_of_each_window():
    stream = torch.arange(40) % 64
    assert memory.bits_per_byte(Oracle(blind=4), stream, last=4) == pytest.approx(0.0, abs=1e-6)
    assert memory.bits_per_byte(Oracle(blind=4), stream, last=8) == pytest.approx(3.0)  # half uniform over 64
    with pytest.raises(ValueError, match="last"):
        memory.bits_per_byte(Oracle(blind=0), stream, last=9)


def test_bits_per_byte_with_whole_windows_is_the_courses_held_out_score_and_needs_predictions():
    stream = random_bytes((100,))
    model = tiny("full")
    assert memory.bits_per_byte(model, stream, last=T) == pytest.approx(lm.bits(lm.held_out_loss(model, stream, T)))
    for kind in memory.KINDS:
        trained = tiny(kind).train()
        assert 7 < memory.bits_per_byte(trained, stream, last=8) < 10 and trained.training  # untrained; mode restored
    perceiver = tiny("perceiver_ar")
    with pytest.raises(ValueError, match="predicts only its last 8"):
        memory.bits_per_byte(perceiver, stream, last=9)
    with pytest.raises(ValueError, match="fewer than a window"):
        memory.bits_per_byte(model, stream[:T], last=4)
