"""The exercise format: nbgrader metadata and markers of solution and check cells (README, "For instructors")."""
import ast
import re

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbgrader_meta(cell):
    """The cell's nbgrader metadata, or an empty dict."""
    return cell.get("metadata", {}).get("nbgrader") or {}


def is_solution(cell):
    return bool(nbgrader_meta(cell).get("solution"))


def is_check(cell):
    """A graded test cell: grade=true, solution=false."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def source_of(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _markers_in_order(text, begin, end):
    lines = [line.strip() for line in text.splitlines()]
    return begin in lines and end in lines and lines.index(begin) < lines.index(end)


def exercise_problems(nb, min_exercises=0):
    """Everything in notebook `nb` that breaks the exercise format (an empty list when it is fine)."""
    problems, seen, heading = [], set(), False
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        meta, src, where = nbgrader_meta(cell), source_of(cell), f"cell {i}"
        if cell["cell_type"] == "markdown" and re.search(r"^### Exercise", src, re.M):
            heading = True
        gid = meta.get("grade_id")
        if meta:
            where = f"cell {i} ({gid})"
            if not gid:
                problems.append(f"{where}: nbgrader metadata without a grade_id")
            elif gid in seen:
                problems.append(f"{where}: grade_id {gid!r} is used twice")
            seen.add(gid)
            if meta.get("schema_version") != 3:
                problems.append(f"{where}: nbgrader schema_version should be 3")
        has_markers = BEGIN_SOLUTION in src or END_SOLUTION in src
        if has_markers and not is_solution(cell):
            problems.append(f"{where}: has solution markers but is not an nbgrader solution cell")
        if (BEGIN_HIDDEN in src or END_HIDDEN in src) and not is_check(cell):
            problems.append(f"{where}: has hidden tests but is not an nbgrader check cell (grade: true)")
        if not is_solution(cell):
            continue
        if cell["cell_type"] != "code":
            problems.append(f"{where}: a solution cell should be a code cell")
        if "hide-input" not in cell.get("metadata", {}).get("tags", []):
            problems.append(f"{where}: a solution cell needs the tag 'hide-input' (the book hides it)")
        if not _markers_in_order(src, BEGIN_SOLUTION, END_SOLUTION):
            problems.append(f"{where}: needs a '{BEGIN_SOLUTION}' line and, after it, "
                            f"a '{END_SOLUTION}' line")
        if meta.get("grade") or meta.get("locked"):
            problems.append(f"{where}: a solution cell has grade: false and locked: false")
        if not heading:
            problems.append(f"{where}: no '### Exercise N.k — ...' Markdown cell introduces this solution")
        heading = False
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if nxt is None or not is_check(nxt):
            problems.append(f"{where}: the next cell should be its check cell (nbgrader grade: true)")
            continue
        check_meta, check_src = nbgrader_meta(nxt), source_of(nxt)
        check_where = f"cell {i + 1} ({check_meta.get('grade_id')})"
        expected = gid[:-len("solution")] + "check" if gid and gid.endswith("-solution") else None
        if expected and check_meta.get("grade_id") != expected:
            problems.append(f"{check_where}: the check of {gid} should be named {expected}")
        points = check_meta.get("points")
        if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
            problems.append(f"{check_where}: a check cell needs points > 0")
        if not check_meta.get("locked"):
            problems.append(f"{check_where}: a check cell should be locked")
        if "dltoolbox.checks" not in check_src or not checker_calls(check_src):
            problems.append(f"{check_where}: a check cell should call a checker from dltoolbox.checks "
                            "(check.exercise_N(...), which the grader runs on the answers)")
        if not _markers_in_order(check_src, BEGIN_HIDDEN, END_HIDDEN):
            problems.append(f"{check_where}: needs a '{BEGIN_HIDDEN}' ... '{END_HIDDEN}' block")
    count = sum(is_solution(c) for c in cells)
    if count < min_exercises:
        problems.append(f"{count} exercises, at least {min_exercises} expected")
    return problems


def _hidden_lines(source):
    lines, inside, hidden = source.splitlines(), False, set()
    for number, line in enumerate(lines, 1):
        if line.strip() == BEGIN_HIDDEN:
            inside = True
        elif line.strip() == END_HIDDEN:
            inside = False
        elif inside:
            hidden.add(number)
    return hidden


def checker_calls(source):
    """The checker calls of a check cell: (module, function, args, kwargs, hidden), args as ("value"|"name", x)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    aliases, calls, hidden = {}, [], _hidden_lines(source)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "dltoolbox.checks":
            aliases.update({a.asname or a.name: f"dltoolbox.checks.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names
                            if a.asname and a.name.startswith("dltoolbox.checks.")})
        expr = node.value if isinstance(node, ast.Expr) else node.test if isinstance(node, ast.Assert) else None
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                and isinstance(expr.func.value, ast.Name) and expr.func.value.id in aliases
                and re.fullmatch(r"exercise_\w+", expr.func.attr)):
            continue

        def arg(a):
            return ("value", a.value) if isinstance(a, ast.Constant) else ("name", ast.get_source_segment(source, a))
        if any(isinstance(a, ast.Starred) for a in expr.args) or any(k.arg is None for k in expr.keywords):
            continue
        kwargs = {k.arg: arg(k.value) for k in expr.keywords}
        is_hidden = node.lineno in hidden or kwargs.get("hidden") == ("value", True)
        calls.append((aliases[expr.func.value.id], expr.func.attr, [arg(a) for a in expr.args], kwargs, is_hidden))
    return calls
