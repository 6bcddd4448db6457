"""No typed numbers from training: every decimal typed in the book's prose is a paper's, a setting, or glued.

`dltoolbox.course.book.prose.typed_numbers` finds the decimals typed in Markdown (pages and notebook Markdown
cells), skipping glue roles, code, math, links, citations, comments and interview quotes. Every one it
finds must be explained below, by (path, number). A path may be narrowed to one notebook cell,
``"path#cell"``, where the same number is both a setting and a result in one notebook; the narrower key
is tried first. Every entry must still be found (a list can only shrink), and the three lists are disjoint.

- ``ALLOWED``: a paper's figure, a setting, a definition. Never a number from a run of this course.
- ``PENDING_CHAPTERS_5_7``: numbers from training still typed in chapters 5–7, to glue when those
  chapters are re-measured. Printed on every run.
- ``TO_FIX_CHAPTERS_2_4``: numbers from training typed in chapters 2–4, to glue now (each names the
  `results` metric it corresponds to, if any); printed on every run; meant to be emptied.
"""
import json
import re
from collections import defaultdict

from conftest import ROOT
from dltoolbox.course.book.prose import markdown_sources, typed_numbers


def entries(path, numbers, why):
    """{(path, number): why} for each of the space-separated `numbers`."""
    return {(path, number): why for number in numbers.split()}


CH02, CH03, CH04 = "chapters/02_ngrams/", "chapters/03_seq2seq/", "chapters/04_attention/"
CH05, CH06, CH07 = "chapters/05_replays/", "chapters/06_reuse/", "chapters/07_scale/"
CH08 = "chapters/08_bytes/"
CI = "the confidence level of an interval (a setting)"

ALLOWED = {
    # the landing page
    **entries("intro.md", "3.11 3.13", "the Python versions the course supports (a requirement, not a result)"),
    # chapter 2
    **entries(CH02 + "index.md", "10% 90%", "the data split: held-out last 10%, fit slice first 90% (a setting)"),
    **entries(CH02 + "index.md", "95%", CI),
    **entries(CH02 + "ngrams.ipynb", "10% 90%", "the data split: held-out last 10%, fit slice first 90% (a setting)"),
    **entries(CH02 + "ngrams.ipynb", "95%", CI),
    **entries(CH02 + "ngrams.ipynb#51", "0.5", "Exercise 2.2's sampling temperatures (a setting)"),
    **entries(CH02 + "ngrams.ipynb", "1.0 1.5", "Exercise 2.2's sampling temperatures (a setting)"),
    **entries(CH02 + "ngrams.ipynb", "100%", "Exercise 2.2's question: will any temperature reach 100%?"),
    # chapter 3
    **entries(CH03 + "index.md", "26.17 30.59 34.81 33.30 36.5 5.8 4.7 25.9 30.6",
              "Sutskever et al. 2014: BLEU and test perplexity as the paper reports them"),
    **entries(CH03 + "index.md", "95%", CI),
    **entries(CH03 + "seq2seq.ipynb", "95%", CI),
    **entries(CH04 + "attention.ipynb", "95%", CI),
    **entries(CH04 + "self_attention.ipynb", "95%", CI),
    **entries(CH04 + "self_attention.ipynb", "0.98 0.9999 0.999 0.05 0.1 0.2",
              "the second-stage recipe grid: Adam's beta2, the warm-up's share, label smoothing (settings)"),
    **entries("chapters/results.md", "95%", CI),
    **entries(CH03 + "seq2seq.ipynb", "25.9 30.6", "Sutskever et al. 2014: BLEU, plain → reversed source"),
    **entries(CH03 + "seq2seq.ipynb", "0.003 0.03", "the learning-rate grid of the sweep (a setting)"),
    **entries(CH03 + "seq2seq.ipynb#7", "0.01", "the learning-rate grid of the sweep (a setting)"),
    # chapter 4
    **entries(CH04 + "index.md", "13.93 24.19 21.50 31.44 17.82 26.71 26.75 34.16 28.45 36.15 33.30 35.63",
              "Bahdanau et al. 2015, Table 1: BLEU, all sentences / no unknown words"),
    **entries(CH04 + "index.md", "28.4 41.8 41.0 3.5",
              "Vaswani et al. 2017: big Transformer's BLEU and its 3.5 days of training"),
    **entries(CH04 + "index.md", "95%", CI),
    **entries(CH04 + "attention.ipynb", "0.003 0.03", "the learning-rate grid of the sweep (a setting)"),
    **entries(CH04 + "attention.ipynb#10", "0.01", "the learning-rate grid of the sweep (a setting)"),
    **entries(CH04 + "self_attention.ipynb", "0.001 0.03", "the ends of the learning-rate grid (a setting)"),
    **entries(CH04 + "self_attention.ipynb", "1.5", "the flat region's threshold, 1.5 × the cheapest cost per "
                                                    "pair (attention.quadratic_region; a design choice)"),
    **entries(CH04 + "self_attention.ipynb", "0.9", "the target 'first at 0.9 on 23–30 tokens' (a threshold)"),
    # chapter 5
    **entries(CH05 + "index.md", "84% 99.8%", "Vinyals et al. 2019: AlphaStar above 84% / 99.8% of ranked players"),
    **entries(CH05 + "index.md", "90%", "Mathieu et al. 2023: offline agents 'exceed 90% win rate' against BC"),
    **entries(CH05 + "index.md", "95%", CI),
    **entries(CH05 + "imitation.ipynb#1", "90%", "Mathieu et al. 2023: offline agents beat BC in >90% of games"),
    **entries(CH05 + "imitation.ipynb#43", "90%", "an exercise's hypothetical: tell 90% from 93%"),
    **entries(CH05 + "imitation.ipynb", "93%", "an exercise's hypothetical: tell 90% from 93%"),
    **entries(CH05 + "imitation.ipynb", "0.05 0.7 0.2", "the scripted players' move noise (a setting)"),
    **entries(CH05 + "imitation.ipynb", "10%", "the held-out games: the last 10% (a setting)"),
    **entries(CH05 + "imitation.ipynb", "95%", CI),
    **entries(CH05 + "kl_leash.ipynb", "0.05 0.25 0.3", "the scripted players' move noise (a setting)"),
    **entries(CH05 + "kl_leash.ipynb", "95%", CI),
    # chapter 6
    **entries(CH06 + "index.md", "43.6% 55.3% 49.42 ±0.78% 68.20 ±0.66% 98.1% 98.9%",
              "Vinyals et al. 2016 / Snell et al. 2017: miniImageNet and Omniglot accuracies"),
    **entries(CH06 + "index.md", "29.5 35.7 38.2 26.2", "Tsimpoukelli et al. 2021 (Frozen): VQAv2 accuracy"),
    **entries(CH06 + "index.md", "25%", "chance with 4 names (a definition)"),
    **entries(CH06 + "index.md", "2% 5%", "the fractions of parallel data given (a setting)"),
    **entries(CH06 + "index.md", "95%", CI),
    **entries(CH06 + "fewshot.ipynb", "43.6% 55.3% 49.42 ±0.78% 68.20 ±0.66%",
              "Vinyals et al. 2016 / Snell et al. 2017: miniImageNet accuracies"),
    **entries(CH06 + "fewshot.ipynb", "1.96", "the normal quantile of a 95% interval (a definition)"),
    **entries(CH06 + "fewshot.ipynb", "0.01", "the classifier's learning rate (a setting)"),
    **entries(CH06 + "fewshot.ipynb", "95%", CI),
    **entries(CH06 + "frozen.ipynb", "29.5 35.7 38.2 26.2", "Tsimpoukelli et al. 2021 (Frozen): VQAv2 accuracy"),
    **entries(CH06 + "frozen.ipynb", "95%", CI),
    **entries(CH06 + "lm_init.ipynb", "2% 5%", "the fractions of parallel data given (a setting)"),
    # chapter 7
    **entries(CH07 + "index.md", "3.14", "Brown et al. 2020: GPT-3's 3.14 × 10²³ FLOPs"),
    **entries(CH07 + "index.md", "2.2 74.7", "ImageNet in 2.2 minutes (Ying et al.) / 74.7 s (Yamazaki et al.)"),
    **entries(CH07 + "index.md", "0.076 1.5", "Kaplan et al. 2020: α_N ≈ 0.076, models up to 1.5 billion weights"),
    **entries(CH07 + "index.md", "95%", CI),
    **entries(CH07 + "scale.ipynb", "0.076 1.5", "Kaplan et al. 2020: α_N ≈ 0.076, models up to 1.5 billion weights"),
    **entries(CH07 + "scale.ipynb", "74.7", "Yamazaki et al. 2019: ImageNet in 74.7 seconds on 2,048 GPUs"),
    # chapter 8
    **entries(CH08 + "index.md", "95%", CI),
    **entries(CH08 + "memory.ipynb", "95%", CI),
    **entries(CH08 + "memory.ipynb", "1.000 1.057 1.104", "Yu et al. 2023 (MEGABYTE), Table 2: PG-19 bits per byte, "
                                                         "MEGABYTE and Perceiver AR against a transformer"),
}

PENDING_CHAPTERS_5_7 = {
    (CH05 + "imitation.ipynb", "5%"): "cell 42: BC's games won against the best scripted human",
    (CH05 + "imitation.ipynb", "60%"): "cell 42: winners-only cloning's games won against BC",
    (CH05 + "imitation.ipynb", "0.01"): "cell 42: the value network's expected calibration error",
    (CH05 + "imitation.ipynb", "90%"): "cell 42: the value agent 'wins over 90% of games against BC' (the same "
                                       "cell quotes the paper's 90% too: narrow to #42 in ALLOWED once glued)",
    (CH06 + "fewshot.ipynb", "−0.15"): "cell 18: paired interval, classifier − protonet, low",
    (CH06 + "fewshot.ipynb", "−0.13"): "cell 18: paired interval, classifier − protonet, high",
    (CH06 + "fewshot.ipynb", "3.5"): "cell 18: Matching Networks' points below protonet",
    (CH06 + "fewshot.ipynb", "0.827"): "cell 18: the classifier's validation score at 500 steps",
    (CH06 + "fewshot.ipynb", "0.828"): "cell 18: the classifier's validation score at 2,000 steps",
}

# Emptied: chapters 2-4 glue their numbers from training now. A new entry here is a number to glue.
TO_FIX_CHAPTERS_2_4 = {}

LISTS = {"ALLOWED": ALLOWED, "PENDING_CHAPTERS_5_7": PENDING_CHAPTERS_5_7,
         "TO_FIX_CHAPTERS_2_4": TO_FIX_CHAPTERS_2_4}


# --- typed_numbers on small strings ---------------------------------------------------------------------

def numbers(text):
    return [number for _, number, _ in typed_numbers(text)]


def test_each_form_of_a_decimal_is_flagged():
    assert numbers("loss 0.41, then .41; 41% and 41 percent of it") == ["0.41", ".41", "41%", "41%"]
    assert numbers("1.5x faster; a gap of −0.024 or -0.024 or +0.05; 12 ± 3 points") \
        == ["1.5", "−0.024", "-0.024", "+0.05", "±3"]
    assert numbers("It ended at 0.41.\n") == ["0.41"]
    assert numbers("**0.41**, _0.42_, *0.43*, ~0.44, ≈0.45, (0.46)") == ["0.41", "0.42", "0.43", "0.44", "0.45", "0.46"]
    assert numbers("between 0.3–0.5 and 0.3-0.5") == ["0.3", "0.5", "0.3", "0.5"]


def test_integers_labels_versions_and_words_are_not_decimals():
    text = ("400 steps, 3 seeds, in 2014, chapter 3, interview lines 489–493, 1,000 pairs, 122k weights, "
            "Python 3.11.2, Exercise 2.2 and Exercises 4.1–4.3, Section 3.4, fig_1.5.png, gpt2, v0.4. "
            "1. a list item")
    assert numbers(text) == []


def test_a_number_inside_a_glue_role_or_directive_is_not_flagged():
    assert numbers("reached {glue:text}`seq2seq.ipynb::bleu_plain:.1f` BLEU, {glue:text}`bleu:.1%` "
                   "({glue:text}`nb.ipynb::share (%):.0f`% of them) and {glue}`k_0.5`") == []
    assert numbers("```{glue:figure} fig_0.5\n:figwidth: 80%\n\nCaption 0.5 glued.\n```\nafter 0.7") == ["0.7"]
    assert numbers("```{glue} table_0.5\n:doc: nb.ipynb\n```\n") == []


def test_code_math_links_citations_comments_and_quotes_are_ignored():
    ignored = [
        "use `lr=0.01` here",
        "``a `0.5` b``",
        "```python\nx = 0.5\n```",
        "~~~\n0.5\n~~~",
        "```{code-cell} ipython3\n0.5\n```",
        "where $D = 0.75$ and $x_{0.5}$",
        "$$\np = 0.5\n$$",
        "$$ 0.25 $$",
        "{math}`\\lambda = 0.5`",
        "```{math}\n\\alpha = 0.076\n```",
        "\\begin{equation}\n0.5\n\\end{equation}",
        "see https://example.org/v0.5/page and www.example.org/1.5",
        "[the paper](https://arxiv.org/abs/1409.3215) and [x](fig_0.5.png) and <https://a.b/0.5>",
        "[ref]: https://example.org/0.5",
        "{cite}`sutskever2014` and {cite:p}`x0.5`",
        "<!-- 0.5 -->",
        "<!--\nold text: 0.41\n-->",
        "> we used 0.5 of the GPUs\n>\n> — Oriol Vinyals, interview line 3",
        "---\njupytext: 1.5\n---\n",
    ]
    for text in ignored:
        assert typed_numbers(text) == [], text


def test_prose_inside_a_directive_is_scanned_but_its_options_are_not():
    text = "```{note}\n:class: width-0.5\n\nIt reached 0.41.\n```\n:::{figure} plot_0.5.png\n:width: 80%\n\nA 0.7 caption.\n:::"
    assert numbers(text) == ["0.41", "0.7"]
    nested = "````{note}\nBefore 0.1.\n```{glue:figure} key\n:name: 0.2\n```\nAfter 0.3.\n````"
    assert numbers(nested) == ["0.1", "0.3"]
    assert numbers("```{admonition} A title\n---\nclass: tip 0.5\n---\nBody 0.6.\n```") == ["0.6"]


def test_line_numbers_and_context():
    text = "# Title\n\nThe model reached a loss of\n0.41 bits per character, which is good.\n"
    [(line, number, context)] = typed_numbers(text)
    assert (line, number) == (4, "0.41") and context.startswith("0.41 bits per character")
    long = "x" * 200 + " 0.5 " + "y" * 200
    [(_, _, context)] = typed_numbers(long)
    assert "0.5" in context and len(context) <= 100


def test_markdown_sources_reads_pages_and_markdown_cells(tmp_path):
    cell = lambda kind, source: {"cell_type": kind, "source": source, "metadata": {}}
    notebook = {"cells": [cell("markdown", ["Got ", "0.5"]), cell("code", "x = 0.5"), cell("markdown", "b")]}
    (tmp_path / "chapters" / "01_a" / "_build").mkdir(parents=True)
    (tmp_path / "chapters" / "01_a" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "intro.md").write_text("intro")
    (tmp_path / "README.md").write_text("readme")
    (tmp_path / "chapters" / "results.md").write_text("results")
    (tmp_path / "chapters" / "01_a" / "index.md").write_text("page")
    (tmp_path / "chapters" / "01_a" / "_build" / "index.md").write_text("built")
    (tmp_path / "chapters" / "01_a" / "nb.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "chapters" / "01_a" / ".ipynb_checkpoints" / "nb.ipynb").write_text(json.dumps(notebook))
    assert sorted(markdown_sources(tmp_path), key=str) == sorted([
        ("intro.md", None, "intro"), ("chapters/results.md", None, "results"),
        ("chapters/01_a/index.md", None, "page"),
        ("chapters/01_a/nb.ipynb", 0, "Got 0.5"), ("chapters/01_a/nb.ipynb", 2, "b")], key=str)


# --- the course -----------------------------------------------------------------------------------------

def found_in_course():
    """{(path, number): [(cell, line, context)]} for every typed decimal in the book's Markdown."""
    found = defaultdict(list)
    for path, cell, text in markdown_sources(ROOT):
        for line, number, context in typed_numbers(text):
            found[(path, cell, number)].append((line, context))
    return found


def explained(path, cell, number):
    """The (list name, key) explaining a number typed at (path, cell): the cell-narrowed key first."""
    for key in ((f"{path}#{cell}", number), (path, number)):
        for name, entries_ in LISTS.items():
            if key in entries_:
                return name, key
    return None


def where(path, cell, line):
    return f"{path} " + (f"cell {cell} line {line}" if cell is not None else f"line {line}")


def show(title, entries_, found):
    """Print a list's entries, each with the places in the book it explains."""
    print(f"\n{title}: {len(entries_)}")
    for key, why in entries_.items():
        print(f"  {key[0]}  {key[1]}  — {why}")
        for (path, cell, number), hits in found.items():
            if explained(path, cell, number) is not None and explained(path, cell, number)[1] == key:
                for line, context in hits:
                    print(f"      {where(path, cell, line)}: …{context}…")


def test_every_typed_decimal_in_the_book_is_explained():
    found = found_in_course()
    show("typed numbers from training in chapters 5-7, pending (PENDING_CHAPTERS_5_7)", PENDING_CHAPTERS_5_7, found)
    show("typed numbers from training in chapters 2-4, to glue", TO_FIX_CHAPTERS_2_4, found)
    used, unexplained = set(), []
    for (path, cell, number), hits in found.items():
        reason = explained(path, cell, number)
        if reason is None:
            unexplained += [f"{where(path, cell, line)}: {number!r} in …{context}…" for line, context in hits]
        else:
            used.add(reason)
    stale = [f"{name}: {key}" for name, entries_ in LISTS.items() for key in entries_ if (name, key) not in used]
    assert unexplained == [], ("numbers typed in prose: glue them ({glue:text}`notebook.ipynb::key:format`), "
                               "or, for a paper's figure or a setting, add them to ALLOWED:\n"
                               + "\n".join(unexplained))
    assert stale == [], "entries no longer found in the book (remove them):\n" + "\n".join(stale)


def test_the_lists_are_disjoint_and_in_their_chapters():
    names = list(LISTS)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not set(LISTS[a]) & set(LISTS[b]), (a, b, set(LISTS[a]) & set(LISTS[b]))
    assert all(re.match(r"chapters/0[5-7]_", path) for path, _ in PENDING_CHAPTERS_5_7)
    assert all(re.match(r"chapters/0[1-4]_|[^/]+\.md$|chapters/[^/]+\.md$", path) for path, _ in TO_FIX_CHAPTERS_2_4)
    assert all(why.strip() for entries_ in LISTS.values() for why in entries_.values())
