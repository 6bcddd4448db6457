import hashlib

import pytest

from conftest import ROOT, chapter_notebooks, chapter_pages
from dltoolbox import locations
from dltoolbox.course import interview
from dltoolbox.course.interview import Quote, QuoteError, check_quote, find_quotes, locate


def test_transcript_is_the_seed_byte_for_byte():
    data = interview.TRANSCRIPT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == locations.TRANSCRIPT_SHA256
    assert data == (ROOT / "seeds" / "000_236d15bae6bd2c15.txt").read_bytes()  # the package ships a copy
    assert len(interview.transcript_lines()) == 579


def test_locate_finds_a_span_across_lines():
    assert locate("you could actually generate text from end-gram models") == (185, 186)
    assert locate("words that Vinyals never said") is None


def test_a_verbatim_quote_with_an_editorial_note_passes():
    q = Quote("you could actually generate text from end-gram [ed.: n-gram] models.", "Oriol Vinyals", 185, 186)
    assert check_quote(q)


def test_an_elided_quote_passes_and_keeps_order():
    q = Quote("Shannon like was already intrigued […] you could actually generate", "Oriol Vinyals", 184, 185)
    assert check_quote(q)
    swapped = Quote("you could actually generate […] Shannon like was already intrigued", "Oriol Vinyals", 184, 185)
    with pytest.raises(QuoteError):
        check_quote(swapped)


@pytest.mark.parametrize("text, first, last, message", [
    ("you could actually generate text from n-gram models.", 185, 186, "not in the transcript"),  # silent edit
    ("you could actually generate text from end-gram models.", 184, 186, "starts on line 185"),
    ("you could actually generate text from end-gram models.", 185, 187, "ends on line 186"),
    ("you could actually generate", 184, 185, "starts on line 185"),
    ("you could actually generate *text*", 184, 185, "markup"),
    ("you could actually generate text", 600, 601, "not within"),
])
def test_misquotes_fail(text, first, last, message):
    with pytest.raises(QuoteError, match=message):
        check_quote(Quote(text, "Oriol Vinyals", first, last))


def test_unknown_speaker_fails():
    with pytest.raises(QuoteError, match="unknown speaker"):
        check_quote(Quote("Thank you.", "Ariel Vinyals", 579, 579))


def test_find_quotes_reads_attribution_and_range():
    md = "Intro.\n\n> one two\n> three\n>\n> — Oriol Vinyals, interview lines 12–14\n\nAfter.\n"
    [q] = find_quotes(md, "page.md")
    assert (q.text, q.speaker, q.first, q.last) == ("one two three", "Oriol Vinyals", 12, 14)
    assert q.where == "page.md:3"
    [single] = find_quotes("> Thank you.\n>\n> — Sam Charrington, interview line 579\n")
    assert (single.first, single.last) == (579, 579)


def test_an_interview_attribution_without_lines_is_an_error():
    with pytest.raises(QuoteError, match="does not read"):
        find_quotes("> Thanks so much.\n>\n> — Oriol Vinyals, in the interview\n")


def test_other_block_quotes_are_not_interview_quotes():
    assert find_quotes("> XFOML RXKHRJFFJUJ\n>\n> — Shannon (1948), sample 1\n") == []


def test_glossary_heard_forms_all_occur_in_the_transcript():
    for heard in interview.GLOSSARY:
        assert locate(heard) is not None, heard


def test_every_quote_in_the_book_is_verbatim_and_located():
    count, errors = interview.check_paths([ROOT / "chapters", ROOT / "intro.md"])
    assert errors == []
    assert count >= len(chapter_pages())


@pytest.mark.parametrize("path", chapter_pages() + chapter_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_chapter_page_and_notebook_quotes_the_interview(path):
    assert interview.quotes_in(path), f"{path} has no interview quote"


def test_cli_check_reports_a_misquote(tmp_path, capsys):
    page = tmp_path / "bad.md"
    page.write_text("> Thank you very much.\n>\n> — Sam Charrington, interview line 579\n")
    assert interview.main(["check", str(page)]) == 1
    assert "not verbatim" in capsys.readouterr().out
