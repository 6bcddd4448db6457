"""All the data is just bytes: every modality framed as tag + input + SEP + output + END, decoded back exactly
(images up to quantisation), with a loss mask on what the model predicts and batches the course's GPT reads."""
import math

import numpy as np
import pytest
import torch

from dltoolbox import bytestream as bs
from dltoolbox import games, lm, translation
from dltoolbox.glyphs import make_glyphs
from dltoolbox.gpt import GPT, GPTConfig

HALF_LEVEL = 1 / 255 / 2  # the largest quantisation error of a grey level


@pytest.fixture(scope="module")
def glyph():
    X, _ = make_glyphs(num_classes=2, per_class=1, size=16, seed=0)
    return X[0, 0]                                                         # (16, 16) in [0, 1]


@pytest.fixture(scope="module")
def pair():
    return translation.make_splits(seed=0, n_train=3, n_valid=1, n_test=1)["train"][0]


def short_pair():
    source = "the dog runs".split()
    return source, translation.translate(source)


@pytest.fixture(scope="module")
def moves():
    return bs.game_records(games.generate_replays(2, seed=0))[0]


def examples(glyph, pair, moves):
    return [bs.encode_text("naïve café"), bs.encode_pair(*pair), bs.encode_game(moves),
            bs.encode_image(glyph), bs.encode_caption(glyph, "a glyph"), bs.encode_drawing("a glyph", glyph)]


def test_the_vocabulary_is_the_bytes_then_one_tag_per_task_and_the_controls():
    assert sorted(bs.TAGS.values()) == list(range(256, 256 + len(bs.TASKS)))
    assert len({*bs.TAGS.values(), bs.SEP, bs.END, bs.PAD}) == bs.VOCAB_SIZE - 256 == len(bs.TASKS) + 3
    assert bs.TASKS == ("text", "translation", "game", "image", "caption", "draw") and bs.VOCAB_SIZE == 265
    assert set(bs.READERS) == set(bs.TASKS) and set(bs.CONDITIONAL) == {"translation", "caption", "draw"}


def test_text_round_trips_byte_for_byte_including_non_ascii():
    ids, mask = bs.encode_text("naïve")
    assert ids.dtype == torch.long and ids.shape == mask.shape and mask.dtype == torch.bool
    assert ids.tolist() == [bs.TAGS["text"], *"naïve".encode("utf-8"), bs.END]  # ï is two bytes
    assert bs.decode(ids) == ("text", None, "naïve")
    assert bs.decode(bs.encode_text("")[0]) == ("text", None, "")


def test_a_translation_pair_round_trips_as_token_lists(pair):
    source, target = pair
    assert isinstance(source, list) and isinstance(target, list)
    ids, _ = bs.encode_pair(source, target)
    assert bs.decode(ids) == ("translation", source, target)
    assert bs.decode(bs.encode_pair(" ".join(source), " ".join(target))[0]) == ("translation", source, target)


def test_game_records_round_trip_and_are_the_replays_moves():
    replays = games.generate_replays(2, seed=0)
    records = bs.game_records(replays)
    assert len(records) == 2 and sum(map(len, records)) == len(replays["moves"])
    for record in records:
        ids, _ = bs.encode_game(record)
        assert ids[1:-1].tolist() == record and bs.decode(ids) == ("game", None, record)
        state = games.State.initial()
        for m in record:
            state = state.play(m)
        assert state.done  # each record is a whole game, in order of play


def test_a_game_record_is_refused_exactly_where_the_engine_refuses_a_move():
    # random column sequences, many running past a win, a draw or a full column: the record's own check must
    # accept the same prefix the engine plays and refuse the move the engine refuses
    rng = np.random.default_rng(0)
    refused = 0
    for length in rng.integers(1, 50, size=400):
        moves = rng.integers(0, games.COLS, size=length).tolist()
        state, legal = games.State.initial(), len(moves)
        for i, m in enumerate(moves):
            try:
                state = state.play(m)
            except ValueError:
                legal = i
                break
        assert bs.encode_game(moves[:legal])[0][1:-1].tolist() == moves[:legal]
        if legal < len(moves):
            refused += 1
            with pytest.raises(ValueError, match=f"move {legal} "):
                bs.encode_game(moves)
    draw = [0, 1, 2, 3, 4, 5] * 3 + [1, 0, 3, 2, 5, 4] * 3 + [6] * 6  # a full board, no four in a row
    state = games.State.initial()
    for m in draw:
        state = state.play(m)
    assert state.done and state.winner == 0 and bs.encode_game(draw)[0][1:-1].tolist() == draw
    assert refused > 100  # the random records do reach the refusals


def test_an_image_round_trips_within_half_a_grey_level(glyph):
    ids, _ = bs.encode_image(glyph)
    assert ids[1:3].tolist() == [16, 16] and len(ids) == 1 + 2 + 256 + 1
    task, given, image = bs.decode(ids)
    assert task == "image" and given is None and image.shape == (16, 16) and image.dtype == torch.float32
    error = (image - glyph).abs().max().item()
    assert 0 < error <= HALF_LEVEL + 1e-6  # lossy, but by at most half a level
    levels = torch.arange(256, dtype=torch.float32).view(16, 16) / 255
    torch.testing.assert_close(bs.decode(bs.encode_image(levels)[0])[2], levels, atol=1e-7, rtol=0)
    wide = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    assert bs.decode(bs.encode_image(wide.numpy())[0])[2].shape == (3, 5)  # height and width kept apart


def test_an_image_with_its_caption_round_trips(glyph):
    ids, _ = bs.encode_caption(glyph, "a naïve glyph")
    task, image, caption = bs.decode(ids)
    assert task == "caption" and caption == "a naïve glyph"
    assert (image - glyph).abs().max().item() <= HALF_LEVEL + 1e-6


def test_a_description_with_its_drawing_round_trips_text_in_and_image_out(glyph):
    ids, mask = bs.encode_drawing("a naïve glyph", glyph)
    given = [bs.TAGS["draw"], *"a naïve glyph".encode("utf-8"), bs.SEP]
    assert ids[:len(given)].tolist() == given and ids[len(given):len(given) + 2].tolist() == [16, 16]
    assert len(ids) == len(given) + 2 + 256 + 1
    task, description, image = bs.decode(ids)
    assert task == "draw" and description == "a naïve glyph" and image.shape == (16, 16)
    assert (image - glyph).abs().max().item() <= HALF_LEVEL + 1e-6
    assert bs.decode(bs.encode_drawing("", glyph)[0])[1] == ""  # an empty description still has its SEP
    caption, _ = bs.encode_caption(glyph, "a glyph")  # the same bytes as a caption, the other way round
    drawing, _ = bs.encode_drawing("a glyph", glyph)
    assert sorted(caption[1:].tolist()) == sorted(drawing[1:].tolist()) and caption[0] != drawing[0]


def test_the_loss_mask_covers_the_output_and_end_and_nothing_given(glyph, pair, moves):
    def predicted(example):
        ids, mask = example
        first = int(mask.float().argmax())
        assert mask[first:].all() and not mask[:first].any()  # one run, to the end
        assert ids[-1] == bs.END and mask[-1]
        return int(mask.sum())

    source, target = pair
    assert predicted(bs.encode_text("naïve")) == 6 + 1
    assert predicted(bs.encode_pair(source, target)) == len(" ".join(target).encode()) + 1
    ids, mask = bs.encode_pair(source, target)
    assert ids[~mask].tolist() == [bs.TAGS["translation"], *" ".join(source).encode(), bs.SEP]
    assert predicted(bs.encode_game(moves)) == len(moves) + 1
    assert predicted(bs.encode_image(glyph)) == 2 + 16 * 16 + 1  # size bytes, pixels, END
    ids, mask = bs.encode_caption(glyph, "a glyph")
    assert predicted((ids, mask)) == len("a glyph") + 1 and int((~mask).sum()) == 1 + 2 + 256 + 1
    ids, mask = bs.encode_drawing("a glyph", glyph)
    assert predicted((ids, mask)) == 2 + 16 * 16 + 1 and int((~mask).sum()) == 1 + len("a glyph") + 1
    assert ids[~mask].tolist() == [bs.TAGS["draw"], *b"a glyph", bs.SEP]


def test_pack_ignores_exactly_the_masked_out_ids(glyph, pair, moves):
    parts = examples(glyph, pair, moves)
    stream, stream_labels = bs.pack(parts)
    mask = torch.cat([m for _, m in parts])
    assert len(stream) == sum(len(i) for i, _ in parts)
    assert torch.equal(stream_labels == lm.IGNORE, ~mask)
    assert torch.equal(stream_labels[mask], stream[mask])


def test_windows_pair_each_input_with_the_label_of_the_next_id(glyph, pair, moves):
    stream, stream_labels = bs.pack(examples(glyph, pair, moves))
    X, Y = bs.windows(stream, stream_labels, len(stream) - 1, 2, torch.Generator().manual_seed(0))
    assert torch.equal(X[0], stream[:-1]) and torch.equal(Y[0], stream_labels[1:])  # the only window
    X, Y = bs.windows(stream, stream_labels, 64, 32, torch.Generator().manual_seed(0))
    assert X.shape == Y.shape == (32, 64)
    kept = Y[:, :-1] != lm.IGNORE
    assert kept.any() and (~kept).any() and torch.equal(Y[:, :-1][kept], X[:, 1:][kept])


def test_batch_pads_each_row_and_ignores_given_ids_and_padding(pair, moves):
    parts = [bs.encode_text("hi"), bs.encode_pair(*pair), bs.encode_game(moves)]
    X, Y = bs.batch(parts)
    longest = max(len(i) for i, _ in parts)
    assert X.shape == Y.shape == (3, longest - 1)
    for row, (ids, mask) in enumerate(parts):
        n = len(ids)
        assert torch.equal(X[row, :n], ids[:X.shape[1]]) and (X[row, n:] == bs.PAD).all()
        assert torch.equal(Y[row, :n - 1] == lm.IGNORE, ~mask[1:]) and (Y[row, n - 1:] == lm.IGNORE).all()


def test_a_tiny_gpt_reads_a_packed_batch_and_scores_only_the_predicted_ids(glyph, pair, moves):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=bs.VOCAB_SIZE, block_size=64, n_embd=16, n_head=2, n_layer=1))
    stream, stream_labels = bs.pack(examples(glyph, pair, moves))
    X, Y = bs.windows(stream, stream_labels, 64, 8, torch.Generator().manual_seed(1))
    logits, loss = model(X, Y)
    assert logits.shape == (8, 64, bs.VOCAB_SIZE) and math.isfinite(loss.item())
    kept = Y != lm.IGNORE
    want = torch.nn.functional.cross_entropy(logits[kept], Y[kept])
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert model.tok_emb.weight.grad.abs().sum() > 0
    X, Y = bs.batch([bs.encode_text("hi"), bs.encode_pair(*short_pair())])  # rows within block_size
    assert X.shape[1] <= 64 and math.isfinite(model(X, Y)[1].item())


def test_decode_reads_the_first_example_of_a_continuation():
    first, _ = bs.encode_text("ab")
    stream = torch.cat([first, bs.encode_text("cd")[0], torch.tensor([bs.PAD, 7])])
    assert bs.decode(stream) == ("text", None, "ab")


@pytest.mark.parametrize("make, match", [
    (lambda: bs.frame("text", None, [65, 256]), "ints in 0..255"),
    (lambda: bs.frame("text", None, [-1]), "ints in 0..255"),
    (lambda: bs.frame("poetry", None, b"x"), "unknown task"),
    (lambda: bs.frame("translation", None, b"x"), "takes an input"),
    (lambda: bs.encode_text(b"bytes"), "text is a str"),
    (lambda: bs.encode_pair(["the", "big dog"], ["vok"]), "without spaces"),
    (lambda: bs.encode_game([3, 7]), "move 1 is 7"),
    (lambda: bs.encode_game([-1]), "move 0 is -1"),
    (lambda: bs.encode_game([0] * 7), "column is full"),
    (lambda: bs.encode_game([0, 1, 0, 1, 0, 1, 0, 1]), "game is over"),
    (lambda: bs.encode_image(torch.zeros(1, 16, 16)), "2-D"),
    (lambda: bs.encode_image(torch.full((4, 4), 1.5)), r"\[0, 1\]"),
    (lambda: bs.encode_image(torch.full((4, 4), float("nan"))), r"\[0, 1\]"),
    (lambda: bs.encode_image(torch.zeros(256, 2)), "1 to 255"),
    (lambda: bs.encode_caption(torch.zeros(2, 2, 2), "x"), "2-D"),
    (lambda: bs.encode_drawing(b"x", torch.zeros(2, 2)), "text is a str"),
    (lambda: bs.encode_drawing("x", torch.full((2, 2), -0.1)), r"\[0, 1\]"),
    (lambda: bs.frame("draw", None, [2, 2, 0, 0, 0, 0]), "takes an input"),
    (lambda: bs.pack([]), "empty"),
    (lambda: bs.batch([]), "empty"),
])
def test_bad_input_is_refused_with_a_message(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("ids, match", [
    ([bs.TAGS["text"], 104, 105], "no END"),
    ([104, 105, bs.END], "unknown tag"),
    ([bs.SEP, 104, bs.END], "unknown tag"),
    ([], "unknown tag"),
    ([bs.TAGS["text"], 104, bs.PAD, bs.END], "neither a byte nor SEP"),
    ([bs.TAGS["text"], 104, bs.SEP, 105, bs.END], "has 0 SEP"),
    ([bs.TAGS["translation"], 104, 105, bs.END], "has 1 SEP"),
    ([bs.TAGS["game"], 3, 9, bs.END], "move 1 is 9"),
    ([bs.TAGS["image"], 2, 2, 0, 0, 0, bs.END], "has 4 pixel bytes, got 3"),
    ([bs.TAGS["image"], 5, bs.END], "height and width"),
    ([bs.TAGS["caption"], 1, 1, 9, 9, bs.SEP, 104, bs.END], "has 1 pixel bytes, got 2"),
    ([bs.TAGS["draw"], 104, bs.SEP, 1, 1, 9, 9, bs.END], "has 1 pixel bytes, got 2"),
    ([bs.TAGS["draw"], 104, 1, 1, 9, bs.END], "has 1 SEP"),
    ([bs.TAGS["draw"], 0xC3, bs.SEP, 1, 1, 9, bs.END], "utf-8"),
    ([bs.TAGS["text"], 0xC3, bs.END], "utf-8"),
])
def test_decode_refuses_what_no_encoder_writes(ids, match):
    with pytest.raises(ValueError, match=match):
        bs.decode(torch.tensor(ids, dtype=torch.long))
