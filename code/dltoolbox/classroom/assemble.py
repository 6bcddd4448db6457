"""The notebook to run for a submission: the student's cells and the instructor's check cells.

Check cells (and other locked cells) are the instructor's, put right after the solution they check;
the student's solutions are found by nbgrader id, else by the lines around the solution block, else by
position; a student's copies of a check cell are dropped, and nothing replaces a missing solution.
"""
import copy
import re
import uuid

import nbformat

from .exercises import BEGIN_HIDDEN, END_HIDDEN, is_check, is_solution, nbgrader_meta, source_of

HIDDEN_BLOCK = re.compile(rf"^[ \t]*{BEGIN_HIDDEN}.*?^[ \t]*{END_HIDDEN}[^\n]*\n?", re.S | re.M)
SOLUTION_BLOCK = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*", re.S | re.M)


def grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def _fresh(cell):
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _frame(solution):
    """The lines of a solution cell outside its solution block (the part every copy keeps)."""
    return _lines(SOLUTION_BLOCK.sub("", source_of(solution)))


def _check_lines(check):
    visible = HIDDEN_BLOCK.sub("", source_of(check))
    calls = {line for line in _lines(visible) if re.search(r"\bexercise_\w+\(", line)}
    return calls or set(_lines(visible))


def assemble(submitted, source):
    """The notebook to run: the student's cells, each instructor check cell (visible part) right after the
    solution it checks; returns (notebook, notes by grade_id, {cell index: the check cell's full source})."""
    originals = [c for c in source.cells if nbgrader_meta(c)]
    solutions = [c for c in originals if is_solution(c)]
    fixed = [c for c in originals if not is_solution(c) and (is_check(c) or nbgrader_meta(c).get("locked"))]
    anchor, last = {}, None  # the solution each check cell follows in the instructor's notebook
    for cell in source.cells:
        if is_solution(cell):
            last = grade_id(cell)
        elif cell in fixed:
            anchor[grade_id(cell)], last = last, None
    notes = {}

    def note(gid, text):
        notes.setdefault(gid, []).append(text)

    cells = [c for c in submitted.cells if c.get("cell_type") in ("code", "markdown", "raw")]
    role = {}  # student cell index -> ("solution" | "fixed", grade_id)
    ids = {}
    for i, cell in enumerate(cells):
        ids.setdefault(grade_id(cell), []).append(i)
    for original in fixed:  # the student's copies of locked cells, by id or by their checker calls
        gid, wanted = grade_id(original), _check_lines(original)
        copies = [i for i in ids.get(gid, []) if i not in role]
        copies += [i for i, c in enumerate(cells) if i not in role and i not in copies and c.cell_type == "code"
                   and not is_solution(c) and wanted and wanted <= set(_lines(source_of(c)))]
        for i in copies:
            role[i] = ("fixed", gid)
        if not copies:
            note(gid, "this check cell was missing; the original was put back")
        elif any(HIDDEN_BLOCK.sub("", source_of(cells[i])).strip() != HIDDEN_BLOCK.sub("", original.source).strip()
                 for i in copies):
            note(gid, "this locked cell was edited; the original was used")
        if len(copies) > 1:
            note(gid, f"the notebook held {len(copies)} copies of this locked cell; the original was used once")
    for original in solutions:  # by id, else by the lines around the solution, else by position
        gid, frame = grade_id(original), set(_frame(original))
        check_gid = next((g for g, s in anchor.items() if s == gid), gid)
        found = [i for i in ids.get(gid, []) if i not in role and cells[i].cell_type == "code"][:1]
        how = None
        if not found and frame:
            scores = [(len(frame & set(_lines(source_of(c)))) / len(frame), i) for i, c in enumerate(cells)
                      if i not in role and c.cell_type == "code"]
            best = max(scores, default=(0, None))
            if best[0] >= 0.5:
                found, how = [best[1]], "by its content"
        if not found:
            checks = sorted(i for i, r in role.items() if r == ("fixed", check_gid))
            before = [i for i in range(checks[0] if checks else 0) if i not in role and cells[i].cell_type == "code"]
            if checks and before:
                found, how = [before[-1]], "by its place before the check"
        if found:
            role[found[0]] = ("solution", gid)
            if how:
                note(check_gid, f"the solution cell {gid} was recognised {how} (its nbgrader id was changed "
                                "or removed)")
        else:
            note(check_gid, f"the solution cell {gid} was missing; graded on what the notebook defines")
    out, judged, placed = [], {}, set()

    def put_fixed(gid):
        original = next(c for c in fixed if grade_id(c) == gid)
        cell = _fresh(original)
        if is_check(original):
            cell.source = HIDDEN_BLOCK.sub("", original.source).rstrip("\n")
            judged[len(out)] = original.source
        out.append(cell)
        placed.add(gid)

    order = [grade_id(c) for c in fixed]
    for i, cell in enumerate(cells):
        kind, gid = role.get(i, (None, None))
        if kind == "fixed":
            if anchor.get(gid) is None or not any(r == ("solution", anchor[gid]) for r in role.values()):
                for g in order[:order.index(gid) + 1]:  # no solution to follow: where the student had it
                    if g not in placed and (anchor.get(g) is None or g == gid
                                            or not any(r == ("solution", anchor[g]) for r in role.values())):
                        put_fixed(g)
            continue
        cell = _fresh(cell)
        if kind == "solution":
            original = next(c for c in solutions if grade_id(c) == gid)
            cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
        elif nbgrader_meta(cell):
            cell.metadata.pop("nbgrader")  # a student's cell never counts as a graded one
        out.append(cell)
        if kind == "solution":
            mine = [g for g in order if anchor.get(g) == gid]
            for g in order[:order.index(mine[-1]) + 1] if mine else []:
                unanchored = anchor.get(g) is None or not any(r == ("solution", anchor[g]) for r in role.values())
                if g not in placed and (g in mine or unanchored):
                    put_fixed(g)
    for g in order:  # checks whose place was never reached go at the end, in order
        if g not in placed:
            put_fixed(g)
    seen = set()
    for cell in out:  # cell ids must be unique (a copied cell may repeat one)
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = uuid.uuid4().hex[:8]
        seen.add(cell["id"])
    nb = nbformat.v4.new_notebook(cells=out, metadata=copy.deepcopy(source.metadata))
    nb.metadata.pop("widgets", None)
    return nb, notes, judged
