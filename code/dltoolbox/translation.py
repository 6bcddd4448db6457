"""A small synthetic language pair with real reordering, generated deterministically.

The source language is English-like (subject–verb–object, adjectives before nouns); the target
language puts the verb last (SOV), adjectives after the noun in mirrored order, marks plurals
(``ra`` after the noun, plural adjective forms), marks objects with ``o``, turns prepositions into
postpositions and adds a subject-agreement marker after the verb (``ta`` singular, ``tu`` plural).
Clauses (1–3) are joined by conjunctions. Every source sentence has exactly one translation.

API (stable; other chapters build on it):

- ``source_vocab()``, ``target_vocab()``: fixed :class:`Vocab` objects (``<pad>``=0, ``<bos>``,
  ``<eos>``, ``<unk>``); ``Vocab.encode`` raises ValueError on unknown tokens.
- ``translate(src_tokens)``: the reference translation of a source sentence (a list of tokens).
- ``sample_pairs(n, min_len, max_len, seed, exclude=(), skew=0.0)``: ``n`` (src, tgt) pairs of token
  lists, source length L in ``[min_len, max_len]`` with P(L) ~ L**-skew (0: uniform), sources unique
  and not in ``exclude``.
- ``make_splits(seed=0, n_train, n_valid, n_test, min_len=3, max_len=30, skew=1.0)``: dict of
  ``train``, ``valid``, ``test`` lists of pairs, sources unique and disjoint between splits.
- ``longer_test_set(splits_or_pairs, n, min_len, max_len, seed)``: extra test pairs whose sources
  are longer than any training source (and never occur in it).
- ``target_sentences(n, seed, exclude=())``: target-side monolingual text (for LM pretraining).
- ``sources(pairs)``: the set of source strings of pairs (for ``exclude``).
"""
import random
from functools import lru_cache

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)

# source lemma -> target word
NOUNS = {"dog": "vok", "cat": "mil", "bird": "pira", "cow": "ulo", "farmer": "garen", "teacher": "sesti",
         "king": "rodo", "girl": "nali", "boy": "kobu", "friend": "amo"}
ADJECTIVES = {"big": "mar", "small": "tin", "red": "rus", "old": "vel", "young": "jun", "happy": "fel"}
TRANSITIVE = {"see": "vidu", "like": "ama", "follow": "seki", "help": "hulpa", "find": "trova", "meet": "renko"}
INTRANSITIVE = {"sleep": "dorma", "run": "kura", "sing": "kanta"}
PREPOSITIONS = {"near": "be", "with": "kon", "behind": "dau"}
ADVERBS = {"today": "hodi", "quickly": "rapi", "again": "ree"}
CONJUNCTIONS = {"and": "e", "but": "ma"}
DETERMINERS = {"the": "ka", "a": "ne", "some": "su"}
PLURAL, OBJECT, AGREE_SG, AGREE_PL = "ra", "o", "ta", "tu"

MAX_ADJECTIVES = 2
CLAUSE_MIN, CLAUSE_MAX = 3, 15  # source tokens in one clause
MAX_CLAUSES = 3


class Vocab:
    """Token <-> id maps with <pad>=0, <bos>, <eos>, <unk>; unknown tokens are an error."""

    def __init__(self, tokens):
        tokens = [t for t in tokens if t not in SPECIALS]
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.itos = list(SPECIALS) + sorted(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.bos, self.eos, self.unk = (self.stoi[t] for t in SPECIALS)

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def encode(self, tokens, add_bos=False, add_eos=False):
        """List of ids for a list of tokens (or a whitespace-separated string)."""
        if isinstance(tokens, str):
            tokens = tokens.split()
        unknown = [t for t in tokens if t not in self.stoi or t in SPECIALS]
        if unknown:
            raise ValueError(f"unknown token(s) {unknown}; the vocabulary has {len(self)} tokens, "
                             f"e.g. {self.itos[4:9]}")
        ids = [self.stoi[t] for t in tokens]
        return ([self.bos] if add_bos else []) + ids + ([self.eos] if add_eos else [])

    def decode(self, ids, strip=True):
        """Tokens for ids; with `strip`, stop at <eos> and drop <pad>/<bos>."""
        out = []
        for i in (ids.tolist() if hasattr(ids, "tolist") else ids):
            if strip and i == self.eos:
                break
            if strip and i in (self.pad, self.bos):
                continue
            out.append(self.itos[i])
        return out


def _third_person(verb):
    return verb + "s"


@lru_cache(maxsize=1)
def source_vocab():
    """The source language's vocabulary (fixed, independent of any data)."""
    words = list(NOUNS) + [n + "s" for n in NOUNS] + list(ADJECTIVES) + list(PREPOSITIONS)
    words += [v for v in list(TRANSITIVE) + list(INTRANSITIVE)] + [_third_person(v) for v in
                                                                  list(TRANSITIVE) + list(INTRANSITIVE)]
    words += list(ADVERBS) + list(CONJUNCTIONS) + list(DETERMINERS)
    return Vocab(words)


@lru_cache(maxsize=1)
def target_vocab():
    """The target language's vocabulary (fixed, independent of any data)."""
    words = list(NOUNS.values()) + list(ADJECTIVES.values()) + [a + "i" for a in ADJECTIVES.values()]
    words += list(TRANSITIVE.values()) + list(INTRANSITIVE.values()) + list(PREPOSITIONS.values())
    words += list(ADVERBS.values()) + list(CONJUNCTIONS.values()) + list(DETERMINERS.values())
    words += [PLURAL, OBJECT, AGREE_SG, AGREE_PL]
    return Vocab(words)


# ---- translation: a deterministic function of the source --------------------------------------

_NOUN_FORMS = {**{n: (n, False) for n in NOUNS}, **{n + "s": (n, True) for n in NOUNS}}
_VERB_FORMS = {**{v: v for v in list(TRANSITIVE) + list(INTRANSITIVE)},
               **{_third_person(v): v for v in list(TRANSITIVE) + list(INTRANSITIVE)}}


def _translate_np(tokens):
    det, *adjs, noun = tokens
    lemma, plural = _NOUN_FORMS[noun]
    out = [NOUNS[lemma]] + ([PLURAL] if plural else [])
    out += [ADJECTIVES[a] + ("i" if plural else "") for a in reversed(adjs)]
    return out + [DETERMINERS[det]], plural


def _split_np(tokens, i):
    """Index just past the noun phrase starting at i."""
    j = i + 1
    while tokens[j] not in _NOUN_FORMS:
        j += 1
    return j + 1


def _translate_clause(tokens):
    end = _split_np(tokens, 0)
    subject, plural = _translate_np(tokens[:end])
    verb = TRANSITIVE.get(_VERB_FORMS[tokens[end]]) or INTRANSITIVE[_VERB_FORMS[tokens[end]]]
    i, obj, pp, adv = end + 1, [], [], []
    while i < len(tokens):
        t = tokens[i]
        if t in DETERMINERS:
            j = _split_np(tokens, i)
            obj = _translate_np(tokens[i:j])[0] + [OBJECT]
        elif t in PREPOSITIONS:
            j = _split_np(tokens, i + 1)
            pp = _translate_np(tokens[i + 1:j])[0] + [PREPOSITIONS[t]]
        else:
            j, adv = i + 1, [ADVERBS[t]]
        i = j
    return subject + adv + pp + obj + [verb, AGREE_PL if plural else AGREE_SG]


def translate(src):
    """The reference translation (list of target tokens) of a source sentence."""
    tokens = src.split() if isinstance(src, str) else list(src)
    if not tokens:
        raise ValueError("cannot translate an empty sentence")
    source_vocab().encode(tokens)  # unknown tokens -> ValueError
    out, clause = [], []
    for t in tokens + ["and"]:
        if t in CONJUNCTIONS:
            if not clause:
                raise ValueError(f"not a sentence of the source language: {' '.join(tokens)!r}")
            try:
                out += _translate_clause(clause)
            except (IndexError, KeyError, ValueError):
                raise ValueError(f"not a sentence of the source language: {' '.join(tokens)!r}") from None
            out.append(CONJUNCTIONS[t])
            clause = []
        else:
            clause.append(t)
    return out[:-1]


# ---- generation -------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _clause_shapes(length):
    """(subject, object, pp, adverb) lengths whose clause has `length` source tokens."""
    nps = range(2, 2 + MAX_ADJECTIVES + 1)
    return [(s, o, p, a) for s in nps for o in (0, *nps) for p in (0, *(n + 1 for n in nps))
            for a in (0, 1) if s + 1 + o + p + a == length]


_NOUN_LIST, _ADJ_LIST = list(NOUNS), list(ADJECTIVES)
_TRANS_LIST, _INTRANS_LIST = list(TRANSITIVE), list(INTRANSITIVE)
_PREP_LIST, _ADV_LIST, _CONJ_LIST = list(PREPOSITIONS), list(ADVERBS), list(CONJUNCTIONS)


def _np(rng, length):
    plural = rng.random() < 0.5
    det = rng.choice(("the", "some") if plural else ("the", "a"))
    noun = rng.choice(_NOUN_LIST) + ("s" if plural else "")
    return [det] + rng.sample(_ADJ_LIST, length - 2) + [noun], plural


def _clause(rng, length):
    s, o, p, a = rng.choice(_clause_shapes(length))
    subject, plural = _np(rng, s)
    verb = rng.choice(_TRANS_LIST if o else _INTRANS_LIST)
    out = subject + [verb if plural else _third_person(verb)]
    if o:
        out += _np(rng, o)[0]
    if p:
        out += [rng.choice(_PREP_LIST)] + _np(rng, p - 1)[0]
    if a:
        out.append(rng.choice(_ADV_LIST))
    return out


def _sentence(rng, length):
    counts = [n for n in range(1, MAX_CLAUSES + 1)
              if n * CLAUSE_MIN + n - 1 <= length <= n * CLAUSE_MAX + n - 1]
    if not counts:
        raise ValueError(f"no sentence has {length} source tokens; lengths go from {CLAUSE_MIN} "
                         f"to {MAX_CLAUSES * CLAUSE_MAX + MAX_CLAUSES - 1}")
    n = rng.choice(counts)
    rest, parts = length - (n - 1), []
    for k in range(n - 1, 0, -1):  # clause lengths within bounds, summing to rest
        part = rng.randint(max(CLAUSE_MIN, rest - k * CLAUSE_MAX), min(CLAUSE_MAX, rest - k * CLAUSE_MIN))
        parts.append(part)
        rest -= part
    parts.append(rest)
    out = []
    for k, part in enumerate(parts):
        if k:
            out.append(rng.choice(_CONJ_LIST))
        out += _clause(rng, part)
    return out


def _check_lengths(min_len, max_len):
    top = MAX_CLAUSES * CLAUSE_MAX + MAX_CLAUSES - 1
    if not (isinstance(min_len, int) and isinstance(max_len, int) and CLAUSE_MIN <= min_len <= max_len <= top):
        raise ValueError(f"need {CLAUSE_MIN} <= min_len <= max_len <= {top}, got {min_len}, {max_len}")


def sources(pairs):
    """The set of source sentences (strings) of a list of pairs."""
    return {" ".join(src) for src, _ in pairs}


def sample_pairs(n, min_len=3, max_len=30, seed=0, exclude=(), unique=True, max_tries=None, skew=0.0):
    """`n` (source, target) token-list pairs; source length L in [min_len, max_len] has P(L) ~ L**-skew."""
    _check_lengths(min_len, max_len)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    lengths = list(range(min_len, max_len + 1))
    weights = [L ** -skew for L in lengths]
    rng, seen, out = random.Random(seed), set(exclude), []
    tries, max_tries = 0, max_tries or 50 * n + 1000
    while len(out) < n:
        tries += 1
        if tries > max_tries:
            raise ValueError(f"could only find {len(out)} new sentences of {n} with lengths "
                             f"{min_len}-{max_len}; ask for fewer or allow duplicates")
        src = _sentence(rng, rng.choices(lengths, weights)[0])
        key = " ".join(src)
        if key in seen:
            continue
        if unique:
            seen.add(key)
        out.append((src, translate(src)))
    return out


def make_splits(seed=0, n_train=20000, n_valid=500, n_test=1000, min_len=3, max_len=30, skew=1.0):
    """Train/valid/test lists of pairs (P(length L) ~ L**-skew); sources unique, each in one split only."""
    pairs = sample_pairs(n_test + n_valid + n_train, min_len, max_len, seed=seed, skew=skew)
    return {"test": pairs[:n_test], "valid": pairs[n_test:n_test + n_valid],
            "train": pairs[n_test + n_valid:]}


def longer_test_set(train, n=500, min_len=None, max_len=None, seed=1):
    """Test pairs longer than any training source (`train`: a splits dict or a list of pairs)."""
    pairs = train["train"] if isinstance(train, dict) else train
    longest = max(len(src) for src, _ in pairs)
    min_len = longest + 1 if min_len is None else min_len
    if min_len <= longest:
        raise ValueError(f"min_len={min_len} is not longer than the longest training source ({longest})")
    max_len = min(min_len + 10, MAX_CLAUSES * CLAUSE_MAX + MAX_CLAUSES - 1) if max_len is None else max_len
    return sample_pairs(n, min_len, max_len, seed=seed, exclude=sources(pairs))


def target_sentences(n, seed=2, min_len=3, max_len=30, exclude=()):
    """`n` target-language sentences (token lists), whose sources are not in `exclude`."""
    return [tgt for _, tgt in sample_pairs(n, min_len, max_len, seed=seed, exclude=exclude)]
