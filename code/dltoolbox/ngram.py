"""n-gram language models from counts: tokens, smoothing, sampling with a temperature, bits per character."""
import hashlib
import math
import re
from collections import Counter

import numpy as np

from .locations import TRANSCRIPT, TRANSCRIPT_SHA256, data_file

CORPORA = {  # name -> (file in dltoolbox/data, SHA-256)
    "interview": (TRANSCRIPT, TRANSCRIPT_SHA256),
    "devil": (data_file("devils_dictionary.txt"), "6a4cdb18a85020e7c57ef435a80d1719104533476d081e7977e0b2dc32a01e6a"),
}
LEVELS = ("char", "word", "byte")
SMOOTHINGS = ("none", "add_k", "kneser_ney")
ALPHABETS = ("shannon", "lower", "raw")
SHANNON_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ "
WORD = re.compile(r"[\w']+|[^\w\s]")


def load_corpus(name):
    """The text of a shipped corpus: 'interview' (the transcript) or 'devil' (Bierce, 1911), checksummed."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose one of {sorted(CORPORA)}")
    path, digest = CORPORA[name]
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"corpus {name!r} at {path.name} does not match its SHA-256; restore the shipped file")
    return data.decode("utf-8")


def normalise(text, alphabet="lower"):
    """Shannon's 27 symbols ('shannon': A-Z and space), or lower case with single spaces ('lower'), or 'raw'."""
    if alphabet not in ALPHABETS:
        raise ValueError(f"unknown alphabet {alphabet!r}; choose one of {ALPHABETS}")
    if alphabet == "shannon":
        return re.sub(r"[^A-Z]+", " ", text.upper()).strip()
    if alphabet == "lower":
        return re.sub(r"\s+", " ", text.lower()).strip()
    return text


def tokenize(text, level="char"):
    """Characters, words (runs of letters/digits/apostrophes, or one punctuation mark), or UTF-8 bytes."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {LEVELS}")
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if level == "char":
        return list(text)
    if level == "word":
        return WORD.findall(text)
    return list(text.encode("utf-8"))


def detokenize(tokens, level="char"):
    """Join tokens back into text (words with single spaces; bytes decoded, invalid ones replaced)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {LEVELS}")
    if level == "char":
        return "".join(tokens)
    if level == "word":
        return " ".join(tokens)
    return bytes(tokens).decode("utf-8", errors="replace")


def ngram_counts(tokens, n):
    """A Counter of the n-grams (tuples of n consecutive tokens) in `tokens`."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    tokens = list(tokens)
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def split(tokens, heldout_fraction=0.1):
    """A fixed split: the first part for training, the last `heldout_fraction` held out."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    cut = int(round(len(tokens) * (1 - heldout_fraction)))
    return tokens[:cut], tokens[cut:]


def _prefixes(counts):
    """A Counter of each gram's prefix (all but its last symbol): how many distinct grams extend it."""
    return Counter(g[:-1] for g in counts)


class NGramModel:
    """Order-n model (n - 1 tokens of context) from counts; smoothing 'none', 'add_k' or 'kneser_ney'."""

    def __init__(self, order, smoothing="kneser_ney", k=1.0, discount=0.75):
        if not isinstance(order, int) or isinstance(order, bool) or order < 1:
            raise ValueError(f"order must be an int >= 1 (1 = unigram), got {order!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {SMOOTHINGS}")
        if smoothing == "add_k" and not k > 0:
            raise ValueError(f"add-k smoothing needs k > 0, got {k}")
        if smoothing == "kneser_ney" and not 0 < discount <= 1:
            raise ValueError(f"Kneser-Ney needs a discount in (0, 1], got {discount}")
        self.order, self.smoothing, self.k, self.discount = order, smoothing, k, discount

    def fit(self, tokens, vocab=None):
        """Count every n-gram up to the order; `vocab` adds symbols the model may predict but never saw."""
        tokens = list(tokens)
        if not tokens:
            raise ValueError("cannot fit an n-gram model to an empty corpus")
        self.vocab = sorted(set(tokens) | set(vocab or ()))
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self._symbols = [chr(i) for i in range(len(self.vocab))]  # each token is one character internally
        s = "".join(self._symbols[self.index[t]] for t in tokens)
        self.num_tokens = len(s)
        self._tail = s[-self.order:]  # the last context has no next token: subtract it from context totals
        self._raw = [Counter({"": len(s)})] + [Counter(s[i:i + m] for i in range(len(s) - m + 1))
                                                for m in range(1, self.order + 1)]
        self._tables = {}  # Kneser-Ney tables, computed on first use and shared with variants
        self._memo = {}  # P(w | h) at each level, remembered (this model's order and discount only)
        return self

    def variant(self, order=None, smoothing=None, k=None, discount=None):
        """A model sharing this one's counts, with a lower order or another smoothing, k or discount."""
        self._check_fitted()
        order = self.order if order is None else order
        if not isinstance(order, int) or not 1 <= order <= self.order:
            raise ValueError(f"a variant's order must be 1..{self.order} (the fitted order), got {order!r}")
        other = NGramModel(order, smoothing or self.smoothing, self.k if k is None else k,
                           self.discount if discount is None else discount)
        other.__dict__.update({key: value for key, value in self.__dict__.items()
                               if key not in ("order", "smoothing", "k", "discount")})
        other._memo = {}
        return other

    def _kn_tables(self, m):
        """(counts, context totals, distinct followers) at Kneser-Ney level m: raw at the top, else continuation."""
        key = ("raw" if m == self.order else "cont", m)
        if key not in self._tables:
            if m == self.order:
                counts = self._raw[m]
                totals = Counter({h: self._total(h, m) for h in _prefixes(counts)})
            else:
                above = self._raw[m + 1]
                counts = Counter(g[1:] for g in above)  # distinct left neighbours of each m-gram
                totals = Counter(g[1:-1] for g in above)
            self._tables[key] = (counts, totals, _prefixes(counts))
        return self._tables[key]

    def _check_fitted(self):
        if not hasattr(self, "vocab"):
            raise ValueError("the model is not fitted yet; call fit(tokens) first")

    def _encode(self, tokens):
        unknown = [t for t in tokens if t not in self.index]
        if unknown:
            raise ValueError(f"token {unknown[0]!r} is not in the model's vocabulary; pass vocab= to fit()")
        return "".join(self._symbols[self.index[t]] for t in tokens)

    def context_seen(self, tokens, n=None):
        """For each token, whether its context (the n - 1 tokens before it, default order - 1) was
        followed by something in the training text; tokens too near the start count as seen."""
        self._check_fitted()
        n = self.order if n is None else n
        if not isinstance(n, int) or not 1 <= n <= self.order:
            raise ValueError(f"n must be 1..{self.order}, got {n!r}")
        s = self._encode(list(tokens))
        return np.array([i < n - 1 or self._total(s[i - n + 1:i], n) > 0 for i in range(len(s))])

    def gram_seen(self, tokens, n=None):
        """For each token, whether it followed its context (the n - 1 tokens before it, default order - 1)
        somewhere in the training text, i.e. whether that n-gram was counted; tokens too near the start count
        as seen."""
        self._check_fitted()
        n = self.order if n is None else n
        if not isinstance(n, int) or not 1 <= n <= self.order:
            raise ValueError(f"n must be 1..{self.order}, got {n!r}")
        s = self._encode(list(tokens))
        return np.array([i < n - 1 or s[i - n + 1:i + 1] in self._raw[n] for i in range(len(s))])

    def count(self, gram):
        """How often the tuple `gram` (1 to order tokens) occurs in the training tokens."""
        self._check_fitted()
        if not 1 <= len(gram) <= self.order:
            raise ValueError(f"gram length must be 1..{self.order}, got {len(gram)}")
        if any(t not in self.index for t in gram):
            return 0
        return self._raw[len(gram)].get(self._encode(gram), 0)

    def num_ngrams(self):
        """How many distinct n-grams (all orders up to the model's) it stores: its size."""
        self._check_fitted()
        return sum(len(c) for c in self._raw[1:self.order + 1])

    def _total(self, h, m):
        """How often context h (m - 1 symbols) is followed by some token in the training stream."""
        return self._raw[m - 1].get(h, 0) - (m > 1 and self._tail.endswith(h))

    def _p(self, h, w, m):
        """P(w | h) at level m (len(h) == m - 1), h and w in the internal encoding."""
        if self.smoothing == "kneser_ney":
            key = (h, w)
            if key not in self._memo:
                lower = 1 / len(self.vocab) if m == 1 else self._p(h[1:], w, m - 1)
                counts, totals, types = self._kn_tables(m)
                total = totals.get(h, 0)
                self._memo[key] = lower if total == 0 else (
                    max(counts.get(h + w, 0) - self.discount, 0) + self.discount * types[h] * lower) / total
            return self._memo[key]
        total = self._total(h, m)
        c = self._raw[m].get(h + w, 0)
        if self.smoothing == "add_k":
            return (c + self.k) / (total + self.k * len(self.vocab))
        if total == 0:  # unsmoothed: an unseen context uses its longest seen suffix
            return self._p(h[1:], w, m - 1)
        return c / total

    def _history(self, context):
        context = list(context)
        h = self._encode(context[max(0, len(context) - self.order + 1):] if self.order > 1 else [])
        return h, len(h) + 1

    def prob(self, context, token):
        """P(token | the last order - 1 tokens of context)."""
        self._check_fitted()
        h, m = self._history(context)
        return self._p(h, self._encode([token]), m)

    def distribution(self, context):
        """The next-token probabilities over `self.vocab` after `context`, shape (V,)."""
        self._check_fitted()
        h, m = self._history(context)
        return np.array([self._p(h, w, m) for w in self._symbols])

    def log2_probs(self, tokens):
        """log2 P of each token given the ones before it in the same stream (-inf where P = 0)."""
        self._check_fitted()
        s = self._encode(list(tokens))
        n = self.order - 1
        probs = np.array([self._p(s[max(0, i - n):i], s[i], min(i, n) + 1) for i in range(len(s))])
        with np.errstate(divide="ignore"):
            return np.log2(probs)

    def sample(self, length, rng, temperature=1.0, prompt=()):
        """`length` new tokens after `prompt`, drawn with numpy Generator `rng` from P ** (1 / temperature)."""
        self._check_fitted()
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0)")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        out = list(prompt)
        for _ in range(length):
            p = self.distribution(out) ** (1 / temperature)
            out.append(self.vocab[rng.choice(len(p), p=p / p.sum())])
        return out[len(prompt):]


def scored(model, before, text):
    """log2 P of each token of `text`, its context reaching back into the tokens `before` it."""
    n = model.order - 1
    return model.log2_probs((list(before[len(before) - n:]) if n else []) + list(text))[n:]


def choose_kneser_ney(fit, valid, vocab, orders, discounts):
    """The Kneser-Ney order and discount with the fewest bits per token on `valid`, counted on `fit`.

    Returns (order, discount, log2 P of each validation token under that model); every setting of
    orders x discounts is scored, so this is the n-gram model's whole tuning effort.
    """
    if not orders or not discounts:
        raise ValueError("need at least one order and one discount")
    counted = NGramModel(max(orders), "kneser_ney").fit(fit, vocab)
    valid_bits = {(n, d): -scored(counted.variant(n, discount=d), fit, valid).mean() for d in discounts for n in orders}
    order, discount = min(valid_bits, key=valid_bits.get)
    return order, discount, scored(counted.variant(order, discount=discount), fit, valid)


def cross_entropy(model, tokens):
    """Average bits per token of `tokens` under `model` (inf if any token gets probability 0)."""
    tokens = list(tokens)
    if not tokens:
        raise ValueError("cannot evaluate on an empty token sequence")
    return float(-model.log2_probs(tokens).mean())


def zero_fraction(model, tokens):
    """Fraction of `tokens` to which the model gives probability 0 (the unseen events)."""
    return float(np.isneginf(model.log2_probs(tokens)).mean())


def perplexity(bits):
    """Perplexity 2 ** bits per token (inf stays inf)."""
    return math.inf if math.isinf(bits) else 2.0 ** bits
