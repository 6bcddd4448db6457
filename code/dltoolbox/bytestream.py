"""All the data is just a sequence of bytes: text, translations, game records, images, captions and drawings
serialised into one stream that one byte-level GPT reads (the recipe of Gato, Reed et al. 2022, in miniature).

An example is framed as ``[tag] + input bytes + [SEP] + output bytes + [END]``; a task with nothing to
condition on (plain text, a game record, an image) has no input and no SEP: ``[tag] + bytes + [END]``.
The vocabulary is the 256 byte values followed by control ids, which no byte can be mistaken for: one tag
per task (256 text, 257 translation, 258 game, 259 image, 260 caption, 261 draw), then SEP, END and PAD;
``VOCAB_SIZE`` = 265 ids in all.

Every ``encode_*`` returns (ids, mask): a 1-D LongTensor and a bool tensor of the same length that marks
the ids the model is trained to predict. One rule for every task, as in Gato (which trains on text and
actions only): the output bytes and END are predicted; the tag, the input and SEP are given.

- text: every UTF-8 byte and END;
- translation: the target sentence's bytes and END (the source is given);
- game: every move and END (a game record is all "actions");
- image: every pixel byte, its two size bytes and END (a model that draws an image also says its size);
- caption: the caption's bytes and END (the image is given);
- draw: the image's size bytes, its pixels and END (the text that describes it is given): caption's
  direction reversed, text in and an image out, so one model reads and writes every modality.

:func:`decode` inverts every encoder: text, sentences and games round-trip exactly, images up to
quantisation (each grey level is rounded to the nearest of 256 levels k/255, an error of at most 1/255/2).
:func:`pack` with :func:`windows`, or :func:`batch`, turn examples into next-token batches for
:class:`dltoolbox.gpt.GPT` whose targets are ``lm.IGNORE`` wherever the mask is False, so
:func:`dltoolbox.lm.next_token_loss` leaves them out.
"""
import numpy as np
import torch

from . import lm
from .games import COLS, CONNECT, ROWS

NUM_BYTES = 256
TASKS = ("text", "translation", "game", "image", "caption", "draw")  # caption: image -> text; draw: text -> image
TAGS = {task: NUM_BYTES + i for i, task in enumerate(TASKS)}  # 256..261: one control id per task
TASKS_BY_TAG = {tag: task for task, tag in TAGS.items()}
SEP = NUM_BYTES + len(TASKS)  # 262: the input ends, the output begins
END = SEP + 1                 # 263: the example ends
PAD = SEP + 2                 # 264: fills the short rows of a batch; never a target
VOCAB_SIZE = PAD + 1          # 265: bytes and controls
CONDITIONAL = ("translation", "caption", "draw")  # the tasks with an input and a SEP


def _ints(values):
    """A tensor, array, bytes or sequence as a list of Python values."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _payload(data, what):
    """`data` (bytes, or ints in 0..255) as a list of ints; ValueError naming `what` otherwise."""
    values = _ints(data)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < NUM_BYTES:
            raise ValueError(f"the {what} must be bytes, ints in 0..255; got {v!r}")
    return [int(v) for v in values]


def frame(task, inputs, outputs):
    """One example as (ids, mask): [tag] + inputs + [SEP] + outputs + [END], or [tag] + outputs + [END] when
    inputs is None; the mask is True on the outputs and END."""
    if task not in TAGS:
        raise ValueError(f"unknown task {task!r}; the tasks are {TASKS}")
    if (inputs is None) == (task in CONDITIONAL):
        raise ValueError(f"the task {task!r} takes {'an input' if task in CONDITIONAL else 'no input'}")
    given = [TAGS[task]] + ([] if inputs is None else _payload(inputs, "input") + [SEP])
    predicted = _payload(outputs, "output") + [END]
    ids = torch.tensor(given + predicted, dtype=torch.long)
    return ids, torch.arange(len(ids)) >= len(given)


# ---- each modality: to payload bytes, and back ------------------------------------------------

def _text_bytes(text):
    """A string as its UTF-8 bytes."""
    if not isinstance(text, str):
        raise ValueError(f"text is a str, got {type(text).__name__}")
    return text.encode("utf-8")


def _text(payload):
    """UTF-8 bytes as a string (bytes that are not UTF-8 raise UnicodeDecodeError, a ValueError)."""
    return payload.decode("utf-8")


def _sentence_bytes(tokens, what):
    """A sentence (a token list, as translation.make_splits gives, or a string) as its words joined by spaces."""
    tokens = tokens.split() if isinstance(tokens, str) else _ints(tokens)
    for t in tokens:
        if not isinstance(t, str) or t.split() != [t]:
            raise ValueError(f"the {what} tokens must be words without spaces, got {t!r}")
    return _text_bytes(" ".join(tokens))


def _sentence(payload):
    """Bytes of words joined by spaces as a token list."""
    return _text(payload).split()


def _game_moves(moves):
    """A game record as a list of moves, replayed on a Connect-Four board so an impossible record is refused:
    a move into a full column, or any move after four in a row or a full board (the rules of
    :meth:`dltoolbox.games.State.play`, checked here on a dict of cells, fast enough for thousands of
    records)."""
    moves, heights, board, over = _ints(moves), [0] * COLS, {}, False
    for i, move in enumerate(moves):
        if isinstance(move, bool) or not isinstance(move, (int, np.integer)) or not 0 <= move < COLS:
            raise ValueError(f"move {i} is {move!r}: a move is a column, 0 to {COLS - 1}")
        move = int(move)
        if over:
            raise ValueError(f"move {i} ({move}) is illegal: the game is over: no move may follow the end")
        if heights[move] == ROWS:
            raise ValueError(f"move {i} ({move}) is illegal: that column is full")
        row, player = heights[move], i % 2
        heights[move] += 1
        board[row, move] = player
        over = _four(board, row, move, player) or min(heights) == ROWS
    return [int(m) for m in moves]


def _four(board, row, col, player):
    """Whether the piece just placed at (row, col) completes a line of CONNECT of `player`'s pieces."""
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        run = 1
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while board.get((r, c)) == player:
                run, r, c = run + 1, r + sign * dr, c + sign * dc
        if run >= CONNECT:
            return True
    return False


def _game(payload):
    """One byte per move as a list of moves."""
    return _game_moves(list(payload))


def _image_bytes(pixels):
    """A 2-D image of grey levels in [0, 1] as [height, width] + its levels rounded to 0..255, row by row."""
    x = torch.as_tensor(pixels, dtype=torch.float32)
    if x.ndim != 2:
        raise ValueError(f"an image is a 2-D array (height, width) of grey levels, got shape {tuple(x.shape)}")
    h, w = x.shape
    if not (0 < h < NUM_BYTES and 0 < w < NUM_BYTES):
        raise ValueError(f"each side of an image must be 1 to 255 pixels (one byte), got {h}x{w}")
    if not ((x >= 0) & (x <= 1)).all():  # NaN fails both comparisons
        raise ValueError(f"grey levels must lie in [0, 1], got values from {x.min():.3g} to {x.max():.3g}")
    return [h, w] + torch.round(x * 255).long().flatten().tolist()


def _image(payload):
    """[height, width] + pixel bytes as a (height, width) float32 image of levels k/255."""
    if len(payload) < 2:
        raise ValueError(f"an image starts with its height and width, got {len(payload)} bytes")
    h, w = payload[0], payload[1]
    if h == 0 or w == 0 or len(payload) - 2 != h * w:
        raise ValueError(f"an image of {h}x{w} has {h * w} pixel bytes, got {len(payload) - 2}")
    return torch.tensor(list(payload[2:]), dtype=torch.float32).view(h, w) / 255


READERS = {"text": (None, _text), "translation": (_sentence, _sentence), "game": (None, _game),
           "image": (None, _image), "caption": (_image, _text), "draw": (_text, _image)}  # task: (input, output)


# ---- encoders and the decoder -------------------------------------------------------------------

def encode_text(text):
    """A string as (ids, mask): its UTF-8 bytes, all predicted."""
    return frame("text", None, _text_bytes(text))


def encode_pair(source, target):
    """A translation pair (source tokens, target tokens) as (ids, mask): the source in, the target out."""
    return frame("translation", _sentence_bytes(source, "source"), _sentence_bytes(target, "target"))


def encode_game(moves):
    """A Connect-Four game record (columns 0..6 in order of play) as (ids, mask): a byte per move, all predicted."""
    return frame("game", None, _game_moves(moves))


def encode_image(pixels):
    """A (height, width) image in [0, 1] as (ids, mask): its size and quantised pixels, all predicted."""
    return frame("image", None, _image_bytes(pixels))


def encode_caption(pixels, caption):
    """An image and its description as (ids, mask): the image in, the caption out."""
    return frame("caption", _image_bytes(pixels), _text_bytes(caption))


def encode_drawing(description, pixels):
    """A description and the image it describes as (ids, mask): the text in, the image (size and pixels) out."""
    return frame("draw", _text_bytes(description), _image_bytes(pixels))


def game_records(replays):
    """The move list of every game of games.generate_replays (whose positions are grouped by game, in order)."""
    return [replays["moves"][replays["game"] == g].tolist() for g in range(len(replays["winner"]))]


def decode(ids):
    """(task, input, output) of the example that `ids` starts with, in the types the encoders took: a str, a
    token list, a list of moves or a (H, W) image; input is None for tasks without one. Ids after the first
    END are ignored, so a generated continuation decodes as it stands."""
    ids = _ints(ids)
    if not ids or ids[0] not in TASKS_BY_TAG:
        raise ValueError(f"unknown tag {ids[0] if ids else None}: an example starts with one of {TAGS}")
    task = TASKS_BY_TAG[ids[0]]
    if END not in ids:
        raise ValueError(f"no END: the {task} example is cut short")
    body = ids[1:ids.index(END)]
    for i in body:
        if i != SEP and not 0 <= i < NUM_BYTES:
            raise ValueError(f"id {i} inside a {task} example is neither a byte nor SEP")
    if body.count(SEP) != (task in CONDITIONAL):
        raise ValueError(f"a {task} example has {int(task in CONDITIONAL)} SEP, this one has {body.count(SEP)}")
    read_input, read_output = READERS[task]
    if task not in CONDITIONAL:
        return task, None, read_output(bytes(body))
    cut = body.index(SEP)
    return task, read_input(bytes(body[:cut])), read_output(bytes(body[cut + 1:]))


# ---- batches for the GPT ------------------------------------------------------------------------

def labels(ids, mask):
    """The id at every position the model predicts (mask True), lm.IGNORE elsewhere."""
    if ids.shape != mask.shape:
        raise ValueError(f"ids {tuple(ids.shape)} and mask {tuple(mask.shape)} must have the same shape")
    return ids.masked_fill(~mask, lm.IGNORE)


def pack(examples):
    """Examples (ids, mask) end to end as one training stream: ids (N,) and their labels (N,)."""
    if not examples:
        raise ValueError("nothing to pack: the list of examples is empty")
    ids = torch.cat([i for i, _ in examples])
    return ids, labels(ids, torch.cat([m for _, m in examples]))


def windows(stream, stream_labels, width, batch_size, generator):
    """A random batch of a packed stream: inputs (B, width) and targets (B, width), where target t is the label
    of the id after input t; both streams are cut at the same starts by lm.windows."""
    both = torch.stack([stream, stream_labels], dim=1)                     # (N, 2)
    X, Y = lm.windows(both, width, batch_size, generator)                  # (B, width, 2) each
    return X[..., 0], Y[..., 1]


def batch(examples):
    """One example per row, padded at the end with PAD: inputs (B, T) and targets (B, T), T = the longest
    example's length - 1, target t the label of id t+1 (lm.IGNORE on given ids and on padding)."""
    if not examples:
        raise ValueError("nothing to batch: the list of examples is empty")
    width = max(len(ids) for ids, _ in examples)
    X = torch.full((len(examples), width), PAD, dtype=torch.long)         # (B, T+1)
    Y = torch.full((len(examples), width), lm.IGNORE, dtype=torch.long)   # (B, T+1)
    for row, (ids, mask) in enumerate(examples):
        X[row, :len(ids)], Y[row, :len(ids)] = ids, labels(ids, mask)
    return X[:, :-1], Y[:, 1:]
