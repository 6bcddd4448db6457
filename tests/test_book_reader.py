"""The built book as a reader meets it, in a real browser (the suite's build, Debian's chromium through
Playwright, every non-file request blocked; see tests/test_book.py).

- Navigation: on a phone (390 px) the visible ☰ button opens the book's contents and the contents button
  opens the page's; on a wide screen (1280 px) ☰ folds the sidebar away and back.
- Colours: the interview quotes (text, attribution, link, editorial notes), the transcript's numbers and
  highlighted lines, and the course's other styles read at a WCAG contrast of at least 4.5:1 in the light
  and the dark mode, computed from the styles the browser applies.
- The transcript: a heading per segment of the interview (chapter 1's map), a note after each quoted
  passage naming its speaker and linking back to every quote of it, and a quote's link that opens the
  transcript with every line of the quoted passage highlighted.

Screenshots of what is checked go to _build/screenshots/reader/ (not committed).
"""
import os
import re

import pytest

from conftest import ROOT
from test_book import browser, offline_context  # noqa: F401 (browser: the suite's Chromium, one per module)

SHOTS = ROOT / "_build" / "screenshots" / "reader"
PAGES = ["intro.html", "chapters/01_toolbox/index.html", "chapters/02_ngrams/ngrams.html", "chapters/transcript.html"]

# WCAG 2 contrast of an element's text on what is behind it: the colours the browser computed, the
# background being the first opaque one among the element and its ancestors, with any translucent ones
# above it composited on top; the text colour composited on that.
CONTRAST = """(el) => {
  const parse = (c) => {
    let m = c.match(/^rgba?\\(([^)]+)\\)$/);
    if (m) { const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    m = c.match(/^color\\(srgb ([^)]+)\\)$/);
    if (m) { const p = m[1].split(/[ \\/]+/).filter(Boolean).map(Number); return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    throw new Error('a colour this test cannot read: ' + c);
  };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let bg = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop() : [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  const fg = over(parse(getComputedStyle(el).color), bg);
  const lum = (c) => { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
                       return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return {ratio: (hi + 0.05) / (lo + 0.05), text: getComputedStyle(el).color, background: `rgb(${bg.slice(0, 3).map(Math.round).join(', ')})`};
}"""


def open_page(browser, url, width, scheme="light"):
    """A new page at `width` in the light or dark colour scheme, every non-file request blocked, at `url`."""
    context, problems = offline_context(browser, width, color_scheme=scheme)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.goto(url, wait_until="load")
    page.wait_for_function(f"document.documentElement.dataset.theme === '{scheme}'", timeout=5_000)
    return context, page, problems


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def contrast(page, selector):
    """The contrast of the first element matching `selector`, or None when there is none."""
    element = page.locator(selector).first
    return element.evaluate(CONTRAST) if element.count() else None


def too_low(measured):
    return measured is None or measured["ratio"] < 4.5


# --- navigation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PAGES)
def test_on_a_phone_the_visible_buttons_open_the_contents(html, browser, path):
    stem = path.replace("/", "_").removesuffix(".html")
    for scheme in ("light", "dark"):
        context, page, problems = open_page(browser, (html / path).as_uri(), 390, scheme)
        menu = page.locator(".primary-toggle:visible")
        assert menu.count() == 1, f"{path}: one visible ☰ button, found {menu.count()}"
        menu.click()
        book_contents = page.locator("#pst-primary-sidebar-modal nav.bd-links")
        book_contents.wait_for(state="visible", timeout=3_000)
        assert page.evaluate("document.getElementById('pst-primary-sidebar-modal').open"), f"{path}: ☰ opened nothing"
        links = page.locator("#pst-primary-sidebar-modal nav.bd-links a")
        assert links.count() >= 10, f"{path}: the menu lists {links.count()} pages"
        first = links.first.bounding_box()
        assert links.first.is_visible() and first["x"] >= 0 and first["y"] < 900, f"{path}: the menu is not on screen"
        shot(page, f"{stem}.390.{scheme}.menu.png")
        page.keyboard.press("Escape")
        page.wait_for_function("!document.getElementById('pst-primary-sidebar-modal').open", timeout=3_000)

        contents = page.locator(".secondary-toggle:visible")
        if path == "chapters/transcript.html":
            assert contents.count() == 1, "the transcript has a contents button (its segments)"
        if contents.count():
            contents.click()
            toc = page.locator("#pst-secondary-sidebar-modal nav.page-toc")
            toc.wait_for(state="visible", timeout=3_000)
            assert page.evaluate("document.getElementById('pst-secondary-sidebar-modal').open")
            assert toc.locator("a").first.is_visible(), f"{path}: the page's contents are empty"
            shot(page, f"{stem}.390.{scheme}.contents.png")
            page.keyboard.press("Escape")
        context.close()
        assert not problems, problems


def sidebar_shown(page):
    return page.evaluate("""() => { const s = document.getElementById('pst-primary-sidebar');
        const r = s.getBoundingClientRect(); return getComputedStyle(s).visibility !== 'hidden' && r.right > 0 && r.width > 0; }""")


@pytest.mark.parametrize("path", ["chapters/01_toolbox/index.html", "chapters/transcript.html"])
def test_on_a_wide_screen_the_menu_button_folds_the_sidebar(html, browser, path):
    context, page, problems = open_page(browser, (html / path).as_uri(), 1280)
    assert sidebar_shown(page), "the sidebar starts open on a wide screen"
    menu = page.locator(".primary-toggle:visible")
    assert menu.count() == 1
    menu.click()
    page.wait_for_timeout(600)  # the theme's transition
    assert not sidebar_shown(page), f"{path}: ☰ did not fold the sidebar away"
    assert not page.evaluate("document.getElementById('pst-primary-sidebar-modal').open"), "no pop-up on a wide screen"
    shot(page, f"{path.replace('/', '_').removesuffix('.html')}.1280.light.folded.png")
    menu.click()
    page.wait_for_timeout(600)
    assert sidebar_shown(page), f"{path}: ☰ did not bring the sidebar back"
    context.close()
    assert not problems, problems


# --- colours -------------------------------------------------------------------------------------------

QUOTE_PARTS = {
    "quote text": "blockquote.interview-quote p:not(.attribution)",
    "attribution": "blockquote.interview-quote .attribution",
    "link to the transcript": "blockquote.interview-quote .attribution a",
    "editorial note": "blockquote.interview-quote .editorial-note",
}
TRANSCRIPT_PARTS = {
    "line text": "#line-210 .transcript-text",
    "line number": "#line-210 .transcript-number",
    "segment line": ".transcript-segment .segment-meta",
    "quoted-in note": ".interview-transcript .quoted-in",
    "quoted-in link": ".interview-transcript .quoted-in a.quoted-in-page",
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_quotes_and_the_transcript_read_in_both_modes(html, browser, scheme):
    low = {}
    for width in (1280, 390):
        context, page, _ = open_page(browser, (html / "chapters/01_toolbox/index.html").as_uri(), width, scheme)
        for name, selector in QUOTE_PARTS.items():
            measured = contrast(page, selector)
            if too_low(measured):
                low[f"{name} ({width} px)"] = measured or f"missing: {selector}"
        page.locator("blockquote.interview-quote").nth(1).scroll_into_view_if_needed()
        shot(page, f"quotes.{width}.{scheme}.png")
        context.close()

    # a line in the address (#line-200, highlighted by :target) and a line in none
    context, page, _ = open_page(browser, (html / "chapters/transcript.html").as_uri() + "#line-200", 1280, scheme)
    for part in ("transcript-text", "transcript-number"):
        measured = contrast(page, f"#line-200:target .{part}")
        if too_low(measured):
            low[f"highlighted {part}"] = measured
        plain = contrast(page, f"#line-210 .{part}")
        assert measured["background"] != plain["background"], "the line in the address stands out"
    for name, selector in TRANSCRIPT_PARTS.items():
        measured = contrast(page, selector)
        if too_low(measured):
            low[name] = measured or f"missing: {selector}"
    shot(page, f"transcript-target.1280.{scheme}.png")
    context.close()

    context, page, _ = open_page(browser, (html / "chapters/results.html").as_uri(), 1280, scheme)
    measured = contrast(page, "table.course-results .metric-key")
    if measured is not None and too_low(measured):   # (the results page may show no metric keys)
        low["results: metric key"] = measured
    context.close()
    assert not low, f"text below 4.5:1 in the {scheme} mode: {low}"


# --- the transcript ------------------------------------------------------------------------------------

def words(text):
    """Text as its lower-case words alone (no quotation marks, which the page curls)."""
    return " ".join(re.findall(r"\w+", text.lower()))


def test_the_transcript_has_a_heading_per_segment_and_links_back_to_every_quote(html):
    from dltoolbox.course.book.sphinxext import interview_segments

    page = (html / "chapters/transcript.html").read_text(encoding="utf-8")
    assert page.count('id="line-') == 579
    segments = interview_segments(ROOT)
    assert len(segments) >= 5
    article = page.split('<article class="bd-article"', 1)[1].split("</article>", 1)[0]
    toc = page.split('id="pst-page-toc-nav"', 1)[1].split("</nav>", 1)[0]
    for first, last, about, _ in segments:
        anchor = f"segment-{first}-{last}"
        assert f'<section class="transcript-segment" id="{anchor}">' in article, anchor
        assert f'href="#{anchor}"' in toc, f"{anchor} is not in the page's contents"
        heading = re.sub(r"<[^>]+>", "", article.split(f'id="{anchor}">', 1)[1].split("</h2>", 1)[0])
        assert words(about) in words(heading), (about, heading)
    # each line once, in order, each segment's lines under its heading
    numbers = [int(n) for n in re.findall(r'id="line-(\d+)"', article)]
    assert numbers == list(range(1, 580))
    for first, last, _, _ in segments:
        section = article.split(f'id="segment-{first}-{last}">', 1)[1].split("</section>", 1)[0]
        assert f'id="line-{first}"' in section

    # every quote on every page has a link back from the transcript, in a note naming its speaker
    quotes = set()
    for built in html.rglob("*.html"):
        if "_static" in built.parts or built.name == "transcript.html":
            continue
        for anchor in re.findall(r'<blockquote class="interview-quote" id="([^"]+)"', built.read_text(encoding="utf-8")):
            quotes.add(os.path.relpath(built, html / "chapters").replace(os.sep, "/") + "#" + anchor)
    assert len(quotes) >= 40
    notes = re.findall(r'<div class="quoted-in line">(.*?)</div>', article)
    back = {href for note in notes for href in re.findall(r'href="([^"]+)"', note)}
    missing = sorted(set(quotes) - back)
    assert not missing, f"quotes the transcript does not link back to: {missing[:5]}"
    assert all(re.match(r"(Oriol Vinyals|Sam Charrington)(, | and )", note) for note in notes)
    assert notes[0].startswith("Sam Charrington, ") and 'href="#lines-1-3"' in notes[0]


@pytest.mark.parametrize("source, first, last", [
    ("chapters/01_toolbox/index.html", 95, 101),
    ("chapters/04_attention/index.html", 511, 514),   # runs over the heading of the last segment
])
def test_a_quote_opens_the_transcript_with_every_line_of_it_highlighted(html, browser, source, first, last):
    for width, scheme in ((1280, "light"), (390, "dark")):
        context, page, problems = open_page(browser, (html / source).as_uri(), width, scheme)
        link = page.locator(f"a.interview-location.interview-lines-{first}-{last}").first
        assert link.count(), f"{source}: no link that names the quote's range {first}–{last}"
        link.scroll_into_view_if_needed()
        link.click()
        page.wait_for_url(re.compile(rf"transcript\.html#lines-{first}-{last}$"))
        page.wait_for_load_state("load")
        backgrounds = {n: contrast(page, f"#line-{n} .transcript-text")["background"]
                       for n in range(first - 1, last + 2)}
        plain = backgrounds[first - 1]
        assert backgrounds[last + 1] == plain, "the highlight ends with the quote"
        unlit = [n for n in range(first, last + 1) if backgrounds[n] == plain]
        assert not unlit, f"lines {unlit} of the quoted {first}–{last} are not highlighted"
        assert len({backgrounds[n] for n in range(first, last + 1)}) == 1, "one highlight for the whole passage"
        top = page.locator(f"#line-{first}").bounding_box()["y"]
        assert 0 <= top < 900, "the transcript opens at the quoted passage"
        for n in (first, last):
            assert contrast(page, f"#line-{n} .transcript-text")["ratio"] >= 4.5
        shot(page, f"transcript-range-{first}-{last}.{width}.{scheme}.png")
        # the note after the passage leads back to the quote
        note = page.locator(f".quoted-in:has(a[href='#lines-{first}-{last}']) a.quoted-in-page").first
        note.click()
        page.wait_for_url(re.compile(rf"#quote-{first}-{last}(-\d+)?$"))
        assert page.locator(f"blockquote.interview-quote[id^='quote-{first}-{last}']").first.is_visible()
        context.close()
        assert not problems, problems


def test_the_quotes_collected_across_pages_survive_parallel_reading_and_rereading():
    """What the transcript's notes are made from: each page's quotes, merged from the processes that read
    them in parallel, and dropped when a page is read again."""
    from types import SimpleNamespace

    from dltoolbox.course.book import sphinxext

    def quote(docname, first, last):
        return {"docname": docname, "first": first, "last": last, "speaker": "Oriol Vinyals",
                "anchor": f"quote-{first}-{last}"}

    main = SimpleNamespace(dltoolbox_quotes=[quote("a", 1, 3)])
    worker = SimpleNamespace(dltoolbox_quotes=[quote("b", 95, 101), quote("c", 95, 97)])
    sphinxext.merge_quotes(None, main, {"b"}, worker)
    assert [q["docname"] for q in main.dltoolbox_quotes] == ["a", "b"]
    sphinxext.purge_quotes(None, main, "a")
    assert main.dltoolbox_quotes == [quote("b", 95, 101)]
    assert sphinxext.quoted_ranges(main) == {(95, 101): {"speakers": ["Oriol Vinyals"], "pages": [("b", "quote-95-101")]}}
    empty = SimpleNamespace()
    sphinxext.merge_quotes(None, empty, {"c"}, worker)
    assert empty.dltoolbox_quotes == [quote("c", 95, 97)]
