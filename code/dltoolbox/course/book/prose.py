"""Numbers typed in the book's prose: what a test checks against "no typed numbers from training".

A *typed number* is a decimal written in Markdown prose, where a number from a training run would have to
be glued instead. Counted: a number with a decimal point (``0.41``, ``.41``, ``1.5x``, ``−0.024``), a
percentage (``41%``, ``41 percent``) and anything after a ``±`` (``± 3``), with its sign when it has one.
Not counted: integers (``400 steps``, ``3 seeds``, years, chapter and line numbers, ``1,000``), dotted
versions (``3.11.2``), labels (``Exercise 2.2``, ``Section 3.4``, ``Figure 1.1``) and digits inside a word
(``fig_1.5.png``, ``gpt2``).

Not prose, so never scanned: glue roles and directives, every other role's backticks (``{cite}``,
``{math}``, ``{doc}``…), inline code and fenced code, math (``$…$``, ``$$…$$``, ``{math}`` blocks,
``\\begin…\\end``), URLs and link targets, HTML comments, quote blocks (``>`` lines: the interview's
transcript), YAML front matter, and directive option lines (``:key: value`` / a ``---`` block).
Directives that hold prose (``{note}``, ``{admonition}``…) are scanned inside.
"""
import json
import re
from pathlib import Path

NON_PROSE = re.compile(r"glue(?::[\w-]+)?|math|code|code-block|code-cell|literalinclude|raw|include|bibliography")
FENCE = re.compile(r"^\s{0,3}(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}")
OPTION = re.compile(r"^\s*:[\w-]+:(?:\s|$)")
QUOTE = re.compile(r"^\s{0,3}>")
COMMENT = re.compile(r"<!--.*?-->", re.S)
ROLE = re.compile(r"\{[\w:.-]+\}(`+)(?:(?!\1).)+?\1", re.S)
CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?=\S)(?:[^$\n]|\n(?!\s*\n))+?(?<=\S)\$(?!\d)")
ENVIRONMENT = re.compile(r"\\begin\{(?P<env>[^}]+)\}.*?\\end\{(?P=env)\}", re.S)
LINK_TARGET = re.compile(r"(?<=\])\([^)\s]*(?:\s+\"[^\"]*\")?\)|<[a-z]+:[^>\s]+>|^\s*\[[^\]]+\]:\s+\S.*$", re.M)
LABEL = re.compile(r"\b(?:Exercises?|Sections?|Figures?|Fig\.|Tables?|Chapters?|Equations?|Eq\.)"
                   r"\s+\d+(?:\.\d+)+(?:\s*(?:–|-|,|and|or|to)\s*\d+(?:\.\d+)+)*")
URL = re.compile(r"\b(?:https?|ftp|file)://\S+|\bwww\.\S+")
NUMBER = re.compile(
    r"(?:(?<![\w.])|(?<=(?<![\w.])_))(?:±\s*[+\-−]?\d[\d,]*(?:\.\d+)?(?:\s?%)?"      # anything after a ±
    r"|[+\-−]?(?:\d[\d,]*)?\.\d+(?!\d|\.\d)(?:\s?%)?"          # a decimal point (a dotted version is not)
    r"|[+\-−]?\d[\d,]*(?:\s?%|\s(?:per\s?cent|percent)\b))")    # a percentage


def _blank(match):
    """The matched text with every character but newlines made a space (offsets and lines kept)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _mask_blocks(lines):
    """`lines` with the non-prose ones emptied: front matter, fences, quotes and directive options."""
    out, stack, options = [], [], False
    rest = [s.strip() for s in lines[1:]]
    if lines and lines[0].strip() == "---" and "---" in rest:
        out = [""] * (rest.index("---") + 2)
    for line in lines[len(out):]:
        fence = FENCE.match(line)
        if stack and fence and not fence["info"].strip() and fence["fence"][0] == stack[-1][0][0] \
                and len(fence["fence"]) >= len(stack[-1][0]):
            stack.pop()
            out.append("")
            options = False
        elif stack and stack[-1][1]:  # inside code, math or a glued block
            out.append("")
        elif fence:
            directive = DIRECTIVE.match(fence["info"])
            skipped = NON_PROSE.fullmatch(directive["name"]) is not None if directive else fence["fence"][0] != ":"
            stack.append((fence["fence"], skipped))
            options = not skipped
            out.append("")  # the fence line: a directive's argument is a path, a key or a title
        elif options and OPTION.match(line):
            out.append("")
        elif options is True and line.strip() == "---":
            options = "yaml"
            out.append("")
        elif options == "yaml":
            options = "yaml" if line.strip() != "---" else False
            out.append("")
        else:
            options = False
            out.append("" if QUOTE.match(line) else line)
    return out


def _mask(text):
    """`text`, with the same length and lines, where everything that is not prose is blanked out."""
    text = COMMENT.sub(_blank, text)
    lines = text.split("\n")
    masked = "\n".join(m.ljust(len(o)) for m, o in zip(_mask_blocks(lines), lines))
    for pattern in (ROLE, CODE, DISPLAY_MATH, ENVIRONMENT, INLINE_MATH, LINK_TARGET, URL, LABEL):
        masked = pattern.sub(_blank, masked)
    return masked


def typed_numbers(text):
    """The decimals typed in Markdown `text`, as (line number from 1, number, ~100 characters around it)."""
    masked = _mask(text)
    found = []
    for match in NUMBER.finditer(masked):
        start = match.start()
        number = re.sub(r"\s+", "", match.group(0)).replace("percent", "%")
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start) if "\n" in text[start:] else len(text)
        lo = max(line_start, min(start - 50, line_end - 100))
        found.append((text.count("\n", 0, start) + 1, number, text[lo:min(line_end, lo + 100)].strip()))
    return found


def markdown_sources(root):
    """(path relative to `root`, Markdown cell index or None, text): every page (README.md is none) and cell."""
    root = Path(root)
    skipped = {"_build", ".ipynb_checkpoints"}
    pages = sorted(root.glob("*.md")) + sorted((root / "chapters").rglob("*.md"))
    notebooks = sorted((root / "chapters").rglob("*.ipynb"))
    for page in pages:
        if page.name != "README.md" and not skipped & set(page.relative_to(root).parts):
            yield page.relative_to(root).as_posix(), None, page.read_text(encoding="utf-8")
    for path in notebooks:
        if skipped & set(path.relative_to(root).parts):
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                source = cell["source"]
                yield path.relative_to(root).as_posix(), index, "".join(source) if isinstance(source, list) else source
