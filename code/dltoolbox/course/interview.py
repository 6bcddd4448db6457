"""The interview transcript, and verbatim quotes of it located by line range.

A quote in the course is a Markdown block quote whose last paragraph is its attribution::

    > you could actually generate
    > text from end-gram [ed.: n-gram] models.
    >
    > — Oriol Vinyals, interview lines 185–186

Its text must be an exact span of the transcript (whitespace aside) that starts on the first line
named and ends on the last. The transcript is an automatic transcription; corrections appear only
as editorial notes in square brackets, ``[ed.: ...]``, and omissions only as ``[…]``.
"""
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..locations import TRANSCRIPT

SPEAKERS = {
    "Oriol Vinyals": "research scientist at DeepMind, the guest (the transcript hears 'Ariel')",
    "Sam Charrington": "host of the TWIML AI Podcast (the transcript hears 'Twomo AI')",
}

# What the speech recogniser heard -> what was said. Every heard form occurs in the transcript (tested).
GLOSSARY = {
    "Ariel": "Oriol (Vinyals)",
    "Twomo AI": "TWIML AI (the podcast)",
    "Newribs": "NeurIPS",
    "Nurebs": "NeurIPS",
    "Nureps": "NeurIPS",
    "NERPs": "NeurIPS",
    "near ribs": "NeurIPS",
    "Neurib's": "NeurIPS",
    "nirips": "NeurIPS",
    "nearly such": "NeurIPS, such",
    "DeepMine": "DeepMind",
    "in mine": "DeepMind",
    "Jeff Hinton": "Geoff Hinton",
    "and to end": "end to end",
    "compolutions": "convolutions",
    "permitting": "permeating",
    "lose inspiration": "loose inspiration",
    "course to find": "coarse to fine",
    "beds": "bets",
    "end-gram": "n-gram",
    "neuro-language model error": "neural language model era",
    "deep parallel principles": "deep RL principles",
    "emnis": "MNIST",
    "ground master": "Grandmaster",
    "offline around": "offline RL",
    "Mu0": "MuZero",
    "areal": "RL",
    "distillation laws": "distillation loss",
    "bit of lag": "bit of luck",
    "fuchsad": "few-shot",
    "one-top learning": "one-shot learning",
    "metal learning": "meta-learning",
    "the ways are randomly initialized": "the weights are randomly initialized",
    "SBMs": "SVMs",
    "super vector machines": "support vector machines",
    "a GPUs": "8 GPUs",
    "more laws": "Moore's law",
}

ATTRIBUTION = re.compile(
    r"^[—–-]{1,2}\s*(?P<speaker>[A-Z][\w .'-]+?),\s*interview\s+lines?\s+"
    r"(?P<first>\d+)(?:\s*[–-]\s*(?P<last>\d+))?\s*$"
)
EDITORIAL = re.compile(r"\s*\[ed\.:[^\]]+\]")
ELISION = re.compile(r"\[(?:…|\.\.\.)\]")
CURLY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


class QuoteError(ValueError):
    """A quote that is not a verbatim, correctly located span of the transcript."""


@dataclass(frozen=True)
class Quote:
    text: str
    speaker: str
    first: int
    last: int
    where: str = ""

    @property
    def location(self):
        return f"lines {self.first}–{self.last}" if self.last != self.first else f"line {self.first}"


def transcript_lines():
    """The transcript as a list of lines (line n is element n - 1)."""
    return TRANSCRIPT.read_text(encoding="utf-8").splitlines()


def _normalise(text):
    return re.sub(r"\s+", " ", text.translate(CURLY)).strip()


def _indexed(first, last):
    """The normalised text of lines first..last and, for each character, its line number."""
    chars, owners = [], []
    for number, line in enumerate(transcript_lines()[first - 1:last], start=first):
        for ch in _normalise(line) + " ":
            chars.append(ch)
            owners.append(number)
    return "".join(chars).rstrip(), owners


def spoken_text(quote_text):
    """The quote's pieces as the transcript has them: editorial notes removed, split at elisions."""
    text = EDITORIAL.sub("", quote_text.translate(CURLY))
    pieces = [_normalise(p) for p in ELISION.split(text)]
    stray = [p for p in pieces if re.search(r"[\[\]*_`]", p)]
    if stray:
        raise QuoteError(
            f"quote contains markup or brackets other than [ed.: ...] and […]: {stray[0][:60]!r}; "
            "quotes are plain transcript text"
        )
    if not all(pieces):
        raise QuoteError("quote has an empty piece (an elision at its start or end, or two in a row)")
    return pieces


def locate(text):
    """The (first, last) line range of the transcript where `text` occurs verbatim, or None."""
    pieces = spoken_text(text)
    lines = transcript_lines()
    whole, owners = _indexed(1, len(lines))
    start = whole.find(pieces[0])
    if start < 0:
        return None
    end = start + len(pieces[0])
    for piece in pieces[1:]:
        found = whole.find(piece, end)
        if found < 0:
            return None
        end = found + len(piece)
    return owners[start], owners[end - 1]


def check_quote(quote):
    """Raise QuoteError unless the quote is a verbatim span starting on `first` and ending on `last`."""
    n = len(transcript_lines())
    if quote.speaker not in SPEAKERS:
        raise QuoteError(f"{quote.where}: unknown speaker {quote.speaker!r}; the interview's are {sorted(SPEAKERS)}")
    if not 1 <= quote.first <= quote.last <= n:
        raise QuoteError(f"{quote.where}: line range {quote.first}–{quote.last} is not within 1–{n}")
    pieces = spoken_text(quote.text)
    text, owners = _indexed(quote.first, quote.last)
    position, start = 0, None
    for i, piece in enumerate(pieces):
        found = text.find(piece, position)
        if i == 0:
            anywhere = found
            while found >= 0 and owners[found] != quote.first:
                found = text.find(piece, found + 1)
            if found < 0 <= anywhere:
                raise QuoteError(
                    f"{quote.where}: quote starts on line {owners[anywhere]}, but its reference says {quote.first}"
                )
        if found < 0:
            actual = locate(quote.text)
            hint = f"; it occurs at lines {actual[0]}–{actual[1]}" if actual else "; it is not in the transcript"
            raise QuoteError(
                f"{quote.where}: quote is not verbatim in {quote.location}{hint}: {piece[:70]!r}"
            )
        start = found if start is None else start
        position = found + len(piece)
    if owners[position - 1] != quote.last:
        raise QuoteError(
            f"{quote.where}: quote ends on line {owners[position - 1]}, but its reference says {quote.last}"
        )
    return True


def _blockquotes(markdown):
    """(line number, lines) of each block quote in a Markdown text."""
    blocks, current, start = [], [], 0
    for number, line in enumerate(markdown.splitlines() + [""], start=1):
        stripped = line.lstrip()
        if stripped.startswith(">"):
            if not current:
                start = number
            current.append(re.sub(r"^>\s?", "", stripped))
        elif current:
            blocks.append((start, current))
            current = []
    return blocks


def find_quotes(markdown, where=""):
    """The interview quotes in a Markdown text; a QuoteError for one attributed without a line range."""
    quotes = []
    for start, lines in _blockquotes(markdown):
        paragraphs = [p.strip() for p in "\n".join(lines).split("\n\n") if p.strip()]
        if len(paragraphs) < 2:
            continue
        attribution = " ".join(paragraphs[-1].split())
        match = ATTRIBUTION.match(attribution)
        if match is None:
            if re.search(r"interview|Vinyals|Charrington", attribution):
                raise QuoteError(
                    f"{where}:{start}: attribution {attribution!r} does not read "
                    "'— Speaker Name, interview lines N–M'"
                )
            continue
        first = int(match["first"])
        last = int(match["last"] or first)
        quotes.append(Quote(" ".join(" ".join(p.split()) for p in paragraphs[:-1]), match["speaker"], first, last, f"{where}:{start}"))
    return quotes


def markdown_of(path):
    """The Markdown of a page (.md) or of a notebook's Markdown cells (.ipynb), cell by cell."""
    path = Path(path)
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return [
            (f"{path}[cell {i}]", "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for i, c in enumerate(cells) if c["cell_type"] == "markdown"
        ]
    return [(str(path), path.read_text(encoding="utf-8"))]


def quotes_in(path):
    """Every interview quote in a page or notebook."""
    return [q for where, text in markdown_of(path) for q in find_quotes(text, where)]


def check_paths(paths):
    """Check every quote under the given files or folders; return (number checked, list of errors)."""
    files = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*.md")) + sorted(p.rglob("*.ipynb")) if p.is_dir() else [p]
    files = [f for f in files if ".ipynb_checkpoints" not in f.parts and "_build" not in f.parts]
    count, errors = 0, []
    for f in files:
        try:
            quotes = quotes_in(f)
        except QuoteError as e:
            errors.append(str(e))
            continue
        for q in quotes:
            count += 1
            try:
                check_quote(q)
            except QuoteError as e:
                errors.append(str(e))
    return count, errors


def main(argv=None):
    """`python -m dltoolbox.course.interview check PATH...` or `... locate "some words"`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "locate":
        where = locate(" ".join(argv[1:]))
        print(f"lines {where[0]}–{where[1]}" if where else "not found verbatim in the transcript")
        return 0 if where else 1
    if argv and argv[0] == "check":
        count, errors = check_paths(argv[1:] or ["."])
        for e in errors:
            print(e)
        print(f"{count} quotes checked, {len(errors)} problems")
        return 1 if errors else 0
    print(main.__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
