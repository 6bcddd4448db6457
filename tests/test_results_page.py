"""The Results page reads at a glance, on a desk and on a phone.

Unit tests of dltoolbox.course.book.glance: the claims grouped under the chapters' names in the order of _toc.yml,
the verdicts counted as verdicts.judge computes them, a badge that reads without colour for each verdict.
Then the built page: the count at the top, each claim linked to the section of its notebook that measures
it, every metric folded into one closed <details> per notebook. Then a browser (Debian's chromium, every
non-file request blocked): at a phone's width (390 px) every verdict badge is in view without scrolling
sideways and heads its card (wider, it sits beside the claim's first line), nothing overflows, and the
badges' colours have a contrast of at least 4.5:1 in the light and the dark theme. Screenshots (390 and 1280 px, light and dark) go to
_build/screenshots/results/ (not committed); the page's heights are printed.
"""
import html as html_text
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from test_book import browser  # noqa: F401 (the suite's Chromium, one per module)
from dltoolbox import results
from dltoolbox.course.book import glance, verdicts

SHOTS = ROOT / "_build" / "screenshots" / "results"
VERDICTS = (verdicts.REPRODUCED, verdicts.NOT_REPRODUCED, verdicts.INCONCLUSIVE)


def first_heading(path):
    """The `# ` title of a page, read here without glance's help."""
    if path.suffix == ".ipynb":
        lines = [line for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
                 if cell["cell_type"] == "markdown" for line in "".join(cell["source"]).splitlines()]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
    return next(line[2:].strip() for line in lines if line.startswith("# "))


def toc_chapters():
    """[(number, chapter docname, [its pages])] of the numbered part of _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    out = []
    for part in toc["parts"]:
        if part.get("numbered"):
            for number, entry in enumerate(part["chapters"], start=1):
                pages = [entry["file"]] + [s["file"] for s in entry.get("sections", [])]
                out.append((number, entry["file"], pages))
    return out


# --- glance's functions -------------------------------------------------------------------------

def test_claims_are_grouped_under_the_chapters_names_in_the_order_of_the_toc():
    rows = glance.rows(ROOT)
    groups = glance.grouped(rows, ROOT)
    assert sorted(id(r) for _, rs in groups for r in rs) == sorted(id(r) for r in rows), "every claim once"
    toc = toc_chapters()
    order = [doc for _, doc, _ in toc]
    docs = [chapter["doc"] for chapter, _ in groups]
    assert docs == [doc for doc in order if doc in docs], "chapters in the order of _toc.yml"
    assert len(docs) == len(set(docs)), "each chapter once"
    pages_of = {doc: (number, pages) for number, doc, pages in toc}
    for chapter, chapter_rows in groups:
        number, pages = pages_of[chapter["doc"]]
        title = first_heading(ROOT / (chapter["doc"] + ".md"))
        assert chapter["title"] == title and glance.chapter_name(chapter) == f"{number}. {title}"
        notebooks = [str(Path(r["notebook"]).with_suffix("")) for r in chapter_rows]
        assert set(notebooks) <= set(pages), f"{chapter['doc']}: a claim of another chapter"
        assert notebooks == sorted(notebooks, key=pages.index), "the chapter's notebooks in the toc's order"
    assert [c["title"] for c, _ in groups][:2] == [first_heading(ROOT / "chapters/02_ngrams/index.md"),
                                                    first_heading(ROOT / "chapters/03_seq2seq/index.md")]


def test_grouping_follows_the_toc_not_the_claims_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "index.md").write_text("# Alpha chapter\n\ntext\n")
    (tmp_path / "b" / "index.md").write_text("```\n# not a title\n```\n# Beta chapter\n")
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "parts": [
        {"caption": "Chapters", "numbered": True, "chapters": [
            {"file": "b/index", "sections": [{"file": "b/two"}, {"file": "b/one"}]},
            {"file": "a/index", "sections": [{"file": "a/nb"}]}]}]}))
    rows = [{"notebook": "a/nb.ipynb", "claim": 1}, {"notebook": "b/one.ipynb", "claim": 2},
            {"notebook": "b/two.ipynb", "claim": 3}, {"notebook": "b/one.ipynb", "claim": 4}]
    groups = glance.grouped(rows, tmp_path)
    assert [glance.chapter_name(c) for c, _ in groups] == ["1. Beta chapter", "2. Alpha chapter"]
    assert [[r["claim"] for r in rs] for _, rs in groups] == [[3, 2, 4], [1]]
    with pytest.raises(ValueError, match="in no chapter"):
        glance.grouped(rows + [{"notebook": "c/lost.ipynb", "claim": 5}], tmp_path)


def test_the_count_is_of_the_verdicts_that_verdicts_judge_computes():
    judged = Counter(row["verdict"] for row in verdicts.judge(ROOT))
    counted = glance.counts(glance.rows(ROOT))
    assert list(counted) == list(VERDICTS), "every verdict, in a fixed order"
    assert counted == {v: judged.get(v, 0) for v in VERDICTS}
    assert sum(counted.values()) == len(verdicts.load(ROOT))
    assert glance.count_text(glance.rows(ROOT)) == " · ".join(f"{judged.get(v, 0)} {v}" for v in VERDICTS)
    assert glance.count_text([{"verdict": "inconclusive"}]) == "0 reproduced · 0 not reproduced · 1 inconclusive"


def test_each_verdict_has_a_badge_that_reads_without_colour():
    assert glance.badge_text(verdicts.REPRODUCED) == "✓ reproduced"
    assert glance.badge_text(verdicts.NOT_REPRODUCED) == "✗ not reproduced"
    assert glance.badge_text(verdicts.INCONCLUSIVE) == "? inconclusive"
    signs = {glance.badge_text(v).split(" ", 1)[0] for v in VERDICTS}
    assert len(signs) == 3, "a different sign for each verdict"
    assert len({glance.badge_class(v) for v in VERDICTS}) == 3
    assert all(re.fullmatch(r"glance-[a-z-]+", glance.badge_class(v)) for v in VERDICTS)


def test_each_claim_notebook_has_a_section_that_measures_it():
    for notebook in {row["notebook"] for row in verdicts.load(ROOT)}:
        assert glance.results_section(ROOT / notebook) == "Results", notebook
    assert glance.page_title(ROOT / "chapters/02_ngrams/ngrams.ipynb") == first_heading(
        ROOT / "chapters/02_ngrams/ngrams.ipynb")


# --- the built page ----------------------------------------------------------------------------

def shown(text):
    """What a reader sees of HTML or Markdown text: no tags, no Markdown marks, plain quotes and spaces."""
    text = html_text.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(glance._plain(text).split())


def results_page(html):
    return (html / "chapters/results.html").read_text(encoding="utf-8")


def test_the_page_counts_the_verdicts_above_the_table(html):
    page = results_page(html)
    count = page.split('class="glance-count', 1)[1].split("</p>", 1)[0]
    assert page.index('class="glance-count') < page.index('class="course-glance')
    for verdict, n in glance.counts(glance.rows(ROOT)).items():
        assert re.search(rf'class="glance-badge {glance.badge_class(verdict)}">.*?{n} {verdict}</strong>', count), \
            verdict


def test_each_claim_links_to_the_notebook_section_that_measures_it(html):
    page = results_page(html)
    table = page.split('class="course-glance', 1)[1].split("</table>", 1)[0]
    cards = table.split('<tr class="glance-row ')[1:]
    rows = [row for _, rs in glance.grouped(glance.rows(ROOT), ROOT) for row in rs]
    assert len(cards) == len(rows)
    for card, row in zip(cards, rows):
        assert card.startswith(glance.badge_class(row["verdict"]))
        assert glance.BADGES[row["verdict"]] in card and f" {row['verdict']}</strong>" in card
        href = re.search(r'<th class="glance-claim"[^>]*>(?:<span>)?<a [^>]*href="([^"]+)"', card)[1]
        target, anchor = href.split("#")
        assert (html / "chapters" / target).resolve() == (html / row["notebook"]).with_suffix(".html").resolve()
        assert f'id="{anchor}"' in (html / row["notebook"]).with_suffix(".html").read_text(encoding="utf-8")
        assert 'scope="row"' in card
        for part in (row["claim"], row["measured"][:30], row["paper"][:40]):   # paper beside measurement
            assert shown(part) in shown(card), part
    for chapter, _ in glance.grouped(glance.rows(ROOT), ROOT):
        assert shown(glance.chapter_name(chapter)) in shown(table)
    assert table.count('scope="rowgroup"') == len(glance.grouped(glance.rows(ROOT), ROOT))


def test_every_metric_is_folded_per_notebook_and_closed(html):
    page = results_page(html)
    part = page.split('id="every-metric"', 1)[1]
    folds = re.findall(r"<details([^>]*)>\s*<summary>(.*?)</summary>", part, re.S)
    chapter_notebooks = [path for path, _ in glance.notebooks(ROOT)]
    assert len(folds) == len(chapter_notebooks)
    for (attributes, summary), path in zip(folds, chapter_notebooks):
        assert "open" not in attributes, f"{path.name} is folded by default"
        assert path.name in summary and f"{len(results.read_results(path))} metrics" in summary
    for path in chapter_notebooks:
        for key in results.read_results(path):
            assert html_text.escape(key, quote=False) in part, f"{path.name}: {key}"
    assert page.count("_static/results.css") == 1, "the page's style sheet, linked once"


# --- the page in a browser ----------------------------------------------------------------------

LAYOUT = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; };
  const every = document.getElementById('every-metric');
  return {
    width: window.innerWidth,
    height: document.documentElement.scrollHeight,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    theme: document.documentElement.dataset.theme,
    badges: Array.from(document.querySelectorAll('.course-glance .glance-badge')).map(box),
    claims: Array.from(document.querySelectorAll('.course-glance th.glance-claim')).map(box),
    open: Array.from(document.querySelectorAll('details')).filter(d => d.open).length,
    details: document.querySelectorAll('details.glance-metrics').length,
    glanceHeight: document.querySelector('.course-glance').offsetHeight,
    everyHeight: every ? every.offsetHeight : -1,
    colours: Object.fromEntries(['reproduced', 'not-reproduced', 'inconclusive'].map(v => {
      const e = document.querySelector('.course-glance .glance-badge.glance-' + v);
      const s = e ? getComputedStyle(e) : null;
      return [v, s ? [s.color, s.backgroundColor] : null];
    })),
  };
}"""


def luminance(css):
    r, g, b = [int(x) / 255 for x in re.findall(r"\d+", css)[:3]]
    f = lambda c: c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4  # noqa: E731
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)


def contrast(a, b):
    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def look(browser, url, width, theme):
    """The page at `width` in `theme`, every non-file request blocked: its layout, and screenshots."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    context.add_init_script(f"localStorage.setItem('mode', '{theme}'); localStorage.setItem('theme', '{theme}');")
    page = context.new_page()
    page.goto(url, wait_until="load")
    state = page.evaluate(LAYOUT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{width}-{theme}.png"))
    page.eval_on_selector(".course-glance table", "e => e.scrollIntoView()")
    page.screenshot(path=str(SHOTS / f"{width}-{theme}-claims.png"))
    page.eval_on_selector("details.glance-metrics", "e => { e.scrollIntoView(); window.scrollBy(0, -150); }")
    page.screenshot(path=str(SHOTS / f"{width}-{theme}-every-metric.png"))
    context.close()
    return state


def test_on_a_phone_every_verdict_is_in_view_and_the_page_is_short(html, browser):
    url = (html / "chapters/results.html").as_uri()
    n_rows, n_notebooks = len(glance.rows(ROOT)), len(glance.notebooks(ROOT))
    heights = {}
    for width in (390, 1280):
        for theme in ("light", "dark"):
            state = look(browser, url, width, theme)
            heights[f"{width} px, {theme}"] = (state["height"], state["glanceHeight"], state["everyHeight"])
            assert state["theme"] == theme
            assert state["overflow"] <= 1, f"at {width} px the page is {state['overflow']} px too wide"
            assert len(state["badges"]) == n_rows
            for left, right, _, _ in state["badges"]:
                assert 0 <= left and right <= state["width"], f"a verdict off-screen at {width} px"
            for (_, _, top, bottom), (_, _, claim_top, _) in zip(state["badges"], state["claims"]):
                if width < 400:   # a phone: the verdict first in its card, on a line of its own above the claim
                    assert bottom <= claim_top + 2 and claim_top - bottom < 20, "the verdict heads its card"
                else:             # wider: beside the claim's first line
                    assert abs(top - claim_top) < 12, "the verdict is on its claim's first line"
            assert state["details"] == n_notebooks and state["open"] == 0, "every metric folded by default"
            assert state["everyHeight"] < 2500, "the folded metrics take a screen or two, not dozens"
            for verdict, (colour, background) in state["colours"].items():
                assert contrast(colour, background) >= 4.5, f"{verdict} badge, {theme} theme"
    print("\nResults page height (whole page, the claims, every metric), px:")
    for name, (page, claims, every) in heights.items():
        print(f"  {name}: {page:,} ({claims:,}, {every:,})")
