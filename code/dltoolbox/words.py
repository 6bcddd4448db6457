"""Words with an open vocabulary: a word n-gram model charged for every character of a text, so that its bits
per character compare with a character model's (unknown words are spelled out, spaces predicted)."""
import math
import re
from collections import Counter

from .ngram import WORD, NGramModel

UNKNOWN = "<unk>"


def _kind(token):
    """A token's class for the spacing model: 'word' for letters/digits/apostrophes, else the mark itself."""
    return "word" if re.fullmatch(r"[\w']+", token) else token


class OpenVocabularyWords:
    """Words from counts with a vocabulary of training words only, charged for every character of a text.

    Words seen fewer than `min_count` times in training become <unk>; an n-gram model (Kneser-Ney) predicts
    the words and <unk>, a character model counted on those rare training words spells each unknown word
    out (ending with a space), and a spacing model (from counts of the two tokens' kinds) says whether a
    space separates two tokens. The three costs add up to the bits of the exact text.
    """

    def __init__(self, order=3, min_count=2, spelling_order=3, discount=0.75):
        if not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        self.order, self.min_count, self.spelling_order, self.discount = order, min_count, spelling_order, discount

    @staticmethod
    def _tokens_and_gaps(text):
        matches = list(WORD.finditer(text))
        gaps = [text[a.end():b.start()] == " " for a, b in zip(matches, matches[1:])]
        return [m.group() for m in matches], gaps

    def fit(self, text, alphabet=()):
        """Count `text` (a str); `alphabet` adds characters unknown words may be spelled with."""
        tokens, gaps = self._tokens_and_gaps(text)
        if not tokens:
            raise ValueError("cannot fit a word model to a text without words")
        frequency = Counter(tokens)
        self.known = {w for w, c in frequency.items() if c >= self.min_count}
        self.words = NGramModel(self.order, "kneser_ney", discount=self.discount).fit(
            [w if w in self.known else UNKNOWN for w in tokens], vocab=[UNKNOWN])
        rare = [w for w in tokens if w not in self.known] or ["a"]
        self.letters = NGramModel(self.spelling_order, "kneser_ney").fit(
            list(" " + " ".join(rare) + " "), vocab=set(text) | set(alphabet) | {" "})
        self.spacing = Counter()
        for a, b, space in zip(tokens, tokens[1:], gaps):
            self.spacing[(_kind(a), _kind(b))] += 1
            self.spacing[(_kind(a), _kind(b), "space")] += space
        return self

    def bits(self, text, order=None):
        """Total bits of `text` under the model (optionally a lower word order): words, spelling, spaces."""
        if not hasattr(self, "words"):
            raise ValueError("the model is not fitted yet; call fit(text) first")
        tokens, gaps = self._tokens_and_gaps(text)
        words = self.words if order is None else self.words.variant(order)
        mapped = [w if w in self.known else UNKNOWN for w in tokens]
        spelling = sum(-self.letters.log2_probs(list(" " + w + " "))[1:].sum()
                       for w in tokens if w not in self.known)
        spaces = 0.0
        for a, b, space in zip(tokens, tokens[1:], gaps):
            key = (_kind(a), _kind(b))
            p = (self.spacing[key + ("space",)] + 0.5) / (self.spacing[key] + 1)  # add-one-half
            spaces -= math.log2(p if space else 1 - p)
        return {"words": float(-words.log2_probs(mapped).sum()), "spelling": float(spelling),
                "spaces": spaces, "chars": len(text), "unknown": sum(w == UNKNOWN for w in mapped)}

    def bits_per_char(self, text, order=None):
        """All the bits of `text` (words, spelling of unknown words, spaces) per character of it."""
        b = self.bits(text, order)
        return (b["words"] + b["spelling"] + b["spaces"]) / b["chars"]
